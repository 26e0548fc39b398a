// The steps of a deploy's forward path (traffic moves are in traffic.cc).
// Each is idempotent against the host's observed state, so a resumed deploy
// can run the step it was interrupted in again.
#include <fmt/format.h>

#include <filesystem>

#include "agent/disk_need.h"
#include "core/hash.h"
#include "deploy/executor.h"
#include "deploy/host_check.h"

namespace md::deploy {
namespace {

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}

std::string tail_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  const size_t nl = t.rfind('\n');
  std::string last = nl == std::string::npos ? t : t.substr(nl + 1);
  return last.size() > 200 ? last.substr(0, 200) + "..." : last;
}

}  // namespace

std::string release_state_note(const ReleaseView* r, int want_web) {
  if (!r) return "not on the host";
  std::string note = fmt::format("{}/{} web healthy", r->web_healthy(), want_web);
  for (const ProcessView& p : r->processes) {
    if (p.state == "failed" || p.state == "backoff" || p.restarts > 0) {
      note += fmt::format("; {}.{} {}", p.service, p.index, p.state);
      if (!p.last_exit.empty()) note += " (" + p.last_exit + ")";
      if (p.restarts > 0) note += fmt::format(", {} restart(s)", p.restarts);
    }
  }
  return note;
}

Millis Deployer::Impl::max_start_timeout() const {
  Millis m{0};
  for (const config::Service& sv : env.services)
    if (sv.kind == config::ServiceKind::kWeb) m = std::max(m, sv.health.start_timeout);
  return m;
}

Result<std::string> Deployer::Impl::hosts_short_of(const std::string& version, int want) {
  std::vector<std::string> short_of;
  for (auto& [name, v] : s.host.host_views()) {
    if (!v) return tl::unexpected(std::move(v.error()).with_context("host " + name));
    const ReleaseView* r = v->find(version);
    if (!r || r->web_healthy() < want)
      short_of.push_back(fmt::format("host {}: {}", name, release_state_note(r, want)));
  }
  return join(short_of, "; ");
}

