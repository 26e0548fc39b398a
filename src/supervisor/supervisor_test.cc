#include "supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace md::supervisor {
namespace {

using namespace std::chrono_literals;

// ---- pure parts ------------------------------------------------------------------

TEST(Transition, TableCoversTheLifecycle) {
  EXPECT_EQ(transition(State::kStopped, Event::kStart), State::kStarting);
  EXPECT_EQ(transition(State::kStarting, Event::kReady), State::kRunning);
  EXPECT_EQ(transition(State::kRunning, Event::kCrashed), State::kBackoff);
  EXPECT_EQ(transition(State::kBackoff, Event::kBackoffElapsed), State::kStarting);
  EXPECT_EQ(transition(State::kRunning, Event::kGaveUp), State::kFailed);
  EXPECT_EQ(transition(State::kStarting, Event::kStartTimeout), State::kFailed);
  EXPECT_EQ(transition(State::kRunning, Event::kStop), State::kStopping);
  EXPECT_EQ(transition(State::kStopping, Event::kExited), State::kStopped);
  EXPECT_EQ(transition(State::kFailed, Event::kStart), State::kStarting);
  // Events that do not apply are ignored, not guessed.
  EXPECT_EQ(transition(State::kStopping, Event::kReady), std::nullopt);
  EXPECT_EQ(transition(State::kStopping, Event::kCrashed), std::nullopt);
  EXPECT_EQ(transition(State::kStopped, Event::kStop), std::nullopt);
  EXPECT_EQ(transition(State::kRunning, Event::kStart), std::nullopt);
  // Every state that may have a process can be stopped.
  for (State s : {State::kStarting, State::kRunning, State::kBackoff, State::kFailed})
    EXPECT_EQ(transition(s, Event::kStop), State::kStopping) << state_name(s);
}

TEST(Transition, Names) {
  EXPECT_EQ(state_name(State::kBackoff), "backoff");
  EXPECT_EQ(parse_state("stopping"), State::kStopping);
  EXPECT_EQ(parse_state("sleeping"), std::nullopt);
  EXPECT_EQ(event_name(Event::kGraceElapsed), "grace_elapsed");
}

TEST(RestartDecision, DoublesThenGivesUp) {
  RestartPolicy p;  // 500 ms initial, 5 quick crashes
  int q = 0;
  std::vector<int64_t> delays;
  for (int i = 0; i < 4; ++i) {
    auto d = restart_decision(p, q, 100ms);
    ASSERT_FALSE(d.give_up) << i;
    delays.push_back(d.delay.count());
    q = d.quick_crashes;
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{500, 1000, 2000, 4000}));
  EXPECT_TRUE(restart_decision(p, q, 100ms).give_up);
}

TEST(RestartDecision, ALongRunResetsTheCount) {
  RestartPolicy p;
  auto d = restart_decision(p, 4, 60s);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.quick_crashes, 0);
  EXPECT_EQ(d.delay, 500ms);
  RestartPolicy capped;
  capped.backoff_max = 3s;
  capped.max_quick_crashes = 100;
  EXPECT_EQ(restart_decision(capped, 20, 0ms).delay, 3s);
}

// ---- the supervisor with fake processes ----------------------------------------

