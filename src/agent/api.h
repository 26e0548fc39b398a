// The agent's control API: typed requests and answers, their JSON forms, and
// the blocking client the controller (src/deploy) drives a host with.
// Transport: HTTP/1.1 + JSON on the agent's unix socket (mode 0600), paths
// under /v1/ (docs/agent.md lists them). Errors travel as
// {"error": {"code": "<errc name>", "message": "..."}} and come back out of
// the client as the same md::Errc.
//
// Idempotency, so a resumed controller may repeat any call: registering or
// unpacking the same version with the same sha256, starting what runs,
// routing to the split that holds, promoting a canary already promoted,
// aborting one already gone, stopping what is stopped — all succeed and
// change nothing. The same version with another sha256 is kAlreadyExists.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "proxy/proxy.h"
#include "secrets/secrets.h"

namespace md::agent {

inline constexpr int kApiVersion = 1;

// ---- requests -------------------------------------------------------------------

// An artifact the agent can read by path (same host). The agent verifies the
// sha256 and copies it into <root>/artifacts/ so the source may go away.
struct RegisterArtifact {
  std::string version;
  std::string sha256;          // lower-case hex of the file
  std::filesystem::path path;  // absolute, on the agent's host
};

// Unpacks a registered (or uploaded) artifact into releases/<version>/.
struct Unpack {
  std::string version;
  std::vector<std::string> shared_dirs;   // linked from <root>/shared/, created when missing
  std::vector<std::string> shared_files;  // linked from <root>/shared/, must exist
};

// Which services of a release a call is about.
enum class Role { kAll, kWeb, kWorkers };
std::string_view role_name(Role r);  // "all" | "web" | "workers"

// Starts the processes of a release (those of `role`) beside whatever runs.
struct Start {
  std::string version;
  Role role = Role::kAll;
  std::string environment;                 // MESHDEPLOY_ENV
  std::string deployment_id;               // MESHDEPLOY_DEPLOYMENT_ID ("" = none)
  std::vector<config::Service> services;   // every service of the release (role picks)
  std::map<std::string, std::string> env;  // plain variables
  secrets::SecretMap secrets;              // decrypted; sent only over the 0600 socket
  std::string sticky_cookie;               // proxy canary stickiness ("" = off)
  std::string sticky_header;
  Millis drain_deadline{30000};  // streams to a replaced set are closed after this
};

// Waits until every process of `role` of the release is ready (web: healthy;
// worker: stayed up). Fails early when one has failed (crash loop, start
// timeout) with kFailedPrecondition naming it and its last exit.
struct WaitReady {
  std::string version;
  Role role = Role::kAll;
  Millis timeout{60000};
};

// The web traffic split: version -> percent, summing to 100 (at most two
// versions: the live one and a canary). {"v2": 100} is blue-green; a
// version that held the canary becomes live by promotion (same target set).
struct Route {
  std::map<std::string, int> weights;
  Millis health_timeout{10000};  // new targets must pass the proxy's check within this
};

// Waits until no request is in flight on the release's targets (they take no
// new ones once routed away), at most `timeout`.
struct Drain {
  std::string version;
  Millis timeout{30000};
};

// Keeps a release that no longer takes traffic running for `window`, then
// stops every process of it (as `stop` does). The deadline is saved in the
// state file: an agent restarted in between still stops it on time, and one
// started after the deadline stops it at once. Routing traffic to the
// release again (a rollback) cancels the deadline; asking again moves it.
// kFailedPrecondition when the release takes traffic or never ran here.
struct KeepWarm {
  std::string version;
  Millis window{0};
};

struct Stop {
  std::string version;
  Role role = Role::kAll;
  Millis grace{0};     // SIGTERM -> SIGKILL; 0 = each service's stop_grace
  bool force = false;  // stop even if it takes traffic (else kFailedPrecondition)
  bool wait = true;    // block until every process is gone
};

struct Maintenance {
  bool on = true;
  std::string service;  // "" = every web service
  std::string page;     // HTML, "" = the proxy's default
};

struct Logs {
  std::string version;
  std::string process;  // "web.1"; "" = every process of the release, merged by time
  int tail = 100;       // the last N lines (when `cursor` is empty)
  std::map<std::string, uint64_t> cursor;  // process -> byte offset: lines after it (follow)
};

struct Prune {
  int keep = 5;
  std::vector<std::string> protect;  // besides live, canary and running releases
};

// ---- answers --------------------------------------------------------------------

struct ProcessInfo {
  std::string name;  // "web.1"
  std::string service;
  int index = 1;
  bool web = true;
  std::string
      state;  // supervisor state: starting | running | backoff | stopping | stopped | failed
  bool healthy = false;
  int port = 0;  // web only
  int pid = -1;  // -1 when not running
  int log_pid = -1;
  int restarts = 0;
  std::string last_exit;   // "exit 1", "killed by SIGKILL", "" if none
  std::string error;       // why it failed, "" if none
  std::string started_at;  // RFC 3339, "" if never
  bool adopted = false;    // re-adopted after an agent restart
};

struct ReleaseInfo {
  std::string version;
  std::string sha256;
  int64_t unpacked_at_ms = 0;
  bool unpacked = false;               // on disk (an artifact can be registered only)
  std::string traffic;                 // "live" | "canary" | "" ; see weight
  int weight = 0;                      // percent of web traffic now
  std::vector<ProcessInfo> processes;  // empty: nothing runs
  std::string warm_until;              // RFC 3339: the agent stops it then (keep-warm); "" = never
};

struct RouteInfo {  // one proxy service
  std::string service;
  std::string host, path_prefix;
  std::string live;    // version, "" if none
  std::string canary;  // version, "" if none
  int canary_weight = 0;
  uint64_t live_set = 0, canary_set = 0;  // proxy set ids (metrics)
  bool maintenance = false;
};

struct AgentStatus {
  int api_version = kApiVersion;
  std::string agent_version;  // meshdeploy's version
  int pid = 0;
  std::string root;
  std::vector<std::string> listen;  // the proxy's bound addresses
  // HTTPS on the listeners: the absolute paths the agent loaded and the
  // sha256 (hex) of the certificate file as read at start; all "" = plain HTTP.
  std::string tls_cert, tls_key, tls_cert_sha256;
  // Answers to `route` only (-1 otherwise): how long the proxy probed the
  // health of the targets it was given before switching to them (the switch
  // is the rest of the call).
  int64_t probe_ms = -1;
  std::string started_at;
  uint64_t disk_free_bytes = 0;   // under root
  uint64_t disk_free_inodes = 0;  // under root; 0 = the filesystem has no fixed count
  int adopted = 0;                // processes re-adopted at start-up
  // What stopping a release reaches: "cgroup v2 (<dir>)" (everything the
  // release started, setsid daemons too) or "process groups (<why>)".
  std::string containment;
  std::vector<ReleaseInfo> releases;  // oldest first
  std::vector<RouteInfo> routes;
  std::map<std::string, int> weights;  // version -> percent of web traffic
};

// Cumulative proxy counters of each version's target sets (all services
// summed). Compare two snapshots with the same `instance` only.
struct VersionMetrics {
  std::string instance;
  std::map<std::string, proxy::Counters> by_version;
};

struct LogLine {
  std::string process;  // "web.1"
  std::string time;     // RFC 3339 from the log writer
  std::string text;     // redacted
};
struct LogsResult {
  std::vector<LogLine> lines;
  std::map<std::string, uint64_t> cursor;  // pass back to follow
};

// ---- JSON forms (the wire format; from_json fails with kInvalidArgument) ----------

// to_json(v) for every type above; decode<T>(j) parses what to_json produced.
template <class T>
Result<T> decode(const nlohmann::json& j);
#define MD_AGENT_JSON(T)              \
  nlohmann::json to_json(const T& v); \
  template <>                         \
  Result<T> decode<T>(const nlohmann::json& j);
MD_AGENT_JSON(RegisterArtifact)
MD_AGENT_JSON(Unpack)
MD_AGENT_JSON(Start)
MD_AGENT_JSON(WaitReady)
MD_AGENT_JSON(Route)
MD_AGENT_JSON(Drain)
MD_AGENT_JSON(KeepWarm)
MD_AGENT_JSON(Stop)
MD_AGENT_JSON(Maintenance)
MD_AGENT_JSON(Logs)
MD_AGENT_JSON(Prune)
MD_AGENT_JSON(ReleaseInfo)
MD_AGENT_JSON(AgentStatus)
MD_AGENT_JSON(VersionMetrics)
MD_AGENT_JSON(LogsResult)
MD_AGENT_JSON(config::Service)
#undef MD_AGENT_JSON

// ---- the client ------------------------------------------------------------------

// Blocking; one request per call; thread-compatible (one per thread). Errors:
// the agent's, with their codes; kUnavailable (retryable) when the agent is
// not running; kTimeout when the call outlives its limit.
class Client {
 public:
  explicit Client(std::filesystem::path socket, Millis timeout = Millis(30000));

