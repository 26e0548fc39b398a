// The agent's state file, <root>/agent.state: what a restarted agent needs to
// re-adopt release processes and restore routes. Spec:
// docs/formats/agent-state.md. Versioned and checksummed; written atomically
// (core/fs.h) after every change the agent acknowledges.
//
//   meshdeploy-agent-state 2 <sha256 hex of the body>\n
//   <body: one JSON object>
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "supervisor/supervisor.h"

namespace md::agent {

inline constexpr int kStateFormatVersion = 2;
// The oldest format decode_state still reads (an upgraded agent takes over
// the file of the one it replaces).
inline constexpr int kStateFormatOldest = 1;

struct SavedProcess {
  std::string service;
  int index = 1;
  int port = 0;
  supervisor::ProcRef ref;  // pid -1 when not running (backoff, failed)
  std::string state;        // supervisor state name when saved ("running", "failed", ...)
  std::string error;        // why it failed, "" if it did not
  int restarts = 0;
  bool operator==(const SavedProcess&) const = default;
};

struct SavedRelease {
  std::string version;
  std::string sha256;
  std::string environment;
  std::string deployment_id;
  std::vector<config::Service> services;   // the release's services (spec)
  std::map<std::string, std::string> env;  // plain variables (no secrets)
  std::vector<std::string> secret_names;   // values: run/<version>.secrets (0600)
  std::string sticky_cookie, sticky_header;
  int64_t drain_deadline_ms = 30000;
  std::set<std::string> running;  // services asked to run (started, not stopped)
  // Keep-warm deadline, ms since the Unix epoch (wall clock: it must hold
  // across an agent restart); the agent stops every process then. 0 = none.
  int64_t warm_until_ms = 0;
  std::vector<SavedProcess> processes;
};

struct SavedRoute {  // one proxy service
  std::string service;
  std::string live;    // version ("" = none)
  std::string canary;  // version ("" = none)
  int canary_weight = 0;
  bool maintenance = false;
  bool operator==(const SavedRoute&) const = default;
};

struct SavedArtifact {  // registered or uploaded, not yet unpacked
  std::string version;
  std::string sha256;
  std::string file;  // under <root>/artifacts/
  bool operator==(const SavedArtifact&) const = default;
};

struct AgentState {
  std::map<std::string, SavedRelease> releases;    // by version
  std::map<std::string, SavedRoute> routes;        // by service
  std::map<std::string, SavedArtifact> artifacts;  // by version
};

// The file's bytes for `state`.
std::string encode_state(const AgentState& state);
// Parses what encode_state wrote. kCorruption (saying which check failed)
// for a bad header, a checksum mismatch, a format version outside
// kStateFormatOldest..kStateFormatVersion or a body that is not what
// encode_state writes (for that version: version 1 has no warm_until_ms).
Result<AgentState> decode_state(std::string_view text);

// Atomic, durable write (mode 0600). Blocking.
Status save_state(const std::filesystem::path& file, const AgentState& state);
// kNotFound when the file does not exist (a fresh root); decode errors with
// the file name as context.
Result<AgentState> load_state(const std::filesystem::path& file);

}  // namespace md::agent