class FakeLauncher : public Launcher {
 public:
  struct Proc {
    bool leader = true;        // leader alive
    int children = 0;          // other members of the group still alive
    bool ignore_term = false;  // survives SIGTERM (grace test)
    std::optional<ExitInfo> exit;
    std::vector<int> signals;
  };
  Result<int> allocate_port() override { return next_port++; }
  bool port_free(int port) override { return !busy_ports.count(port); }
  Result<ProcRef> launch(const ProcessSpec& spec, int port) override {
    if (fail_launch) return fail(Errc::kNotFound, "run: working directory missing");
    launches.push_back({spec.id(), port});
    ProcRef r;
    r.pid = next_pid++;
    r.start_time = 1000 + r.pid;
    procs[r.pid].ignore_term = ignore_term;
    procs[r.pid].children = children;
    return r;
  }
  Status signal_group(const ProcRef& ref, int sig) override {
    Proc& p = procs[ref.pid];
    p.signals.push_back(sig);
    if (sig == SIGKILL || (sig == SIGTERM && !p.ignore_term)) {
      if (p.leader) exit(ref.pid, ExitInfo{true, -1, sig});
      if (sig == SIGKILL) p.children = 0;
    }
    return ok();
  }
  std::optional<ExitInfo> poll(const ProcRef& ref) override {
    auto it = procs.find(ref.pid);
    if (it == procs.end()) return ExitInfo{};  // unknown pid: gone
    if (it->second.leader) return std::nullopt;
    return it->second.exit;
  }
  bool group_alive(const ProcRef& ref) override {
    auto& p = procs[ref.pid];
    return p.leader || p.children > 0;
  }
  void exit(int pid, ExitInfo e) {
    procs[pid].leader = false;
    procs[pid].exit = e;
  }

  int next_pid = 100;
  int next_port = 20000;
  bool fail_launch = false;
  bool ignore_term = false;
  int children = 0;
  std::set<int> busy_ports;
  std::vector<std::pair<std::string, int>> launches;
  std::map<int, Proc> procs;
};

class FakeProber : public Prober {
 public:
  std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override {
    std::vector<ProbeResult> out;
    for (const auto& t : targets) {
      probed.push_back(t.port);
      out.push_back(healthy.count(t.port) > 0);
    }
    return out;
  }
  std::set<int> healthy;
  std::vector<int> probed;
};

class SupervisorTest : public ::testing::Test {
 protected:
  ProcessSpec web(int index = 1) {
    ProcessSpec s;
    s.release = "v1";
    s.service = "web";
    s.index = index;
    s.kind = config::ServiceKind::kWeb;
    s.command = "node server.js";
    s.health.start_timeout = 5s;
    s.health.healthy_threshold = 1;
    s.health.unhealthy_threshold = 2;
    s.stop_grace = 3s;
    return s;
  }
  ProcessSpec worker() {
    ProcessSpec s = web();
    s.service = "worker";
    s.kind = config::ServiceKind::kWorker;
    return s;
  }
  ProcessStatus st(const std::string& id = "v1/web.1") { return *sup.status(id); }
  // Advances the clock in small steps, ticking like the agent's thread does.
  void run_for(Millis d) {
    for (Millis t{0}; t < d; t += 10ms) {
      clock.advance(10ms);
      sup.tick();
    }
  }

  FakeLauncher launcher;
  FakeProber prober;
  FakeClock clock;
  Supervisor sup{launcher, prober, clock};
};

TEST_F(SupervisorTest, WebBecomesRunningWhenHealthy) {
  ASSERT_TRUE(sup.start(web()));
  EXPECT_EQ(st().state, State::kStarting);
  EXPECT_EQ(st().port, 20000);
  EXPECT_EQ(launcher.launches.size(), 1u);
  sup.health_round();
  EXPECT_EQ(st().state, State::kStarting);  // probe failed
  prober.healthy.insert(20000);
  run_for(60ms);
  sup.health_round();
  EXPECT_EQ(st().state, State::kRunning);
  EXPECT_TRUE(st().healthy);
}

TEST_F(SupervisorTest, StartingARunningProcessAgainIsANoOp) {
  ASSERT_TRUE(sup.start(web()));
  uint64_t gen = sup.generation();
  ASSERT_TRUE(sup.start(web()));
  EXPECT_EQ(launcher.launches.size(), 1u);
  EXPECT_EQ(sup.generation(), gen);
}

