// Private to deploy/: the executor's state for one run, shared by
// executor.cc (the loop, the journal, operator commands, entry points),
// forward.cc (the steps of a deploy), traffic.cc (shifting traffic and
// analysing it) and unwind.cc (the failure path).
// Concurrency: one thread (the caller's); the lease renews on its own.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "deploy/deploy.h"
#include "deploy/lease.h"
#include "notify/notify.h"

namespace md::deploy {

using json = nlohmann::json;

// What a step did when it did not fail.
struct StepDone {
  std::string outcome = "ok";    // ok | skipped
  std::string note;              // one line for the output and the journal
  json detail = json::object();  // extra journal fields
  std::vector<state::Release> releases;
  std::vector<state::OutboxEvent> outbox;
  std::optional<state::Deployment> deployment;  // upserted with the outcome
};
inline StepDone skipped(std::string why) {
  StepDone d;
  d.outcome = "skipped";
  d.note = std::move(why);
  return d;
}

// How a wait ended.
enum class WaitEnd { kElapsed, kPromoted };

struct Deployer::Impl {
  Impl(config::Environment e, Seams s, Options o);

  config::Environment env;
  Seams s;
  Options o;

  // ---- the run -------------------------------------------------------------
  state::Deployment dep;  // the record being written
  DeployRequest req;
  Plan plan;
  LaunchSpec launch;
  std::unique_ptr<Lease> lease;
  MonoTime t0{};
  int weight_done = 0;         // last canary weight analysed ok
  bool failing = false;        // on the failure path
  bool traffic_moved = false;  // some traffic reached the new release
  bool rolled_back = false;    // traffic went back to the old release
  std::string failure;         // first fatal failure, "step: error"
  bool fault_hit = false;
  bool interrupt_taken = false;             // a signal already aborted this run
  bool control_abort = false;               // poll_controls just returned an abort (kCancelled)
  std::map<std::string, int> fault_counts;  // "step:phase" -> records written
  std::vector<StepTiming> timings;
  std::optional<Millis> switch_time;        // the last 100 % move: the switch itself
  std::optional<Millis> probe_time;         // and the proxy's health probe before it
  std::optional<Millis> spread_time;        // several hosts: first to last host's switch
  std::optional<migrate::Plan> migrations;  // from preflight
  bool store_failed = false;                // a commit to the state store failed
  std::optional<Step> last_step;            // the step run_from is at

  const std::string& new_version() const { return dep.version; }
  const std::string& old_version() const { return dep.previous_version; }
  int host_count() const;    // hosts of the environment (s.host.host_names())
  int web_count() const;     // web processes the environment runs, on all its hosts
  int web_per_host() const;  // ... on each host
  int worker_count() const;  // worker processes, on all its hosts
  // Several hosts: "host h2: 0/2 healthy (...)" for each host whose release
  // `version` has fewer than `want` healthy web processes ("" = none; an
  // unreachable host is an error naming it).
  Result<std::string> hosts_short_of(const std::string& version, int want);

  // ---- entry points (executor.cc) ----------------------------------------
  Result<Outcome> deploy(const DeployRequest& r);
  Result<Outcome> resume();
  Result<Outcome> rollback(const std::string& to);

  // ---- the engine (executor.cc) ------------------------------------------
  Status take_lock(const std::string& deployment_id);
  // take_lock, then settles a deploy a dead controller left running by
  // rolling it back (a new deploy or a rollback supersedes it).
  Status take_lock_settling(const std::string& deployment_id);
  // Settles a deploy a dead controller left running (mode kRollBack:
  // supersede it). Runs it to its end with this Impl's state, then resets.
  Status recover(const state::Deployment& dead, ResumeMode mode, Result<Outcome>* out);
  Status start_record(const std::string& audit_action);
  Result<Outcome> run_from(Step first);
  // A signal cut the agent call of step `st` (its effect is unknown): closes
  // the step's intent as interrupted, releases the lock and returns
  // kCancelled; the next deploy rolls back, `deploy --resume` finishes.
  Result<Outcome> stop_interrupted(Step st, const Error& e);
  Result<StepDone> run_step(Step s);
  std::string runtime_skip(Step s) const;
  // Writes one journal record (plus `extra`) in one commit, then checks the
  // fault point. kCancelled "fault injected" when it fired.
  Status journal(std::string_view step, std::string_view phase, std::string_view outcome,
                 json detail, state::Batch extra = {});
  Status commit(const state::Batch& b);
  // After a failed run whose store failed: the error, with what the hosts
  // run and take now (asked of them) and the lock released (store_failure.cc).
  Result<Outcome> settle_store_failure(Result<Outcome> r);
  std::string describe_hosts();
  // Operator commands and signals: kPromote, or an error when the run must
  // stop (abort: kCancelled; lease lost: kConflict).
  Result<bool> poll_controls();
  Result<WaitEnd> wait(Millis d, bool promotable);
  void progress(ProgressKind k, Step step, std::string message, std::string outcome = "",
                Millis step_elapsed = Millis(0), std::optional<int> weight = std::nullopt);
  Millis elapsed() const;
  notify::Event event(notify::EventType t) const;
  std::vector<state::OutboxEvent> fan_out(notify::EventType t, std::optional<int> weight = {},
                                          std::string key = "") const;
  std::map<std::string, std::string> hook_vars() const;
  Result<HostView> view_host();
  // The release row of `version` in this environment, in `state` ("live",
  // "warm", "stopped", ...); the new version's carries the artifact's sha256.
  state::Release release_row(const std::string& version, std::string state) const;
  void build_launch();
  void reset_run();

  // ---- steps (forward.cc, traffic.cc, unwind.cc) ---------------------------
  Result<StepDone> preflight();
  Result<StepDone> run_hook(Step s, const std::string& command);
  Result<StepDone> migrate(migrate::Selection sel);
  Result<StepDone> ship();
  Result<StepDone> start_new();
  Result<StepDone> wait_ready(const std::string& version, Millis timeout);
  Result<StepDone> shift_traffic();
  Result<StepDone> watch();
  Result<StepDone> workers();
  Result<StepDone> drain_old();
  Result<StepDone> keep_warm();
  Result<StepDone> stop_old();
  // Contract migrations pending now (0 without a migrator).
  Result<size_t> pending_contract();
  Result<StepDone> record_success();
  Result<StepDone> prune();
  Result<StepDone> rollback_traffic();
  Result<StepDone> stop_new();
  Result<StepDone> notify_finished();
  // Analyses the canary at `weight` for `pause`, then waits for approval
  // when asked. An error ends the canary (breach, abort, inconclusive).
  Result<std::string> analyse(int weight, Millis pause, bool approval, bool final_watch);
  Result<Snapshot> snapshot();
  Result<int> canary_restarts();  // restarts of the new release's web processes so far
  Millis max_start_timeout() const;
};

std::string release_state_note(const ReleaseView* r, int want_web);

}  // namespace md::deploy
