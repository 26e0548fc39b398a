#include "deploy/report.h"

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

Progress done(Step s, std::string outcome, int elapsed_ms, int took_ms, std::string msg) {
  Progress p;
  p.kind = ProgressKind::kStepDone;
  p.step = s;
  p.outcome = std::move(outcome);
  p.elapsed = Millis(elapsed_ms);
  p.step_elapsed = Millis(took_ms);
  p.message = std::move(msg);
  p.deployment_id = "d-1";
  return p;
}

TEST(Report, PlainLines) {
  EXPECT_EQ(plain_line(done(Step::kReady, "ok", 1410, 880, "v2: 2/2 web healthy")),
            "[  1.41s] ready             ok        0.88s  v2: 2/2 web healthy");
  EXPECT_EQ(plain_line(done(Step::kWatch, "skipped", 1500, 0, "strategy.watch_window is 0")),
            "[  1.50s] watch             skipped          strategy.watch_window is 0");
  Progress start;
  start.kind = ProgressKind::kStep;
  EXPECT_EQ(plain_line(start), "");
  Progress end;
  end.kind = ProgressKind::kEnd;
  end.outcome = "rolled_back";
  end.message = "shift_traffic: canary at 5%: 5xx";
  end.elapsed = Millis(12345);
  EXPECT_EQ(plain_line(end), "[ 12.35s] rolled_back: shift_traffic: canary at 5%: 5xx");
}

TEST(Report, ReasonsOfARefusalOneALineAndOnce) {
  const std::string why = "refused for 2 reasons:\n- proxy.listen is a\n- proxy.tls_cert is b";
  EXPECT_EQ(plain_line(done(Step::kPreflight, "failed", 50, 40, why)),
            "[  0.05s] preflight         failed    0.04s  refused for 2 reasons:\n"
            "              - proxy.listen is a\n"
            "              - proxy.tls_cert is b");
  Progress end;
  end.kind = ProgressKind::kEnd;
  end.outcome = "failed";
  end.message = "preflight: " + why;
  end.elapsed = Millis(60);
  EXPECT_EQ(plain_line(end), "[  0.06s] failed: preflight: refused for 2 reasons (listed above)");
  Outcome o;
  o.deployment.kind = "deploy";
  o.deployment.version = "v2";
  o.deployment.environment = "production";
  o.deployment.status = state::DeployStatus::kFailed;
  o.deployment.reason = end.message;
  EXPECT_EQ(
      summary_line(o),
      "deploy v2 to production failed in 0.00s: preflight: refused for 2 reasons (listed above)");
  EXPECT_EQ(headline("one line: as it is"), "one line: as it is");
}

TEST(Report, JsonLine) {
  Progress p = done(Step::kShiftTraffic, "ok", 2000, 5, "100% of traffic on v2");
  p.weight = 100;
  EXPECT_EQ(
      json_line(p),
      R"({"deployment_id":"d-1","duration_ms":5,"elapsed_ms":2000,"event":"step_done",)"
      R"("message":"100% of traffic on v2","outcome":"ok","step":"shift_traffic","weight":100})");
}

TEST(Report, GithubAnnotations) {
  EXPECT_EQ(github_annotation(done(Step::kReady, "failed", 1, 1, "v2 not healthy\nafter 60s: 50%")),
            "::error title=meshdeploy ready failed::v2 not healthy%0Aafter 60s: 50%25");
  EXPECT_EQ(github_annotation(done(Step::kReady, "ok", 1, 1, "fine")), "");
  Progress end;
  end.kind = ProgressKind::kEnd;
  end.outcome = "succeeded";
  end.deployment_id = "d-9";
  EXPECT_EQ(github_annotation(end), "::notice title=meshdeploy::deployment d-9 succeeded");
}

TEST(Report, PickMode) {
  EXPECT_EQ(pick_mode(true, true, true), OutputMode::kJson);
  EXPECT_EQ(pick_mode(false, true, true), OutputMode::kGithub);
  EXPECT_EQ(pick_mode(false, false, true), OutputMode::kTerminal);
  EXPECT_EQ(pick_mode(false, false, false), OutputMode::kPlain);
}

TEST(Report, Summary) {
  Outcome o;
  o.deployment.kind = "deploy";
  o.deployment.version = "v2";
  o.deployment.environment = "production";
  o.deployment.status = state::DeployStatus::kSucceeded;
  o.deployment.started_at = SysTime(std::chrono::seconds(100));
  o.deployment.finished_at = SysTime(std::chrono::milliseconds(104210));
  o.switch_time = Millis(2);
  o.probe_time = Millis(98);
  // The proxy's health probe of the new targets and the switch, apart.
  EXPECT_EQ(summary_line(o),
            "deploy v2 to production succeeded in 4.21s (health probe 98 ms, traffic switch 2 ms)");
}

}  // namespace
}  // namespace md::deploy
