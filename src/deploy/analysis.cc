#include "deploy/analysis.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace md::deploy {
namespace {

bool went_backwards(const SetMetrics& b, const SetMetrics& a) {
  if (a.requests < b.requests || a.errors < b.errors) return true;
  if (a.buckets.size() != b.buckets.size()) return !b.buckets.empty();
  for (size_t i = 0; i < a.buckets.size(); ++i)
    if (a.buckets[i] < b.buckets[i]) return true;
  return false;
}

std::string ms(std::optional<double> v) {
  if (!v) return "n/a";
  if (std::isinf(*v)) return "over the largest bucket";
  return fmt::format("{:g} ms", *v);
}

}  // namespace

std::string_view verdict_name(VerdictKind k) {
  switch (k) {
    case VerdictKind::kPass: return "pass";
    case VerdictKind::kBreach: return "breach";
    case VerdictKind::kInconclusive: return "inconclusive";
  }
  return "?";
}

std::optional<double> window_p99_ms(const std::vector<double>& bounds_ms,
                                    const std::vector<uint64_t>& before,
                                    const std::vector<uint64_t>& after) {
  if (after.size() != bounds_ms.size() + 1) return std::nullopt;
  if (!before.empty() && before.size() != after.size()) return std::nullopt;
  std::vector<uint64_t> delta(after.size());
  uint64_t total = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    uint64_t b = before.empty() ? 0 : before[i];
    if (after[i] < b) return std::nullopt;
    delta[i] = after[i] - b;
    total += delta[i];
  }
  if (total == 0) return std::nullopt;
  // The rank of the 99th percentile request, 1-based: ceil(0.99 * total),
  // computed in integers so 100 requests give rank 99 exactly.
  uint64_t rank = (total * 99 + 99) / 100;
  uint64_t seen = 0;
  for (size_t i = 0; i < delta.size(); ++i) {
    seen += delta[i];
    if (seen >= rank)
      return i < bounds_ms.size() ? bounds_ms[i] : std::numeric_limits<double>::infinity();
  }
  return std::numeric_limits<double>::infinity();
}

Verdict judge(const config::Analysis& a, const Snapshot& before, const Snapshot& after) {
  Verdict v;
  if (went_backwards(before.canary, after.canary) || went_backwards(before.live, after.live)) {
    v.kind = VerdictKind::kInconclusive;
    v.reason = "metrics went backwards (the proxy restarted?): analysis starts over";
    v.restart = true;
    return v;
  }
  v.canary_requests = after.canary.requests - before.canary.requests;
  v.canary_errors = after.canary.errors - before.canary.errors;
  v.live_requests = after.live.requests - before.live.requests;
  v.live_errors = after.live.errors - before.live.errors;
  v.canary_p99_ms = window_p99_ms(after.canary.bounds_ms, before.canary.buckets, after.canary.buckets);
  v.live_p99_ms = window_p99_ms(after.live.bounds_ms, before.live.buckets, after.live.buckets);

  if (v.canary_requests < a.min_requests || v.canary_requests == 0) {
    v.kind = VerdictKind::kInconclusive;
    v.reason = fmt::format("only {} canary requests in the window (min_requests {})",
                           v.canary_requests, a.min_requests);
    return v;
  }
  const double ratio = static_cast<double>(v.canary_errors) / static_cast<double>(v.canary_requests);
  if (ratio > a.max_error_ratio) {
    v.kind = VerdictKind::kBreach;
    v.reason = fmt::format("canary 5xx ratio {:.4g} > max_error_ratio {:g} ({} of {} requests)",
                           ratio, a.max_error_ratio, v.canary_errors, v.canary_requests);
    return v;
  }
  if (a.max_p99_ms > 0 && v.canary_p99_ms && *v.canary_p99_ms > a.max_p99_ms) {
    v.kind = VerdictKind::kBreach;
    v.reason = fmt::format("canary p99 {} > max_p99_ms {:g}", ms(v.canary_p99_ms), a.max_p99_ms);
    return v;
  }
  if (a.max_p99_ratio > 0 && v.live_requests >= a.min_requests && v.live_requests > 0 &&
      v.canary_p99_ms && v.live_p99_ms && *v.live_p99_ms > 0 &&
      *v.canary_p99_ms > a.max_p99_ratio * *v.live_p99_ms) {
    v.kind = VerdictKind::kBreach;
    v.reason = fmt::format("canary p99 {} > {:g} x live p99 {}", ms(v.canary_p99_ms),
                           a.max_p99_ratio, ms(v.live_p99_ms));
    return v;
  }
  v.kind = VerdictKind::kPass;
  v.reason = fmt::format("{} canary requests, {} 5xx, p99 {} (live p99 {})", v.canary_requests,
                         v.canary_errors, ms(v.canary_p99_ms), ms(v.live_p99_ms));
  return v;
}

}  // namespace md::deploy