TEST_F(SupervisorTest, WorkerIsReadyAfterStayingUp) {
  ASSERT_TRUE(sup.start(worker()));
  EXPECT_EQ(st("v1/worker.1").port, 0);
  run_for(500ms);
  EXPECT_EQ(st("v1/worker.1").state, State::kStarting);
  run_for(600ms);
  EXPECT_EQ(st("v1/worker.1").state, State::kRunning);
  EXPECT_TRUE(prober.probed.empty());
}

TEST_F(SupervisorTest, CrashRestartsAfterBackoffOnTheSamePort) {
  prober.healthy.insert(20000);
  ASSERT_TRUE(sup.start(web()));
  sup.health_round();
  int pid = st().ref.pid;
  launcher.exit(pid, ExitInfo{true, 1, 0});
  sup.tick();
  EXPECT_EQ(st().state, State::kBackoff);
  EXPECT_EQ(st().last_exit, "exit 1");
  EXPECT_EQ(st().ref.pid, -1);
  run_for(400ms);
  EXPECT_EQ(launcher.launches.size(), 1u);  // not before the backoff delay
  run_for(200ms);
  EXPECT_EQ(launcher.launches.size(), 2u);
  EXPECT_EQ(st().state, State::kStarting);
  EXPECT_EQ(st().restarts, 1);
  EXPECT_EQ(launcher.launches[1].second, 20000);
}

TEST_F(SupervisorTest, BusyPortOnRestartGetsANewPort) {
  ASSERT_TRUE(sup.start(web()));
  launcher.exit(st().ref.pid, ExitInfo{true, 1, 0});
  sup.tick();
  launcher.busy_ports.insert(20000);
  run_for(600ms);
  EXPECT_EQ(st().port, 20001);
}

TEST_F(SupervisorTest, LeftoverGroupMembersAreKilledOnCrash) {
  launcher.children = 1;
  ASSERT_TRUE(sup.start(web()));
  int pid = st().ref.pid;
  launcher.exit(pid, ExitInfo{true, -1, SIGSEGV});
  sup.tick();
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(st().last_exit, "killed by SIGSEGV");
}

TEST_F(SupervisorTest, QuickCrashLoopEndsFailed) {
  ASSERT_TRUE(sup.start(worker()));
  for (int i = 0; i < 5; ++i) {
    ASSERT_GT(st("v1/worker.1").ref.pid, 0) << i;
    launcher.exit(st("v1/worker.1").ref.pid, ExitInfo{true, 3, 0});
    run_for(10s);
  }
  EXPECT_EQ(st("v1/worker.1").state, State::kFailed);
  EXPECT_EQ(launcher.launches.size(), 5u);
  EXPECT_NE(st("v1/worker.1").error.find("crashed 5 times in a row"), std::string::npos)
      << st("v1/worker.1").error;
  EXPECT_NE(st("v1/worker.1").error.find("exit 3"), std::string::npos);
  run_for(60s);
  EXPECT_EQ(launcher.launches.size(), 5u);  // never restarted again
  // An explicit start gives it a fresh chance.
  ASSERT_TRUE(sup.start(worker()));
  EXPECT_EQ(st("v1/worker.1").state, State::kStarting);
  EXPECT_EQ(st("v1/worker.1").quick_crashes, 0);
}

TEST_F(SupervisorTest, CrashesFarApartRestartForever) {
  ASSERT_TRUE(sup.start(worker()));
  for (int i = 0; i < 8; ++i) {
    run_for(11s);
    launcher.exit(st("v1/worker.1").ref.pid, ExitInfo{true, 1, 0});
    sup.tick();
    EXPECT_EQ(st("v1/worker.1").state, State::kBackoff) << i;
    run_for(600ms);
  }
  EXPECT_EQ(st("v1/worker.1").restarts, 8);
}

TEST_F(SupervisorTest, SpawnFailureCountsAsACrash) {
  launcher.fail_launch = true;
  ASSERT_TRUE(sup.start(web()));
  EXPECT_EQ(st().state, State::kBackoff);
  EXPECT_NE(st().error.find("working directory missing"), std::string::npos);
  run_for(20s);
  EXPECT_EQ(st().state, State::kFailed);
}

