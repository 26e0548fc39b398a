// The deploy orchestrator: takes a release from an artifact to all of an
// environment's traffic and back (../shared/ARCHITECTURE.md, "A deploy,
// step by step"). A journaled state machine (steps.h) run by one executor
// against the seams in seams.h, holding the environment's lease lock.
//
// CONTRACT for cli/ and server/ (names stable; fields may be added):
//
//   Deployer d(env, seams, options);
//   Result<Outcome> r = d.deploy(req);   // or d.rollback(to), d.resume()
//   // r.error(): nothing ran or the lock is held (kConflict names the holder);
//   // r->deployment.status: succeeded | failed | rolled_back.
//
// Promote and abort reach a running deploy through its journal
// (request_control), from any process: the executor polls for them.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "deploy/progress.h"
#include "deploy/recovery.h"
#include "deploy/seams.h"
#include "deploy/steps.h"
#include "state/state.h"

namespace md::deploy {

// Where to stop the controller dead, for the crash tests:
// MESHDEPLOY_FAULT_KILL_AT=<step>:<intent|outcome> (parsed by parse_fault).
struct FaultPoint {
  Step step = Step::kPreflight;
  bool after_outcome = false;  // false: right after the intent record commits
  int occurrence = 1;          // the n-th record of that step and phase (canary weights)
};
// "ready:intent", "shift_traffic:outcome:2". kInvalidArgument naming the
// known steps otherwise.
Result<FaultPoint> parse_fault(std::string_view text);

// Everything the executor touches. Not owned; must outlive the Deployer.
struct Seams {
  Host& host;
  state::Store& store;
  Migrator* migrator = nullptr;  // nullptr: migrations disabled for this run
  HookRunner& hooks;
  Clock& clock;
  Observer& observer;
  std::function<void()> outbox_written;  // after a commit with outbox rows (wakes the dispatcher)
  std::string no_migrator = "migrations are disabled";  // why migrator is nullptr, for the journal
};

struct Options {
  std::string actor;            // who, for records: "$USER", CI identity
  std::string trigger = "cli";  // "cli" | "ci" | ...
  std::string holder;           // lock holder, "user@host pid N"
  Millis lock_ttl{30000};       // lease length; renewed every third of it
  Millis poll{50};              // readiness, control and analysis polling
  Millis worker_settle{1000};   // new workers stay up this long before old ones stop
  secrets::SecretMap secrets;   // the environment's vault (processes, hooks never)
  std::optional<FaultPoint> fault;
  // Called at the fault point. Default: raise(SIGKILL). Tests set a
  // function that returns normally: the executor then stops writing at once
  // and deploy() returns kCancelled ("fault injected").
  std::function<void()> on_fault;
  // Set by a signal handler: the run aborts like `meshdeploy abort`.
  const std::atomic<bool>* interrupted = nullptr;
};

struct DeployRequest {
  std::string version;                           // required
  std::filesystem::path artifact;                // the .tar.gz / .tar.zst; "" = already on the host
  std::string sha256;                            // of the artifact (read from its .sha256 file)
  std::optional<config::StrategyKind> strategy;  // overrides the environment's
};

struct StepTiming {
  Step step;
  std::string outcome;  // ok | failed | skipped
  Millis duration{0};
  std::string detail;  // one line
};

struct Outcome {
  state::Deployment deployment;       // as finally recorded
  std::vector<StepTiming> steps;      // this run's steps, in order
  std::optional<Millis> switch_time;  // how long the final traffic switch took (the swap)
  std::optional<Millis> probe_time;   // the proxy's health probe of the new targets before it
  // Several hosts: between the first and the last host's final switch.
  std::optional<Millis> spread_time;
  std::vector<std::string> hosts;  // the hosts deployed to (several hosts only)
  // rollback(): the release was still warm in a running deploy, which was
  // aborted and moved traffic back itself; `deployment` is that deploy.
  bool via_abort = false;
};

class Deployer {
 public:
  Deployer(config::Environment env, Seams seams, Options options);
  ~Deployer();
  Deployer(const Deployer&) = delete;
  Deployer& operator=(const Deployer&) = delete;

  // Takes the lock and runs a deploy of req.version. A deploy left running by
  // a dead controller is rolled back first (ResumeMode::kRollBack). Errors:
  // kConflict (lock held: names the holder), kInvalidArgument (bad request),
  // kAlreadyExists (that version is already live), store failures. A deploy
  // that runs and fails is NOT an error: see Outcome::deployment.status.
  Result<Outcome> deploy(const DeployRequest& req);

  // Finishes (or, when it had failed, rolls back) the deploy a dead
  // controller left running. kNotFound when there is none.
  Result<Outcome> resume();

  // Moves the environment to `to` (default: the release live before the
  // current one) as a deployment of kind rollback: a warm release takes
  // traffic at once, a stopped one is started from disk first.
  // kNotFound when there is no such release.
  Result<Outcome> rollback(const std::string& to);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A request journaled for a running deploy.
struct ControlTicket {
  std::string deployment_id;
  std::string version;
  int64_t seq = 0;  // of the control intent record
};

// Asks the deploy running in `environment` to promote (skip its current
// wait: pause, approval, watch, warm window) or abort (roll back). Returns
// at once. kNotFound when nothing runs.
Result<ControlTicket> request_control(state::Store& store, const std::string& environment,
                                      ControlCommand command, const std::string& actor,
                                      const std::string& reason);

// Waits up to `timeout` for the running deploy to take the request. Returns
// false when it did not (its controller may be gone; the request stays and
// a resumed deploy takes it).
Result<bool> await_control(state::Store& store, const ControlTicket& t, Millis timeout,
                           Clock& clock);

// "d-20261122-090000-ab12": time of `now` and 4 random hex digits.
std::string new_deployment_id(SysTime now);

}  // namespace md::deploy
