#include "supervisor/supervisor.h"

#include <signal.h>

#include <algorithm>

#include "core/log.h"
#include "core/process.h"

namespace md::supervisor {
namespace {

const log::Logger kLog("supervisor");

struct Row {
  State from;
  Event event;
  State to;
};
// The one transition table (../shared/STYLE.md point 7).
constexpr Row kTable[] = {
    {State::kStopped, Event::kStart, State::kStarting},
    {State::kFailed, Event::kStart, State::kStarting},
    {State::kStarting, Event::kReady, State::kRunning},
    {State::kStarting, Event::kCrashed, State::kBackoff},
    {State::kStarting, Event::kGaveUp, State::kFailed},
    {State::kStarting, Event::kStartTimeout, State::kFailed},
    {State::kStarting, Event::kStop, State::kStopping},
    {State::kRunning, Event::kCrashed, State::kBackoff},
    {State::kRunning, Event::kGaveUp, State::kFailed},
    {State::kRunning, Event::kStop, State::kStopping},
    {State::kBackoff, Event::kBackoffElapsed, State::kStarting},
    {State::kBackoff, Event::kStop, State::kStopping},
    {State::kStopping, Event::kGraceElapsed, State::kStopping},
    {State::kStopping, Event::kExited, State::kStopped},
    {State::kFailed, Event::kStop, State::kStopping},
    {State::kFailed, Event::kExited, State::kFailed},
};

Millis since(MonoTime from, MonoTime now) { return std::chrono::duration_cast<Millis>(now - from); }

}  // namespace

std::string_view state_name(State s) {
  switch (s) {
    case State::kStopped:
      return "stopped";
    case State::kStarting:
      return "starting";
    case State::kRunning:
      return "running";
    case State::kBackoff:
      return "backoff";
    case State::kStopping:
      return "stopping";
    case State::kFailed:
      return "failed";
  }
  return "unknown";
}

std::optional<State> parse_state(std::string_view name) {
  for (State s : {State::kStopped, State::kStarting, State::kRunning, State::kBackoff,
                  State::kStopping, State::kFailed})
    if (state_name(s) == name) return s;
  return std::nullopt;
}

std::string_view event_name(Event e) {
  switch (e) {
    case Event::kStart:
      return "start";
    case Event::kReady:
      return "ready";
    case Event::kCrashed:
      return "crashed";
    case Event::kGaveUp:
      return "gave_up";
    case Event::kStartTimeout:
      return "start_timeout";
    case Event::kBackoffElapsed:
      return "backoff_elapsed";
    case Event::kStop:
      return "stop";
    case Event::kGraceElapsed:
      return "grace_elapsed";
    case Event::kExited:
      return "exited";
  }
  return "unknown";
}

std::optional<State> transition(State from, Event e) {
  for (const Row& r : kTable)
    if (r.from == from && r.event == e) return r.to;
  return std::nullopt;
}

RestartDecision restart_decision(const RestartPolicy& p, int quick_crashes_before, Millis uptime) {
  RestartDecision d;
  bool quick = uptime < p.min_uptime;
  d.quick_crashes = quick ? quick_crashes_before + 1 : 0;
  d.give_up = quick && d.quick_crashes >= p.max_quick_crashes;
  Millis delay = p.backoff_initial;
  for (int i = 1; i < d.quick_crashes && delay < p.backoff_max; ++i) delay *= 2;
  d.delay = std::min(delay, p.backoff_max);
  return d;
}

std::string ProcessSpec::id() const {
  return release + "/" + service + "." + std::to_string(index);
}

std::string ExitInfo::describe() const {
  if (!known) return "exited (status unknown: re-adopted process)";
  if (signal) return "killed by " + proc::signal_name(signal);
  return "exit " + std::to_string(code);
}

// One supervised process. GUARDED_BY(Supervisor::mu_).
struct Supervisor::Proc {
  ProcessSpec spec;
  State state = State::kStopped;
  bool healthy = false;
  int port = 0;
  ProcRef ref;                 // ref.pid > 0 while its group is ours to watch
  bool leader_exited = false;  // the leader is gone; waiting for the rest of the group
  ExitInfo exit;               // of the leader, once leader_exited
  bool killed = false;         // SIGKILL sent during this stop
  int restarts = 0;
  int quick_crashes = 0;
  std::string last_exit, error;
  MonoTime started{};
  SysTime started_at{};
  MonoTime deadline{};  // backoff: restart at; stopping: SIGKILL at
  int health_pass = 0, health_fail = 0;
  MonoTime next_probe{};
  uint64_t run = 0;  // increases with every spawn (matches probe results)
  bool adopted = false;
};

Supervisor::Supervisor(Launcher& launcher, Prober& prober, Clock& clock, RestartPolicy policy)
    : launcher_(launcher), prober_(prober), clock_(clock), policy_(policy) {}
Supervisor::~Supervisor() = default;

void Supervisor::apply(Proc& p, Event e) {
  std::optional<State> to = transition(p.state, e);
  if (!to) {
    kLog.debug("{}: event {} ignored in state {}", p.spec.id(), event_name(e), state_name(p.state));
    return;
  }
  if (*to != p.state)
    kLog.info("{}: {} -> {} ({})", p.spec.id(), state_name(p.state), state_name(*to),
              event_name(e));
  p.state = *to;
  if (p.state != State::kRunning) p.healthy = false;
  changed();
}

void Supervisor::spawn(Proc& p) {
  MonoTime now = clock_.mono();
  if (p.spec.kind == config::ServiceKind::kWeb && (p.port == 0 || !launcher_.port_free(p.port))) {
    auto port = launcher_.allocate_port();
    if (!port) {
      p.error = port.error().what();
      on_exit(p, std::nullopt);
      return;
    }
    p.port = *port;
  }
  auto ref = launcher_.launch(p.spec, p.spec.kind == config::ServiceKind::kWeb ? p.port : 0);
  p.started = now;
  p.started_at = clock_.now();
  ++p.run;
  if (!ref) {
    p.error = ref.error().what();
    kLog.warn("{}: cannot start: {}", p.spec.id(), p.error);
    on_exit(p, std::nullopt);
    return;
  }
  p.error.clear();
  p.ref = *ref;
  p.leader_exited = false;
  p.killed = false;
  p.health_pass = p.health_fail = 0;
  p.next_probe = now;
  p.adopted = false;
  changed();
}

// The process ended (or could not start) while it should run.
void Supervisor::on_exit(Proc& p, const std::optional<ExitInfo>& exit) {
  MonoTime now = clock_.mono();
  if (exit) p.last_exit = exit->describe();
  p.ref = ProcRef{};
  p.leader_exited = false;
  if (p.state != State::kStarting && p.state != State::kRunning) {
    changed();
    return;
  }
  RestartDecision d = restart_decision(policy_, p.quick_crashes, since(p.started, now));
  p.quick_crashes = d.quick_crashes;
  if (d.give_up) {
    p.error = "crashed " + std::to_string(d.quick_crashes) + " times in a row within " +
              std::to_string(policy_.min_uptime.count()) + "ms of starting" +
              (p.last_exit.empty() ? "" : " (last: " + p.last_exit + ")") +
              (p.error.empty() ? "" : "; " + p.error);
    apply(p, Event::kGaveUp);
    kLog.error("{}: {}; not restarting", p.spec.id(), p.error);
    return;
  }
  p.deadline = now + d.delay;
  apply(p, Event::kCrashed);
  kLog.warn("{}: {}; restarting in {}ms", p.spec.id(), p.last_exit.empty() ? p.error : p.last_exit,
            d.delay.count());
}

Status Supervisor::start(ProcessSpec spec) {
  std::lock_guard lock(mu_);
  std::string id = spec.id();
  auto& slot = procs_[id];
  if (!slot) slot = std::make_unique<Proc>();
  Proc& p = *slot;
  if (p.state == State::kStarting || p.state == State::kRunning || p.state == State::kBackoff)
    return ok();
  if (p.state == State::kStopping)
    return fail(Errc::kFailedPrecondition, id + " is still stopping; start it again once stopped");
  p.spec = std::move(spec);
  p.quick_crashes = 0;
  p.restarts = 0;
  p.error.clear();
  apply(p, Event::kStart);
  spawn(p);
  return ok();
}

void Supervisor::adopt(ProcessSpec spec, ProcRef ref, int port, State saved, int restarts,
                       std::string error) {
  std::lock_guard lock(mu_);
  auto slot = std::make_unique<Proc>();
  Proc& p = *slot;
  p.spec = std::move(spec);
  p.port = port;
  p.restarts = restarts;
  p.adopted = true;
  p.error = std::move(error);
  ref.child = false;
  p.started = clock_.mono();
  p.started_at = clock_.now();
  p.next_probe = p.started;
  p.run = 1;
  std::string id = p.spec.id();
  bool alive = ref.pid > 0 && !launcher_.poll(ref);
  // The leader is gone but its cgroup may hold what it started (setsid
  // daemons): nothing of that run may outlive it.
  if (!alive && !ref.cgroup.empty()) (void)launcher_.signal_group(ref, SIGKILL);
  if (saved == State::kFailed || saved == State::kStopped) {
    p.state = saved;
    if (alive) (void)launcher_.signal_group(ref, SIGKILL);  // was being killed
  } else if (alive) {
    p.ref = ref;
    p.state = saved == State::kRunning ? State::kRunning : State::kStarting;
    p.healthy = p.state == State::kRunning;
    kLog.info("{}: re-adopted pid {}", id, ref.pid);
    if (saved == State::kStopping) {
      // Finish the stop a previous agent began.
      p.state = State::kStopping;
      p.deadline = p.started + p.spec.stop_grace;
      (void)launcher_.signal_group(ref, SIGTERM);
    }
  } else if (saved == State::kStopping) {
    p.state = State::kStopped;
  } else {
    kLog.warn("{}: gone while the agent was down; restarting", id);
    p.state = State::kStarting;
    // WHY min_uptime: its real uptime is unknown; do not count it as quick.
    p.started -= policy_.min_uptime;
    on_exit(p, ExitInfo{});
  }
  changed();
  procs_[id] = std::move(slot);
}

Status Supervisor::stop(const std::string& id, std::optional<Millis> grace) {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end()) return fail(Errc::kNotFound, "no process " + id);
  Proc& p = *it->second;
  if (p.state == State::kStopping || p.state == State::kStopped) return ok();
  apply(p, Event::kStop);
  p.deadline = clock_.mono() + grace.value_or(p.spec.stop_grace);
  p.killed = false;
  if (p.ref.pid > 0) {
    if (auto st = launcher_.signal_group(p.ref, SIGTERM); !st)
      kLog.warn("{}: SIGTERM: {}", id, st.error().what());
  } else {
    apply(p, Event::kExited);
  }
  return ok();
}

