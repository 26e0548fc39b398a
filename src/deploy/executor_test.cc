#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "deploy/adapters.h"
#include "deploy/deploy.h"
#include "deploy/fakes.h"
#include "deploy/inspect.h"

namespace md::deploy {
namespace {

using testing::FakeHooks;
using testing::FakeHost;
using testing::FakeMigrator;
using testing::RecordingObserver;
namespace fs = std::filesystem;

// Writes a .tar.gz holding `files` (name, content) and, when `zeros` > 0,
// "big.bin" of that many zero bytes (a few KB compressed).
// WHY real archives: preflight reads the artifact's tar headers for the disk
// it needs.
void write_tar_gz(const fs::path& path,
                  const std::vector<std::pair<std::string, std::string>>& files,
                  uint64_t zeros = 0) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_filter_option(a, "gzip", "compression-level", "1");
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  auto entry = [&](const std::string& name, uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    archive_entry_free(e);
  };
  for (const auto& [name, content] : files) {
    entry(name, content.size());
    archive_write_data(a, content.data(), content.size());
  }
  if (zeros > 0) {
    entry("big.bin", zeros);
    const std::string block(1 << 20, '\0');
    for (uint64_t left = zeros; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
      archive_write_data(a, block.data(), n);
      left -= n;
    }
  }
  archive_write_close(a);
  archive_write_free(a);
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // WHY /dev/shm: the store fsyncs every journal record; on tmpfs that is
    // free, and these tests write a few thousand of them.
    std::string tmpl =
        std::string(fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + "/md-deploy-test-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    auto st = state::open_store((dir_ / "state.db").string(), clock_);
    ASSERT_TRUE(st) << st.error().what();
    store_ = std::move(*st);
    env_.name = "production";
    env_.app = "meshhook";
    config::Service web;
    web.name = "web";
    web.count = 2;
    web.health.start_timeout = Millis(5000);
    config::Service worker;
    worker.name = "worker";
    worker.kind = config::ServiceKind::kWorker;
    env_.services = {web, worker};
    env_.rollback_window = Millis(0);
    env_.strategy.watch_window = Millis(0);
    env_.strategy.analysis.interval = Millis(1000);
    env_.strategy.analysis.min_requests = 50;
    env_.strategy.analysis.warmup = Millis(0);  // the warm-up tests set their own
    config::Channel ops;
    ops.name = "ops";
    env_.notifications.channels = {ops};
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  fs::path artifact(const std::string& v) {
    fs::path p = dir_ / ("meshhook-" + v + ".tar.gz");
    if (!fs::exists(p)) write_tar_gz(p, {{"VERSION", v + "\n"}});
    return p;
  }

  Deployer make(std::optional<FaultPoint> fault = std::nullopt) {
    Seams seams{host_override_ ? *host_override_ : host_,
                *store_,
                migrations_ ? &migrator_ : nullptr,
                hooks_,
                clock_,
                observer_,
                [this] { ++wakes_; }};
    Options o;
    o.actor = "tester";
    o.holder = "tester@elsewhere pid 1";
    o.fault = fault;
    o.on_fault = [] {};
    o.interrupted = interrupted_;
    return Deployer(env_, seams, o);
  }

  Result<Outcome> deploy(const std::string& v, std::optional<FaultPoint> fault = std::nullopt) {
    DeployRequest r;
    r.version = v;
    r.artifact = artifact(v);
    r.sha256 = *sha256_file_hex(r.artifact);
    host_.calls.clear();
    return make(fault).deploy(r);
  }

  state::Deployment ok_deploy(const std::string& v) {
    auto r = deploy(v);
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->deployment.status, state::DeployStatus::kSucceeded) << r->deployment.reason;
    return r->deployment;
  }

  std::vector<std::string> journal_steps(const std::string& id) {
    std::vector<std::string> out;
    const auto j = store_->journal(id);
    for (const state::JournalEntry& e : *j)
      out.push_back(e.step + ":" + (e.phase == "intent" ? "intent" : e.outcome));
    return out;
  }

  std::vector<std::string> outbox_types() {
    std::vector<std::string> out;
    auto ev = *store_->events(std::nullopt, 1000);
    std::sort(ev.begin(), ev.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    out.reserve(ev.size());
    for (const state::OutboxEvent& e : ev) out.push_back(e.event_type);
    return out;
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<state::Store> store_;
  config::Environment env_;
  FakeHost host_;
  FakeMigrator migrator_;
  FakeHooks hooks_;
  RecordingObserver observer_;
  bool migrations_ = false;
  bool promoted_ = false;
  int wakes_ = 0;
  const std::atomic<bool>* interrupted_ = nullptr;
  Host* host_override_ = nullptr;  // drives this instead of host_ (a fleet)
};

TEST_F(ExecutorTest, FirstDeployStartsRoutesAndRecords) {
  const state::Deployment d = ok_deploy("v1");
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"ship v1", "start v1 web", "route v1=100",
                                                   "start v1 workers", "prune 5"}));
  EXPECT_EQ(d.previous_version, "");
  EXPECT_EQ(d.kind, "deploy");
  EXPECT_TRUE(d.finished_at.has_value());
  EXPECT_EQ(journal_steps(d.id), (std::vector<std::string>{"preflight:intent",
                                                           "preflight:ok",
                                                           "pre_deploy_hook:skipped",
                                                           "notify_started:intent",
                                                           "notify_started:ok",
                                                           "migrate_expand:skipped",
                                                           "ship:intent",
                                                           "ship:ok",
                                                           "start_new:intent",
                                                           "start_new:ok",
                                                           "ready:intent",
                                                           "ready:ok",
                                                           "shift_traffic:intent",
                                                           "shift_traffic:ok",
                                                           "watch:skipped",
                                                           "workers:intent",
                                                           "workers:ok",
                                                           "drain_old:skipped",
                                                           "keep_warm:skipped",
                                                           "stop_old:skipped",
                                                           "migrate_contract:skipped",
                                                           "record:intent",
                                                           "record:ok",
                                                           "prune:intent",
                                                           "prune:ok",
                                                           "post_deploy_hook:skipped",
                                                           "on_rollback_hook:skipped",
                                                           "notify_finished:intent",
                                                           "notify_finished:ok"}));
  EXPECT_EQ(outbox_types(), (std::vector<std::string>{"started", "succeeded"}));
  EXPECT_EQ(wakes_, 2);
  auto rel = *store_->releases("production");
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].state, "live");
  EXPECT_FALSE(*store_->lock_info("production"));
}

