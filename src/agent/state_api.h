// The state store served by an agent: an environment's deployments, journal,
// releases, audit log, deploy lock and notification outbox kept on one of its
// hosts (`state: agent`), so that a throw-away controller (a CI runner) keeps
// nothing and two controllers on two machines share one lock and one history.
//
// Wire: `POST /v1/state/<op>` on the agent's control socket (docs/agent.md),
// one JSON object in, one out; errors as every other route (api.h), codes
// kept. The agent serves `<root>/state.db`, a SQLite store (state/), opened at
// the first call with the agent's clock: lease times are the agent's.
// Times travel as integer nanoseconds since the Unix epoch (exact).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/api.h"
#include "http/http.h"
#include "state/state.h"

namespace md::agent {

// ---- JSON forms of the state types (decode fails with kInvalidArgument) ----
#define MD_STATE_JSON(T)                     \
  nlohmann::json to_json(const state::T& v); \
  template <>                                \
  Result<state::T> decode<state::T>(const nlohmann::json& j);
MD_STATE_JSON(Deployment)
MD_STATE_JSON(JournalEntry)
MD_STATE_JSON(Release)
MD_STATE_JSON(AuditEntry)
MD_STATE_JSON(LockInfo)
MD_STATE_JSON(OutboxEvent)
MD_STATE_JSON(Batch)
#undef MD_STATE_JSON

// The agent's side: the store file and the routes that serve it. Opens the
// file at the first call (a store newer than this binary, or a damaged file,
// is that call's error, and the next call tries again). Thread-safe.
class StateService {
 public:
  // Serves the SQLite store at `file`, its times from `clock`.
  StateService(std::filesystem::path file, Clock& clock);
  // Serves what `open` opens (tests: a store at another schema); `file`
  // names it in answers.
  using Opener = std::function<Result<std::unique_ptr<state::Store>>()>;
  StateService(std::filesystem::path file, Opener open)
      : file_(std::move(file)), open_(std::move(open)) {}
  // Adds POST /v1/state/{op} and GET /v1/state/info to `r`; `this` must
  // outlive the router's server.
  void add_routes(http::Router& r);
  // The open store, opening it if needed.
  Result<state::Store*> store();

 private:
  std::filesystem::path file_;
  Opener open_;
  std::mutex mu_;
  std::unique_ptr<state::Store> store_;  // GUARDED_BY(mu_) until set, then immutable
};

// The controller's side: a state::Store whose every call is one request to
// the agent at `socket` (the local one, or a socket ssh forwards to a remote
// agent). Checks at open that the agent serves a store (GET /v1/state/info):
// kUnavailable (retryable) when no agent answers, like an unreachable
// Postgres; kFailedPrecondition from an agent too old to serve one. Later
// calls: the agent's errors with their codes; kUnavailable/kTimeout when the
// agent cannot be reached (the lease loop retries them, as for any store).
// `where` names the host for messages ("agent of web-1"); `keep` is held as
// long as the store (e.g. the ssh connection carrying the socket).
Result<std::unique_ptr<state::Store>> open_agent_store(std::filesystem::path socket,
                                                       std::string where,
                                                       Millis timeout = Millis(30000),
                                                       std::shared_ptr<void> keep = {});

}  // namespace md::agent