  Result<AgentStatus> status();
  Result<ReleaseInfo> register_artifact(const RegisterArtifact& r);
  // Streams a local file to the agent in chunks (works through a forwarded
  // socket, e.g. ssh -L), then verifies it there like register_artifact.
  Result<ReleaseInfo> upload_artifact(const std::string& version, const std::string& sha256,
                                      const std::filesystem::path& file);
  Result<ReleaseInfo> unpack(const Unpack& r);
  Result<ReleaseInfo> start(const Start& r);
  Result<ReleaseInfo> wait_ready(const WaitReady& r);
  Result<AgentStatus> route(const Route& r);
  // The single-step forms of route(), as the proxy names them.
  Result<AgentStatus> switch_to(const std::string& version);               // {version: 100}
  Result<AgentStatus> set_canary(const std::string& version, int weight);  // live keeps the rest
  Result<AgentStatus> promote(const std::string& version);                 // canary -> live
  Result<AgentStatus> abort_canary(const std::string& version);            // canary dropped
  Result<AgentStatus> maintenance(const Maintenance& r);
  Status drain(const Drain& r);
  Result<ReleaseInfo> stop(const Stop& r);
  Result<ReleaseInfo> keep_warm(const KeepWarm& r);
  // Starts the workers of `to`, waits until they are up, then stops those of
  // `from` (SIGTERM; they finish their job): never fewer running than asked.
  Status replace_workers(const Start& to, const std::string& from, Millis ready_timeout);
  Result<VersionMetrics> metrics();
  Result<proxy::MetricsSnapshot> proxy_metrics();
  Result<LogsResult> logs(const Logs& r);
  // Prints new lines through `sink` until it returns false (polls every
  // `every`); starts with the last `r.tail` lines.
  Status follow_logs(Logs r, const std::function<bool(const LogLine&)>& sink,
                     Millis every = Millis(250));
  Result<std::vector<std::string>> prune(const Prune& r);
  // Asks the agent to exit. `all`: stop every release first (SIGTERM, grace).
  Status shutdown(bool all);
  // Asks the agent to re-exec itself (the binary on disk now: an upgrade
  // takes effect), handing its public listening sockets to the new image so
  // no connection is refused; waits up to `wait` until the new one answers
  // and returns its status. kTimeout if it did not come back.
  Result<AgentStatus> restart(Millis wait = Millis(30000));

 private:
  Result<nlohmann::json> call(std::string_view method, std::string_view path,
                              const nlohmann::json* body, Millis timeout);
  std::filesystem::path socket_;
  Millis timeout_;
};

}  // namespace md::agent
