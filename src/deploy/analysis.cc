#include "deploy/analysis.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace md::deploy {
namespace {

// after - before, bucket by bucket; nullopt when anything went backwards.
std::optional<SetMetrics> minus(const SetMetrics& a, const SetMetrics& b) {
  if (a.requests < b.requests || a.errors < b.errors) return std::nullopt;
  SetMetrics d;
  d.requests = a.requests - b.requests;
  d.errors = a.errors - b.errors;
  size_t j = 0;
  for (const LatencyBucket& x : a.latency) {
    uint64_t before = 0;
    for (; j < b.latency.size() && b.latency[j].lo_ms < x.lo_ms; ++j)
      if (b.latency[j].count > 0) return std::nullopt;  // a bucket that emptied
    if (j < b.latency.size() && b.latency[j].lo_ms == x.lo_ms) before = b.latency[j++].count;
    if (x.count < before) return std::nullopt;
    if (x.count > before) d.latency.push_back({x.lo_ms, x.hi_ms, x.count - before});
  }
  for (; j < b.latency.size(); ++j)
    if (b.latency[j].count > 0) return std::nullopt;
  return d;
}

uint64_t total(const std::vector<LatencyBucket>& s) {
  uint64_t n = 0;
  for (const LatencyBucket& b : s) n += b.count;
  return n;
}

std::string ms(double v) { return fmt::format("{:.3g} ms", v); }

enum class WindowKind { kTooFew, kGood, kSevere, kErrors, kCeiling, kSlower };

struct WindowResult {
  WindowKind kind = WindowKind::kTooFew;
  double error_ratio = 0;
  std::optional<LatencyComparison> latency;
};

WindowResult judge_window(const config::Analysis& a, const Window& w) {
  WindowResult r;
  if (w.canary.requests == 0 || w.canary.requests < a.min_requests) return r;
  r.error_ratio = static_cast<double>(w.canary.errors) / static_cast<double>(w.canary.requests);
  if (w.live.requests >= a.min_requests && w.live.requests > 0)
    r.latency = compare_latency(w.canary.latency, w.live.latency);
  if (r.error_ratio > a.severe_error_ratio) {
    r.kind = WindowKind::kSevere;
  } else if (r.error_ratio > a.max_error_ratio) {
    r.kind = WindowKind::kErrors;
  } else if (a.max_p99_ms > 0 && quantile_ms(w.canary.latency, 0.99) > a.max_p99_ms) {
    r.kind = WindowKind::kCeiling;
  } else if (const auto& l = r.latency;
             l && l->p_value < a.significance &&
             ((a.max_median_ratio > 0 &&
               l->canary_median_ms > a.max_median_ratio * l->live_median_ms &&
               l->canary_median_ms - l->live_median_ms > a.min_latency_delta_ms) ||
              (a.max_p99_ratio > 0 && l->canary_p99_ms > a.max_p99_ratio * l->live_p99_ms &&
               l->canary_p99_ms - l->live_p99_ms > a.min_latency_delta_ms))) {
    r.kind = WindowKind::kSlower;
  } else {
    r.kind = WindowKind::kGood;
  }
  return r;
}

// "median 212 ms vs 101 ms (Mann-Whitney p=0.0003), p99 480 ms vs 150 ms"
std::string latency_text(const LatencyComparison& l) {
  const std::string p = l.p_value < 1e-9 ? "p<1e-9" : fmt::format("p={:.2g}", l.p_value);
  return fmt::format("median {} vs {} (Mann-Whitney {}), p99 {} vs {}", ms(l.canary_median_ms),
                     ms(l.live_median_ms), p, ms(l.canary_p99_ms), ms(l.live_p99_ms));
}

// The one line that says why a window breached, and in how many windows.
std::string breach_text(const config::Analysis& a, const WindowResult& r, const Window& w,
                        int streak) {
  const std::string of = fmt::format("{} of {} requests", w.canary.errors, w.canary.requests);
  const std::string windows = fmt::format("{}/{} windows", streak, a.consecutive_windows);
  switch (r.kind) {
    case WindowKind::kSevere:
      return fmt::format(
          "5xx: canary 5xx ratio {:.4g} > severe_error_ratio {:g} ({}): severe, no need to wait",
          r.error_ratio, a.severe_error_ratio, of);
    case WindowKind::kErrors:
      return fmt::format("5xx: canary 5xx ratio {:.4g} > max_error_ratio {:g} ({}, {})",
                         r.error_ratio, a.max_error_ratio, of, windows);
    case WindowKind::kCeiling:
      return fmt::format("latency: canary p99 {} > max_p99_ms {:g} ({})",
                         ms(quantile_ms(w.canary.latency, 0.99)), a.max_p99_ms, windows);
    case WindowKind::kSlower:
      return fmt::format("latency: canary slower than live ({}, {})", latency_text(*r.latency),
                         windows);
    default:
      return "";
  }
}

}  // namespace

