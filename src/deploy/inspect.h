// Read-only views of an environment for `meshdeploy status`, `history` and
// `logs`: gathered from the state store and the host, formatted as text or
// JSON. Takes no lock and changes nothing.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "deploy/adapters.h"
#include "deploy/seams.h"
#include "state/state.h"

namespace md::deploy {

// One host of an environment with several.
struct HostStatus {
  std::string name;
  std::optional<HostView> view;  // nullopt when its agent is unreachable
  std::string error;             // why ("" when reachable)
};

struct EnvironmentStatus {
  std::string environment;
  std::vector<HostStatus> hosts;             // several hosts: each on its own (else empty)
  std::optional<HostView> host;              // nullopt when the agent is unreachable
  std::string host_error;                    // why ("" when reachable)
  std::optional<state::Deployment> running;  // a deploy in progress (or left by a dead controller)
  std::string running_step;                  // its last journaled step
  std::optional<state::LockInfo> lock;
  std::optional<state::Deployment> last_done;  // the newest finished deployment
  std::vector<state::Release> releases;        // the store's view of release states
  std::string state_store;  // where the state lives (Store::describe(): file, URL or host's agent)
};

// Gathers the status. Errors only from the store; an unreachable host is
// reported in the result.
Result<EnvironmentStatus> environment_status(state::Store& store, Host& host,
                                             const std::string& environment);

std::string format_status(const EnvironmentStatus& s, SysTime now);
nlohmann::json status_json(const EnvironmentStatus& s);

// A table, newest first: id, kind, version, from, strategy, status, start, duration, actor.
// `hosts` (deployment id -> its hosts, from deployment_hosts) adds a
// "hosts:" line under each deployment of several hosts.
std::string format_history(const std::vector<state::Deployment>& ds,
                           const std::map<std::string, std::vector<std::string>>& hosts = {});
nlohmann::json history_json(const std::vector<state::Deployment>& ds,
                            const std::map<std::string, std::vector<std::string>>& hosts = {});
// The hosts a deployment ran on, as its preflight record lists them (empty
// for one host).
std::vector<std::string> deployment_hosts(const std::vector<state::JournalEntry>& journal);
nlohmann::json deployment_json(const state::Deployment& d);

// One deployment's journal: a line per record (time, step, phase/outcome,
// detail), and as JSON {"deployment": ..., "complete": bool, "journal": [...]}.
std::string format_journal(const state::Deployment& d, const std::vector<state::JournalEntry>& j);
nlohmann::json journal_json(const state::Deployment& d, const std::vector<state::JournalEntry>& j);

// Prints a release's process log lines (redacted by the agent) through
// `sink` until it returns false; `follow` keeps polling for new lines.
// `version` "" = the live release; `process` "" = all, merged by time.
// `link` is the way to the host's agent (adapters.h, open_agent_link).
Status stream_logs(const AgentLink& link, const config::Environment& env,
                   const std::string& version, const std::string& process, int tail, bool follow,
                   const std::function<bool(const std::string& line)>& sink);

}  // namespace md::deploy
