// The edges the deploy executor drives (../shared/STYLE.md point 3): the
// host (its agent: release store, supervisor, proxy), the migration engine
// and hook commands. Real implementations: host_agent.cc (agent/api.h's
// client), migrator.cc (migrate.h), hooks.cc (core/process.h). Fakes for the
// unit tests: fakes.h. Everything else in deploy/ is concrete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "deploy/analysis.h"
#include "migrate/migrate.h"
#include "secrets/secrets.h"

namespace md::deploy {

// Which processes of a release a call is about.
enum class Role { kWeb, kWorkers, kAll };

// One process of a release as the agent sees it.
struct ProcessView {
  std::string service;
  int index = 1;
  bool web = true;
  std::string
      state;  // supervisor state: starting | running | backoff | stopping | stopped | failed
  bool healthy = false;  // web: passes its health check; worker: running
  int restarts = 0;
  std::string last_exit;  // "exit 1", "" when it never exited
  bool operator==(const ProcessView&) const = default;
};

// One release known to the host: on disk, and what of it runs.
struct ReleaseView {
  std::string version;
  std::string sha256;                  // of the artifact it was unpacked from
  std::vector<ProcessView> processes;  // empty: not running
  std::string warm_until;   // RFC 3339: the agent stops it then (rollback window); "" = never
  int on_hosts = 1;         // several hosts: how many have it unpacked (HostView::hosts = all)
  int web_running() const;  // web processes not stopped/failed
  int web_healthy() const;
  int workers_running() const;
  bool any_failed() const;  // a process gave up (crash loop, start timeout)
  bool operator==(const ReleaseView&) const = default;
};

// What runs on a host right now.
struct HostView {
  std::string agent_version;
  uint64_t disk_free_bytes = 0;   // under the agent's root
  uint64_t disk_free_inodes = 0;  // under the agent's root; 0 = not counted by that filesystem
  // What the agent serves, for deploy/host_check.h ("" / empty: not reported).
  std::string root;                    // canonical
  std::vector<std::string> listen;     // bound addresses, "127.0.0.1:8080"
  std::string tls_cert, tls_key;       // absolute PEM paths; "" = plain HTTP
  std::string tls_cert_sha256;         // of the certificate it loaded
  std::vector<ReleaseView> releases;   // every release on disk, oldest first
  std::map<std::string, int> weights;  // version -> percent of web traffic (sums to 100, or empty)
  // Several hosts seen as one (a fleet, fleet.cc): how many. Processes are
  // those of every host; weights the mean of the hosts' (each host gets the
  // same split, so they differ only while a route is under way or failed).
  int hosts = 1;
  const ReleaseView* find(const std::string& version) const;
  // The version with the largest weight ("" when nothing takes traffic).
  std::string live() const;
};

// What a release's processes need to run: the environment's services and
// the variables they get.
struct LaunchSpec {
  std::string environment;
  std::string deployment_id;
  std::vector<config::Service> services;
  std::map<std::string, std::string> env;  // plain variables (environment's env + MESHDEPLOY_*)
  secrets::SecretMap secrets;              // the vault entries the processes receive
  std::string sticky_cookie;               // canary stickiness (strategy.sticky_*)
  std::string sticky_header;
  Millis drain_deadline{30000};  // streams on a replaced set close after this
};

// The host agent, as the controller drives it. Every call blocks; every
// mutating call is idempotent (asking for the state that already holds is
// not an error) so a resumed deploy can repeat it.
class Host {
 public:
  virtual ~Host() = default;
  virtual std::string name() const = 0;  // for messages, e.g. "local"
  // kUnavailable when the agent cannot be reached.
  virtual Result<HostView> view() = 0;
  // The artifact into releases/<version>/ (checksum verified by the agent).
  // Not an error if that version is already there with the same sha256;
  // kAlreadyExists if it is there with another one.
  virtual Status ship(const std::string& version, const std::filesystem::path& artifact,
                      const std::string& sha256) = 0;
  // Starts the processes of `role` (not an error if they run). Returns at once.
  virtual Status start(const std::string& version, Role role, const LaunchSpec& spec) = 0;
  // Sets the web traffic split: version -> percent, summing to 100. Atomic.
  // The proxy first probes the health of targets it did not route to yet;
  // returns how long that probe took (the rest of the call is the switch).
  virtual Result<Millis> route(const std::map<std::string, int>& weights) = 0;
  // Cumulative proxy counters of each version's target set.
  virtual Result<std::map<std::string, SetMetrics>> metrics() = 0;
  // Waits until no request is in flight on `version` (it takes no new ones
  // after route()), at most `timeout`. kTimeout with the count left.
  virtual Status drain(const std::string& version, Millis timeout) = 0;
  // Hands a release that no longer takes traffic to the agent, which keeps
  // it running for `window` and then stops it — after this controller has
  // exited, and across a restart of the agent. Returns at once with the
  // deadline. Asking again moves the deadline; routing traffic back to the
  // release cancels it.
  virtual Result<SysTime> keep_warm(const std::string& version, Millis window) = 0;
  // Stops the processes of `role` (SIGTERM, stop_grace, SIGKILL); blocks
  // until they are gone. Not an error if nothing runs.
  virtual Status stop(const std::string& version, Role role) = 0;
  // Removes releases beyond the newest `keep`, never one in `protect`.
  // Returns the versions removed.
  virtual Result<std::vector<std::string>> prune(int keep,
                                                 const std::vector<std::string>& protect) = 0;

  // ---- several hosts as one (fleet.cc); one host answers for itself ------
  // The hosts behind this one, in the config's order.
  virtual std::vector<std::string> host_names() const { return {name()}; }
  // Each host's own view, in host_names() order (an error for a host that
  // cannot be asked). view() is their merge.
  virtual std::vector<std::pair<std::string, Result<HostView>>> host_views() {
    std::vector<std::pair<std::string, Result<HostView>>> out;
    out.emplace_back(name(), view());
    return out;
  }
  // Each host's counters as of the last metrics() call (metrics() is their sum).
  virtual std::map<std::string, std::map<std::string, SetMetrics>> host_metrics() const {
    return {};
  }
  // Between the first and the last host finishing the last route() (0: one host).
  virtual Millis route_spread() const { return Millis(0); }
  // What each host did since the last call, host -> "ship 1.2s ok, start 0.1s ok",
  // for the journal (empty for one host).
  virtual std::map<std::string, std::string> take_host_log() { return {}; }
};

// The migration engine for one environment's database.
class Migrator {
 public:
  virtual ~Migrator() = default;
  // migrate::plan against the database. kUnavailable when it cannot be reached.
  virtual Result<migrate::Plan> plan() = 0;
  // Applies `sel`, recording `deployment_id` with each file.
  virtual migrate::ApplyReport apply(migrate::Selection sel, const std::string& deployment_id) = 0;
};

struct HookResult {
  int exit_code = 0;  // -1 when killed (timeout or signal)
  bool timed_out = false;
  std::string output;    // combined stdout+stderr, redacted, at most 64 KiB (the tail)
  std::string describe;  // "exit 3", "timed out after 300000ms"
  bool ok() const { return exit_code == 0 && !timed_out; }
};

// Runs hook commands (/bin/sh -c) in the directory of meshdeploy.yml.
class HookRunner {
 public:
  virtual ~HookRunner() = default;
  // A non-zero exit is a value, not an error; errors are for failing to run.
  virtual Result<HookResult> run(const std::string& command,
                                 const std::map<std::string, std::string>& vars,
                                 Millis timeout) = 0;
};

}  // namespace md::deploy