Result<StepDone> Deployer::Impl::preflight() {
  StepDone d;
  // Each host on its own: a refusal names the host it is about.
  std::vector<std::pair<std::string, HostView>> views;
  for (auto& [name, v] : s.host.host_views()) {
    if (!v) return tl::unexpected(std::move(v.error()).with_context("host " + name));
    views.emplace_back(name, std::move(*v));
  }
  std::vector<std::string> notes;
  const bool on_every_host = std::all_of(views.begin(), views.end(), [&](const auto& hv) {
    return hv.second.find(new_version()) != nullptr;
  });
  std::optional<agent::DiskNeed> need;
  if (!req.artifact.empty()) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(req.artifact, ec);
    if (ec && !on_every_host)
      return fail(Errc::kNotFound,
                  fmt::format("artifact {}: {}", req.artifact.string(), ec.message()));
    if (!ec) {
      const std::string sum = MD_TRY_CTX(sha256_file_hex(req.artifact), "artifact");
      if (sum != req.sha256)
        return fail(Errc::kCorruption,
                    fmt::format("artifact {} has sha256 {}, but its .sha256 file says {}",
                                req.artifact.string(), sum, req.sha256));
      // What the archive declares it unpacks to (a 200 KB artifact may hold
      // 200 MB), plus the artifact's own copy in the agent's artifacts/.
      need = MD_TRY_CTX(agent::declared_need(req.artifact), "artifact");
      need->bytes += size;
      notes.push_back(fmt::format("artifact sha256 {} verified, unpacks to {} in {} entries",
                                  sum.substr(0, 12), agent::human_bytes(need->file_bytes),
                                  need->entries));
    }
  }
  std::vector<std::string> refusals;
  for (const auto& [host, hv] : views) {
    const ReleaseView* on_host = hv.find(new_version());
    if (req.artifact.empty() && !on_host)
      return fail(Errc::kNotFound,
                  fmt::format("release {} is not on host {} and no artifact was given",
                              new_version(), host));
    if (on_host && !req.sha256.empty() && !on_host->sha256.empty() && on_host->sha256 != req.sha256)
      return fail(Errc::kAlreadyExists,
                  fmt::format("host {} already has a release {} from another artifact (sha256 "
                              "{}); versions are immutable: build a new version",
                              host, new_version(), on_host->sha256.substr(0, 12)));
    const agent::DiskFree free{hv.disk_free_bytes, hv.disk_free_inodes, hv.disk_free_inodes > 0};
    if (need && !on_host)
      if (const std::string missing = agent::shortfall(*need, free); !missing.empty())
        return fail(Errc::kFailedPrecondition,
                    fmt::format("not enough disk on host {} for {}: {} under the agent root "
                                "(sizes declared by the archive)",
                                host, new_version(), missing));
    notes.push_back(fmt::format("{}agent {} reachable, {} free",
                                views.size() > 1 ? "host " + host + ": " : "", hv.agent_version,
                                agent::human_bytes(hv.disk_free_bytes)));
    if (!old_version().empty() && !hv.find(old_version()))
      notes.push_back(fmt::format("previous release {} is not on host {}", old_version(), host));
    if (plan.kind == Kind::kDeploy)
      for (std::string& r : config_mismatches(env, hv, host)) refusals.push_back(std::move(r));
  }
  // Every reason to refuse, gathered before refusing, so one run lists them all.
  if (plan.kind == Kind::kDeploy) {
    const bool all = std::find(env.secrets.begin(), env.secrets.end(), "*") != env.secrets.end();
    for (const std::string& name : env.secrets)
      if (!all && !o.secrets.count(name))
        refusals.push_back(fmt::format("secret {} is not in the {} vault", name, env.name));
  }
  if (s.migrator && plan.runs(Step::kMigrateExpand)) {
    migrate::Plan mp = MD_TRY_CTX(s.migrator->plan(), "migration plan");
    if (!mp.verdict.ok)
      for (const std::string& r : mp.verdict.reasons)
        refusals.push_back("migrations refused: " + r);
    notes.push_back(fmt::format("migrations: {} expand, {} contract pending", mp.expand().size(),
                                mp.contract().size()));
    d.detail["expand"] = mp.expand().size();
    d.detail["contract"] = mp.contract().size();
    migrations = std::move(mp);
  }
  if (refusals.size() == 1) return fail(Errc::kFailedPrecondition, refusals.front());
  if (!refusals.empty()) {
    // WHY one reason a line: six reasons joined into one line were unreadable
    // (report.cc prints the first line again at the end, not the list).
    std::string why = fmt::format("refused for {} reasons:", refusals.size());
    for (const std::string& r : refusals) why += "\n- " + r;
    return fail(Errc::kFailedPrecondition, why);
  }
  d.note = join(notes, "; ");
  return d;
}

Result<StepDone> Deployer::Impl::run_hook(Step st, const std::string& command) {
  const HookResult h = MD_TRY(s.hooks.run(command, hook_vars(), env.hooks.timeout));
  StepDone d;
  d.detail["exit"] = h.exit_code;
  if (!h.ok()) {
    const std::string last = tail_line(h.output);
    return fail(
        Errc::kFailedPrecondition,
        fmt::format("{} hook failed ({}){}", step_name(st).substr(0, step_name(st).size() - 5),
                    h.describe, last.empty() ? "" : ": " + last));
  }
  d.note = fmt::format("hook ran ({})", h.describe.empty() ? "exit 0" : h.describe);
  return d;
}

Result<StepDone> Deployer::Impl::migrate(migrate::Selection sel) {
  const bool expand = sel == migrate::Selection::kExpand;
  if (!migrations || !expand) migrations = MD_TRY_CTX(s.migrator->plan(), "migration plan");
  const size_t pending = expand ? migrations->expand().size() : migrations->contract().size();
  if (pending == 0)
    return skipped(fmt::format("no pending {} migrations", expand ? "expand" : "contract"));
  migrate::ApplyReport rep = s.migrator->apply(sel, dep.id);
  StepDone d;
  d.detail["applied"] = json::array();
  for (const migrate::AppliedFile& f : rep.applied)
    d.detail["applied"].push_back(f.version + "_" + f.name);
  if (!rep.ok()) {
    std::string where;
    if (rep.failure)
      where =
          fmt::format(" at {}:{} ({})", rep.failure->file, rep.failure->line, rep.failure->message);
    Error e = *rep.error;
    e.context(fmt::format("{} migrations ({} applied before the failure){}",
                          expand ? "expand" : "contract", rep.applied.size(), where));
    return tl::unexpected(e);
  }
  d.note =
      fmt::format("{} {} migration(s) applied", rep.applied.size(), expand ? "expand" : "contract");
  migrations.reset();
  return d;
}

