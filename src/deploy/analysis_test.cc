#include "deploy/analysis.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace md::deploy {
namespace {

// A bucket 1 ms wide from `lo` ms.
LatencyBucket at(double lo, uint64_t n) { return {lo, lo + 1, n}; }

SetMetrics set(uint64_t requests, uint64_t errors, std::vector<LatencyBucket> latency) {
  return SetMetrics{requests, errors, std::move(latency)};
}

// n requests: tail_n of them at `tail` ms, the rest at `median` ms.
SetMetrics sample(uint64_t n, uint64_t errors, double median, double tail = 0,
                  uint64_t tail_n = 0) {
  std::vector<LatencyBucket> l{at(median, n - tail_n)};
  if (tail_n) l.push_back(at(tail, tail_n));
  return set(n, errors, l);
}

config::Analysis analysis() {
  config::Analysis a;  // the documented defaults, but for min_requests
  a.min_requests = 100;
  return a;
}

// The one-sided Mann-Whitney p of two explicit samples, from midranks: an
// implementation independent of compare_latency's bucket arithmetic.
double p_from_ranks(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<std::pair<double, int>> all;
  for (double v : x) all.push_back({v, 0});
  for (double v : y) all.push_back({v, 1});
  std::sort(all.begin(), all.end());
  const double n1 = static_cast<double>(x.size()), n2 = static_cast<double>(y.size()), n = n1 + n2;
  double r1 = 0, ties = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mid = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2,
                 t = static_cast<double>(j - i);
    for (size_t k = i; k < j; ++k)
      if (all[k].second == 0) r1 += mid;
    ties += t * t * t - t;
    i = j;
  }
  const double u = r1 - n1 * (n1 + 1) / 2;
  const double var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)));
  return 0.5 * std::erfc((u - n1 * n2 / 2 - 0.5) / std::sqrt(var) / std::sqrt(2.0));
}

TEST(WindowBetween, OnlyTheDifferenceCountsAndAnythingBackwardsIsARestart) {
  Snapshot a, b;
  a.canary = set(10, 1, {at(5, 4), at(9, 6)});
  b.canary = set(25, 2, {at(5, 4), at(7, 5), at(9, 16)});
  b.live = set(3, 0, {at(1, 3)});
  EXPECT_EQ(window_between(a, b),
            (Window{set(15, 1, {at(7, 5), at(9, 10)}), set(3, 0, {at(1, 3)})}));
  EXPECT_EQ(window_between(b, a), std::nullopt);  // requests went backwards
  Snapshot c = b;
  c.canary.latency = {at(5, 4), at(9, 21)};  // the 7 ms bucket emptied
  EXPECT_EQ(window_between(b, c), std::nullopt);
}

TEST(Quantile, LinearInsideTheBucketHoldingTheRank) {
  const std::vector<LatencyBucket> s{{10, 11, 50}, {20, 22, 50}};
  EXPECT_DOUBLE_EQ(quantile_ms(s, 0.5), 11);      // rank 50: the top of the first bucket
  EXPECT_DOUBLE_EQ(quantile_ms(s, 0.99), 21.96);  // rank 99: 49 of 50 into [20, 22)
  EXPECT_DOUBLE_EQ(quantile_ms({}, 0.5), 0);
}

TEST(MannWhitney, BucketsGiveTheSamePAsRanksOfTheExpandedSamples) {
  // Canary: 3 at 10 ms, 5 at 12, 2 at 30; live: 6 at 10, 4 at 11, 1 at 12.
  const std::vector<LatencyBucket> canary{at(10, 3), at(12, 5), at(30, 2)};
  const std::vector<LatencyBucket> live{at(10, 6), at(11, 4), at(12, 1)};
  std::vector<double> x(3, 10), y(6, 10);
  x.insert(x.end(), 5, 12);
  x.insert(x.end(), 2, 30);
  y.insert(y.end(), 4, 11);
  y.insert(y.end(), 1, 12);
  const LatencyComparison c = compare_latency(canary, live);
  EXPECT_NEAR(c.p_value, p_from_ranks(x, y), 1e-12);
  EXPECT_LT(c.p_value, 0.05);
  // The other way round the canary is faster: p near 1.
  EXPECT_NEAR(compare_latency(live, canary).p_value, p_from_ranks(y, x), 1e-12);
  EXPECT_GT(compare_latency(live, canary).p_value, 0.95);
}

TEST(MannWhitney, NoEvidenceIsPOne) {
  EXPECT_EQ(compare_latency({}, {at(1, 5)}).p_value, 1);
  EXPECT_EQ(compare_latency({at(1, 5)}, {}).p_value, 1);
  EXPECT_EQ(compare_latency({at(7, 5)}, {at(7, 500)}).p_value, 1);  // every request in one bucket
}

TEST(Judge, TooLittleTrafficIsInconclusiveEvenWhenEveryRequestFailed) {
  const Verdict v = judge(analysis(), {{sample(99, 99, 10), sample(1000, 0, 10)}});
  EXPECT_EQ(v.kind, VerdictKind::kInconclusive);
  EXPECT_EQ(v.reason, "only 99 canary requests in the window (min_requests 100)");
  EXPECT_EQ(v.windows, 0);
  EXPECT_EQ(judge(analysis(), {}).reason,
            "only 0 canary requests in the window (min_requests 100)");
}

TEST(Judge, SevereErrorsBreachInOneWindow) {
  const Verdict v = judge(analysis(), {{sample(200, 100, 10), sample(2000, 0, 10)}});
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason,
            "5xx: canary 5xx ratio 0.5 > severe_error_ratio 0.1 (100 of 200 requests): severe, no "
            "need to wait");
  EXPECT_EQ(v.streak, 1);
}