// Regression (issue 10): the deploy used to sit out the whole rollback
// window itself; the agent keeps the old release warm now.
TEST_F(ExecutorTest, BlueGreenReturnsAndLeavesTheOldReleaseWarmWithTheAgent) {
  ok_deploy("v1");
  env_.rollback_window = Millis(15 * 60 * 1000);
  const MonoTime before = clock_.mono();
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(host_.calls, (std::vector<std::string>{
                             "ship v2", "start v2 web", "route v2=100", "start v2 workers",
                             "stop v1 workers", "drain v1", "keep_warm v1 900000ms", "prune 5"}));
  EXPECT_LT(clock_.mono() - before, Millis(60000));  // did not wait for the window
  EXPECT_EQ(d.previous_version, "v1");
  EXPECT_EQ(d.status, state::DeployStatus::kSucceeded);
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(host_.warm_until.count("v1"), 1u);
  std::vector<std::string> steps = journal_steps(d.id);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "keep_warm:ok"), steps.end());
  EXPECT_NE(std::find(steps.begin(), steps.end(), "stop_old:skipped"), steps.end());
  const std::vector<state::Release> rels = *store_->releases("production");
  for (const state::Release& r : rels) {
    if (r.version == "v1") {
      EXPECT_EQ(r.state, "warm");
    }
  }
}

TEST_F(ExecutorTest, WithoutAWindowTheOldReleaseStopsAtOnce) {
  ok_deploy("v1");
  ok_deploy("v2");
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"ship v2", "start v2 web", "route v2=100", "start v2 workers",
                                      "stop v1 workers", "drain v1", "stop v1 all", "prune 5"}));
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v2"}));
}

// A contract would break the release a rollback switches back to: with
// contract files pending, the old release is stopped first, not kept warm.
TEST_F(ExecutorTest, PendingContractStopsTheOldReleaseInsteadOfKeepingItWarm) {
  migrations_ = true;
  ok_deploy("v1");
  env_.rollback_window = Millis(15 * 60 * 1000);
  migrator_.calls.clear();
  migrator_.contract = {"20240301000000"};
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"ship v2", "start v2 web", "route v2=100", "start v2 workers",
                                      "stop v1 workers", "drain v1", "stop v1 all", "prune 5"}));
  EXPECT_EQ(migrator_.calls.back(), "apply contract");
  EXPECT_TRUE(host_.warm_until.empty());
  std::vector<std::string> steps = journal_steps(d.id);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "keep_warm:skipped"), steps.end());
  // Without contract files the next deploy keeps v2 warm again.
  ok_deploy("v3");
  EXPECT_EQ(host_.warm_until.count("v2"), 1u);
}

// Regression (issue 10): a rollback in the window used to abort the deploy
// that kept the old release warm (exit 4); it is a rollback deployment now,
// and switches without starting anything.
TEST_F(ExecutorTest, RollbackInTheWindowIsARollbackDeploymentOfTheWarmRelease) {
  ok_deploy("v1");
  env_.rollback_window = Millis(15 * 60 * 1000);
  const state::Deployment v2 = ok_deploy("v2");
  host_.calls.clear();
  Seams seams{host_, *store_, nullptr, hooks_, clock_, observer_, {}};
  Options o;
  o.holder = "tester@elsewhere pid 1";
  auto r = Deployer(env_, seams, o).rollback("");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_FALSE(r->via_abort);
  EXPECT_EQ(r->deployment.kind, "rollback");
  EXPECT_EQ(r->deployment.version, "v1");
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kSucceeded);
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"route v1=100", "start v1 workers", "stop v2 workers",
                                      "drain v2", "stop v2 all", "prune 5"}));
  EXPECT_EQ(store_->deployment(v2.id)->status, state::DeployStatus::kSucceeded);
}

TEST_F(ExecutorTest, StoreDeletedAfterTrafficMovedFailsSayingWhatTheHostRuns) {
  ok_deploy("v1");
  env_.strategy.watch_window = Millis(5000);
  // The store is deleted while v2 is watched at 100%.
  host_.on_metrics = [this](int) { fs::remove(dir_ / "state.db"); };
  auto r = deploy("v2");
  ASSERT_FALSE(r) << "a deploy whose records were lost must not report success";
  const std::string msg = r.error().what();
  EXPECT_NE(msg.find("was deleted or replaced"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stopped at watch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("traffic HAD moved to v2"), std::string::npos) << msg;
  EXPECT_NE(
      msg.find("host fake: traffic v2 100%; running v1 (2/2 web healthy), v2 (2/2 web healthy)"),
      std::string::npos)
      << msg;
  EXPECT_NE(msg.find("deploy --resume"), std::string::npos) << msg;
  host_.on_metrics = nullptr;

  // The saved copy holds the deploy as running with its lock: put back, the
  // deploy resumes to its end.
  const size_t at = msg.find((dir_ / "state.db.recovered-").string());
  ASSERT_NE(at, std::string::npos) << msg;
  const std::string saved = msg.substr(at, msg.find(';', at) - at);
  store_.reset();
  fs::rename(saved, dir_ / "state.db");
  auto st = state::open_store((dir_ / "state.db").string(), clock_);
  ASSERT_TRUE(st) << st.error().what();
  store_ = std::move(*st);
  auto running = store_->running("production");
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->version, "v2");
  auto resumed = make().resume();
  ASSERT_TRUE(resumed) << resumed.error().what();
  EXPECT_EQ(resumed->deployment.status, state::DeployStatus::kSucceeded);
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v2"}));
}