TEST_F(SupervisorTest, NeverHealthyIsKilledAndFailed) {
  ASSERT_TRUE(sup.start(web()));
  int pid = st().ref.pid;
  for (int i = 0; i < 60; ++i) {
    run_for(100ms);
    sup.health_round();
  }
  EXPECT_EQ(st().state, State::kFailed);
  EXPECT_NE(st().error.find("not healthy within 5000ms"), std::string::npos) << st().error;
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGKILL});
  run_for(60s);
  EXPECT_EQ(launcher.launches.size(), 1u);
}

TEST_F(SupervisorTest, StopIsTermThenWaitsForTheWholeGroup) {
  launcher.children = 1;  // e.g. sh -c spawned node, which drains its job
  ASSERT_TRUE(sup.start(worker()));
  int pid = st("v1/worker.1").ref.pid;
  ASSERT_TRUE(sup.stop("v1/worker.1"));
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGTERM});
  run_for(1s);
  EXPECT_EQ(st("v1/worker.1").state, State::kStopping);  // the child still works
  launcher.procs[pid].children = 0;
  sup.tick();
  EXPECT_EQ(st("v1/worker.1").state, State::kStopped);
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGTERM});  // no SIGKILL needed
  EXPECT_TRUE(sup.forget("v1/worker.1"));
  EXPECT_FALSE(sup.status("v1/worker.1"));
}

TEST_F(SupervisorTest, StopEscalatesToKillAfterGrace) {
  launcher.ignore_term = true;
  ASSERT_TRUE(sup.start(web()));
  int pid = st().ref.pid;
  ASSERT_TRUE(sup.stop("v1/web.1"));
  EXPECT_FALSE(sup.forget("v1/web.1"));  // still running
  run_for(2900ms);
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGTERM});
  run_for(200ms);
  EXPECT_EQ(launcher.procs[pid].signals, (std::vector<int>{SIGTERM, SIGKILL}));
  sup.tick();
  EXPECT_EQ(st().state, State::kStopped);
  EXPECT_EQ(st().last_exit, "killed by SIGKILL");
  EXPECT_TRUE(sup.stop("v1/web.1"));  // again: no-op
}

TEST_F(SupervisorTest, StopDuringBackoffCancelsTheRestart) {
  ASSERT_TRUE(sup.start(web()));
  launcher.exit(st().ref.pid, ExitInfo{true, 1, 0});
  sup.tick();
  ASSERT_TRUE(sup.stop("v1/web.1"));
  EXPECT_EQ(st().state, State::kStopped);
  run_for(5s);
  EXPECT_EQ(launcher.launches.size(), 1u);
  EXPECT_EQ(sup.stop("v1/nope.1").error().code(), Errc::kNotFound);
}

TEST_F(SupervisorTest, UnhealthyAfterThresholdAndBackAgain) {
  prober.healthy.insert(20000);
  ASSERT_TRUE(sup.start(web()));
  sup.health_round();
  ASSERT_TRUE(st().healthy);
  prober.healthy.clear();
  clock.advance(1s);
  sup.health_round();
  EXPECT_TRUE(st().healthy);  // one failure is below the threshold of 2
  clock.advance(1s);
  sup.health_round();
  EXPECT_FALSE(st().healthy);
  EXPECT_EQ(st().state, State::kRunning);  // reported, not restarted
  prober.healthy.insert(20000);
  clock.advance(1s);
  sup.health_round();
  EXPECT_TRUE(st().healthy);
}

