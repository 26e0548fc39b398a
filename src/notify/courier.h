// The hand-off of an environment's notification outbox to a long-running
// sender (the host agent), and the Courier that sends it there.
// WHY a header of its own beside notify.h: only the agent's wiring, the
// session and the notify commands need it; notify.h is included by every
// deploy file.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "notify/notify.h"

namespace md::notify {

// ---- hand-off to a long-running sender (the agent) -------------------------
//
// A command ends; its pending rows must still go out (a `failed` alert
// waiting for the next command could wait for days). So every command that
// writes or sends an environment's notifications hands the environment to
// the host agent, which outlives it and runs a Dispatcher per environment
// until the agent stops. WHY these secrets and not the vault key: the agent
// gets only the values the channels name (URLs, signing keys, SMTP
// passwords) — never the master key nor the app's other secrets — over its
// private control socket, and keeps them in a 0600 file of its 0700 root,
// as it keeps a release's secrets, so a restarted agent goes on sending.

struct Handoff {
  std::string store_url;  // absolute SQLite path or Postgres URL
  Target target;          // secrets: only those the channels name
};

// The values of `all` that the channels of `n` name (url_secret,
// signing_secrets, smtp_password_secret). Missing ones are left out (the
// delivery then fails with "secret X is missing", as from the controller).
secrets::SecretMap channel_secrets(const config::Notifications& n, const secrets::SecretMap& all);

// The JSON form of a hand-off, and its inverse. The text holds secret
// values: it goes only to the agent's socket and its 0600 file.
// parse_handoff: kInvalidArgument naming the field on anything malformed.
std::string handoff_json(const Handoff& h);
Result<Handoff> parse_handoff(std::string_view text);

// The agent's side: one Dispatcher per handed-off environment, running
// until stop(). Hand-offs are kept in `dir` (<env>.json, 0600; the
// directory 0700) and read again by load() after a restart.
// Concurrency: internal mutex; every method may be called from any thread.
class Courier {
 public:
  Courier(std::filesystem::path dir, Transport& transport, DispatcherOptions options = {},
          Clock& clock = real_clock());
  ~Courier();  // stop()
  Courier(const Courier&) = delete;
  Courier& operator=(const Courier&) = delete;

  // Starts a Dispatcher for every saved hand-off. A file that cannot be
  // read or whose store cannot be opened is logged and skipped (not an
  // error: the next hand-off of that environment replaces it).
  void load();
  // Saves `h` and (re)starts its environment's Dispatcher; an identical
  // hand-off changes nothing. Errors: kInvalidArgument (environment name),
  // kIo (the file), the store's error when it cannot be opened. Blocks up
  // to one attempt's timeout when it replaces a running Dispatcher.
  Status accept(const Handoff& h);
  // Environments being sent, sorted.
  std::vector<std::string> environments() const;
  // Stops every Dispatcher after its current attempt. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace md::notify
