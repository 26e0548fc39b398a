// The proxy's latency histogram: log-linear buckets in microseconds, the
// layout of HdrHistogram with 64 sub-buckets per power of two. Every value
// under 128 µs has a bucket of its own; above, a bucket is 1/64 to 1/128 of
// its lower bound wide, so a quantile read from the buckets is within 1.6 %
// of the true one at every scale (the 38 fixed buckets used before were up to
// 1.7x wide). Pure constexpr arithmetic: the request path pays a bit scan and
// a shift, no search and no table.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace md::proxy {

inline constexpr uint64_t kHistLinearUs = 128;  // 0..127 µs: one bucket per µs
inline constexpr int kHistSubBits = 6;          // 64 buckets per power of two above
inline constexpr int kHistMaxExp = 31;          // the last power of two: 2^31..2^32-1 µs
// 128 + 25 * 64 = 1728 buckets; values of 2^32 µs (71 min) and more share the last.
inline constexpr size_t kLatencyBuckets =
    kHistLinearUs + (kHistMaxExp - kHistSubBits) * (size_t{1} << kHistSubBits);

// Requests per bucket (not cumulative).
using LatencyCounts = std::array<uint64_t, kLatencyBuckets>;

// The bucket of a latency in microseconds.
constexpr size_t latency_bucket(uint64_t us) {
  if (us < kHistLinearUs) return static_cast<size_t>(us);
  const int exp = std::bit_width(us) - 1;  // >= 7
  if (exp > kHistMaxExp) return kLatencyBuckets - 1;
  const int shift = exp - kHistSubBits;                                // >= 1
  const uint64_t sub = (us >> shift) - (uint64_t{1} << kHistSubBits);  // 0..63
  return static_cast<size_t>(
      kHistLinearUs +
      static_cast<uint64_t>(exp - kHistSubBits - 1) * (uint64_t{1} << kHistSubBits) + sub);
}

// The smallest latency (µs) of bucket i (i < kLatencyBuckets).
constexpr uint64_t bucket_lower_us(size_t i) {
  if (i < kHistLinearUs) return i;
  const size_t k = i - kHistLinearUs;
  const int exp = static_cast<int>(k >> kHistSubBits) + kHistSubBits + 1;
  const uint64_t sub = k & ((size_t{1} << kHistSubBits) - 1);
  return ((uint64_t{1} << kHistSubBits) + sub) << (exp - kHistSubBits);
}

// One past the largest latency (µs) of bucket i: the next bucket's lower bound
// (for the last bucket, 2^32: longer latencies are counted there too).
constexpr uint64_t bucket_upper_us(size_t i) {
  return i + 1 < kLatencyBuckets ? bucket_lower_us(i + 1) : uint64_t{1} << (kHistMaxExp + 1);
}

static_assert(latency_bucket(127) == 127 && latency_bucket(128) == 128);
static_assert(bucket_lower_us(latency_bucket(1000)) <= 1000 &&
              1000 < bucket_upper_us(latency_bucket(1000)));
static_assert(bucket_upper_us(kLatencyBuckets - 2) == bucket_lower_us(kLatencyBuckets - 1));

}  // namespace md::proxy