TEST_F(SupervisorTest, AdoptsALiveProcessWithoutStartingIt) {
  launcher.procs[4242] = {};
  ProcRef ref{4242, 99, 4243, 98, true, ""};
  sup.adopt(web(), ref, 31000, State::kRunning, /*restarts=*/2);
  EXPECT_TRUE(launcher.launches.empty());
  auto s = st();
  EXPECT_EQ(s.state, State::kRunning);
  EXPECT_TRUE(s.adopted);
  EXPECT_FALSE(s.ref.child);
  EXPECT_EQ(s.port, 31000);
  EXPECT_EQ(s.restarts, 2);
  // Its later death is seen (status unknown) and it is restarted on its port.
  launcher.exit(4242, ExitInfo{});
  sup.tick();
  EXPECT_EQ(st().state, State::kBackoff);
  EXPECT_EQ(st().last_exit, "exited (status unknown: re-adopted process)");
  run_for(600ms);
  EXPECT_EQ(launcher.launches.size(), 1u);
  EXPECT_EQ(launcher.launches[0].second, 31000);
}

TEST_F(SupervisorTest, AdoptingAGoneProcessRestartsIt) {
  ProcRef ref{777, 1, -1, 0, true, ""};  // FakeLauncher does not know 777: gone
  sup.adopt(web(), ref, 31000, State::kRunning, 0);
  EXPECT_EQ(st().state, State::kBackoff);
  EXPECT_EQ(st().quick_crashes, 0);
  run_for(600ms);
  EXPECT_EQ(st().state, State::kStarting);
}