Result<StepDone> Deployer::Impl::ship() {
  const HostView hv = MD_TRY(view_host());
  if (const ReleaseView* r = hv.find(new_version());
      r && r->on_hosts >= hv.hosts && (req.sha256.empty() || r->sha256 == req.sha256))
    return skipped(fmt::format("{} is already on host {}", new_version(), s.host.name()));
  MD_TRY_STATUS(s.host.ship(new_version(), req.artifact, req.sha256));
  StepDone d;
  d.note = fmt::format("{} unpacked on host {}", new_version(), s.host.name());
  return d;
}

Result<StepDone> Deployer::Impl::start_new() {
  const HostView hv = MD_TRY(view_host());
  const ReleaseView* r = hv.find(new_version());
  if (r && r->web_running() >= web_count() && !r->any_failed())
    return skipped(
        fmt::format("{} already runs ({})", new_version(), release_state_note(r, web_count())));
  MD_TRY_STATUS(s.host.start(new_version(), Role::kWeb, launch));
  StepDone d;
  d.note = fmt::format("{} web process(es) of {} started", web_count(), new_version());
  return d;
}

Result<StepDone> Deployer::Impl::wait_ready(const std::string& version, Millis timeout) {
  const MonoTime deadline = s.clock.mono() + timeout + Millis(2000);
  std::string last;
  for (;;) {
    const HostView hv = MD_TRY(view_host());
    const ReleaseView* r = hv.find(version);
    last = release_state_note(r, web_count());
    if (r && r->web_healthy() >= web_count()) {
      StepDone d;
      d.note = fmt::format("{}: {}", version, last);
      return d;
    }
    if (host_count() > 1 && ((r && r->any_failed()) || s.clock.mono() >= deadline)) {
      // Name the hosts that hold it back: the others stay as they are.
      const std::string which = MD_TRY(hosts_short_of(version, web_per_host()));
      if (!which.empty()) last = which;
    }
    if (r && r->any_failed())
      return fail(Errc::kFailedPrecondition,
                  fmt::format("{} did not become healthy: {}", version, last));
    if (s.clock.mono() >= deadline)
      return fail(
          Errc::kTimeout,
          fmt::format("{} not healthy after {}s: {}", version,
                      std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), last));
    MD_TRY(poll_controls());
    s.clock.sleep_for(o.poll);
  }
}

Result<StepDone> Deployer::Impl::workers() {
  HostView hv = MD_TRY(view_host());
  const ReleaseView* r = hv.find(new_version());
  if (!r || r->workers_running() < worker_count()) {
    MD_TRY_STATUS(s.host.start(new_version(), Role::kWorkers, launch));
    // New workers first, and they must stay up before the old ones get
    // SIGTERM: never fewer than the configured count run.
    const MonoTime deadline = s.clock.mono() + Millis(60000);
    for (;;) {
      hv = MD_TRY(view_host());
      r = hv.find(new_version());
      if (r && r->workers_running() >= worker_count()) break;
      if (r && r->any_failed())
        return fail(Errc::kFailedPrecondition,
                    fmt::format("workers of {} failed: {}", new_version(),
                                release_state_note(r, web_count())));
      if (s.clock.mono() >= deadline)
        return fail(Errc::kTimeout,
                    fmt::format("workers of {} not running after 60s", new_version()));
      MD_TRY(poll_controls());
      s.clock.sleep_for(o.poll);
    }
  }
  std::string stopped;
  if (!old_version().empty()) {
    if (const ReleaseView* old = hv.find(old_version()); old && old->workers_running() > 0) {
      MD_TRY_STATUS(s.host.stop(old_version(), Role::kWorkers));
      stopped = fmt::format("; {} worker(s) of {} drained and stopped", old->workers_running(),
                            old_version());
    }
  }
  StepDone d;
  d.note = fmt::format("{} worker(s) of {} running{}", worker_count(), new_version(), stopped);
  return d;
}

