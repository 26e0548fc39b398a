#include "deploy/steps.h"

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

std::vector<std::string> run_names(const Plan& p) {
  std::vector<std::string> out;
  for (const PlannedStep& s : p.steps)
    if (s.run) out.emplace_back(step_name(s.step));
  return out;
}

TEST(Steps, NamesRoundTripAndTableIsInEnumOrder) {
  for (const Transition& t : transition_table()) {
    EXPECT_EQ(parse_step(step_name(t.step)), t.step);
  }
  EXPECT_EQ(parse_step("nope"), std::nullopt);
  EXPECT_EQ(step_name(Step::kShiftTraffic), "shift_traffic");
  EXPECT_EQ(transition_table().size(), static_cast<size_t>(kStepCount));
}

TEST(Steps, EveryPathEndsInDone) {
  // Following either edge from any step reaches kDone without a cycle.
  for (const Transition& t : transition_table()) {
    for (Step start : {t.on_ok, t.on_fail}) {
      Step s = start;
      int hops = 0;
      while (s != Step::kDone && hops++ < kStepCount) s = transition(s).on_fail;
      EXPECT_EQ(s, Step::kDone) << step_name(t.step);
      s = start;
      hops = 0;
      while (s != Step::kDone && hops++ < kStepCount) s = transition(s).on_ok;
      EXPECT_EQ(s, Step::kDone) << step_name(t.step);
    }
  }
}

TEST(Steps, FailureEdgesUndoOnlyWhatHappened) {
  EXPECT_EQ(transition(Step::kPreDeployHook).on_fail, Step::kOnFailureHook);  // nothing changed yet
  EXPECT_EQ(transition(Step::kReady).on_fail, Step::kStopNew);                // no traffic moved
  EXPECT_EQ(transition(Step::kShiftTraffic).on_fail, Step::kRollbackTraffic);
  EXPECT_EQ(transition(Step::kKeepWarm).on_fail, Step::kRollbackTraffic);
  EXPECT_EQ(transition(Step::kStopOld).on_fail, Step::kOnFailureHook);  // the old one is going
  EXPECT_FALSE(transition(Step::kPostDeployHook).fatal);
  EXPECT_FALSE(transition(Step::kPrune).fatal);
}

TEST(Plan, FirstBlueGreenDeployWithoutHooksOrWorkers) {
  PlanInput in;
  in.migrations_enabled = true;
  const Plan p = plan_steps(in);
  EXPECT_EQ(run_names(p), (std::vector<std::string>{
                              "preflight", "notify_started", "migrate_expand", "ship", "start_new",
                              "ready", "shift_traffic", "migrate_contract", "record", "prune",
                              "rollback_traffic", "stop_new", "notify_finished"}));
  EXPECT_EQ(p.weights, (std::vector<Weight>{{100, Millis(0), false}}));
  EXPECT_EQ(p.skip_reason(Step::kDrainOld), "first deploy: no old release");
  EXPECT_EQ(p.skip_reason(Step::kPreDeployHook), "no pre_deploy hook configured");
  EXPECT_EQ(p.skip_reason(Step::kWatch), "strategy.watch_window is 0");
}

// Regression (issue 10): the first deploy of a canary-kind environment ran a
// watch window comparing its only release with nothing ("inconclusive").
TEST(Plan, FirstDeploySkipsTheWatch) {
  PlanInput in;
  in.strategy = config::StrategyKind::kCanary;
  in.canary_steps = {{50, Millis(1000), false}};
  in.watch_window = Millis(3000);
  const Plan first = plan_steps(in);
  EXPECT_FALSE(first.runs(Step::kWatch));
  EXPECT_EQ(first.skip_reason(Step::kWatch), "first deploy: no previous release to compare with");
  in.has_live = true;
  EXPECT_TRUE(plan_steps(in).runs(Step::kWatch));
}

TEST(Plan, CanaryWithEverythingAppends100) {
  PlanInput in;
  in.strategy = config::StrategyKind::kCanary;
  in.canary_steps = {{5, Millis(1000), false}, {50, Millis(2000), true}};
  in.has_live = true;
  in.has_workers = true;
  in.watch_window = Millis(3000);
  in.rollback_window = Millis(4000);
  in.hooks.pre_deploy = "a";
  in.hooks.post_deploy = "b";
  in.hooks.on_failure = "c";
  in.hooks.on_rollback = "d";
  const Plan p = plan_steps(in);
  EXPECT_EQ(p.weights,
            (std::vector<Weight>{
                {5, Millis(1000), false}, {50, Millis(2000), true}, {100, Millis(0), false}}));
  for (const PlannedStep& s : p.steps) {
    if (s.step == Step::kMigrateExpand || s.step == Step::kMigrateContract) {
      EXPECT_FALSE(s.run);
      EXPECT_EQ(s.skip_reason, "migrations are disabled");
    } else {
      EXPECT_TRUE(s.run) << step_name(s.step);
    }
  }
}

TEST(Plan, CanaryOnFirstDeploySwitchesAtOnce) {
  PlanInput in;
  in.strategy = config::StrategyKind::kCanary;
  in.canary_steps = {{5, Millis(1000), false}, {100, Millis(0), false}};
  EXPECT_EQ(plan_steps(in).weights, (std::vector<Weight>{{100, Millis(0), false}}));
}

TEST(Plan, RollbackSkipsMigrationsHooksWatchAndWarmth) {
  PlanInput in;
  in.kind = Kind::kRollback;
  in.strategy = config::StrategyKind::kCanary;
  in.canary_steps = {{5, Millis(1000), false}};
  in.has_live = true;
  in.migrations_enabled = true;
  in.watch_window = Millis(3000);
  in.rollback_window = Millis(4000);
  in.hooks.pre_deploy = "a";
  in.hooks.post_deploy = "b";
  in.hooks.on_rollback = "d";
  const Plan p = plan_steps(in);
  EXPECT_EQ(run_names(p),
            (std::vector<std::string>{"preflight", "notify_started", "ship", "start_new", "ready",
                                      "shift_traffic", "drain_old", "stop_old", "record", "prune",
                                      "rollback_traffic", "stop_new", "on_rollback_hook",
                                      "notify_finished"}));
  EXPECT_EQ(p.weights.size(), 1u);
  EXPECT_EQ(p.skip_reason(Step::kMigrateExpand),
            "rollbacks never migrate (expand/contract keeps the old release compatible)");
  EXPECT_EQ(p.skip_reason(Step::kKeepWarm), "a rollback does not keep the release it leaves warm");
}

}  // namespace
}  // namespace md::deploy
