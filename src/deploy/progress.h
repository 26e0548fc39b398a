// What a running deploy tells its watcher: steps starting and ending, notes
// along the way (canary verdicts, waits). The executor emits; renderers
// (report.h) turn events into terminal, plain, JSON or GitHub output.
#pragma once

#include <optional>
#include <string>

#include "core/clock.h"
#include "deploy/steps.h"

namespace md::deploy {

enum class ProgressKind {
  kBegin,     // a deployment starts (message: "deploy v2 to production (canary)")
  kStep,      // a step starts
  kStepDone,  // a step ends: outcome ok | failed | skipped
  kNote,      // something worth a line inside a step
  kWarning,   // a non-fatal problem
  kEnd,       // the deployment ends: outcome succeeded | failed | rolled_back
};

struct Progress {
  ProgressKind kind = ProgressKind::kNote;
  Step step = Step::kPreflight;
  std::string outcome;        // kStepDone, kEnd
  std::string message;        // one line, already redacted
  Millis elapsed{0};          // since the deployment started
  Millis step_elapsed{0};     // kStepDone: the step's duration
  std::optional<int> weight;  // shift_traffic: the canary weight
  std::string deployment_id;
};

// Receives progress on the executor's thread. Must not block for long.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_progress(const Progress& p) = 0;
};

// Drops everything.
class NullObserver : public Observer {
 public:
  void on_progress(const Progress&) override {}
};

}  // namespace md::deploy
