// The supervisor: starts the processes of releases, watches them, restarts
// crashed ones with exponential backoff (and gives up after too many quick
// crashes), probes web processes' health, and stops them gracefully
// (SIGTERM to the process group, a grace period, SIGKILL).
//
// Deciding is separate from doing: the per-process state machine is one
// transition table (transition()), the backoff policy a pure function
// (restart_decision()); the Supervisor applies them, and touches processes
// only through the Launcher and Prober seams (real ones in launcher.h and
// probe.h, fakes in the tests).
//
// Concurrency: a Supervisor has an internal mutex; every public member is
// thread-safe. tick() and health_round() are meant for two driver threads
// owned by the caller (the agent); tests call them by hand with a FakeClock.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "secrets/secrets.h"

namespace md::supervisor {

// ---- the state machine ------------------------------------------------------

enum class State {
  kStopped,   // not running (initial, or after a stop)
  kStarting,  // spawned; a web process waits for its health check, a worker for ready_after
  kRunning,   // ready: healthy web process / worker that stayed up
  kBackoff,   // crashed; will be restarted when its backoff delay has passed
  kStopping,  // SIGTERM sent to its group; SIGKILL after the grace period
  kFailed,    // gave up: too many quick crashes, or never became ready in time
};
enum class Event {
  kStart,           // asked to run
  kReady,           // health passed / stayed up long enough
  kCrashed,         // exited, or could not start, while it should run: restart later
  kGaveUp,          // exited too often too quickly: no more restarts
  kStartTimeout,    // not ready within health.start_timeout: killed
  kBackoffElapsed,  // time to restart
  kStop,            // asked to stop
  kGraceElapsed,    // stop grace passed: SIGKILL
  kExited,          // exited while stopping
};
std::string_view state_name(State s);                     // "stopped", "starting", ...
std::optional<State> parse_state(std::string_view name);  // the inverse; nullopt if unknown
std::string_view event_name(Event e);                     // "start", "spawn_failed", ...

// The one transition table. nullopt: the event does not apply in that state
// (the supervisor ignores it; e.g. kReady while stopping).
std::optional<State> transition(State from, Event e);

// ---- the restart policy -------------------------------------------------------

struct RestartPolicy {
  Millis backoff_initial{500};         // delay before the first restart
  Millis backoff_max{30000};           // delays double up to this
  int max_quick_crashes = 5;           // this many consecutive quick crashes: failed
  Millis min_uptime{10000};            // a crash after running this long is not "quick"
  Millis worker_ready_after{1000};     // a worker that stays up this long is ready
  Millis starting_probe_interval{50};  // health checks of a starting web process
};

struct RestartDecision {
  bool give_up = false;   // mark failed, no restart
  int quick_crashes = 0;  // the new consecutive count
  Millis delay{0};        // restart after this (when not giving up)
};
// Pure: what to do after a crash, given the consecutive quick crashes before
// it and how long the process ran.
RestartDecision restart_decision(const RestartPolicy& p, int quick_crashes_before, Millis uptime);

// ---- what to run ----------------------------------------------------------------

// One process of a release, e.g. web.2 of v42.
struct ProcessSpec {
  std::string release;  // version
  std::string service;  // services.<name>
  int index = 1;        // 1..count
  config::ServiceKind kind = config::ServiceKind::kWeb;
  std::string command;                     // /bin/sh -c, in `cwd`
  std::filesystem::path cwd;               // the release directory
  std::map<std::string, std::string> env;  // the full plain environment (PORT is added for web)
  secrets::SecretMap secret_env;           // decrypted secrets, revealed only at spawn
  config::HealthCheck health;              // web only
  Millis stop_grace{30000};
  std::filesystem::path log_file;      // where the log writer appends
  std::filesystem::path secrets_file;  // what the log writer redacts ("" = nothing)
  // "<release>/<service>.<index>", e.g. "v42/web.2". Unique per supervisor.
  std::string id() const;
};

// How to find a process again, also after an agent restart (persisted).
struct ProcRef {
  pid_t pid = -1;           // leader of its own session and process group (pgid == pid)
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22: guards against pid reuse
  pid_t log_pid = -1;       // its log writer (own session), or -1
  uint64_t log_start_time = 0;
  bool child = true;  // we are its parent; false once re-adopted
  // The process's own cgroup v2 directory (absolute), "" when cgroups are
  // not used: stopping it stops everything in it (setsid daemons too).
  std::string cgroup;
  bool operator==(const ProcRef&) const = default;
};

// How a process ended. `known` is false for a re-adopted process (not our
// child: its exit status is lost; only its disappearance is seen).
struct ExitInfo {
  bool known = false;
  int code = -1;                 // exit code, or -1
  int signal = 0;                // terminating signal, or 0
  std::string describe() const;  // "exit 1", "killed by SIGKILL", "exited (status unknown)"
};

// ---- seams ------------------------------------------------------------------------

// Starts, signals and observes processes. Real: launcher.h.
class Launcher {
 public:
  virtual ~Launcher() = default;
  // A free TCP port on 127.0.0.1 not handed out before and still in use by
  // us. kUnavailable if none can be found.
  virtual Result<int> allocate_port() = 0;
  // True if `port` can be bound right now (a restart keeps its port when it can).
  virtual bool port_free(int port) = 0;
  // Starts the process and its log writer. `port` 0 for workers.
  virtual Result<ProcRef> launch(const ProcessSpec& spec, int port) = 0;
  // Signals the process group of `ref`. Not an error if it is gone.
  virtual Status signal_group(const ProcRef& ref, int sig) = 0;
  // nullopt while the group leader runs; how it ended once it is gone.
  virtual std::optional<ExitInfo> poll(const ProcRef& ref) = 0;
  // True while any process is left in the group (children of the leader
  // that are still finishing their work after SIGTERM).
  virtual bool group_alive(const ProcRef& ref) = 0;
};

struct ProbeTarget {
  int port = 0;
  std::string path;
  Millis timeout{2000};
};
// The verdict of one health check: passed, failed, or nullopt when the check
// could not run for a reason of ours (no file descriptor left in the agent:
// a connection flood), which says nothing about the process.
using ProbeResult = std::optional<bool>;

// Health checks. Real: launcher.h (HTTP GET on 127.0.0.1, 2xx/3xx passes).
class Prober {
 public:
  virtual ~Prober() = default;
  // Probes every target at once; blocks up to the longest timeout. One
  // result per target, in order.
  virtual std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) = 0;
};

