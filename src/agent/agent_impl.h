// The agent's insides, shared by agent.cc (lifecycle), operations.cc
// (releases), traffic_ops.cc (routes) and server.cc (HTTP). Not a contract.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/release_store.h"
#include "agent/state_api.h"
#include "agent/state_file.h"
#include "agent/traffic.h"
#include "core/log.h"
#include "core/wakeup.h"
#include "http/http.h"
#include "proxy/proxy.h"
#include "supervisor/exit_watch.h"
#include "supervisor/launcher.h"
#include "supervisor/supervisor.h"

namespace md::agent {

inline const log::Logger kLog("agent");

struct Agent::Impl {
  Options opts;
  std::filesystem::path root;  // canonical
  std::filesystem::path socket, state_file, logs_dir, run_dir;
  int lock_fd = -1;
  SysTime started_at{};
  int adopted = 0;
  std::string tls_cert_sha256;  // of opts.tls_cert as read at start ("" = plain HTTP)

  std::optional<ReleaseStore> store;
  std::unique_ptr<supervisor::RealLauncher> launcher;
  supervisor::HttpProber prober;
  std::unique_ptr<supervisor::Supervisor> sup;
  std::unique_ptr<proxy::Proxy> proxy;
  std::unique_ptr<http::UnixServer> server;
  std::unique_ptr<http::UnixServer> metrics_server;  // --metrics-listen: GET /metrics over TCP
  std::unique_ptr<StateService> state_service;       // <root>/state.db (/v1/state/)

  // Mutating operations run one at a time, in arrival order.
  std::mutex op_mu;
  // Guards `state`, `port_version` and writes of the state file.
  mutable std::mutex mu;
  AgentState state;
  std::map<int, std::string> port_version;  // every port a version's process had (metrics)
  uint64_t saved_generation = ~0ull;

  mutable std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool stop_requested = false;           // GUARDED_BY(wake_mu)
  bool stop_all = false;                 // GUARDED_BY(wake_mu)
  bool restart = false;                  // GUARDED_BY(wake_mu): the shutdown is `agent restart`
  std::atomic<int64_t> last_tick_ms{0};  // the supervisor loop's last round (watchdog)
  std::thread waker;  // GUARDED_BY(wake_mu): wakes wait() after a shutdown answer
  std::atomic<bool> quitting{false};
  // Every wait of the agent goes through this clock (the seam of core/clock.h).
  Clock& clock = real_clock();
  // The loops of start_threads() sleep until there is work (an idle agent
  // wakes about twice a second, bench/README.md "Agent idle wakeups"):
  supervisor::ExitWatch exits;   // tick: a leader's exit, a change, or the next deadline
  Wakeup health_wake{clock};     // health: a change, or the next probe
  Wakeup reconcile_wake{clock};  // targets: the supervisor's generation moved
  Wakeup retire_wake{clock};     // keep-warm: a new deadline, or the next one
  Wakeup quit_wake{clock};       // watchdog pings; stopped when quitting
  bool stopped = false;
  bool restarting = false;  // stop_for_restart: the next agent takes over (no STOPPING=1)
  std::vector<std::thread> threads;

  // ---- lifecycle (agent.cc)
  Status open();
  Status restore();
  void kill_orphans();
  void start_threads();
  bool reconcile_targets();  // false: an operation held op_mu, try again soon
  std::optional<MonoTime> next_warm_deadline() const;  // the earliest keep-warm end
  void stop_threads();

  // ---- releases (operations.cc)
  Result<ReleaseInfo> register_artifact(const RegisterArtifact& r);
  Status upload_chunk(const std::string& version, uint64_t offset, std::string_view data);
  Result<ReleaseInfo> commit_upload(const std::string& version, const std::string& sha256);
  Result<ReleaseInfo> unpack(const Unpack& r);
  Result<ReleaseInfo> start_release(const Start& r);
  Result<ReleaseInfo> wait_ready(const WaitReady& r);
  Result<ReleaseInfo> stop_release(const Stop& r);
  Result<ReleaseInfo> keep_warm(const KeepWarm& r);
  // Stops the releases whose keep-warm deadline passed (their own thread:
  // a stop blocks for the processes' grace). A release routed to again keeps
  // running and loses its deadline.
  void retire_expired();
  // Removes uploads that saw no chunk for opts.upload_expiry (the agent's
  // housekeeping thread; under op_mu, so never while a chunk is written;
  // skipped when op_mu is busy).
  void expire_uploads();
  // Also removes orphan artifacts (artifact_gc.h).
  Result<std::vector<std::string>> prune(const Prune& r);
  Result<LogsResult> logs(const Logs& r);
  Status stop_everything();

  // ---- traffic (traffic_ops.cc)
  Result<AgentStatus> route(const Route& r);
  Result<AgentStatus> set_canary(const std::string& version, int weight);
  Result<AgentStatus> promote(const std::string& version);
  Result<AgentStatus> abort_canary(const std::string& version);
  Result<AgentStatus> maintenance(const Maintenance& r);
  Status drain(const Drain& r);
  VersionMetrics metrics() const;
  // op_mu held. Returns how long the proxy probed the new targets' health.
  Result<Millis> apply(const TrafficOp& op, Millis health_timeout);
  std::map<std::string, ServiceRoute> current_routes() const;
  std::map<std::string, std::set<std::string>> routable_web_services() const;
  bool takes_traffic(const std::string& version) const;

  // ---- views and helpers (agent.cc)
  AgentStatus status() const;
  Result<ReleaseInfo> release_info(const std::string& version) const;
  supervisor::ProcessSpec process_spec(const SavedRelease& rel, const config::Service& svc,
                                       int index, const secrets::SecretMap& secrets) const;
  // The proxy service for a release's web service.
  proxy::ServiceSpec proxy_spec(const SavedRelease& rel, const config::Service& svc) const;
  // 127.0.0.1:<port> of every process of `service` in `version` that runs or will.
  std::vector<proxy::Endpoint> targets(const std::string& version,
                                       const std::string& service) const;
  std::filesystem::path secrets_path(const std::string& version) const;
  // Copies the supervisor's view into `state` and writes the state file.
  Status persist();
};

bool in_role(Role role, const config::Service& svc);
const config::Service* find_service(const SavedRelease& rel, const std::string& name);

}  // namespace md::agent
