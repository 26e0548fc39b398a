// Everything one controller command opens for an environment, wired
// together: the state store, the host agent, the migration engine, the hook
// runner and the notification dispatcher. What cli/ (and server/) call
// before making a Deployer.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "deploy/deploy.h"
#include "notify/notify.h"

namespace md::deploy {

struct SessionOptions {
  bool migrations = true;     // open the migration engine (deploy), or not (rollback, status)
  bool notifications = true;  // run a Dispatcher for the environment's channels
  std::function<void(std::string_view)> hook_line;  // each line of hook output
  Millis agent_patience{30000};  // agent calls are retried this long while it is unreachable
  std::function<void(const std::string&)> on_retry;  // told when an agent call is retried
};

// Hands the notifications of `env` to its host agent (notify.h, "hand-off"):
// the channels, the store URL and the channel secrets of `secrets`, over the
// agent's control socket. From then on the agent sends what is pending,
// including after this command ends. Returns "" when the agent took it, else
// why not (agent not running, an older agent): a warning, not an error —
// the rows stay in the outbox. No-op ("") without channels. Blocks <= 5 s.
std::string hand_over_notifications(const config::Environment& env,
                                    const secrets::SecretMap& secrets);

// Owns what it opens; destroy it after the Deployer. Not thread-safe.
class Session {
 public:
  static Result<std::unique_ptr<Session>> open(const config::Environment& env,
                                               secrets::SecretMap secrets, const std::string& actor,
                                               const SessionOptions& options);
  ~Session();

  state::Store& store() { return *store_; }
  Host& host() { return *host_; }
  // The seams for a Deployer; `observer` must outlive it.
  Seams seams(Observer& observer, Clock& clock = real_clock());
  // Starts delivering notifications in the background (no-op without channels).
  void start_notifications();
  // Delivers what is due within `max_wait`, then stops. Returns a warning
  // ("" = all delivered).
  std::string finish_notifications(Millis max_wait);

 private:
  Session() = default;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<Host> host_;
  std::unique_ptr<Migrator> migrator_;
  std::string why_no_migrator_;
  std::unique_ptr<HookRunner> hooks_;
  std::unique_ptr<notify::Transport> transport_;
  std::unique_ptr<notify::Dispatcher> dispatcher_;
  std::optional<config::Environment> env_;  // set with dispatcher_: for the hand-off
  secrets::SecretMap channel_secrets_;
  std::string handoff_error_ = "not yet";  // "" once the agent took the hand-off
};

}  // namespace md::deploy
