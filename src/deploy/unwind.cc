// Going back: the failure path's steps (traffic and workers back to the old
// release, the new one stopped) and `meshdeploy rollback`, which is a
// deployment of kind rollback run through the same state machine.
#include <fmt/format.h>

#include "deploy/executor.h"
#include "deploy/report.h"

namespace md::deploy {

Result<StepDone> Deployer::Impl::rollback_traffic() {
  Result<HostView> seen = view_host();
  // Several hosts: a host that cannot be asked does not keep the others on
  // the release that failed; traffic goes back where it can at once, and
  // the unreachable ones are waited for below.
  if (!seen && host_count() <= 1) return tl::unexpected(seen.error());
  std::string started;
  if (seen) {
    const ReleaseView* old = seen->find(old_version());
    if (!old)
      return fail(Errc::kNotFound, fmt::format("{} is no longer on the host", old_version()));
    if (old->web_healthy() < web_count()) {
      MD_TRY_STATUS(s.host.start(old_version(), Role::kWeb, launch));
      MD_TRY(wait_ready(old_version(), max_start_timeout()));
      started = " (started again from disk)";
    }
  }
  MonoTime t = s.clock.mono();
  Result<Millis> probe = s.host.route({{old_version(), 100}});
  if (!probe && host_count() > 1) {
    // WHY wait: an environment never ends with two live versions. A host
    // whose agent restarts (systemd) comes back serving what it served.
    const MonoTime give_up = s.clock.mono() + env.strategy.hosts.rollback_wait;
    progress(ProgressKind::kWarning, Step::kRollbackTraffic,
             fmt::format("{}; waiting up to {}s for it to take {} back "
                         "(strategy.hosts.rollback_wait)",
                         probe.error().what(), env.strategy.hosts.rollback_wait.count() / 1000,
                         old_version()));
    while (!probe && s.clock.mono() < give_up) {
      MD_TRY(poll_controls());
      s.clock.sleep_for(std::max(o.poll, Millis(500)));
      t = s.clock.mono();
      probe = s.host.route({{old_version(), 100}});
    }
    if (!probe)
      return fail(probe.error().code(),
                  fmt::format("{}; gave up after strategy.hosts.rollback_wait: run `meshdeploy "
                              "deploy --resume --env {}` once it answers",
                              probe.error().what(), env.name));
    // The host that came back may need its old release started again.
    HostView now = MD_TRY(view_host());
    const ReleaseView* old = now.find(old_version());
    if (old && old->web_healthy() < web_count()) {
      MD_TRY_STATUS(s.host.start(old_version(), Role::kWeb, launch));
      MD_TRY(wait_ready(old_version(), max_start_timeout()));
    }
  }
  if (!probe) return tl::unexpected(probe.error());
  probe_time = *probe;
  switch_time =
      std::max(Millis(0), std::chrono::duration_cast<Millis>(s.clock.mono() - t) - *probe_time);
  rolled_back = true;
  progress(ProgressKind::kNote, Step::kRollbackTraffic,
           fmt::format("100% of traffic back on {} ({}){}", old_version(),
                       switch_words(*probe_time, *switch_time), started));
  const HostView hv = MD_TRY(view_host());
  const ReleaseView* old = hv.find(old_version());
  if (worker_count() > 0 && old && old->workers_running() < worker_count())
    MD_TRY_STATUS(s.host.start(old_version(), Role::kWorkers, launch));
  StepDone d;
  d.note = fmt::format("traffic back on {} ({}){}", old_version(),
                       switch_words(*probe_time, *switch_time), started);
  d.detail["probe_ms"] = probe_time->count();
  d.detail["switch_ms"] = switch_time->count();
  d.releases.push_back(release_row(old_version(), "live"));
  return d;
}

Result<StepDone> Deployer::Impl::stop_new() {
  MD_TRY_STATUS(s.host.stop(new_version(), Role::kAll));
  StepDone d;
  d.note = fmt::format("{} stopped", new_version());
  d.releases.push_back(release_row(new_version(), "failed"));
  return d;
}

namespace {

// The release live before `current`: the previous version of the newest
// successful deploy (not rollback) that made `current` live.
std::string previous_of(const std::vector<state::Deployment>& history, const std::string& current) {
  for (const state::Deployment& d : history)
    if (d.kind == "deploy" && d.version == current && d.status == state::DeployStatus::kSucceeded)
      return d.previous_version;
  return "";
}

}  // namespace

Result<Outcome> Deployer::Impl::rollback(const std::string& to) {
  const std::string id = new_deployment_id(s.clock.now());
  // A deploy in progress (e.g. keeping the old release warm) is aborted: its
  // failure path puts traffic back on the release it replaced.
  if (auto lock = MD_TRY(s.store.lock_info(env.name)); lock) {
    if (auto running = MD_TRY(s.store.running(env.name));
        running && running->id == lock->deployment_id) {
      MD_TRY(
          request_control(s.store, env.name, ControlCommand::kAbort, o.actor,
                          to.empty() ? "rollback requested" : "rollback to " + to + " requested"));
      t0 = s.clock.mono();
      progress(ProgressKind::kNote, Step::kPreflight,
               fmt::format("asked the running deploy {} ({}) to abort and roll back", running->id,
                           running->version));
      for (;;) {
        auto st = MD_TRY(s.store.deployment(running->id));
        if (st.status != state::DeployStatus::kRunning) {
          if (to.empty() || to == st.previous_version) {
            Outcome out;
            out.deployment = st;
            out.via_abort = true;
            for (const state::JournalEntry& e : MD_TRY(s.store.journal(st.id))) {
              if (e.step != "rollback_traffic" || e.phase != "outcome" || e.outcome != "ok")
                continue;
              json x = json::parse(e.detail, nullptr, false);
              if (x.is_object() && x.contains("switch_ms"))
                out.switch_time = Millis(x["switch_ms"].get<int64_t>());
              if (x.is_object() && x.contains("probe_ms"))
                out.probe_time = Millis(x["probe_ms"].get<int64_t>());
            }
            return out;
          }
          break;
        }
        if (!MD_TRY(s.store.lock_info(env.name))) break;  // its controller died: settle it below
        s.clock.sleep_for(o.poll);
      }
    }
  }
  MD_TRY_STATUS(take_lock_settling(id));
  reset_run();
  const HostView hv = MD_TRY(view_host());
  const std::string current = hv.live();
  if (current.empty())
    return fail(Errc::kFailedPrecondition,
                fmt::format("nothing is live in {}: deploy a release first", env.name));
  std::string target = to;
  if (target.empty()) {
    target = previous_of(MD_TRY(s.store.deployments(env.name, 500)), current);
    if (target.empty())
      return fail(Errc::kNotFound,
                  fmt::format("no release before {} is recorded in {}; name one with --to", current,
                              env.name));
  }
  if (target == current)
    return fail(Errc::kAlreadyExists, fmt::format("{} is already live in {}", target, env.name));
  const ReleaseView* r = hv.find(target);
  if (!r)
    return fail(
        Errc::kNotFound,
        fmt::format("release {} is not on host {} (pruned or never deployed); deploy it again "
                    "with `meshdeploy deploy --version {}`",
                    target, s.host.name(), target));
  req = DeployRequest{};
  req.version = target;
  req.sha256 = r->sha256;
  dep.id = id;
  dep.environment = env.name;
  dep.kind = "rollback";
  dep.version = target;
  dep.previous_version = current;
  dep.strategy = "blue_green";
  dep.actor = o.actor;
  dep.trigger = o.trigger;
  dep.status = state::DeployStatus::kRunning;
  dep.started_at = s.clock.now();
  PlanInput in;
  in.kind = Kind::kRollback;
  in.has_live = true;
  for (const config::Service& sv : env.services)
    if (sv.kind == config::ServiceKind::kWorker) in.has_workers = true;
  in.hooks = env.hooks;
  plan = plan_steps(in);
  build_launch();
  MD_TRY_STATUS(start_record("rollback.start"));
  return run_from(Step::kPreflight);
}

}  // namespace md::deploy
