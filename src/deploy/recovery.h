// Reading a deployment's journal back: where an interrupted deploy stands
// and what to run next (the resume decision), and the operator commands
// (promote, abort) waiting for the running deploy. Pure: journal in,
// decision out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "deploy/steps.h"
#include "state/state.h"

namespace md::deploy {

// What the resumer prefers when both are possible.
enum class ResumeMode {
  kFinish,    // `deploy --resume`: carry on from the interrupted step
  kRollBack,  // a new deploy superseding a dead one: undo it where possible
};

struct ResumeDecision {
  Step next = Step::kPreflight;     // the first step to run
  bool failing = false;             // on the failure path: the deploy ends failed/rolled back
  bool traffic_moved = false;       // some traffic reached the new release
  int weight_done = 0;              // last canary weight recorded ok (0 = none)
  std::optional<Step> interrupted;  // the step with an intent but no outcome
  std::string failure;              // the recorded failure reason ("" = none)
  std::string summary;              // one line for output and the journal
  bool operator==(const ResumeDecision&) const = default;
};

// Where the deploy recorded in `journal` (seq order) resumes. Rules:
// - an outcome "failed" whose detail has "interrupted":true (written by a
//   resumer for the intent a dead controller left open) counts as no outcome;
// - once a fatal step failed, or a failure-path step began, the failure path
//   is finished from its first step without an outcome;
// - kFinish: the first forward step without an outcome runs next
//   (shift_traffic is complete once weight 100 is recorded ok);
// - kRollBack: traffic that moved is moved back (rollback_traffic); a new
//   release that started is stopped (stop_new); before that, on_failure —
//   unless the old release was already stopping, or there is none
//   (`has_previous` false: a first deploy), when only finishing leaves one
//   version live.
// Records of other steps ("resume", "control") are ignored.
ResumeDecision decide_resume(const std::vector<state::JournalEntry>& journal, ResumeMode mode,
                             bool has_previous);

// An operator command for the running deploy, journaled as step "control".
enum class ControlCommand { kPromote, kAbort };
std::string_view control_name(ControlCommand c);  // "promote" | "abort"

struct PendingControl {
  int64_t seq = 0;  // of the intent record
  ControlCommand command = ControlCommand::kPromote;
  std::string actor;
  std::string reason;
  bool operator==(const PendingControl&) const = default;
};

// The control intents in `journal` that no outcome (detail "for_seq") has
// answered yet, oldest first.
std::vector<PendingControl> pending_controls(const std::vector<state::JournalEntry>& journal);

// Journal detail texts (JSON objects) for control records.
std::string control_intent_detail(ControlCommand c, const std::string& actor,
                                  const std::string& reason);
std::string control_outcome_detail(int64_t for_seq, const std::string& note);

// True when every intent in `journal` has a later outcome for the same step.
bool journal_complete(const std::vector<state::JournalEntry>& journal);

}  // namespace md::deploy