TEST_F(ExecutorTest, SameVersionTwiceIsRefusedBeforeAnythingRuns) {
  ok_deploy("v1");
  auto r = deploy("v1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kAlreadyExists);
  EXPECT_TRUE(host_.calls.empty());
}

TEST_F(ExecutorTest, NeverHealthyFailsAndNothingMoves) {
  env_.hooks.on_failure = "page";
  ok_deploy("v1");
  host_.behaviour["v2"].never_healthy = true;
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_EQ(r->deployment.reason.rfind("ready: v2 not healthy after 5s: 0/2 web healthy", 0), 0u)
      << r->deployment.reason;
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"ship v2", "start v2 web", "stop v2 all"}));
  EXPECT_EQ(host_.weights, (std::map<std::string, int>{{"v1", 100}}));
  ASSERT_EQ(hooks_.calls.size(), 1u);
  EXPECT_EQ(hooks_.calls[0].command, "page");
  EXPECT_EQ(hooks_.calls[0].vars.at("MESHDEPLOY_VERSION"), "v2");
  EXPECT_EQ(hooks_.calls[0].vars.at("MESHDEPLOY_PREVIOUS_VERSION"), "v1");
  EXPECT_EQ(hooks_.calls[0].vars.at("MESHDEPLOY_REASON"), r->deployment.reason);
  EXPECT_EQ(outbox_types(),
            (std::vector<std::string>{"started", "succeeded", "started", "failed"}));
}

TEST_F(ExecutorTest, CrashLoopFailsFast) {
  ok_deploy("v1");
  host_.behaviour["v2"].crash = true;
  const MonoTime t = clock_.mono();
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_NE(r->deployment.reason.find("web.1 failed (exit 1)"), std::string::npos)
      << r->deployment.reason;
  EXPECT_LT(clock_.mono() - t, Millis(1000));
}

// Regression: SIGTERM to a controller blocked in an agent call (a FIFO
// artifact held the agent in `ship` for 725 s) was honoured only when the
// call returned. The cut call comes back kCancelled: the controller stops
// there (no failure path that would call the hung agent again), closes the
// step's intent as interrupted and frees the lock; the next deploy settles.
TEST_F(ExecutorTest, ASignalThatCutsAnAgentCallStopsAtOnceAndTheNextDeploySettles) {
  ok_deploy("v1");
  std::atomic<bool> signalled{true};
  interrupted_ = &signalled;
  host_.fail_next.insert_or_assign(
      "ship", Error(Errc::kCancelled, "read agent.sock: interrupted by a signal"));
  auto r = deploy("v2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCancelled);
  EXPECT_NE(r.error().what().find("interrupted by a signal during ship of deploy v2"),
            std::string::npos)
      << r.error().what();
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"ship v2"}));  // nothing after the cut call
  auto running = store_->running("production");
  ASSERT_TRUE(running && *running);
  const std::string id = (*running)->id;
  auto steps = journal_steps(id);
  ASSERT_GE(steps.size(), 2u);
  EXPECT_EQ(steps[steps.size() - 2], "ship:intent");
  EXPECT_EQ(steps.back(), "ship:failed");
  const auto j = *store_->journal(id);
  EXPECT_NE(j.back().detail.find("\"interrupted\":true"), std::string::npos) << j.back().detail;

  // The lock is free and the next deploy first settles the stopped one.
  interrupted_ = nullptr;
  const state::Deployment d = ok_deploy("v3");
  EXPECT_EQ(d.previous_version, "v1");
  auto settled = store_->deployment(id);
  ASSERT_TRUE(settled) << settled.error().what();
  EXPECT_NE(settled->status, state::DeployStatus::kRunning);
}

// A signal between agent calls (here: during the watch window) is the
// documented abort: the deploy rolls back, and the signal is taken so the
// rollback's own agent calls are not cut.
TEST_F(ExecutorTest, ASignalBetweenAgentCallsAbortsAndRollsBack) {
  ok_deploy("v1");
  env_.strategy.watch_window = Millis(5000);
  std::atomic<bool> signalled{true};
  interrupted_ = &signalled;
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();  // ran to its end: not stopped half-way
  EXPECT_NE(r->deployment.reason.find("interrupted by a signal"), std::string::npos)
      << r->deployment.reason;
  EXPECT_NE(r->deployment.status, state::DeployStatus::kRunning);
  EXPECT_NE(r->deployment.status, state::DeployStatus::kSucceeded);
}

