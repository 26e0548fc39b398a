#include "deploy/steps.h"

#include <array>

#include "core/error.h"

namespace md::deploy {
namespace {

using S = Step;

// The one transition table (../shared/STYLE.md point 7).
constexpr std::array<Transition, kStepCount> kTable = {{
    {S::kPreflight, S::kPreDeployHook, S::kOnFailureHook, true},
    {S::kPreDeployHook, S::kNotifyStarted, S::kOnFailureHook, true},
    {S::kNotifyStarted, S::kMigrateExpand, S::kOnFailureHook, true},
    {S::kMigrateExpand, S::kShip, S::kOnFailureHook, true},
    {S::kShip, S::kStartNew, S::kOnFailureHook, true},
    {S::kStartNew, S::kReady, S::kStopNew, true},
    {S::kReady, S::kShiftTraffic, S::kStopNew, true},
    {S::kShiftTraffic, S::kWatch, S::kRollbackTraffic, true},
    {S::kWatch, S::kWorkers, S::kRollbackTraffic, true},
    {S::kWorkers, S::kDrainOld, S::kRollbackTraffic, true},
    {S::kDrainOld, S::kKeepWarm, S::kRollbackTraffic, true},
    {S::kKeepWarm, S::kStopOld, S::kRollbackTraffic, true},
    // WHY on_failure and not a rollback: from here on the old release is
    // (being) stopped; the new one keeps all traffic.
    {S::kStopOld, S::kMigrateContract, S::kOnFailureHook, true},
    {S::kMigrateContract, S::kRecord, S::kOnFailureHook, true},
    {S::kRecord, S::kPrune, S::kOnFailureHook, true},
    {S::kPrune, S::kPostDeployHook, S::kPostDeployHook, false},
    {S::kPostDeployHook, S::kOnRollbackHook, S::kOnRollbackHook, false},
    // WHY on_failure when traffic cannot be moved back: stopping the new
    // release then would leave nothing serving; both stay up for a human.
    {S::kRollbackTraffic, S::kStopNew, S::kOnFailureHook, true},
    {S::kStopNew, S::kOnFailureHook, S::kOnFailureHook, true},
    {S::kOnFailureHook, S::kOnRollbackHook, S::kOnRollbackHook, false},
    {S::kOnRollbackHook, S::kNotifyFinished, S::kNotifyFinished, false},
    {S::kNotifyFinished, S::kDone, S::kDone, false},
    {S::kDone, S::kDone, S::kDone, false},
}};

constexpr std::array<std::string_view, kStepCount> kNames = {
    "preflight",
    "pre_deploy_hook",
    "notify_started",
    "migrate_expand",
    "ship",
    "start_new",
    "ready",
    "shift_traffic",
    "watch",
    "workers",
    "drain_old",
    "keep_warm",
    "stop_old",
    "migrate_contract",
    "record",
    "prune",
    "post_deploy_hook",
    "rollback_traffic",
    "stop_new",
    "on_failure_hook",
    "on_rollback_hook",
    "notify_finished",
    "done",
};

bool table_is_consistent() {
  for (int i = 0; i < kStepCount; ++i)
    if (static_cast<int>(kTable[i].step) != i) return false;
  return true;
}

}  // namespace

std::string_view step_name(Step s) { return kNames[static_cast<int>(s)]; }

std::optional<Step> parse_step(std::string_view name) {
  for (int i = 0; i < kStepCount; ++i)
    if (kNames[i] == name) return static_cast<Step>(i);
  return std::nullopt;
}

std::span<const Transition> transition_table() {
  static const bool ok = table_is_consistent();
  MD_CHECK_MSG(ok, "deploy transition table out of enum order");
  return kTable;
}

const Transition& transition(Step s) { return transition_table()[static_cast<int>(s)]; }

bool on_failure_path(Step s) {
  return s == Step::kRollbackTraffic || s == Step::kStopNew || s == Step::kOnFailureHook;
}

std::string_view kind_name(Kind k) { return k == Kind::kDeploy ? "deploy" : "rollback"; }

bool Plan::runs(Step s) const {
  for (const PlannedStep& p : steps)
    if (p.step == s) return p.run;
  return false;
}

const std::string& Plan::skip_reason(Step s) const {
  static const std::string none;
  for (const PlannedStep& p : steps)
    if (p.step == s) return p.skip_reason;
  return none;
}

Plan plan_steps(const PlanInput& in) {
  Plan plan;
  plan.kind = in.kind;
  const bool rollback = in.kind == Kind::kRollback;
  const bool canary = !rollback && in.has_live && in.strategy == config::StrategyKind::kCanary;

  for (int i = 0; i < kStepCount - 1; ++i) {
    PlannedStep p{static_cast<Step>(i), true, ""};
    auto skip = [&p](std::string why) {
      p.run = false;
      p.skip_reason = std::move(why);
    };
    switch (p.step) {
      case Step::kPreDeployHook:
        if (rollback)
          skip("a rollback runs on_rollback, not pre_deploy");
        else if (in.hooks.pre_deploy.empty())
          skip("no pre_deploy hook configured");
        break;
      case Step::kMigrateExpand:
      case Step::kMigrateContract:
        if (rollback)
          skip("rollbacks never migrate (expand/contract keeps the old release compatible)");
        else if (!in.migrations_enabled)
          skip("migrations are disabled");
        break;
      case Step::kWatch:
        if (rollback)
          skip("a rollback does not watch");
        else if (in.watch_window.count() <= 0)
          skip("strategy.watch_window is 0");
        // WHY: the watch compares the new release with the previous one;
        // alone, every window ends "inconclusive" (issue 10).
        else if (!in.has_live)
          skip("first deploy: no previous release to compare with");
        break;
      case Step::kWorkers:
        if (!in.has_workers) skip("no worker services");
        break;
      case Step::kDrainOld:
      case Step::kStopOld:
        if (!in.has_live) skip("first deploy: no old release");
        break;
      case Step::kKeepWarm:
        if (!in.has_live)
          skip("first deploy: no old release");
        else if (rollback)
          skip("a rollback does not keep the release it leaves warm");
        else if (in.rollback_window.count() <= 0)
          skip("rollback_window is 0");
        break;
      case Step::kPostDeployHook:
        if (rollback)
          skip("a rollback runs on_rollback, not post_deploy");
        else if (in.hooks.post_deploy.empty())
          skip("no post_deploy hook configured");
        break;
      case Step::kOnFailureHook:
        if (in.hooks.on_failure.empty()) skip("no on_failure hook configured");
        break;
      case Step::kOnRollbackHook:
        if (in.hooks.on_rollback.empty()) skip("no on_rollback hook configured");
        break;
      default:
        break;
    }
    plan.steps.push_back(std::move(p));
  }

  if (canary) {
    for (const config::CanaryStep& c : in.canary_steps) {
      MD_CHECK_MSG(c.weight > 0 && c.weight <= 100, "canary weight out of 1..100");
      plan.weights.push_back(Weight{c.weight, c.pause, c.approval});
    }
  }
  if (plan.weights.empty() || plan.weights.back().percent < 100) plan.weights.push_back(Weight{});
  return plan;
}

}  // namespace md::deploy
