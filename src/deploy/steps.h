// The deploy state machine: its states (one per journaled step), the one
// transition table, and the pure planner that decides, before anything runs,
// which steps a deploy or rollback runs and which it skips (and why).
// ../shared/STYLE.md points 2 and 7. Pure: no clock, disk or network.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace md::deploy {

// In the order a successful deploy passes them, then the failure path.
enum class Step : uint8_t {
  kPreflight,      // agent reachable, artifact + sha256, migration verdict, disk
  kPreDeployHook,  // hooks.pre_deploy; non-zero stops before anything changes
  kNotifyStarted,  // outbox rows for `started`
  kMigrateExpand,  // pending expand migrations
  kShip,           // artifact to the host, unpacked into releases/<version>/
  kStartNew,       // web processes of the new release beside the old ones
  kReady,          // every new web process passes its health check
  kShiftTraffic,   // blue_green: 100 % at once; canary: one record per weight
  kWatch,          // keep analysing at 100 % for strategy.watch_window
  kWorkers,        // start new workers, then SIGTERM the old ones
  kDrainOld,       // in-flight requests on the old release finish
  kKeepWarm,       // the old release is handed to the agent: warm for rollback_window, then stopped
  kStopOld,        // the old release's processes stop (unless handed to the agent)
  kMigrateContract,  // pending contract migrations (no old process runs)
  kRecord,           // deployment succeeded, release states
  kPrune,            // keep_releases on the host
  kPostDeployHook,   // hooks.post_deploy (a failure is a warning)
  kRollbackTraffic,  // failure path: all traffic (and workers) back to the old release
  kStopNew,          // failure path: the new release's processes stop
  kOnFailureHook,    // failure path: hooks.on_failure
  kOnRollbackHook,   // hooks.on_rollback: after an automatic or manual rollback
  kNotifyFinished,   // outbox rows for succeeded | failed | rolled_back
  kDone,             // terminal
};
inline constexpr int kStepCount = static_cast<int>(Step::kDone) + 1;

// "preflight", "pre_deploy_hook", ... "done". Never empty.
std::string_view step_name(Step s);
// The inverse of step_name; nullopt for an unknown name.
std::optional<Step> parse_step(std::string_view name);

// One row of the transition table.
struct Transition {
  Step step;
  Step on_ok;    // next step after success (or a skip)
  Step on_fail;  // next step after a failure
  bool fatal;    // false: a failure is recorded as a warning and the deploy goes on
};
// The table, one row per step, in enum order.
std::span<const Transition> transition_table();
const Transition& transition(Step s);
// True for the steps only the failure path reaches.
bool on_failure_path(Step s);

// What kind of deployment record this is.
enum class Kind { kDeploy, kRollback };
std::string_view kind_name(Kind k);  // "deploy" | "rollback"

// Everything the planner looks at. Built from the resolved environment and
// what the controller observed (is anything live yet?).
struct PlanInput {
  Kind kind = Kind::kDeploy;
  config::StrategyKind strategy = config::StrategyKind::kBlueGreen;
  std::vector<config::CanaryStep> canary_steps;  // strategy.steps (canary only)
  bool has_live = false;     // some release takes traffic now (false: first deploy)
  bool has_workers = false;  // the environment has worker services
  bool migrations_enabled = false;
  Millis watch_window{0};
  Millis rollback_window{0};
  config::Hooks hooks;
};

struct PlannedStep {
  Step step;
  bool run = true;
  std::string skip_reason;  // set when run is false
  bool operator==(const PlannedStep&) const = default;
};

// One weight of the traffic shift. blue_green and rollbacks have one: 100.
struct Weight {
  int percent = 100;
  Millis pause{0};
  bool approval = false;
  bool operator==(const Weight&) const = default;
};

struct Plan {
  Kind kind = Kind::kDeploy;
  std::vector<PlannedStep> steps;  // every step but kDone, in enum order
  std::vector<Weight> weights;     // the traffic shift, ending at 100
  bool runs(Step s) const;
  const std::string& skip_reason(Step s) const;  // "" when it runs
};

// The plan for `in`. Pure. Rules:
// - a first deploy (nothing live) skips what needs an old release: drain,
//   keep warm, stop old, the watch and the canary (it switches 100 % at
//   once: there is nothing to compare with);
// - a rollback never migrates, never runs pre/post_deploy hooks, does not
//   watch or keep the release it leaves warm, and runs on_rollback on success;
// - a canary's weights are strategy.steps, with 100 appended when the last is
//   lower; a weight of 0 or above 100 is a bug in the caller (MD_CHECK);
// - hooks that are not configured are skipped.
Plan plan_steps(const PlanInput& in);

}  // namespace md::deploy