// ---- the supervisor ---------------------------------------------------------------

// A process as seen from outside (status, persistence).
struct ProcessStatus {
  std::string id;
  std::string release, service;
  int index = 0;
  config::ServiceKind kind = config::ServiceKind::kWeb;
  State state = State::kStopped;
  bool healthy = false;   // web: last health verdict; worker: running
  int port = 0;           // web only
  ProcRef ref;            // pid < 0 when not running
  int restarts = 0;       // restarts since the last start()
  int quick_crashes = 0;  // consecutive
  std::string last_exit;  // ExitInfo::describe() of the last exit, "" if none
  std::string error;      // why it failed / last spawn error, "" if none
  SysTime started_at{};   // of the current run
  bool adopted = false;   // re-adopted from a previous agent
};

class Supervisor {
 public:
  Supervisor(Launcher& launcher, Prober& prober, Clock& clock, RestartPolicy policy = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a process (allocating a port for web ones). Not an error: the
  // process is already starting, running or in backoff (no-op). A stopped or
  // failed process starts again with its crash count reset. A failure to
  // spawn is not returned either: it counts as a crash (see status()).
  // kUnavailable: no free port.
  Status start(ProcessSpec spec);

  // Takes over a process a previous agent started (from the state file),
  // which was in state `saved` then. kFailed: it stays failed (`error` says
  // why), nothing runs. Otherwise, if it still runs (pid + start time match)
  // it is kRunning when `saved` was, else kStarting with a fresh start
  // timeout; if it is gone it is restarted like after a crash. A process
  // that was stopping is stopped again.
  void adopt(ProcessSpec spec, ProcRef ref, int port, State saved, int restarts,
             std::string error = {});

  // Begins a graceful stop (SIGTERM to the group; SIGKILL after `grace`,
  // default spec.stop_grace). Not an error if it is stopping or stopped
  // already. kNotFound for an unknown id.
  Status stop(const std::string& id, std::optional<Millis> grace = std::nullopt);

  // Drops a stopped or failed process from the table. kFailedPrecondition if
  // it still runs; not an error if unknown.
  Status forget(const std::string& id);

  // Observes exits, restarts what is due, enforces start timeouts and stop
  // grace periods. Never blocks on a process. Call when a leader exits (see
  // leaders()), at next_tick(), and after a change (on_change).
  void tick();
  // Runs the health checks that are due (blocks up to the longest probe
  // timeout, without holding the mutex). Call at next_probe().
  void health_round();

  // When tick() has something to do at the latest: the earliest backoff,
  // stop-grace, start-timeout or worker-ready deadline; 20 ms ahead while a
  // stopped leader's group is still going away. nullopt: only an exit of
  // one of leaders() or a change can give tick() work.
  std::optional<MonoTime> next_tick() const;
  // When the next health check is due; nullopt: no web process to probe.
  std::optional<MonoTime> next_probe() const;
  // Pids of the process leaders still running: their exits are events for tick().
  std::vector<pid_t> leaders() const;
  // `fn` runs on every change of generation(), with the supervisor's mutex
  // held: it must only wake someone (Wakeup::notify, an eventfd), never call
  // back. Set it before the first start/adopt. Default: none.
  void on_change(std::function<void()> fn);

  std::vector<ProcessStatus> status() const;
  std::optional<ProcessStatus> status(const std::string& id) const;
  // Increases on every change of state, health, port or pid; lets the agent
  // re-sync routes and persist only when something changed.
  uint64_t generation() const;

 private:
  struct Proc;
  void apply(Proc& p, Event e);
  void spawn(Proc& p);
  void on_exit(Proc& p, const std::optional<ExitInfo>& exit);  // nullopt: never started
  ProcessStatus snapshot(const Proc& p) const;
  void changed();  // ++generation_ and on_change_

  Launcher& launcher_;
  Prober& prober_;
  Clock& clock_;
  RestartPolicy policy_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Proc>> procs_;  // GUARDED_BY(mu_)
  uint64_t generation_ = 0;                             // GUARDED_BY(mu_)
  std::function<void()> on_change_;
};

}  // namespace md::supervisor