TEST_F(ExecutorTest, FailingPreDeployHookChangesNothing) {
  env_.hooks.pre_deploy = "check";
  env_.hooks.on_failure = "page";
  hooks_.exit_codes["check"] = 3;
  migrations_ = true;
  migrator_.expand = {"20240101000000"};
  auto r = deploy("v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_EQ(r->deployment.reason, "pre_deploy_hook: pre_deploy hook failed (exit 3): hook says no");
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(migrator_.calls, (std::vector<std::string>{"plan"}));
  EXPECT_EQ(hooks_.commands(), (std::vector<std::string>{"check", "page"}));
}

// Regression: the need was the compressed size x 4 + 100 MiB, so a ~200 KB
// artifact expanding to 200 MiB passed on a host with 150 MiB free.
TEST_F(ExecutorTest, PreflightSizesTheDiskFromTheArchivesDeclaredSizes) {
  write_tar_gz(dir_ / "meshhook-v1.tar.gz", {{"VERSION", "v1\n"}}, 200ull << 20);
  ASSERT_LT(fs::file_size(dir_ / "meshhook-v1.tar.gz"), 1u << 20);
  host_.disk_free = 150ull << 20;
  auto r = deploy("v1");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  // needs: 200 MiB declared, plus the compressed artifact's own copy.
  EXPECT_THAT(r->deployment.reason,
              ::testing::MatchesRegex("preflight: not enough disk on host fake for v1: needs "
                                      "20[01]\\.[0-9] MiB, has 150\\.0 MiB under the agent root "
                                      "\\(sizes declared by the archive\\)"));
  EXPECT_TRUE(host_.calls.empty());  // nothing shipped
  // With room for it, it goes through.
  host_.disk_free = 300ull << 20;
  ok_deploy("v1");
}

TEST_F(ExecutorTest, PreflightCountsInodes) {
  std::vector<std::pair<std::string, std::string>> files;
  files.reserve(40);
  for (int i = 0; i < 40; ++i) files.emplace_back("f" + std::to_string(i), "x");
  write_tar_gz(dir_ / "meshhook-v1.tar.gz", files);
  host_.disk_free_inodes = 30;
  auto r = deploy("v1");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_EQ(r->deployment.reason,
            "preflight: not enough disk on host fake for v1: needs 41 inodes, has 30 under the "
            "agent root (sizes declared by the archive)");
  EXPECT_TRUE(host_.calls.empty());
}

TEST_F(ExecutorTest, PreflightRefusesAnArtifactThatIsNoArchive) {
  std::ofstream(dir_ / "meshhook-v1.tar.gz") << "not an archive";
  auto r = deploy("v1");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_NE(r->deployment.reason.find("preflight: artifact: size of meshhook-v1.tar.gz"),
            std::string::npos)
      << r->deployment.reason;
  EXPECT_TRUE(host_.calls.empty());
}

TEST_F(ExecutorTest, MigrationsExpandBeforeShipAndContractAfterTheOldStops) {
  migrations_ = true;
  ok_deploy("v1");
  migrator_.calls.clear();
  migrator_.expand = {"20240201000000"};
  migrator_.contract = {"20240301000000"};
  ok_deploy("v2");
  EXPECT_EQ(migrator_.calls,
            (std::vector<std::string>{"plan", "apply expand", "plan", "apply contract"}));
  migrator_.refuse = {"lint: adding-not-nullable-field"};
  auto r = deploy("v3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_EQ(r->deployment.reason, "preflight: migrations refused: lint: adding-not-nullable-field");
}

TEST_F(ExecutorTest, AgentListeningElsewhereRefusesWithEveryReasonBeforeAnythingMoves) {
  migrations_ = true;
  ok_deploy("v1");
  migrator_.calls.clear();
  host_.listen = {"127.0.0.1:9090"};
  migrator_.refuse = {"lint: a", "lint: b"};
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  const std::string& why = r->deployment.reason;
  EXPECT_EQ(why.substr(0, why.find('\n')), "preflight: refused for 3 reasons:");
  EXPECT_NE(
      why.find("\n- proxy.listen is 127.0.0.1:8080 in the config (environment production), but "
               "the agent on host fake listens on 127.0.0.1:9090:"),
      std::string::npos)
      << why;
  EXPECT_NE(why.find("\n- migrations refused: lint: a\n- migrations refused: lint: b"),
            std::string::npos)
      << why;
  EXPECT_TRUE(host_.calls.empty()) << host_.calls.front();
  EXPECT_EQ(migrator_.calls, (std::vector<std::string>{"plan"}));
  EXPECT_EQ(host_.weights, (std::map<std::string, int>{{"v1", 100}}));
}

// The proxy's health probe of the new targets was reported as part of the
// traffic switch (125-297 ms "switches"): now apart, in output and journal.
TEST_F(ExecutorTest, HealthProbeAndTrafficSwitchAreReportedApart) {
  ok_deploy("v1");
  host_.route_probe = Millis(120);
  const state::Deployment d = ok_deploy("v2");
  bool seen = false;
  const auto journal = store_->journal(d.id);
  ASSERT_TRUE(journal);
  for (const state::JournalEntry& e : *journal) {
    if (e.step != "shift_traffic" || e.phase != "outcome") continue;
    const auto x = nlohmann::json::parse(e.detail);
    EXPECT_EQ(x["probe_ms"], 120);
    EXPECT_EQ(x["switch_ms"], 0) << "the fake clock does not move: the switch took 0 ms";
    seen = true;
  }
  EXPECT_TRUE(seen);
  bool noted = false;
  for (const Progress& p : observer_.events)
    noted =
        noted || p.message == "100% of traffic on v2 (health probe 120 ms, traffic switch 0 ms)";
  EXPECT_TRUE(noted);
}

TEST_F(ExecutorTest, CanaryPassesEachWeight) {
  ok_deploy("v1");
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{25, Millis(3000), false}, {100, Millis(0), false}};
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"ship v2", "start v2 web", "route v2=25,v1=75",
                                      "route v2=100", "start v2 workers", "stop v1 workers",
                                      "drain v1", "stop v1 all", "prune 5"}));
  EXPECT_EQ(d.strategy, "canary");
  EXPECT_EQ(outbox_types(), (std::vector<std::string>{"started", "succeeded", "started",
                                                      "canary_step", "canary_step", "succeeded"}));
}

TEST_F(ExecutorTest, CanaryBreachRollsBackAutomatically) {
  env_.hooks.on_rollback = "rolled";
  env_.hooks.on_failure = "failed";
  ok_deploy("v1");
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{50, Millis(5000), false}};
  host_.behaviour["v2"].error_rate = 0.5;
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
  EXPECT_EQ(
      r->deployment.reason,
      "shift_traffic: canary at 50%: 5xx: canary 5xx ratio 0.5 > severe_error_ratio 0.1 (50 of 100 "
      "requests): severe, no need to wait");
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"ship v2", "start v2 web", "route v2=50,v1=50",
                                                   "route v1=100", "stop v2 all"}));
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v1"}));
  EXPECT_EQ(hooks_.commands(), (std::vector<std::string>{"failed", "rolled"}));
  EXPECT_EQ(outbox_types().back(), "rolled_back");
  EXPECT_TRUE(r->switch_time.has_value());
}