Result<StepDone> Deployer::Impl::drain_old() {
  const MonoTime began = s.clock.mono();
  Status st = s.host.drain(old_version(), env.proxy.drain_timeout);
  if (!st && st.error().code() != Errc::kTimeout) return tl::unexpected(st.error());
  StepDone d;
  d.note = st ? fmt::format("{} drained in {} ms", old_version(),
                            std::chrono::duration_cast<Millis>(s.clock.mono() - began).count())
              : st.error().message();
  return d;
}

Result<StepDone> Deployer::Impl::keep_warm() {
  // An abort that arrived while the old release drained is still taken.
  MD_TRY(poll_controls());
  if (const size_t n = MD_TRY(pending_contract()); n > 0)
    return skipped(
        fmt::format("{} contract migration(s) pending: {} is stopped before they run "
                    "(a contract would break it), not kept warm",
                    n, old_version()));
  // A resumed deploy keeps only what is left of the window.
  Millis left = env.rollback_window;
  auto j = MD_TRY(s.store.journal(dep.id));
  for (const state::JournalEntry& e : j)
    if (e.step == "keep_warm" && e.phase == "intent") {
      left = env.rollback_window - std::chrono::duration_cast<Millis>(s.clock.now() - e.at);
      break;
    }
  if (left < Millis(0)) left = Millis(0);
  const SysTime until = MD_TRY(s.host.keep_warm(old_version(), left));
  const std::string at = format_time(until);
  progress(ProgressKind::kNote, Step::kKeepWarm,
           fmt::format("{} stays warm until {} (the agent stops it then): `meshdeploy rollback "
                       "--env {}` switches back at once",
                       old_version(), at, env.name));
  StepDone d;
  d.note = fmt::format("{} kept warm by the agent until {}", old_version(), at);
  d.detail["warm_until"] = at;
  d.releases.push_back(release_row(old_version(), "warm"));
  return d;
}

Result<size_t> Deployer::Impl::pending_contract() {
  if (!s.migrator) return size_t{0};
  if (!migrations) migrations = MD_TRY_CTX(s.migrator->plan(), "migration plan");
  return migrations->contract().size();
}

Result<StepDone> Deployer::Impl::stop_old() {
  // Handed to the agent by keep_warm (in this run or before a resume).
  for (const state::JournalEntry& e : MD_TRY(s.store.journal(dep.id)))
    if (e.step == "keep_warm" && e.phase == "outcome" && e.outcome == "ok")
      return skipped(
          fmt::format("the agent stops {} when its rollback window ends", old_version()));
  MD_TRY_STATUS(s.host.stop(old_version(), Role::kAll));
  StepDone d;
  d.note = fmt::format("{} stopped", old_version());
  d.releases.push_back(release_row(old_version(), "stopped"));
  return d;
}

Result<StepDone> Deployer::Impl::record_success() {
  StepDone d;
  d.releases.push_back(release_row(new_version(), "live"));
  d.note = fmt::format("{} is live in {}", new_version(), env.name);
  return d;
}

Result<StepDone> Deployer::Impl::prune() {
  std::vector<std::string> protect{new_version()};
  if (!old_version().empty()) protect.push_back(old_version());
  const std::vector<std::string> gone = MD_TRY(s.host.prune(env.keep_releases, protect));
  StepDone d;
  for (const std::string& v : gone) {
    d.releases.push_back(release_row(v, "pruned"));
  }
  d.note = gone.empty() ? fmt::format("nothing to prune (keep {})", env.keep_releases)
                        : "pruned " + join(gone, ", ");
  return d;
}

Result<StepDone> Deployer::Impl::notify_finished() {
  StepDone d;
  dep.status = !failing      ? state::DeployStatus::kSucceeded
               : rolled_back ? state::DeployStatus::kRolledBack
                             : state::DeployStatus::kFailed;
  if (failing) dep.reason = failure;
  dep.finished_at = s.clock.now();
  notify::EventType t = notify::EventType::kSucceeded;
  if (plan.kind == Kind::kRollback && !failing) t = notify::EventType::kRolledBack;
  if (failing) t = rolled_back ? notify::EventType::kRolledBack : notify::EventType::kFailed;
  d.outbox = fan_out(t);
  d.deployment = dep;
  d.note =
      fmt::format("{}; {} channel(s) notified", state::status_name(dep.status), d.outbox.size());
  return d;
}

}  // namespace md::deploy
