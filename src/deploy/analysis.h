// Canary analysis: the verdict on a canary from two cumulative snapshots of
// the proxy's metrics (the canary set and the live set). Pure: the caller
// takes the snapshots; this only compares numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace md::deploy {

// Cumulative counters of one target set, as the proxy reports them.
struct SetMetrics {
  uint64_t requests = 0;           // answered requests
  uint64_t errors = 0;             // 5xx answers (including upstream failures)
  std::vector<double> bounds_ms;   // latency bucket upper bounds, ascending
  std::vector<uint64_t> buckets;   // requests per bucket (not cumulative);
                                   // one more than bounds_ms: the last is +inf
  bool operator==(const SetMetrics&) const = default;
};

struct Snapshot {
  SetMetrics canary;  // the new release's target set
  SetMetrics live;    // the release that held the traffic before
};

enum class VerdictKind { kPass, kBreach, kInconclusive };
std::string_view verdict_name(VerdictKind k);  // "pass" | "breach" | "inconclusive"

struct Verdict {
  VerdictKind kind = VerdictKind::kInconclusive;
  std::string reason;                 // one line, for output and the journal
  uint64_t canary_requests = 0;       // in the window
  uint64_t canary_errors = 0;
  uint64_t live_requests = 0;
  uint64_t live_errors = 0;
  std::optional<double> canary_p99_ms;  // nullopt: no request in the window
  std::optional<double> live_p99_ms;    // +inf when p99 fell in the open bucket
  bool restart = false;                 // counters went backwards: take a new baseline
  bool operator==(const Verdict&) const = default;
};

// The p99 latency of the requests counted between two bucket vectors: the
// upper bound of the bucket holding the ceil(0.99 * n)-th request (+inf for
// the open bucket). nullopt when no request was counted, or when the vectors
// do not match `bounds_ms` (a bug or a metrics reset).
std::optional<double> window_p99_ms(const std::vector<double>& bounds_ms,
                                    const std::vector<uint64_t>& before,
                                    const std::vector<uint64_t>& after);

// The verdict on the window between `before` and `after`. Rules, in order:
// 1. a counter that went backwards (agent restarted) is inconclusive;
// 2. fewer than min_requests canary requests (or none) is inconclusive,
//    never a pass — and never a breach: a few early errors prove nothing;
// 3. canary 5xx / canary requests > max_error_ratio is a breach;
// 4. canary p99 > max_p99_ms (when > 0) is a breach;
// 5. canary p99 > max_p99_ratio x live p99 (when > 0, and the live set saw
//    at least min_requests) is a breach;
// 6. otherwise a pass.
Verdict judge(const config::Analysis& a, const Snapshot& before, const Snapshot& after);

}  // namespace md::deploy