Status Supervisor::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end()) return ok();
  if (it->second->state != State::kStopped && it->second->state != State::kFailed)
    return fail(Errc::kFailedPrecondition,
                id + " is " + std::string(state_name(it->second->state)));
  if (it->second->ref.pid > 0)
    return fail(Errc::kFailedPrecondition, id + " is still being killed");
  procs_.erase(it);
  changed();
  return ok();
}

void Supervisor::changed() {
  ++generation_;
  if (on_change_) on_change_();
}

void Supervisor::on_change(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

std::optional<MonoTime> Supervisor::next_tick() const {
  std::lock_guard lock(mu_);
  const MonoTime now = clock_.mono();
  std::optional<MonoTime> next;
  auto at = [&next](MonoTime t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [id, slot] : procs_) {
    const Proc& p = *slot;
    // WHY poll here: a group outliving its leader has no fd to wait on.
    if (p.ref.pid > 0 && p.leader_exited) at(now + Millis(20));
    switch (p.state) {
      case State::kStopping:
        if (p.ref.pid <= 0)
          at(now);
        else if (!p.killed)
          at(p.deadline);
        break;
      case State::kBackoff:
        at(p.deadline);
        break;
      case State::kStarting:
        if (p.ref.pid > 0)
          at(p.started + (p.spec.kind == config::ServiceKind::kWorker
                              ? policy_.worker_ready_after
                              : p.spec.health.start_timeout));
        break;
      default:
        break;
    }
  }
  return next;
}

std::optional<MonoTime> Supervisor::next_probe() const {
  std::lock_guard lock(mu_);
  std::optional<MonoTime> next;
  for (const auto& [id, slot] : procs_) {
    const Proc& p = *slot;
    if (p.spec.kind != config::ServiceKind::kWeb || p.ref.pid <= 0 || p.leader_exited) continue;
    if (p.state != State::kStarting && p.state != State::kRunning) continue;
    if (!next || p.next_probe < *next) next = p.next_probe;
  }
  return next;
}

std::vector<pid_t> Supervisor::leaders() const {
  std::lock_guard lock(mu_);
  std::vector<pid_t> out;
  for (const auto& [id, slot] : procs_)
    if (slot->ref.pid > 0 && !slot->leader_exited) out.push_back(slot->ref.pid);
  return out;
}

void Supervisor::tick() {
  std::lock_guard lock(mu_);
  MonoTime now = clock_.mono();
  for (auto& [id, slot] : procs_) {
    Proc& p = *slot;
    if (p.ref.pid > 0 && !p.leader_exited) {
      if (auto exit = launcher_.poll(p.ref)) {
        p.leader_exited = true;
        p.exit = *exit;
      }
    }
    if (p.ref.pid > 0 && p.leader_exited) {
      if (p.state == State::kStopping) {
        if (!launcher_.group_alive(p.ref)) {
          p.last_exit = p.exit.describe();
          p.ref = ProcRef{};
          p.leader_exited = false;
          apply(p, Event::kExited);
        }
      } else {
        // The leader died: nothing of this run may outlive it (port, orphans).
        if (!p.killed) (void)launcher_.signal_group(p.ref, SIGKILL);
        on_exit(p, p.exit);
      }
    }
    switch (p.state) {
      case State::kStopping:
        if (p.ref.pid <= 0) {
          apply(p, Event::kExited);
        } else if (!p.killed && now >= p.deadline) {
          kLog.warn("{}: still running after its stop grace period; SIGKILL", id);
          (void)launcher_.signal_group(p.ref, SIGKILL);
          p.killed = true;
          apply(p, Event::kGraceElapsed);
        }
        break;
      case State::kBackoff:
        if (now >= p.deadline) {
          ++p.restarts;
          apply(p, Event::kBackoffElapsed);
          spawn(p);
        }
        break;
      case State::kStarting:
        if (p.ref.pid <= 0) break;
        if (p.spec.kind == config::ServiceKind::kWorker) {
          if (since(p.started, now) >= policy_.worker_ready_after) {
            apply(p, Event::kReady);
            p.healthy = true;
          }
        } else if (since(p.started, now) >= p.spec.health.start_timeout) {
          p.error = "not healthy within " + std::to_string(p.spec.health.start_timeout.count()) +
                    "ms of starting (GET " + p.spec.health.path + " on port " +
                    std::to_string(p.port) + ")";
          kLog.error("{}: {}; killed", id, p.error);
          (void)launcher_.signal_group(p.ref, SIGKILL);
          p.killed = true;
          apply(p, Event::kStartTimeout);
        }
        break;
      default:
        break;
    }
  }
}

void Supervisor::health_round() {
  struct Due {
    std::string id;
    uint64_t run;
  };
  std::vector<Due> due;
  std::vector<ProbeTarget> targets;
  {
    std::lock_guard lock(mu_);
    MonoTime now = clock_.mono();
    for (auto& [id, slot] : procs_) {
      Proc& p = *slot;
      if (p.spec.kind != config::ServiceKind::kWeb || p.ref.pid <= 0 || p.leader_exited) continue;
      if (p.state != State::kStarting && p.state != State::kRunning) continue;
      if (now < p.next_probe) continue;
      Millis every = p.state == State::kStarting
                         ? std::min(policy_.starting_probe_interval, p.spec.health.interval)
                         : p.spec.health.interval;
      p.next_probe = now + every;
      due.push_back({id, p.run});
      targets.push_back({p.port, p.spec.health.path, p.spec.health.timeout});
    }
  }
  if (targets.empty()) return;
  std::vector<ProbeResult> results = prober_.probe(targets);
  MD_CHECK(results.size() == targets.size());
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < due.size(); ++i) {
    auto it = procs_.find(due[i].id);
    if (it == procs_.end() || it->second->run != due[i].run || it->second->ref.pid <= 0) continue;
    Proc& p = *it->second;
    const config::HealthCheck& h = p.spec.health;
    if (!results[i]) continue;  // inconclusive: streaks unchanged
    if (*results[i]) {
      ++p.health_pass;
      p.health_fail = 0;
      if (p.health_pass >= h.healthy_threshold) {
        if (p.state == State::kStarting) apply(p, Event::kReady);
        if (p.state == State::kRunning && !p.healthy) {
          p.healthy = true;
          changed();
        }
      }
    } else {
      ++p.health_fail;
      p.health_pass = 0;
      if (p.state == State::kRunning && p.healthy && p.health_fail >= h.unhealthy_threshold) {
        kLog.warn("{}: unhealthy ({} failed checks of {})", p.spec.id(), p.health_fail, h.path);
        p.healthy = false;
        changed();
      }
    }
  }
}

ProcessStatus Supervisor::snapshot(const Proc& p) const {
  ProcessStatus s;
  s.id = p.spec.id();
  s.release = p.spec.release;
  s.service = p.spec.service;
  s.index = p.spec.index;
  s.kind = p.spec.kind;
  s.state = p.state;
  s.healthy = p.healthy;
  s.port = p.port;
  s.ref = p.ref;
  s.restarts = p.restarts;
  s.quick_crashes = p.quick_crashes;
  s.last_exit = p.last_exit;
  s.error = p.error;
  s.started_at = p.started_at;
  s.adopted = p.adopted;
  return s;
}

std::vector<ProcessStatus> Supervisor::status() const {
  std::lock_guard lock(mu_);
  std::vector<ProcessStatus> out;
  out.reserve(procs_.size());
  for (const auto& [id, p] : procs_) out.push_back(snapshot(*p));
  return out;
}

std::optional<ProcessStatus> Supervisor::status(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end()) return std::nullopt;
  return snapshot(*it->second);
}

uint64_t Supervisor::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

}  // namespace md::supervisor
