#include "deploy/analysis.h"

#include <cmath>

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

const std::vector<double> kBounds{10, 50, 100, 500};

SetMetrics set(uint64_t requests, uint64_t errors, std::vector<uint64_t> buckets) {
  return SetMetrics{requests, errors, kBounds, std::move(buckets)};
}

config::Analysis analysis() {
  config::Analysis a;
  a.max_error_ratio = 0.05;
  a.max_p99_ms = 0;
  a.max_p99_ratio = 2.0;
  a.min_requests = 100;
  return a;
}

TEST(WindowP99, UpperBoundOfTheBucketHoldingTheRank) {
  // 100 requests: 98 under 10 ms, 1 under 50, 1 under 500. Rank 99 -> 50 ms.
  EXPECT_EQ(window_p99_ms(kBounds, {}, {98, 1, 0, 1, 0}), 50);
  // 200 requests: rank 198. 197 fast, 3 in the open bucket -> +inf.
  EXPECT_TRUE(std::isinf(*window_p99_ms(kBounds, {}, {197, 0, 0, 0, 3})));
  // Window difference: only the delta counts.
  EXPECT_EQ(window_p99_ms(kBounds, {0, 0, 0, 0, 50}, {100, 0, 0, 0, 50}), 10);
  EXPECT_EQ(window_p99_ms(kBounds, {}, {0, 0, 0, 0, 0}), std::nullopt);
  EXPECT_EQ(window_p99_ms(kBounds, {}, {1, 2}), std::nullopt);           // shape mismatch
  EXPECT_EQ(window_p99_ms(kBounds, {5, 0, 0, 0, 0}, {1, 0, 0, 0, 0}), std::nullopt);  // reset
}

TEST(Judge, TooLittleTrafficIsInconclusiveEvenWhenEveryRequestFailed) {
  Snapshot before, after;
  after.canary = set(99, 99, {99, 0, 0, 0, 0});
  const Verdict v = judge(analysis(), before, after);
  EXPECT_EQ(v.kind, VerdictKind::kInconclusive);
  EXPECT_EQ(v.reason, "only 99 canary requests in the window (min_requests 100)");
  EXPECT_EQ(v.canary_requests, 99u);
}

TEST(Judge, ErrorRatioAboveThresholdIsABreach) {
  Snapshot before, after;
  before.canary = set(1000, 10, {1000, 0, 0, 0, 0});
  after.canary = set(1200, 21, {1200, 0, 0, 0, 0});  // window: 11 of 200 = 0.055
  const Verdict v = judge(analysis(), before, after);
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason, "canary 5xx ratio 0.055 > max_error_ratio 0.05 (11 of 200 requests)");
}

TEST(Judge, ErrorRatioAtThresholdPasses) {
  Snapshot before, after;
  after.canary = set(200, 10, {200, 0, 0, 0, 0});
  after.live = set(2000, 0, {2000, 0, 0, 0, 0});
  const Verdict v = judge(analysis(), before, after);
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  EXPECT_EQ(v.reason, "200 canary requests, 10 5xx, p99 10 ms (live p99 10 ms)");
}

TEST(Judge, P99RatioAgainstLive) {
  Snapshot before, after;
  after.canary = set(200, 0, {0, 0, 0, 200, 0});   // p99 500
  after.live = set(1000, 0, {0, 0, 1000, 0, 0});   // p99 100
  Verdict v = judge(analysis(), before, after);
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason, "canary p99 500 ms > 2 x live p99 100 ms");
  // The live set saw too little traffic to compare: no ratio verdict.
  after.live = set(50, 0, {0, 0, 50, 0, 0});
  v = judge(analysis(), before, after);
  EXPECT_EQ(v.kind, VerdictKind::kPass);
}

TEST(Judge, AbsoluteP99Ceiling) {
  config::Analysis a = analysis();
  a.max_p99_ms = 100;
  a.max_p99_ratio = 0;
  Snapshot before, after;
  after.canary = set(100, 0, {0, 0, 0, 0, 100});
  const Verdict v = judge(a, before, after);
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason, "canary p99 over the largest bucket > max_p99_ms 100");
}

TEST(Judge, CountersGoingBackwardsAreInconclusive) {
  Snapshot before, after;
  before.canary = set(500, 0, {500, 0, 0, 0, 0});
  after.canary = set(10, 0, {10, 0, 0, 0, 0});
  EXPECT_EQ(judge(analysis(), before, after).kind, VerdictKind::kInconclusive);
}

}  // namespace
}  // namespace md::deploy