// Regression: a leader that died while the agent was down left its setsid
// daemons running in its cgroup, and the restart came on top of them.
TEST_F(SupervisorTest, AdoptingAGoneProcessKillsWhatItsCgroupStillHolds) {
  ProcRef ref{777, 1, -1, 0, true, "/cg/tree/v1/web.1-1"};  // 777: gone
  sup.adopt(web(), ref, 31000, State::kRunning, 0);
  EXPECT_EQ(launcher.procs[777].signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(st().state, State::kBackoff);
  ProcRef stopped{778, 1, -1, 0, true, "/cg/tree/v1/web.2-1"};
  sup.adopt(web(2), stopped, 31001, State::kStopping, 0);
  EXPECT_EQ(launcher.procs[778].signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(st("v1/web.2").state, State::kStopped);
}

TEST_F(SupervisorTest, AdoptionKeepsFailuresAndFinishesStops) {
  sup.adopt(web(1), ProcRef{}, 31000, State::kFailed, 4, "crashed 5 times");
  EXPECT_EQ(st("v1/web.1").state, State::kFailed);
  EXPECT_EQ(st("v1/web.1").error, "crashed 5 times");
  launcher.procs[5000] = {};
  sup.adopt(web(2), ProcRef{5000, 1, -1, 0, false, ""}, 31001, State::kStopping, 0);
  EXPECT_EQ(st("v1/web.2").state, State::kStopping);
  EXPECT_EQ(launcher.procs[5000].signals, std::vector<int>{SIGTERM});
  sup.tick();
  EXPECT_EQ(st("v1/web.2").state, State::kStopped);
  run_for(5s);
  EXPECT_TRUE(launcher.launches.empty());
}

TEST_F(SupervisorTest, StopGraceCanBeOverridden) {
  launcher.ignore_term = true;
  ASSERT_TRUE(sup.start(web()));
  int pid = st().ref.pid;
  ASSERT_TRUE(sup.stop("v1/web.1", 100ms));
  run_for(150ms);
  EXPECT_EQ(launcher.procs[pid].signals, (std::vector<int>{SIGTERM, SIGKILL}));
}

TEST_F(SupervisorTest, GenerationMovesOnChanges) {
  uint64_t g0 = sup.generation();
  ASSERT_TRUE(sup.start(web()));
  uint64_t g1 = sup.generation();
  EXPECT_GT(g1, g0);
  sup.tick();
  EXPECT_EQ(sup.generation(), g1);
  prober.healthy.insert(20000);
  sup.health_round();
  EXPECT_GT(sup.generation(), g1);
}

// The agent's loop sleeps until next_tick() / next_probe() / an exit of one
// of leaders() / on_change: these say exactly when there is work.
TEST_F(SupervisorTest, SaysWhenItNextHasWork) {
  int changes = 0;
  sup.on_change([&changes] { ++changes; });
  EXPECT_FALSE(sup.next_tick());
  EXPECT_FALSE(sup.next_probe());
  EXPECT_TRUE(sup.leaders().empty());
  const MonoTime t0 = clock.mono();
  ASSERT_TRUE(sup.start(web()));
  EXPECT_GT(changes, 0);
  const int pid = st().ref.pid;
  EXPECT_EQ(sup.leaders(), std::vector<pid_t>{pid});
  EXPECT_EQ(sup.next_probe(), t0);      // probe a starting process at once
  EXPECT_EQ(sup.next_tick(), t0 + 5s);  // its start timeout
  prober.healthy.insert(20000);
  sup.health_round();
  EXPECT_EQ(st().state, State::kRunning);
  EXPECT_FALSE(sup.next_tick());           // running: only its exit is news
  EXPECT_EQ(sup.next_probe(), t0 + 50ms);  // it was probed while starting
  clock.advance(50ms);
  sup.health_round();
  EXPECT_EQ(sup.next_probe(), t0 + 50ms + 1s);  // running: health.interval
  launcher.exit(pid, ExitInfo{true, 1, 0});
  sup.tick();
  EXPECT_EQ(st().state, State::kBackoff);
  EXPECT_TRUE(sup.leaders().empty());
  EXPECT_FALSE(sup.next_probe());
  EXPECT_EQ(sup.next_tick(), clock.mono() + 500ms);  // the restart
  changes = 0;
  clock.advance(500ms);
  sup.tick();
  EXPECT_GT(changes, 0);
  EXPECT_EQ(launcher.launches.size(), 2u);
}

// Driven only at the times it names (as the agent does), a stop still
// escalates to SIGKILL at the end of its grace, and a group that outlives its
// leader is watched until it is gone.
TEST_F(SupervisorTest, DrivenOnlyWhenDueItStillStopsOnTime) {
  int rounds = 0;
  auto drive = [&](Millis budget) {
    for (MonoTime end = clock.mono() + budget; clock.mono() < end; ++rounds) {
      sup.tick();
      auto next = sup.next_tick();
      clock.advance(next ? std::max(std::chrono::ceil<Millis>(*next - clock.mono()), 1ms) : 1000ms);
    }
  };
  launcher.ignore_term = true;
  ASSERT_TRUE(sup.start(web()));
  const int pid = st().ref.pid;
  ASSERT_TRUE(sup.stop("v1/web.1"));
  drive(2900ms);
  EXPECT_EQ(launcher.procs[pid].signals, std::vector<int>{SIGTERM});
  EXPECT_LT(rounds, 5);  // it slept through the grace period
  drive(200ms);
  EXPECT_EQ(launcher.procs[pid].signals, (std::vector<int>{SIGTERM, SIGKILL}));
  sup.tick();
  EXPECT_EQ(st().state, State::kStopped);
  EXPECT_FALSE(sup.next_tick());

  launcher.ignore_term = false;
  launcher.children = 1;  // sh -c's child still finishing its job
  ASSERT_TRUE(sup.start(worker()));
  ASSERT_TRUE(sup.stop("v1/worker.1"));
  sup.tick();
  EXPECT_EQ(st("v1/worker.1").state, State::kStopping);
  EXPECT_EQ(sup.next_tick(), clock.mono() + 20ms);  // no fd to wait on: poll the group
  launcher.procs[st("v1/worker.1").ref.pid].children = 0;
  drive(40ms);
  EXPECT_EQ(st("v1/worker.1").state, State::kStopped);
}

}  // namespace
}  // namespace md::supervisor
