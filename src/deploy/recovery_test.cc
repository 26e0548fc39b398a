#include "deploy/recovery.h"

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

// A journal written in seq order from short specs: "step:intent",
// "step:ok", "step:failed", "step:skipped", with an optional detail.
class J {
 public:
  J& in(const std::string& step, const std::string& detail = "{}") {
    return add(step, "intent", "", detail);
  }
  J& out(const std::string& step, const std::string& outcome = "ok",
         const std::string& detail = "{}") {
    return add(step, "outcome", outcome, detail);
  }
  J& done(const std::string& step) { return in(step).out(step); }
  const std::vector<state::JournalEntry>& entries() const { return e_; }

 private:
  J& add(const std::string& step, const std::string& phase, const std::string& outcome,
         const std::string& detail) {
    state::JournalEntry x;
    x.seq = static_cast<int64_t>(e_.size()) + 1;
    x.step = step;
    x.phase = phase;
    x.outcome = outcome;
    x.detail = detail;
    e_.push_back(x);
    return *this;
  }
  std::vector<state::JournalEntry> e_;
};

J upto_ready() {
  J j;
  j.done("preflight").out("pre_deploy_hook", "skipped").done("notify_started");
  j.out("migrate_expand", "skipped").done("ship").done("start_new").done("ready");
  return j;
}

TEST(Resume, EmptyJournalStartsAtPreflight) {
  const ResumeDecision d = decide_resume({}, ResumeMode::kFinish, true);
  EXPECT_EQ(d.next, Step::kPreflight);
  EXPECT_FALSE(d.failing);
  EXPECT_EQ(d.interrupted, std::nullopt);
}

TEST(Resume, FinishRerunsTheInterruptedStep) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":100})");
  ResumeDecision want;
  want.next = Step::kShiftTraffic;
  want.traffic_moved = true;
  want.interrupted = Step::kShiftTraffic;
  want.summary = "continuing at shift_traffic";
  EXPECT_EQ(decide_resume(j.entries(), ResumeMode::kFinish, true), want);
}

TEST(Resume, CanaryContinuesAfterTheLastWeightRecordedOk) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":25})").out("shift_traffic", "ok", R"({"weight":25})");
  j.in("shift_traffic", R"({"weight":50})");
  const ResumeDecision d = decide_resume(j.entries(), ResumeMode::kFinish, true);
  EXPECT_EQ(d.next, Step::kShiftTraffic);
  EXPECT_EQ(d.weight_done, 25);
  EXPECT_EQ(d.summary, "continuing the canary after 25%");
  // Once 100 is recorded ok the shift is complete.
  j.out("shift_traffic", "ok", R"({"weight":50})");
  j.in("shift_traffic", R"({"weight":100})").out("shift_traffic", "ok", R"({"weight":100})");
  EXPECT_EQ(decide_resume(j.entries(), ResumeMode::kFinish, true).next, Step::kWatch);
}

TEST(Resume, AnInterruptedMarkerCountsAsNoOutcome) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":100})")
      .out("shift_traffic", "failed", R"({"interrupted":true,"error":"died"})");
  const ResumeDecision d = decide_resume(j.entries(), ResumeMode::kFinish, true);
  EXPECT_EQ(d.next, Step::kShiftTraffic);
  EXPECT_FALSE(d.failing);
  EXPECT_EQ(d.interrupted, std::nullopt);
}

TEST(Resume, AFailureIsFinishedAlongItsPath) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":25})")
      .out("shift_traffic", "failed", R"({"weight":25,"error":"canary at 25%: 5xx"})");
  j.in("rollback_traffic");
  const ResumeDecision d = decide_resume(j.entries(), ResumeMode::kFinish, true);
  EXPECT_EQ(d.next, Step::kRollbackTraffic);
  EXPECT_TRUE(d.failing);
  EXPECT_EQ(d.failure, "canary at 25%: 5xx");
  EXPECT_EQ(d.interrupted, Step::kRollbackTraffic);
  // After a failed (fatal) rollback_traffic the path goes to on_failure, not stop_new.
  j.out("rollback_traffic", "failed", R"({"error":"agent down"})");
  EXPECT_EQ(decide_resume(j.entries(), ResumeMode::kFinish, true).next, Step::kOnFailureHook);
}