// A canary whose requests are slow (10x) for its first `cold` of traffic,
// with windows of one metrics poll each (25 %: 50 canary, 150 live requests).
class ColdCanary : public ExecutorTest {
 protected:
  void SetUp() override {
    ExecutorTest::SetUp();
    ok_deploy("v1");
    env_.strategy.kind = config::StrategyKind::kCanary;
    env_.strategy.steps = {{25, Millis(6000), false}, {100, Millis(0), false}};
  }
  // v2 answers in 100 ms from `from` (after its first route) until `until`, else 10 ms.
  void slow_between(Millis from, Millis until) {
    host_.on_route = [this] {
      if (!routed_ && host_.weights.count("v2")) {
        routed_ = true;
        t0_ = clock_.mono();
      }
    };
    host_.on_metrics = [this, from, until](int) {
      const Millis at = std::chrono::duration_cast<Millis>(clock_.mono() - t0_);
      host_.behaviour["v2"].latency_ms = routed_ && at >= from && at < until ? 100 : 10;
    };
  }
  bool routed_ = false;
  MonoTime t0_{};
};

TEST_F(ColdCanary, TheWarmUpAfterAWeightChangeIsNotJudged) {
  slow_between(Millis(0), Millis(2500));
  env_.strategy.analysis.warmup = Millis(3000);
  EXPECT_EQ(ok_deploy("v2").status, state::DeployStatus::kSucceeded);
}

TEST_F(ColdCanary, WithoutAWarmUpTheColdStartRollsBack) {
  slow_between(Millis(0), Millis(4000));
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
  EXPECT_NE(r->deployment.reason.find("canary at 25%: latency: canary slower than live (median "),
            std::string::npos)
      << r->deployment.reason;
  EXPECT_NE(r->deployment.reason.find("3/3 windows)"), std::string::npos) << r->deployment.reason;
}

TEST_F(ColdCanary, OneSlowWindowDoesNotRollBack) {
  slow_between(Millis(1000), Millis(1500));  // about one window of the step's six
  EXPECT_EQ(ok_deploy("v2").status, state::DeployStatus::kSucceeded);
  bool suspect = false;
  for (const Progress& p : observer_.events)
    suspect = suspect || p.message.find("25% suspect: latency: canary slower than live") == 0;
  EXPECT_TRUE(suspect);
}

TEST_F(ColdCanary, OneSlowWindowRollsBackWhenOneWindowIsEnough) {
  slow_between(Millis(1000), Millis(1500));
  env_.strategy.analysis.consecutive_windows = 1;
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
}

TEST_F(ColdCanary, ARestartOfACanaryProcessStartsTheWarmUpAgain) {
  env_.strategy.analysis.warmup = Millis(1000);
  // At 3 s a web process of v2 restarts and is cold (slow) for 2.5 s.
  slow_between(Millis(3000), Millis(5500));
  auto restart = host_.on_metrics;
  host_.on_metrics = [this, restart](int n) {
    restart(n);
    if (routed_ && clock_.mono() - t0_ >= Millis(3000)) host_.behaviour["v2"].restarts = 1;
  };
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(d.status, state::DeployStatus::kSucceeded);
  bool noted = false;
  for (const Progress& p : observer_.events)
    noted =
        noted || p.message == "25% a process of v2 restarted: warm-up again, analysis starts over";
  EXPECT_TRUE(noted);
}

TEST_F(ColdCanary, AColdPhaseAfterTheWarmUpStillRollsBack) {
  env_.strategy.analysis.warmup = Millis(1000);
  slow_between(Millis(3000), Millis(5500));  // the same, but no restart: a real regression
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
}

TEST_F(ExecutorTest, AProxyRestartMidStepStartsTheAnalysisOver) {
  ok_deploy("v1");
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{50, Millis(3000), false}, {100, Millis(0), false}};
  env_.strategy.analysis.max_inconclusive = Millis(5000);
  // The agent restarts after the second poll: its counters start from zero.
  host_.on_metrics = [&](int call) {
    if (call == 2) host_.counters.clear();
  };
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(d.status, state::DeployStatus::kSucceeded) << d.reason;
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v2"}));
}

TEST_F(ExecutorTest, CanaryOverAStoppedReleaseGoesStraightTo100) {
  ok_deploy("v1");
  // Everything of v1 was stopped (agent stop --all, host reboot).
  host_.rel["v1"].web = false;
  host_.rel["v1"].workers = false;
  host_.weights.clear();
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{25, Millis(3000), false}, {100, Millis(0), false}};
  const state::Deployment d = ok_deploy("v2");
  EXPECT_EQ(d.status, state::DeployStatus::kSucceeded) << d.reason;
  EXPECT_EQ(std::count(host_.calls.begin(), host_.calls.end(), "route v2=25,v1=75"), 0);
  EXPECT_EQ(std::count(host_.calls.begin(), host_.calls.end(), "route v2=100"), 1);
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v2"}));
}

TEST_F(ExecutorTest, InconclusiveCanaryFailsOrWaits) {
  ok_deploy("v1");
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{5, Millis(2000), false}};
  env_.strategy.analysis.min_requests = 1000;  // 5 % of 200 per poll never gets there in 2 s
  env_.strategy.analysis.on_inconclusive = config::Inconclusive::kFail;
  auto r = deploy("v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
  EXPECT_NE(r->deployment.reason.find("inconclusive"), std::string::npos) << r->deployment.reason;
  // kWait: gives up after max_inconclusive.
  env_.strategy.analysis.on_inconclusive = config::Inconclusive::kWait;
  env_.strategy.analysis.max_inconclusive = Millis(10000);
  const MonoTime t = clock_.mono();
  r = deploy("v3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack) << r->deployment.reason;
  EXPECT_NE(r->deployment.reason.find("still inconclusive after waiting 10s"), std::string::npos);
  EXPECT_GE(clock_.mono() - t, Millis(12000));
}

TEST_F(ExecutorTest, ApprovalGateWaitsForPromote) {
  ok_deploy("v1");
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{10, Millis(1000), true}};
  // Another process promotes once the approval is requested.
  host_.on_metrics = [this](int) {
    auto ev = store_->events(std::nullopt, 100);
    for (const auto& e : *ev)
      if (e.event_type == "approval_needed" && !promoted_) {
        promoted_ = true;
        ASSERT_TRUE(request_control(*store_, "production", ControlCommand::kPromote, "ann", ""));
      }
  };
  const state::Deployment d = ok_deploy("v2");
  EXPECT_TRUE(promoted_);
  std::vector<std::string> steps = journal_steps(d.id);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "approval:intent"), steps.end());
  EXPECT_NE(std::find(steps.begin(), steps.end(), "control:ok"), steps.end());
}