std::string_view verdict_name(VerdictKind k) {
  switch (k) {
    case VerdictKind::kPass:
      return "pass";
    case VerdictKind::kBreach:
      return "breach";
    case VerdictKind::kSuspect:
      return "suspect";
    case VerdictKind::kInconclusive:
      return "inconclusive";
  }
  return "?";
}

std::optional<Window> window_between(const Snapshot& before, const Snapshot& after) {
  auto canary = minus(after.canary, before.canary);
  auto live = minus(after.live, before.live);
  if (!canary || !live) return std::nullopt;
  return Window{std::move(*canary), std::move(*live)};
}

double quantile_ms(const std::vector<LatencyBucket>& s, double q) {
  const uint64_t n = total(s);
  if (n == 0) return 0;
  const double rank = q * static_cast<double>(n);
  uint64_t seen = 0;
  for (const LatencyBucket& b : s) {
    if (b.count == 0) continue;
    if (static_cast<double>(seen + b.count) >= rank) {
      const double frac =
          std::max(0.0, (rank - static_cast<double>(seen)) / static_cast<double>(b.count));
      return b.lo_ms + (b.hi_ms - b.lo_ms) * frac;
    }
    seen += b.count;
  }
  return s.back().hi_ms;
}

LatencyComparison compare_latency(const std::vector<LatencyBucket>& canary,
                                  const std::vector<LatencyBucket>& live) {
  LatencyComparison c;
  c.canary_median_ms = quantile_ms(canary, 0.5);
  c.live_median_ms = quantile_ms(live, 0.5);
  c.canary_p99_ms = quantile_ms(canary, 0.99);
  c.live_p99_ms = quantile_ms(live, 0.99);
  // Both samples on one scale: requests per bucket (keyed by its lower bound).
  std::map<double, std::pair<double, double>> both;  // lo_ms -> (canary, live)
  for (const LatencyBucket& b : canary) both[b.lo_ms].first += static_cast<double>(b.count);
  for (const LatencyBucket& b : live) both[b.lo_ms].second += static_cast<double>(b.count);
  const double n1 = static_cast<double>(total(canary)), n2 = static_cast<double>(total(live));
  const double n = n1 + n2;
  if (n1 == 0 || n2 == 0) return c;
  // U = pairs (canary, live) with the canary request slower, ties one half;
  // ties_term = sum over tie groups (one bucket) of t^3 - t.
  double u = 0, live_below = 0, ties_term = 0;
  for (const auto& [lo, counts] : both) {
    const auto [cn, ln] = counts;
    u += cn * (live_below + 0.5 * ln);
    live_below += ln;
    const double t = cn + ln;
    ties_term += t * t * t - t;
  }
  const double mean = n1 * n2 / 2;
  const double var = n1 * n2 / 12 * ((n + 1) - ties_term / (n * (n - 1)));
  if (!(var > 0)) return c;
  // One-sided (canary slower), with a continuity correction of one half.
  const double z = (u - mean - 0.5) / std::sqrt(var);
  c.p_value = 0.5 * std::erfc(z / std::sqrt(2.0));
  return c;
}

Verdict judge(const config::Analysis& a, const std::vector<Window>& windows) {
  Verdict v;
  const Window* last = nullptr;
  WindowResult last_result;
  std::string streak_reason;
  for (const Window& w : windows) {
    WindowResult r = judge_window(a, w);
    if (r.kind == WindowKind::kTooFew) continue;
    ++v.windows;
    last = &w;
    v.canary_requests = w.canary.requests;
    v.canary_errors = w.canary.errors;
    v.live_requests = w.live.requests;
    v.latency = r.latency;
    if (r.kind == WindowKind::kGood) {
      v.streak = 0;
    } else {
      ++v.streak;
      streak_reason = breach_text(a, r, w, v.streak);
      if (r.kind == WindowKind::kSevere || v.streak >= a.consecutive_windows) {
        v.kind = VerdictKind::kBreach;
        v.reason = streak_reason;
        return v;
      }
    }
    last_result = std::move(r);
  }
  if (!last) {
    const uint64_t seen = windows.empty() ? 0 : windows.back().canary.requests;
    v.reason = fmt::format("only {} canary requests in the window (min_requests {})", seen,
                           a.min_requests);
    return v;
  }
  if (v.streak > 0) {
    v.kind = VerdictKind::kSuspect;
    v.reason = streak_reason;
    return v;
  }
  v.kind = VerdictKind::kPass;
  v.reason = fmt::format("{} canary requests, {} 5xx", last->canary.requests, last->canary.errors);
  if (last_result.latency)
    v.reason += ", " + latency_text(*last_result.latency);
  else
    v.reason += fmt::format(", p99 {} (live: {} requests, too few to compare)",
                            ms(quantile_ms(last->canary.latency, 0.99)), last->live.requests);
  return v;
}

}  // namespace md::deploy