TEST(Resume, RollBackModeUndoesWhatHappened) {
  J j;
  j.done("preflight");
  EXPECT_EQ(decide_resume(j.entries(), ResumeMode::kRollBack, true).next, Step::kOnFailureHook);
  j = upto_ready();
  ResumeDecision d = decide_resume(j.entries(), ResumeMode::kRollBack, true);
  EXPECT_EQ(d.next, Step::kStopNew);
  EXPECT_TRUE(d.failing);
  EXPECT_EQ(d.failure, "interrupted: the controller died");
  j.in("shift_traffic", R"({"weight":5})");
  EXPECT_EQ(decide_resume(j.entries(), ResumeMode::kRollBack, true).next, Step::kRollbackTraffic);
  // A first deploy has nothing to go back to: it is finished instead.
  d = decide_resume(j.entries(), ResumeMode::kRollBack, false);
  EXPECT_EQ(d.next, Step::kShiftTraffic);
  EXPECT_FALSE(d.failing);
  EXPECT_EQ(d.summary, "finishing at shift_traffic: there is no old release to go back to");
}

TEST(Resume, RollBackModeFinishesOnceTheOldReleaseIsStopping) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":100})").out("shift_traffic", "ok", R"({"weight":100})");
  j.out("watch", "skipped").out("workers", "skipped").done("drain_old").out("keep_warm", "skipped");
  j.in("stop_old");
  const ResumeDecision d = decide_resume(j.entries(), ResumeMode::kRollBack, true);
  EXPECT_EQ(d.next, Step::kStopOld);
  EXPECT_FALSE(d.failing);
  EXPECT_EQ(d.summary, "finishing at stop_old: the old release was already stopping");
}

TEST(Resume, NonFatalFailuresDoNotTurnIntoRollbacks) {
  J j = upto_ready();
  j.in("shift_traffic", R"({"weight":100})").out("shift_traffic", "ok", R"({"weight":100})");
  for (const char* s :
       {"watch", "workers", "drain_old", "keep_warm", "stop_old", "migrate_contract", "record"})
    j.done(s);
  j.in("prune").out("prune", "failed", R"({"error":"disk"})");
  const ResumeDecision d = decide_resume(j.entries(), ResumeMode::kFinish, true);
  EXPECT_EQ(d.next, Step::kPostDeployHook);
  EXPECT_FALSE(d.failing);
}

TEST(Controls, PendingUntilAnswered) {
  std::vector<state::JournalEntry> j;
  auto add = [&](const std::string& phase, const std::string& detail) {
    state::JournalEntry e;
    e.seq = static_cast<int64_t>(j.size()) + 1;
    e.step = "control";
    e.phase = phase;
    e.detail = detail;
    j.push_back(e);
  };
  add("intent", control_intent_detail(ControlCommand::kPromote, "ann", ""));
  add("intent", control_intent_detail(ControlCommand::kAbort, "bob", "bad metrics"));
  EXPECT_EQ(pending_controls(j),
            (std::vector<PendingControl>{{1, ControlCommand::kPromote, "ann", ""},
                                         {2, ControlCommand::kAbort, "bob", "bad metrics"}}));
  add("outcome", control_outcome_detail(1, "promoted"));
  EXPECT_EQ(pending_controls(j),
            (std::vector<PendingControl>{{2, ControlCommand::kAbort, "bob", "bad metrics"}}));
}

TEST(Journal, CompleteWhenEveryIntentHasAnOutcome) {
  J j = upto_ready();
  EXPECT_TRUE(journal_complete(j.entries()));
  j.in("shift_traffic", R"({"weight":5})");
  EXPECT_FALSE(journal_complete(j.entries()));
  j.out("shift_traffic", "failed", R"({"interrupted":true})");
  EXPECT_TRUE(journal_complete(j.entries()));
}

}  // namespace
}  // namespace md::deploy