TEST_F(ExecutorTest, AbortDuringTheWarmWindowSwitchesBack) {
  env_.hooks.on_rollback = "rolled";
  ok_deploy("v1");
  env_.rollback_window = Millis(600000);
  env_.strategy.watch_window = Millis(2000);
  auto r = [&] {
    DeployRequest req;
    req.version = "v2";
    req.artifact = artifact("v2");
    req.sha256 = *sha256_file_hex(req.artifact);
    host_.calls.clear();
    // Abort as soon as the deploy reaches keep_warm (observer sees the step start).
    struct Aborter : Observer {
      state::Store* store;
      void on_progress(const Progress& p) override {
        if (p.kind == ProgressKind::kStep && p.step == Step::kKeepWarm)
          (void)request_control(*store, "production", ControlCommand::kAbort, "bob", "oops");
      }
    } aborter;
    aborter.store = store_.get();
    Seams seams{host_, *store_, nullptr, hooks_, clock_, aborter, {}};
    Options o;
    o.holder = "tester@elsewhere pid 1";
    return Deployer(env_, seams, o).deploy(req);
  }();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
  EXPECT_EQ(r->deployment.reason, "keep_warm: aborted by bob: oops");
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"ship v2", "start v2 web", "route v2=100", "start v2 workers",
                                      "stop v1 workers", "drain v1", "route v1=100",
                                      "start v1 workers", "stop v2 all"}));
  EXPECT_EQ(hooks_.commands(), (std::vector<std::string>{"rolled"}));
  EXPECT_LT(clock_.mono().time_since_epoch(), Millis(600000));
}

TEST_F(ExecutorTest, ManualRollbackStartsTheKeptReleaseFromDisk) {
  env_.hooks.on_rollback = "rolled";
  ok_deploy("v1");
  ok_deploy("v2");
  host_.calls.clear();
  Seams seams{host_, *store_, nullptr, hooks_, clock_, observer_, {}};
  Options o;
  o.holder = "tester@elsewhere pid 1";
  auto r = Deployer(env_, seams, o).rollback("");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.kind, "rollback");
  EXPECT_EQ(r->deployment.version, "v1");
  EXPECT_EQ(r->deployment.previous_version, "v2");
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kSucceeded);
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"start v1 web", "route v1=100", "start v1 workers",
                                      "stop v2 workers", "drain v2", "stop v2 all", "prune 5"}));
  EXPECT_EQ(hooks_.commands(), (std::vector<std::string>{"rolled"}));
  EXPECT_EQ(outbox_types().back(), "rolled_back");
  // Rolling back again goes further back, not forth: nothing before v1.
  auto again = Deployer(env_, seams, o).rollback("");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kNotFound);
}

TEST_F(ExecutorTest, LockHeldElsewhereIsAConflictNamingTheHolder) {
  ASSERT_TRUE(store_->acquire_lock("production", "ann@ci pid 7", "d-other", Millis(60000)));
  auto r = deploy("v1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kConflict);
  EXPECT_NE(r.error().what().find("ann@ci pid 7"), std::string::npos) << r.error().what();
  EXPECT_TRUE(host_.calls.empty());
}

// kill -9 at every journal record of a canary deploy with everything on,
// then `deploy --resume`: one live version, nothing else running, a
// complete journal, status final.
class KillEverywhere : public ExecutorTest,
                       public ::testing::WithParamInterface<std::tuple<Step, bool>> {};

TEST_P(KillEverywhere, ResumeEndsOnOneVersion) {
  env_.hooks = config::Hooks{};
  env_.hooks.pre_deploy = "pre";
  env_.hooks.post_deploy = "post";
  env_.hooks.on_failure = "fail";
  env_.hooks.on_rollback = "rb";
  migrations_ = true;
  ok_deploy("v1");
  migrator_.expand = {"2"};
  migrator_.contract = {"3"};
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{50, Millis(2000), false}};
  env_.strategy.watch_window = Millis(2000);
  env_.rollback_window = Millis(3000);
  const auto [step, outcome] = GetParam();
  auto r = deploy("v2", FaultPoint{step, outcome, 1});
  ASSERT_FALSE(r) << "the fault at " << step_name(step) << " never fired";
  ASSERT_EQ(r.error().code(), Errc::kCancelled);
  // The dead controller's lease must lapse before anyone else can act.
  clock_.advance(Millis(31000));
  Seams seams{host_, *store_, &migrator_, hooks_, clock_, observer_, {}};
  Options o;
  o.holder = "resumer@elsewhere pid 2";
  auto res = Deployer(env_, seams, o).resume();
  if (step == Step::kNotifyFinished && outcome) {
    // Killed after the last record: nothing is left to resume.
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code(), Errc::kNotFound);
    res = Outcome{};
    res->deployment = (*store_->deployments("production", 1))[0];
  }
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->deployment.status, state::DeployStatus::kSucceeded) << res->deployment.reason;
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v2"}));
  EXPECT_EQ(host_.weights, (std::map<std::string, int>{{"v2", 100}}));
  EXPECT_TRUE(journal_complete(*store_->journal(res->deployment.id)));
  EXPECT_TRUE(migrator_.expand.empty());
  EXPECT_TRUE(migrator_.contract.empty());
  EXPECT_FALSE(*store_->running("production"));
}