TEST(Judge, ErrorsAboveTheThresholdMustPersistConsecutiveWindows) {
  const Window bad{sample(200, 10, 10), sample(2000, 0, 10)};  // 5 %: above 1 %, below 10 %
  const Window good{sample(200, 0, 10), sample(2000, 0, 10)};
  const Window quiet{sample(20, 20, 10), sample(200, 0, 10)};  // too few: not judged
  Verdict v = judge(analysis(), {bad});
  EXPECT_EQ(v.kind, VerdictKind::kSuspect);
  EXPECT_EQ(v.reason,
            "5xx: canary 5xx ratio 0.05 > max_error_ratio 0.01 (10 of 200 requests, 1/3 windows)");
  v = judge(analysis(), {bad, quiet, bad});
  EXPECT_EQ(v.kind, VerdictKind::kSuspect);
  EXPECT_EQ(v.streak, 2);
  v = judge(analysis(), {bad, bad, good});
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  EXPECT_EQ(v.streak, 0);
  v = judge(analysis(), {good, bad, quiet, bad, bad});
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason,
            "5xx: canary 5xx ratio 0.05 > max_error_ratio 0.01 (10 of 200 requests, 3/3 windows)");
  EXPECT_EQ(v.windows, 4);
  config::Analysis one = analysis();
  one.consecutive_windows = 1;
  EXPECT_EQ(judge(one, {bad}).kind, VerdictKind::kBreach);
}

// The canary of a byte-identical build rolled back on "canary p99 500 ms > 3 x
// live p99 75 ms": a handful of slow requests in one window. The same median
// and no significant shift of the whole sample is not a regression.
TEST(Judge, ATailOfAFewSlowRequestsInAnIdenticalBuildIsNotABreach) {
  const Window w{sample(300, 0, 60, 500, 4), sample(6000, 0, 60, 75, 90)};
  const Verdict v = judge(analysis(), {w, w, w});
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  ASSERT_TRUE(v.latency);
  EXPECT_GT(v.latency->canary_p99_ms, 3 * v.latency->live_p99_ms);
  EXPECT_GT(v.latency->p_value, 0.5);
  EXPECT_EQ(v.reason,
            fmt::format("300 canary requests, 0 5xx, median 60.5 ms vs 60.5 ms (Mann-Whitney "
                        "p={:.2g}), p99 500 ms vs 75.3 ms",
                        v.latency->p_value));
}

TEST(Judge, ASlowerBuildBreachesAfterConsecutiveWindows) {
  const Window slow{sample(300, 0, 199.7), sample(6000, 0, 99.7)};
  const Window good{sample(300, 0, 99.7), sample(6000, 0, 99.7)};
  EXPECT_EQ(judge(analysis(), {slow, slow}).kind, VerdictKind::kSuspect);
  EXPECT_EQ(judge(analysis(), {slow, slow, good}).kind, VerdictKind::kPass);
  const Verdict v = judge(analysis(), {slow, slow, slow});
  EXPECT_EQ(v.kind, VerdictKind::kBreach);
  EXPECT_EQ(v.reason,
            "latency: canary slower than live (median 200 ms vs 100 ms (Mann-Whitney p<1e-9), "
            "p99 201 ms vs 101 ms, 3/3 windows)");
}

TEST(Judge, ASignificantButSmallShiftIsNotABreach) {
  // 20 % slower on a big sample: p is tiny, the effect is under 1.5x.
  const Window w{sample(3000, 0, 120), sample(60000, 0, 100)};
  const Verdict v = judge(analysis(), {w, w, w});
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  EXPECT_LT(v.latency->p_value, 1e-100);
  config::Analysis tight = analysis();
  tight.max_median_ratio = 1.1;
  EXPECT_EQ(judge(tight, {w, w, w}).kind, VerdictKind::kBreach);
  tight.max_median_ratio = 0;  // off; p99 120.99 < 2 x 100.99
  EXPECT_EQ(judge(tight, {w, w, w}).kind, VerdictKind::kPass);
}

// Regression: e2e_deploy_canary rolled back an identical build for a median of
// 0.32 ms against 0.14 ms — twice as slow and significant, invisible to a user.
TEST(Judge, AShiftOfAFewMillisecondsIsNotABreachWhateverItsRatio) {
  const Window w{sample(300, 0, 3), sample(6000, 0, 1.4)};
  const Verdict v = judge(analysis(), {w, w, w});
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  ASSERT_TRUE(v.latency);
  EXPECT_GT(v.latency->canary_median_ms, 1.5 * v.latency->live_median_ms);
  config::Analysis any = analysis();
  any.min_latency_delta_ms = 0;  // every difference counts: the old behaviour
  EXPECT_EQ(judge(any, {w, w, w}).kind, VerdictKind::kBreach);
}

TEST(Judge, TooFewLiveRequestsLeaveOnlyTheAbsoluteChecks) {
  config::Analysis a = analysis();
  a.max_p99_ms = 150;
  const Window slow{sample(300, 0, 200), sample(50, 0, 100)};
  Verdict v = judge(a, {slow});
  EXPECT_EQ(v.kind, VerdictKind::kSuspect);
  EXPECT_EQ(v.reason, "latency: canary p99 201 ms > max_p99_ms 150 (1/3 windows)");
  EXPECT_EQ(v.latency, std::nullopt);
  a.max_p99_ms = 0;
  v = judge(a, {slow});
  EXPECT_EQ(v.kind, VerdictKind::kPass);
  EXPECT_EQ(v.reason,
            "300 canary requests, 0 5xx, p99 201 ms (live: 50 requests, too few to compare)");
}

}  // namespace
}  // namespace md::deploy
