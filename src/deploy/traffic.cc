// Moving traffic: the blue-green switch, the canary's weighted steps with
// their analysis windows and approval gates, and the watch window at 100 %.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "deploy/executor.h"
#include "deploy/report.h"

namespace md::deploy {

namespace {

Snapshot snapshot_of(const std::map<std::string, SetMetrics>& m, const std::string& canary,
                     const std::string& live) {
  Snapshot snap;
  if (auto it = m.find(canary); it != m.end()) snap.canary = it->second;
  if (auto it = m.find(live); it != m.end()) snap.live = it->second;
  return snap;
}

// Several hosts: the windows of each host alone, to flag one host that
// breaches while the sum (what the verdict is on) does not.
struct PerHost {
  std::map<std::string, Snapshot> before;
  std::map<std::string, std::vector<Window>> windows;
  std::map<std::string, std::string> flagged;  // host -> the reason it was flagged with

  void reset() { *this = PerHost{}; }
  // Judges each host's windows after a metrics() call; returns the hosts
  // that breach alone now, "host h2 alone: <reason>".
  std::vector<std::string> judge_hosts(const config::Analysis& a, const Host& host,
                                       const std::string& canary, const std::string& live) {
    std::vector<std::string> out;
    for (const auto& [name, m] : host.host_metrics()) {
      const Snapshot now = snapshot_of(m, canary, live);
      auto b = before.find(name);
      if (b != before.end()) {
        if (std::optional<Window> w = window_between(b->second, now))
          windows[name].push_back(std::move(*w));
        else
          windows[name].clear();
        const Verdict v = judge(a, windows[name]);
        if (v.kind == VerdictKind::kBreach) out.push_back("host " + name + " alone: " + v.reason);
      }
      before[name] = now;
    }
    return out;
  }
};

}  // namespace

Result<Snapshot> Deployer::Impl::snapshot() {
  auto m = MD_TRY_CTX(s.host.metrics(), "proxy metrics");
  return snapshot_of(m, new_version(), old_version());
}

Result<int> Deployer::Impl::canary_restarts() {
  if (host_count() > 1) {
    // A host that serves the new release with no healthy web process fails
    // the step (and so every host goes back): one host down is not an
    // environment that works.
    for (auto& [name, v] : s.host.host_views()) {
      if (!v) return tl::unexpected(std::move(v.error()).with_context("host " + name));
      const ReleaseView* r = v->find(new_version());
      if (!r || r->web_healthy() == 0)
        return fail(Errc::kFailedPrecondition,
                    fmt::format("host {}: no healthy web process of {} ({})", name, new_version(),
                                release_state_note(r, web_per_host())));
    }
  }
  const HostView hv = MD_TRY(view_host());
  int n = 0;
  if (const ReleaseView* r = hv.find(new_version()))
    for (const ProcessView& p : r->processes)
      if (p.web) n += p.restarts;
  return n;
}

Result<std::string> Deployer::Impl::analyse(int weight, Millis pause, bool approval,
                                            bool final_watch) {
  const config::Analysis& a = env.strategy.analysis;
  const Millis interval = a.interval.count() > 0 ? a.interval : Millis(1000);
  const Step step = final_watch ? Step::kWatch : Step::kShiftTraffic;
  const MonoTime start = s.clock.mono();
  const MonoTime pause_end = start + pause;
  // Nothing is judged during the warm-up after the weight change, nor after
  // a process of the new release restarts: fresh processes are not compared
  // with warm ones. Windows are disjoint: each starts where the last ended.
  int restarts = MD_TRY(canary_restarts());
  std::optional<Snapshot> before;  // where the current window starts; none while warming up
  std::vector<Window> windows;
  MonoTime next_check = start + a.warmup;
  bool promoted = false, awaiting_approval = false, judged_at_end = false;
  std::optional<Verdict> last;
  PerHost per_host;
  for (;;) {
    promoted = MD_TRY(poll_controls()) || promoted;
    const MonoTime now = s.clock.mono();
    const bool pause_over = now >= pause_end || promoted;
    // Judge every interval, and once more the moment the pause ends.
    if (now >= next_check || (pause_over && !judged_at_end && before)) {
      const int r = MD_TRY(canary_restarts());
      if (r != restarts) {
        restarts = r;
        before.reset();
        windows.clear();
        per_host.reset();
        last.reset();
        next_check = now + a.warmup;
        progress(ProgressKind::kNote, step,
                 fmt::format("{}% a process of {} restarted: warm-up again, analysis starts over",
                             weight, new_version()),
                 "", Millis(0), weight);
      } else if (!before) {
        before = MD_TRY(snapshot());  // the warm-up is over: the first window starts
        if (host_count() > 1) per_host.judge_hosts(a, s.host, new_version(), old_version());
        next_check = now + interval;
      } else {
        judged_at_end = pause_over;
        const Snapshot after = MD_TRY(snapshot());
        std::optional<Window> w = window_between(*before, after);
        before = after;
        // A restarted proxy counts from zero: the windows start over from it.
        if (!w)
          windows.clear();
        else
          windows.push_back(std::move(*w));
        Verdict v = judge(a, windows);
        if (host_count() > 1) {
          // The verdict is on the sum of every host; one host that breaches
          // alone is named (in the reason of a breach, else as a warning).
          std::vector<std::string> alone =
              per_host.judge_hosts(a, s.host, new_version(), old_version());
          if (v.kind == VerdictKind::kBreach && !alone.empty()) {
            v.reason += fmt::format(" ({})", fmt::join(alone, "; "));
          } else {
            for (const std::string& h : alone) {
              const std::string name = h.substr(5, h.find(' ', 5) - 5);
              if (per_host.flagged.count(name)) continue;
              per_host.flagged[name] = h;
              progress(ProgressKind::kWarning, step,
                       fmt::format("{}% {} (the sum of all hosts is judged)", weight, h), "",
                       Millis(0), weight);
            }
          }
        }
        if (!last || v.kind != last->kind || v.kind == VerdictKind::kBreach ||
            v.kind == VerdictKind::kSuspect)
          progress(ProgressKind::kNote, step,
                   fmt::format("{}% {}: {}", weight, verdict_name(v.kind), v.reason), "", Millis(0),
                   weight);
        if (v.kind == VerdictKind::kBreach)
          return fail(
              Errc::kFailedPrecondition,
              fmt::format("{} at {}%: {}", final_watch ? "watch" : "canary", weight, v.reason));
        last = std::move(v);
        next_check = now + interval;
      }
    }
    if (pause_over && approval && !promoted && !awaiting_approval) {
      awaiting_approval = true;
      state::Batch b;
      b.outbox = fan_out(notify::EventType::kApprovalNeeded, weight);
      MD_TRY_STATUS(journal("approval", "intent", "", json{{"weight", weight}}, std::move(b)));
      progress(ProgressKind::kNote, Step::kShiftTraffic,
               fmt::format("waiting at {}% for approval: run `meshdeploy promote --env {}`", weight,
                           env.name),
               "", Millis(0), weight);
    }
    if (pause_over && (!approval || promoted)) {
      if (awaiting_approval)
        MD_TRY_STATUS(journal("approval", "outcome", "ok", json{{"weight", weight}}));
      if (last && last->kind == VerdictKind::kPass) return last->reason;
      if (promoted)
        return "promoted by an operator: " + (last ? last->reason : std::string("no verdict"));
      const std::string why =
          last ? last->reason : std::string("no window judged after the warm-up yet");
      // A suspect streak is settled by the next windows (breach or pass), and
      // a canary step waits for its first window after the warm-up.
      const bool settling = last ? last->kind == VerdictKind::kSuspect : !final_watch;
      // Too little traffic is never a pass. At 100 % there is nothing left to
      // compare with and waiting does not help: the watch ends with a warning.
      if (final_watch && !settling) {
        progress(ProgressKind::kWarning, Step::kWatch, "watch window ended inconclusive: " + why);
        return "inconclusive: " + why;
      }
      if (!settling && a.on_inconclusive == config::Inconclusive::kFail)
        return fail(
            Errc::kFailedPrecondition,
            fmt::format("canary at {}% inconclusive ({}) and analysis.on_inconclusive is fail",
                        weight, why));
      if (now - pause_end >= a.max_inconclusive)
        return fail(Errc::kTimeout, fmt::format("{} at {}% still {} after waiting {}s: {}",
                                                final_watch ? "watch" : "canary", weight,
                                                last ? verdict_name(last->kind) : "inconclusive",
                                                a.max_inconclusive.count() / 1000, why));
    }
    s.clock.sleep_for(o.poll);
  }
}

Result<StepDone> Deployer::Impl::shift_traffic() {
  // A canary shares traffic with the previous release. When that release
  // serves nothing (its processes were stopped, the host restarted), there
  // is nobody to protect and nothing to compare with: go to 100 % at once.
  bool old_serves = true;
  if (plan.weights.size() > 1 && !old_version().empty()) {
    const HostView hv = MD_TRY(view_host());
    const ReleaseView* old = hv.find(old_version());
    old_serves = old && old->web_running() > 0;
    if (!old_serves)
      progress(ProgressKind::kWarning, Step::kShiftTraffic,
               fmt::format("previous release {} runs no web process: no canary, 100% at once",
                           old_version()));
  }
  for (const Weight& w : plan.weights) {
    if (w.percent <= weight_done) continue;
    if (!old_serves && w.percent < 100) continue;
    state::Batch b;
    const bool canary = plan.weights.size() > 1;
    if (canary) b.outbox = fan_out(notify::EventType::kCanaryStep, w.percent);
    MD_TRY_STATUS(
        journal("shift_traffic", "intent", "", json{{"weight", w.percent}}, std::move(b)));
    traffic_moved = true;
    auto fail_here = [&](Error e) -> Result<StepDone> {
      Status js = journal("shift_traffic", "outcome", "failed",
                          json{{"weight", w.percent}, {"error", e.what()}});
      if (!js) return tl::unexpected(js.error());
      return tl::unexpected(std::move(e));
    };
    std::map<std::string, int> weights{{new_version(), w.percent}};
    if (w.percent < 100 && !old_version().empty()) weights[old_version()] = 100 - w.percent;
    const MonoTime t = s.clock.mono();
    Result<Millis> probe = s.host.route(weights);
    if (!probe) return fail_here(probe.error());
    // WHY apart: the proxy's health probe of the new targets is most of the
    // call; the switch itself is an atomic swap.
    const Millis took =
        std::max(Millis(0), std::chrono::duration_cast<Millis>(s.clock.mono() - t) - *probe);
    if (w.percent == 100) {
      switch_time = took;
      probe_time = *probe;
    }
    std::string spread;
    if (host_count() > 1) {
      spread_time = s.host.route_spread();
      spread = fmt::format(", spread {} ms across {} hosts", spread_time->count(), host_count());
    }
    progress(ProgressKind::kNote, Step::kShiftTraffic,
             fmt::format("{}% of traffic on {} ({}{})", w.percent, new_version(),
                         switch_words(*probe, took), spread),
             "", Millis(0), w.percent);
    std::string verdict;
    if (canary && (w.percent < 100 || w.pause.count() > 0 || w.approval)) {
      auto v = analyse(w.percent, w.pause, w.approval, false);
      if (!v) {
        if (fault_hit) return tl::unexpected(v.error());
        return fail_here(v.error());
      }
      verdict = *v;
    }
    json detail{{"weight", w.percent}, {"probe_ms", probe->count()}, {"switch_ms", took.count()}};
    if (host_count() > 1) detail["spread_ms"] = spread_time->count();
    if (!verdict.empty()) detail["verdict"] = verdict;
    state::Batch rb;
    if (w.percent == 100) {
      for (const std::string& v : {new_version(), old_version()}) {
        if (v.empty()) continue;
        rb.upsert_releases.push_back(release_row(v, v == new_version() ? "live" : "warm"));
      }
    }
    MD_TRY_STATUS(journal("shift_traffic", "outcome", "ok", detail, std::move(rb)));
    weight_done = w.percent;
  }
  StepDone d;
  d.note = fmt::format("100% of traffic on {}", new_version());
  return d;
}

Result<StepDone> Deployer::Impl::watch() {
  const std::string v = MD_TRY(analyse(100, env.strategy.watch_window, false, true));
  StepDone d;
  d.note = v;
  return d;
}

}  // namespace md::deploy
