#include "proxy/histogram.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "proxy/proxy.h"

namespace md::proxy {
namespace {

TEST(Histogram, BucketsAreExactBelow128usAnd64PerPowerOfTwoAbove) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(127), 127u);
  EXPECT_EQ(latency_bucket(128), 128u);  // [128, 130)
  EXPECT_EQ(latency_bucket(129), 128u);
  EXPECT_EQ(latency_bucket(130), 129u);
  EXPECT_EQ(latency_bucket(255), 191u);  // [254, 256)
  EXPECT_EQ(latency_bucket(256), 192u);  // [256, 260)
  EXPECT_EQ(bucket_lower_us(192), 256u);
  EXPECT_EQ(bucket_upper_us(192), 260u);
  EXPECT_EQ(latency_bucket(~0ull), kLatencyBuckets - 1);
  EXPECT_EQ(latency_bucket(uint64_t{1} << 32), kLatencyBuckets - 1);
  EXPECT_EQ(latency_bucket((uint64_t{1} << 32) - 1), kLatencyBuckets - 1);
  EXPECT_EQ(kLatencyBuckets, 1728u);
}

TEST(Histogram, EveryBucketHoldsItsBoundsAndIsAtMost1Point6PercentWide) {
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    const uint64_t lo = bucket_lower_us(i), hi = bucket_upper_us(i);
    ASSERT_LT(lo, hi) << i;
    ASSERT_EQ(latency_bucket(lo), i) << i;
    ASSERT_EQ(latency_bucket(hi - 1), i) << i;
    ASSERT_TRUE(lo < kHistLinearUs || (hi - lo) * 64 <= lo) << i;  // width <= lo / 64
    ASSERT_TRUE(i + 1 == kLatencyBuckets || hi == bucket_lower_us(i + 1)) << i;
  }
}

TEST(Histogram, JsonIsSparseAndRoundTrips) {
  LatencyCounts c{};
  c[latency_bucket(90)] = 3;
  c[latency_bucket(101'000)] = 2;
  nlohmann::json j = latency_to_json(c);
  EXPECT_EQ(j, nlohmann::json::parse("[[90, 3], [100352, 2]]"));
  auto back = latency_from_json(j, "x");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(*back, c);
}

TEST(Histogram, JsonRefusesWhatIsNotABucket) {
  auto bad = [](const char* text) {
    auto r = latency_from_json(nlohmann::json::parse(text), "m.latency");
    return r ? std::string("ok") : std::string(r.error().what());
  };
  EXPECT_EQ(bad("[[129, 1]]"), "m.latency: 129 is not a bucket bound");
  EXPECT_EQ(bad("[[90, 1], [90, 1]]"), "m.latency: bucket 90 out of order");
  EXPECT_EQ(bad("[[90]]"), "m.latency: each entry must be [lower_us, count]");
  EXPECT_EQ(bad("{}"), "m.latency: must be an array of [lower_us, count]");
  EXPECT_EQ(bad("[]"), "ok");
}

TEST(Histogram, PercentileIsWithinOneBucketOfTheTruth) {
  // The coarse buckets made 101 ms and 150 ms the same p99; now they differ.
  Counters a, b;
  a.latency[latency_bucket(101'000)] = 100;
  b.latency[latency_bucket(150'000)] = 100;
  EXPECT_NEAR(a.percentile_ms(0.99), 101.0, 101.0 * 0.016);
  EXPECT_NEAR(b.percentile_ms(0.99), 150.0, 150.0 * 0.016);
}

}  // namespace
}  // namespace md::proxy