std::vector<std::tuple<Step, bool>> every_record() {
  std::vector<std::tuple<Step, bool>> out;
  for (const Transition& t : transition_table())
    // The success path: the failure path and on_rollback_hook (which runs
    // only after a rollback) have their own tests.
    if (t.step != Step::kDone && !on_failure_path(t.step) && t.step != Step::kOnRollbackHook)
      for (bool outcome : {false, true}) out.emplace_back(t.step, outcome);
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllSteps, KillEverywhere, ::testing::ValuesIn(every_record()),
                         [](const auto& info) {
                           return std::string(step_name(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_outcome" : "_intent");
                         });

TEST_F(ExecutorTest, ANewDeployRollsBackADeadOneFirst) {
  ok_deploy("v1");
  auto r = deploy("v2", FaultPoint{Step::kShiftTraffic, true, 1});
  ASSERT_FALSE(r);
  clock_.advance(Millis(31000));
  const state::Deployment d3 = ok_deploy("v3");
  EXPECT_EQ(d3.previous_version, "v1");
  auto all = *store_->deployments("production", 10);
  ASSERT_EQ(all.size(), 3u);
  auto v2 = std::find_if(all.begin(), all.end(), [](const auto& d) { return d.version == "v2"; });
  ASSERT_NE(v2, all.end());
  EXPECT_EQ(v2->status, state::DeployStatus::kRolledBack);
  EXPECT_EQ(v2->reason, "interrupted: the controller died");
  EXPECT_EQ(host_.running(), (std::vector<std::string>{"v3"}));
}

TEST(Fault, Parse) {
  auto f = parse_fault("shift_traffic:outcome:2");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->step, Step::kShiftTraffic);
  EXPECT_TRUE(f->after_outcome);
  EXPECT_EQ(f->occurrence, 2);
  EXPECT_FALSE(parse_fault("ready"));
  EXPECT_FALSE(parse_fault("nope:intent"));
  EXPECT_FALSE(parse_fault("ready:before"));
  EXPECT_EQ(parse_fault("ready:x").error().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace md::deploy

namespace md::deploy {
namespace {

using testing::FakeHost;

// ---- several hosts: a fleet of three fakes (fleet.cc) ----------------------

class FleetTest : public ExecutorTest {
 protected:
  void SetUp() override {
    ExecutorTest::SetUp();
    std::vector<std::unique_ptr<Host>> hosts;
    for (int i = 1; i <= 3; ++i) {
      auto h = std::make_unique<FakeHost>();
      h->host_name = fmt::format("h{}", i);
      fakes_.push_back(h.get());
      hosts.push_back(std::move(h));
    }
    fleet_ = make_fleet(std::move(hosts));
    host_override_ = fleet_.get();
  }
  bool called_everywhere(const std::string& call) const {
    for (const FakeHost* h : fakes_)
      if (std::find(h->calls.begin(), h->calls.end(), call) == h->calls.end()) return false;
    return true;
  }
  bool called_anywhere(const std::string& call) const {
    for (const FakeHost* h : fakes_)
      if (std::find(h->calls.begin(), h->calls.end(), call) != h->calls.end()) return true;
    return false;
  }
  void clear_calls() {
    for (FakeHost* h : fakes_) h->calls.clear();
  }
  nlohmann::json outcome_detail(const std::string& id, const std::string& step) {
    const auto j = store_->journal(id);
    for (const state::JournalEntry& e : *j)
      if (e.step == step && e.phase == "outcome") return nlohmann::json::parse(e.detail);
    return nlohmann::json();
  }
  std::vector<FakeHost*> fakes_;
  std::unique_ptr<Host> fleet_;
};

TEST_F(FleetTest, EveryHostTakesEveryStepAndEachIsJournaled) {
  ok_deploy("v1");
  clear_calls();
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->deployment.status, state::DeployStatus::kSucceeded) << r->deployment.reason;
  for (const char* c : {"ship v2", "start v2 web", "route v2=100", "start v2 workers"})
    EXPECT_TRUE(called_everywhere(c)) << c;
  for (const FakeHost* h : fakes_)
    EXPECT_EQ(h->weights, (std::map<std::string, int>{{"v2", 100}})) << h->host_name;
  EXPECT_EQ(r->hosts, (std::vector<std::string>{"h1", "h2", "h3"}));
  ASSERT_TRUE(r->spread_time.has_value());
  const nlohmann::json ship = outcome_detail(r->deployment.id, "ship");
  ASSERT_TRUE(ship.contains("hosts")) << ship.dump();
  for (const char* h : {"h1", "h2", "h3"})
    EXPECT_NE(ship["hosts"][h].get<std::string>().find("ship"), std::string::npos) << ship.dump();
  const nlohmann::json shift = outcome_detail(r->deployment.id, "shift_traffic");
  EXPECT_TRUE(shift.contains("spread_ms")) << shift.dump();
  // history names the hosts, from the journal.
  const auto journal = store_->journal(r->deployment.id);
  ASSERT_TRUE(journal);
  const std::vector<std::string> hosts = deployment_hosts(*journal);
  EXPECT_EQ(hosts, (std::vector<std::string>{"h1", "h2", "h3"}));
  const std::string table = format_history({r->deployment}, {{r->deployment.id, hosts}});
  EXPECT_NE(table.find("\n    hosts: h1, h2, h3\n"), std::string::npos) << table;
  EXPECT_EQ(history_json({r->deployment}, {{r->deployment.id, hosts}})[0]["hosts"],
            nlohmann::json({"h1", "h2", "h3"}));
  // 6 web processes on 3 hosts, counted as such.
  EXPECT_NE(outcome_detail(r->deployment.id, "ready")["note"].get<std::string>().find("6/6"),
            std::string::npos);
}

TEST_F(FleetTest, OneHostNeverHealthyMovesNothingOnAnyHost) {
  ok_deploy("v1");
  clear_calls();
  fakes_[1]->behaviour["v2"].never_healthy = true;
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kFailed);
  EXPECT_NE(r->deployment.reason.find("host h2: 0/2 web healthy"), std::string::npos)
      << r->deployment.reason;
  EXPECT_EQ(r->deployment.reason.find("host h1"), std::string::npos) << r->deployment.reason;
  EXPECT_FALSE(called_anywhere("route v2=100"));
  EXPECT_TRUE(called_everywhere("stop v2 all"));
  for (const FakeHost* h : fakes_)
    EXPECT_EQ(h->weights, (std::map<std::string, int>{{"v1", 100}})) << h->host_name;
}

TEST_F(FleetTest, AHostLostAfterTheSwitchRollsEveryHostBackAndWaitsForIt) {
  env_.strategy.watch_window = Millis(5000);
  env_.strategy.hosts.rollback_wait = Millis(60000);
  ok_deploy("v1");
  clear_calls();
  FakeHost& h3 = *fakes_[2];
  h3.on_route = [&h3] {
    if (h3.weights.count("v2")) h3.unreachable = true;  // its agent dies right after the switch
  };
  int failed_routes = 0;
  h3.before_route = [&] {
    if (h3.unreachable && ++failed_routes == 3) h3.unreachable = false;  // systemd restarted it
  };
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack) << r->deployment.reason;
  EXPECT_NE(r->deployment.reason.find("host h3"), std::string::npos) << r->deployment.reason;
  for (const FakeHost* h : fakes_)
    EXPECT_EQ(h->weights, (std::map<std::string, int>{{"v1", 100}})) << h->host_name;
  EXPECT_TRUE(called_everywhere("stop v2 all"));
  EXPECT_EQ(failed_routes, 3);
  bool waited = false;
  for (const auto& p : observer_.events)
    waited = waited || p.message.find("waiting up to 60s") != std::string::npos;
  EXPECT_TRUE(waited);
}

TEST_F(FleetTest, AHostThatNeverComesBackFailsTheRollbackNamingIt) {
  env_.strategy.watch_window = Millis(5000);
  env_.strategy.hosts.rollback_wait = Millis(3000);
  ok_deploy("v1");
  FakeHost& h3 = *fakes_[2];
  h3.on_route = [&h3] {
    if (h3.weights.count("v2")) h3.unreachable = true;
  };
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_NE(r->deployment.status, state::DeployStatus::kSucceeded);
  // The reachable hosts went back; the lost one is named with what to do.
  EXPECT_EQ(fakes_[0]->weights, (std::map<std::string, int>{{"v1", 100}}));
  EXPECT_EQ(fakes_[1]->weights, (std::map<std::string, int>{{"v1", 100}}));
  std::string said;
  for (const auto& p : observer_.events) said += p.message + "\n";
  EXPECT_NE(said.find("host h3"), std::string::npos) << said;
  EXPECT_NE(said.find("deploy --resume"), std::string::npos) << said;
}

TEST_F(FleetTest, CanaryJudgesTheSumAndNamesTheHostThatBreachesAlone) {
  env_.strategy.kind = config::StrategyKind::kCanary;
  env_.strategy.steps = {{50, Millis(5000), false}, {100, Millis(0), false}};
  env_.strategy.analysis.max_error_ratio = 0.05;
  env_.strategy.analysis.severe_error_ratio = 0.2;
  ok_deploy("v1");
  fakes_[1]->behaviour["v2"].error_rate = 0.9;  // one host in three: the sum has 30 % 5xx
  auto r = deploy("v2");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->deployment.status, state::DeployStatus::kRolledBack);
  EXPECT_NE(r->deployment.reason.find("host h2 alone"), std::string::npos) << r->deployment.reason;
  EXPECT_EQ(r->deployment.reason.find("host h1 alone"), std::string::npos) << r->deployment.reason;
  for (const FakeHost* h : fakes_)
    EXPECT_EQ(h->weights, (std::map<std::string, int>{{"v1", 100}})) << h->host_name;
}

TEST(FleetMerge, ViewCountsHostsAndAveragesTheSplit) {
  std::vector<std::unique_ptr<Host>> hosts;
  std::vector<FakeHost*> f;
  for (int i = 0; i < 3; ++i) {
    auto h = std::make_unique<FakeHost>();
    h->host_name = fmt::format("h{}", i + 1);
    f.push_back(h.get());
    hosts.push_back(std::move(h));
  }
  std::unique_ptr<Host> fleet = make_fleet(std::move(hosts));
  LaunchSpec spec;
  ASSERT_TRUE(fleet->ship("v1", "a", "s1"));
  ASSERT_TRUE(fleet->start("v1", Role::kWeb, spec));
  ASSERT_TRUE(f[0]->ship("v2", "a", "s2"));  // on one host only
  ASSERT_TRUE(f[0]->start("v2", Role::kWeb, spec));
  ASSERT_TRUE(f[0]->route({{"v2", 100}}));
  ASSERT_TRUE(f[1]->route({{"v1", 100}}));
  ASSERT_TRUE(f[2]->route({{"v1", 100}}));
  auto v = fleet->view();
  ASSERT_TRUE(v) << v.error().what();
  EXPECT_EQ(v->hosts, 3);
  ASSERT_NE(v->find("v1"), nullptr);
  EXPECT_EQ(v->find("v1")->on_hosts, 3);
  EXPECT_EQ(v->find("v1")->processes.size(), 6u);
  EXPECT_EQ(v->find("v2")->on_hosts, 1);
  EXPECT_EQ(v->weights, (std::map<std::string, int>{{"v1", 67}, {"v2", 33}}));
  EXPECT_EQ(v->live(), "v1");
  // Summed counters, each host's kept apart.
  auto m = fleet->metrics();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->at("v1").requests, 400u);
  EXPECT_EQ(m->at("v2").requests, 200u);
  EXPECT_EQ(fleet->host_metrics().at("h1").at("v2").requests, 200u);
  // One host failing a call: the error names it, the others did it.
  f[2]->fail_next.emplace("stop", Error(Errc::kIo, "disk on fire"));
  auto st = fleet->stop("v1", Role::kWeb);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().what(), "host h3: disk on fire");
  EXPECT_TRUE(f[0]->running().empty() || f[0]->running() == std::vector<std::string>{"v2"});
  ASSERT_TRUE(fleet->start("v1", Role::kWeb, spec));
  f[1]->unreachable = true;
  auto moved = fleet->route({{"v1", 100}});
  ASSERT_FALSE(moved);
  EXPECT_NE(moved.error().what().find("host h2: agent unreachable"), std::string::npos)
      << moved.error().what();
  EXPECT_NE(moved.error().what().find("moved on h1, h3 only"), std::string::npos)
      << moved.error().what();
}

}  // namespace
}  // namespace md::deploy
