// Canary analysis: the verdict on a canary from the windows observed since
// its last weight change (after the warm-up). Pure: config and observed
// windows in, a verdict out; the caller takes the snapshots and keeps time.
//
// Latency is compared the way Kayenta does it: a one-sided Mann-Whitney U
// test over both samples (computed exactly from the two bucketed latency
// distributions, ties counted half), plus an effect size (the ratio of the
// medians or of the p99s), so neither a tiny difference on a huge sample nor
// one noisy quantile decides. A breach must hold in `consecutive_windows`
// windows in a row, unless the 5xx ratio is above `severe_error_ratio`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace md::deploy {

// Requests that took between lo_ms (included) and hi_ms (excluded).
struct LatencyBucket {
  double lo_ms = 0;
  double hi_ms = 0;
  uint64_t count = 0;
  bool operator==(const LatencyBucket&) const = default;
};

// Counters of one target set, as the proxy reports them (cumulative in a
// snapshot, the difference of two snapshots in a window).
struct SetMetrics {
  uint64_t requests = 0;               // answered requests
  uint64_t errors = 0;                 // 5xx answers (including upstream failures)
  std::vector<LatencyBucket> latency;  // non-empty buckets, ascending by lo_ms
  bool operator==(const SetMetrics&) const = default;
};

struct Snapshot {
  SetMetrics canary;  // the new release's target set
  SetMetrics live;    // the release that held the traffic before
  bool operator==(const Snapshot&) const = default;
};

// What each set answered between two snapshots of the same proxy.
using Window = Snapshot;

// The window between two cumulative snapshots; nullopt when a counter went
// backwards (the proxy restarted: take `after` as the new baseline).
std::optional<Window> window_between(const Snapshot& before, const Snapshot& after);

// The q-quantile (0 < q <= 1) of a bucketed sample in ms, linear within its
// bucket; 0 for an empty sample.
double quantile_ms(const std::vector<LatencyBucket>& sample, double q);

struct LatencyComparison {
  double p_value = 1;  // one-sided Mann-Whitney U: P(a difference this big | canary not slower)
  double canary_median_ms = 0, live_median_ms = 0;
  double canary_p99_ms = 0, live_p99_ms = 0;
  bool operator==(const LatencyComparison&) const = default;
};

// Compares two bucketed samples. U counts the (canary, live) pairs where the
// canary request was slower, a pair in the same bucket counting one half;
// p comes from U's normal approximation with the tie correction and a
// continuity correction. p is 1 when either sample is empty or every request
// of both fell in one bucket.
LatencyComparison compare_latency(const std::vector<LatencyBucket>& canary,
                                  const std::vector<LatencyBucket>& live);

enum class VerdictKind { kPass, kBreach, kSuspect, kInconclusive };
// "pass" | "breach" | "suspect" (a breach in fewer than consecutive_windows
// windows in a row: never a pass, decided by the next windows) | "inconclusive"
std::string_view verdict_name(VerdictKind k);

struct Verdict {
  VerdictKind kind = VerdictKind::kInconclusive;
  std::string reason;  // one line, for output and the journal
  int windows = 0;     // windows with enough canary traffic
  int streak = 0;      // breaching windows in a row, up to the last
  // Of the last window with enough canary traffic (all 0 when none):
  uint64_t canary_requests = 0;
  uint64_t canary_errors = 0;
  uint64_t live_requests = 0;
  std::optional<LatencyComparison> latency;  // nullopt: the live set had too few requests
  bool operator==(const Verdict&) const = default;
};

// The verdict on the windows of one canary step, oldest first (the caller
// leaves out the warm-up). Per window, in order:
// 1. fewer than min_requests canary requests (or none): not judged — it
//    neither counts for nor against a streak;
// 2. canary 5xx ratio > severe_error_ratio: a breach at once;
// 3. canary 5xx ratio > max_error_ratio: a breaching window;
// 4. canary p99 > max_p99_ms (when > 0): a breaching window;
// 5. with at least min_requests live requests: canary slower than live with
//    Mann-Whitney p < significance AND (median > max_median_ratio x live's
//    (when > 0) OR p99 > max_p99_ratio x live's (when > 0)), the exceeding
//    median or p99 also above live's by more than min_latency_delta_ms: a
//    breaching window;
// 6. otherwise a good window, which ends a streak.
// A streak of consecutive_windows breaching windows is a breach; a shorter
// streak still running at the last window is suspect; a good last window is
// a pass; no judged window is inconclusive.
Verdict judge(const config::Analysis& a, const std::vector<Window>& windows);

}  // namespace md::deploy
