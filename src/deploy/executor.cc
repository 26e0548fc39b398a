// The executor: entry points, the step loop over the transition table, the
// journal (intent before, outcome after, fault injection) and operator
// commands. The steps themselves are in forward.cc, traffic.cc, unwind.cc.
#include "deploy/executor.h"

#include <fmt/format.h>
#include <signal.h>

#include <random>

#include "agent/release_store.h"
#include "core/interrupt.h"
#include "core/json.h"

namespace md::deploy {

Deployer::Deployer(config::Environment env, Seams seams, Options options)
    : impl_(std::make_unique<Impl>(std::move(env), std::move(seams), std::move(options))) {}
Deployer::~Deployer() = default;
Result<Outcome> Deployer::deploy(const DeployRequest& req) {
  return impl_->settle_store_failure(impl_->deploy(req));
}
Result<Outcome> Deployer::resume() { return impl_->settle_store_failure(impl_->resume()); }
Result<Outcome> Deployer::rollback(const std::string& to) {
  return impl_->settle_store_failure(impl_->rollback(to));
}

Deployer::Impl::Impl(config::Environment e, Seams seams, Options opts)
    : env(std::move(e)), s(std::move(seams)), o(std::move(opts)) {
  if (o.holder.empty()) o.holder = default_holder();
  if (o.actor.empty()) o.actor = o.holder.substr(0, o.holder.find(' '));
}

std::string new_deployment_id(SysTime now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::random_device rd;
  return fmt::format("d-{:04}{:02}{:02}-{:02}{:02}{:02}-{:04x}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rd() & 0xffff);
}

Result<FaultPoint> parse_fault(std::string_view text) {
  FaultPoint f;
  const size_t c1 = text.find(':');
  auto bad = [&](const std::string& why) {
    std::string steps;
    for (const Transition& t : transition_table())
      if (t.step != Step::kDone)
        steps += (steps.empty() ? "" : ", ") + std::string(step_name(t.step));
    return fail(Errc::kInvalidArgument,
                fmt::format("fault point '{}': {} (want STEP:intent|outcome[:N], STEP one of {})",
                            text, why, steps));
  };
  if (c1 == std::string_view::npos) return bad("no ':'");
  auto step = parse_step(text.substr(0, c1));
  if (!step || *step == Step::kDone) return bad("unknown step");
  f.step = *step;
  std::string_view rest = text.substr(c1 + 1);
  const size_t c2 = rest.find(':');
  std::string_view phase = rest.substr(0, c2);
  if (phase != "intent" && phase != "outcome") return bad("phase must be intent or outcome");
  f.after_outcome = phase == "outcome";
  if (c2 != std::string_view::npos) {
    std::string n(rest.substr(c2 + 1));
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 4)
      return bad("occurrence must be a number");
    f.occurrence = std::stoi(n);
    if (f.occurrence < 1) return bad("occurrence must be at least 1");
  }
  return f;
}

Result<ControlTicket> request_control(state::Store& store, const std::string& environment,
                                      ControlCommand command, const std::string& actor,
                                      const std::string& reason) {
  auto running = MD_TRY(store.running(environment));
  if (!running)
    return fail(Errc::kNotFound, fmt::format("no deploy is running in {}", environment));
  state::Batch b;
  state::JournalEntry e;
  e.deployment_id = running->id;
  e.step = "control";
  e.phase = "intent";
  e.detail = control_intent_detail(command, actor, reason);
  b.journal.push_back(std::move(e));
  state::AuditEntry a;
  a.actor = actor;
  a.action = std::string(control_name(command));
  a.environment = environment;
  a.target = running->version;
  a.detail = to_json_text(json{{"deployment_id", running->id}, {"reason", reason}});
  b.audit.push_back(std::move(a));
  MD_TRY_STATUS(store.commit(b));
  ControlTicket t{running->id, running->version, 0};
  for (const state::JournalEntry& e : MD_TRY(store.journal(running->id)))
    if (e.step == "control" && e.phase == "intent") t.seq = e.seq;
  return t;
}

Result<bool> await_control(state::Store& store, const ControlTicket& t, Millis timeout,
                           Clock& clock) {
  const MonoTime end = clock.mono() + timeout;
  for (;;) {
    bool pending = false;
    for (const PendingControl& c : pending_controls(MD_TRY(store.journal(t.deployment_id))))
      if (c.seq == t.seq) pending = true;
    if (!pending) return true;
    if (clock.mono() >= end) return false;
    clock.sleep_for(Millis(50));
  }
}

// ---- small helpers ---------------------------------------------------------

int Deployer::Impl::host_count() const { return static_cast<int>(s.host.host_names().size()); }

int Deployer::Impl::web_count() const { return web_per_host() * host_count(); }

int Deployer::Impl::web_per_host() const {
  int n = 0;
  for (const config::Service& sv : env.services)
    if (sv.kind == config::ServiceKind::kWeb) n += sv.count;
  return n;
}

int Deployer::Impl::worker_count() const {
  int n = 0;
  for (const config::Service& sv : env.services)
    if (sv.kind == config::ServiceKind::kWorker) n += sv.count;
  return n * host_count();
}

Millis Deployer::Impl::elapsed() const {
  return std::chrono::duration_cast<Millis>(s.clock.mono() - t0);
}

void Deployer::Impl::progress(ProgressKind k, Step step, std::string message, std::string outcome,
                              Millis step_elapsed, std::optional<int> weight) {
  Progress p;
  p.kind = k;
  p.step = step;
  p.outcome = std::move(outcome);
  p.message = std::move(message);
  p.elapsed = elapsed();
  p.step_elapsed = step_elapsed;
  p.weight = weight;
  p.deployment_id = dep.id;
  s.observer.on_progress(p);
}

notify::Event Deployer::Impl::event(notify::EventType t) const {
  notify::Event e;
  e.type = t;
  e.environment = env.name;
  e.app = env.app;
  e.version = dep.version;
  e.previous_version = dep.previous_version;
  e.deployment_id = dep.id;
  e.actor = dep.actor;
  e.trigger = dep.trigger;
  e.strategy = dep.strategy;
  e.duration = std::chrono::duration_cast<Millis>(s.clock.now() - dep.started_at);
  e.status = std::string(state::status_name(dep.status));
  e.reason = dep.reason;
  if (host_count() > 1) e.hosts = s.host.host_names();
  e.at = s.clock.now();
  return e;
}

std::vector<state::OutboxEvent> Deployer::Impl::fan_out(notify::EventType t,
                                                        std::optional<int> weight,
                                                        std::string key) const {
  notify::Event e = event(t);
  e.canary_weight = weight;
  e.key = std::move(key);
  return notify::fan_out(env.notifications, e);
}

std::map<std::string, std::string> Deployer::Impl::hook_vars() const {
  return {{"MESHDEPLOY_ENVIRONMENT", env.name},
          {"MESHDEPLOY_VERSION", dep.version},
          {"MESHDEPLOY_PREVIOUS_VERSION", dep.previous_version},
          {"MESHDEPLOY_DEPLOYMENT_ID", dep.id},
          {"MESHDEPLOY_KIND", dep.kind},
          {"MESHDEPLOY_REASON", failure.empty() ? dep.reason : failure}};
}

Result<HostView> Deployer::Impl::view_host() {
  auto v = s.host.view();
  if (!v) return tl::unexpected(std::move(v.error()).with_context("host " + s.host.name()));
  return v;
}

void Deployer::Impl::build_launch() {
  launch = LaunchSpec{};
  launch.environment = env.name;
  launch.deployment_id = dep.id;
  launch.services = env.services;
  launch.env = env.env;
  launch.sticky_cookie = env.strategy.sticky_cookie;
  launch.sticky_header = env.strategy.sticky_header;
  launch.drain_deadline = env.proxy.stream_drain_timeout;
  const bool all = std::find(env.secrets.begin(), env.secrets.end(), "*") != env.secrets.end();
  for (const auto& [name, value] : o.secrets)
    if (all || std::find(env.secrets.begin(), env.secrets.end(), name) != env.secrets.end())
      launch.secrets[name] = value;
}

void Deployer::Impl::reset_run() {
  dep = state::Deployment{};
  req = DeployRequest{};
  plan = Plan{};
  weight_done = 0;
  failing = traffic_moved = rolled_back = false;
  failure.clear();
  fault_counts.clear();
  timings.clear();
  switch_time.reset();
  probe_time.reset();
  migrations.reset();
  store_failed = false;
  last_step.reset();
}

// ---- the journal -------------------------------------------------------------

Status Deployer::Impl::commit(const state::Batch& b) {
  Status st = s.store.commit(b);
  for (int attempt = 1; !st && st.error().retryable() && attempt < 5; ++attempt) {
    s.clock.sleep_for(Millis(100 * attempt));
    st = s.store.commit(b);
  }
  if (!st) {
    store_failed = true;
    return tl::unexpected(std::move(st.error()).with_context("state store"));
  }
  if (!b.outbox.empty() && s.outbox_written) s.outbox_written();
  return ok();
}

Status Deployer::Impl::journal(std::string_view step, std::string_view phase,
                               std::string_view outcome, json detail, state::Batch extra) {
  state::JournalEntry e;
  e.deployment_id = dep.id;
  e.step = std::string(step);
  e.phase = std::string(phase);
  e.outcome = std::string(outcome);
  // Several hosts: what each did in this step ("h2": "ship 1.2s ok").
  if (phase == "outcome")
    if (auto per_host = s.host.take_host_log(); !per_host.empty()) detail["hosts"] = per_host;
  e.detail = to_json_text(detail);
  e.at = s.clock.now();
  extra.journal.insert(extra.journal.begin(), std::move(e));
  MD_TRY_STATUS(commit(extra));
  if (o.fault) {
    const std::string key = fmt::format("{}:{}", step, phase);
    const int n = ++fault_counts[key];
    if (step == step_name(o.fault->step) &&
        phase == (o.fault->after_outcome ? "outcome" : "intent") && n == o.fault->occurrence) {
      fault_hit = true;
      if (o.on_fault)
        o.on_fault();
      else
        raise(SIGKILL);
      return fail(Errc::kCancelled, "fault injected at " + key);
    }
  }
  return ok();
}

// ---- operator commands and waits ---------------------------------------------

Result<bool> Deployer::Impl::poll_controls() {
  if (lease && lease->lost())
    return fail(Errc::kConflict, fmt::format("lost the lock of {}: stopping at once", env.name));
  // A signal aborts once: the failure path it starts must run to its end.
  if (o.interrupted && o.interrupted->load() && !interrupt_taken && !failing) {
    interrupt_taken = true;
    // The abort's own agent calls must not be cut by this signal (only by
    // the next one).
    interrupt::take();
    control_abort = true;
    return fail(Errc::kCancelled, "interrupted by a signal");
  }
  auto j = MD_TRY(s.store.journal(dep.id));
  bool promoted = false;
  for (const PendingControl& c : pending_controls(j)) {
    const bool abort = c.command == ControlCommand::kAbort;
    const char* note = abort ? (failing ? "already rolling back" : "aborting") : "promoted";
    MD_TRY_STATUS(
        journal("control", "outcome", "ok", json::parse(control_outcome_detail(c.seq, note))));
    if (abort && !failing) {
      control_abort = true;
      return fail(Errc::kCancelled,
                  fmt::format("aborted by {}{}", c.actor.empty() ? "an operator" : c.actor,
                              c.reason.empty() ? "" : ": " + c.reason));
    }
    if (abort) continue;
    progress(ProgressKind::kNote, Step::kDone, fmt::format("promoted by {}", c.actor));
    promoted = true;
  }
  return promoted;
}

Result<WaitEnd> Deployer::Impl::wait(Millis d, bool promotable) {
  const MonoTime end = s.clock.mono() + d;
  for (;;) {
    const bool promoted = MD_TRY(poll_controls());
    if (promoted && promotable) return WaitEnd::kPromoted;
    const MonoTime now = s.clock.mono();
    if (now >= end) return WaitEnd::kElapsed;
    s.clock.sleep_for(std::min<Millis>(o.poll, std::chrono::duration_cast<Millis>(end - now)));
  }
}

// ---- the loop --------------------------------------------------------------------

std::string Deployer::Impl::runtime_skip(Step st) const {
  const std::string& planned = plan.skip_reason(st);
  if (!planned.empty()) return planned;
  switch (st) {
    case Step::kMigrateExpand:
    case Step::kMigrateContract:
      if (!s.migrator) return s.no_migrator;
      break;
    case Step::kRollbackTraffic:
      if (old_version().empty()) return "no previous release to return traffic to";
      if (!traffic_moved) return "no traffic reached the new release";
      break;
    case Step::kOnRollbackHook:
      if (!(rolled_back || (plan.kind == Kind::kRollback && !failing)))
        return "no rollback happened";
      break;
    default:
      break;
  }
  return "";
}

Result<StepDone> Deployer::Impl::run_step(Step st) {
  switch (st) {
    case Step::kPreflight:
      return preflight();
    case Step::kPreDeployHook:
      return run_hook(st, env.hooks.pre_deploy);
    case Step::kNotifyStarted: {
      StepDone d;
      d.outbox = fan_out(notify::EventType::kStarted);
      d.note = fmt::format("{} channel(s) notified", d.outbox.size());
      return d;
    }
    case Step::kMigrateExpand:
      return migrate(migrate::Selection::kExpand);
    case Step::kShip:
      return ship();
    case Step::kStartNew:
      return start_new();
    case Step::kReady:
      return wait_ready(new_version(), max_start_timeout());
    case Step::kShiftTraffic:
      return shift_traffic();
    case Step::kWatch:
      return watch();
    case Step::kWorkers:
      return workers();
    case Step::kDrainOld:
      return drain_old();
    case Step::kKeepWarm:
      return keep_warm();
    case Step::kStopOld:
      return stop_old();
    case Step::kMigrateContract:
      return migrate(migrate::Selection::kContract);
    case Step::kRecord:
      return record_success();
    case Step::kPrune:
      return prune();
    case Step::kPostDeployHook:
      return run_hook(st, env.hooks.post_deploy);
    case Step::kRollbackTraffic:
      return rollback_traffic();
    case Step::kStopNew:
      return stop_new();
    case Step::kOnFailureHook:
      return run_hook(st, env.hooks.on_failure);
    case Step::kOnRollbackHook:
      return run_hook(st, env.hooks.on_rollback);
    case Step::kNotifyFinished:
      return notify_finished();
    case Step::kDone:
      break;
  }
  MD_CHECK_MSG(false, "run_step(kDone)");
  return skipped("");
}

Result<Outcome> Deployer::Impl::run_from(Step first) {
  Step st = first;
  while (st != Step::kDone) {
    last_step = st;
    const Transition& t = transition(st);
    const MonoTime began = s.clock.mono();
    if (std::string why = runtime_skip(st); !why.empty()) {
      MD_TRY_STATUS(journal(step_name(st), "outcome", "skipped", json{{"note", why}}));
      timings.push_back({st, "skipped", Millis(0), why});
      progress(ProgressKind::kStepDone, st, why, "skipped");
      st = t.on_ok;
      continue;
    }
    progress(ProgressKind::kStep, st, "");
    // shift_traffic journals one intent/outcome pair per weight itself.
    const bool self_journaled = st == Step::kShiftTraffic;
    json intent = json::object();
    if (st == Step::kPreflight) {
      // What resume() needs to run the rest of this deploy again.
      intent = json{
          {"artifact", req.artifact.string()}, {"sha256", req.sha256}, {"strategy", dep.strategy}};
      if (host_count() > 1) intent["hosts"] = s.host.host_names();
    }
    if (!self_journaled) MD_TRY_STATUS(journal(step_name(st), "intent", "", std::move(intent)));
    Result<StepDone> r = run_step(st);
    const Millis took = std::chrono::duration_cast<Millis>(s.clock.mono() - began);
    if (fault_hit) return fail(Errc::kCancelled, "fault injected");
    const bool by_controls = std::exchange(control_abort, false);
    if (!r && r.error().code() == Errc::kCancelled && !by_controls && o.interrupted &&
        o.interrupted->load())
      return stop_interrupted(st, r.error());
    if (lease && lease->lost())
      return fail(Errc::kConflict,
                  fmt::format("lost the lock of {}: stopped at {}", env.name, step_name(st)));
    if (r) {
      if (!self_journaled) {
        json detail = r->detail;
        if (!r->note.empty()) detail["note"] = r->note;
        state::Batch b;
        b.upsert_releases = std::move(r->releases);
        b.outbox = std::move(r->outbox);
        b.upsert_deployment = std::move(r->deployment);
        MD_TRY_STATUS(journal(step_name(st), "outcome", r->outcome, detail, std::move(b)));
      }
      timings.push_back({st, r->outcome, took, r->note});
      progress(ProgressKind::kStepDone, st, r->note, r->outcome, took);
      st = t.on_ok;
      continue;
    }
    const Error& e = r.error();
    if (e.code() == Errc::kConflict && lease && lease->lost()) return tl::unexpected(e);
    if (!self_journaled) {
      Status js = journal(step_name(st), "outcome", "failed", json{{"error", e.what()}});
      if (!js) return tl::unexpected(js.error());
    }
    timings.push_back({st, "failed", took, e.what()});
    if (t.fatal) {
      if (!failing) {
        failing = true;
        failure = fmt::format("{}: {}", step_name(st), e.what());
      }
      progress(ProgressKind::kStepDone, st, e.what(), "failed", took);
      st = t.on_fail;
    } else {
      progress(ProgressKind::kWarning, st, e.what(), "failed", took);
      st = t.on_ok;
    }
  }
  lease.reset();
  Outcome out;
  out.deployment = dep;
  out.steps = timings;
  out.switch_time = switch_time;
  out.probe_time = probe_time;
  if (host_count() > 1) {
    out.spread_time = spread_time;
    out.hosts = s.host.host_names();
  }
  progress(ProgressKind::kEnd, Step::kDone, dep.reason,
           std::string(state::status_name(dep.status)));
  return out;
}

Result<Outcome> Deployer::Impl::stop_interrupted(Step st, const Error& e) {
  // WHY not the failure path: the agent may be the thing that hangs (every
  // rollback call would hang too), and the operator asked to stop now. The
  // record is what a dead controller leaves, with the intent closed the way
  // a resumer closes it, so recovery runs the step again.
  MD_TRY_STATUS(journal(step_name(st), "outcome", "failed",
                        json{{"interrupted", true}, {"error", e.what()}}));
  lease.reset();
  progress(ProgressKind::kWarning, st, "interrupted by a signal", "failed");
  return fail(
      Errc::kCancelled,
      fmt::format("interrupted by a signal during {} of {} {} (deployment {}): stopped there; "
                  "`meshdeploy deploy --resume --env {}` finishes it, the next deploy or "
                  "rollback rolls it back first",
                  step_name(st), dep.kind, dep.version, dep.id, env.name));
}

// ---- entry points ------------------------------------------------------------

Status Deployer::Impl::take_lock(const std::string& deployment_id) {
  if (lease) return ok();
  auto l = Lease::acquire(
      s.store, env.name, o.holder, deployment_id, o.lock_ttl, s.clock,
      [this](const std::string& m) { progress(ProgressKind::kNote, Step::kPreflight, m); });
  if (!l) return tl::unexpected(l.error());
  lease = std::move(*l);
  return ok();
}

Status Deployer::Impl::take_lock_settling(const std::string& deployment_id) {
  MD_TRY_STATUS(take_lock(deployment_id));
  if (auto dead = MD_TRY(s.store.running(env.name))) {
    Result<Outcome> settled = fail(Errc::kInternal, "");
    MD_TRY_STATUS(recover(*dead, ResumeMode::kRollBack, &settled));
    if (!settled) return tl::unexpected(settled.error());
    MD_TRY_STATUS(take_lock(deployment_id));
  }
  return ok();
}

state::Release Deployer::Impl::release_row(const std::string& version, std::string state) const {
  state::Release rel;
  rel.environment = env.name;
  rel.version = version;
  rel.state = std::move(state);
  if (version == new_version()) rel.artifact_sha256 = req.sha256;
  return rel;
}

Status Deployer::Impl::start_record(const std::string& audit_action) {
  state::Batch b;
  b.upsert_deployment = dep;
  state::AuditEntry a;
  a.actor = dep.actor;
  a.action = audit_action;
  a.environment = env.name;
  a.target = dep.version;
  a.detail = to_json_text(json{{"deployment_id", dep.id},
                               {"previous_version", dep.previous_version},
                               {"strategy", dep.strategy}});
  b.audit.push_back(std::move(a));
  MD_TRY_STATUS(commit(b));
  t0 = s.clock.mono();
  progress(ProgressKind::kBegin, Step::kPreflight,
           fmt::format("{} {} to {}{}{}", dep.kind, dep.version, env.name,
                       dep.previous_version.empty() ? "" : " (from " + dep.previous_version + ")",
                       dep.kind == "deploy" ? ", " + dep.strategy : ""));
  return ok();
}

namespace {

std::string strategy_name(config::StrategyKind k) {
  return k == config::StrategyKind::kCanary ? "canary" : "blue_green";
}

PlanInput plan_input(const config::Environment& env, Kind kind, config::StrategyKind strategy,
                     bool has_live, bool migrations) {
  PlanInput in;
  in.kind = kind;
  in.strategy = strategy;
  in.canary_steps = env.strategy.steps;
  in.has_live = has_live;
  for (const config::Service& sv : env.services)
    if (sv.kind == config::ServiceKind::kWorker) in.has_workers = true;
  in.migrations_enabled = migrations;
  in.watch_window = env.strategy.watch_window;
  in.rollback_window = env.rollback_window;
  in.hooks = env.hooks;
  return in;
}

// The request a deploy was started with, from its first preflight intent.
DeployRequest request_from_journal(const std::vector<state::JournalEntry>& j,
                                   const state::Deployment& d) {
  DeployRequest r;
  r.version = d.version;
  r.strategy =
      d.strategy == "canary" ? config::StrategyKind::kCanary : config::StrategyKind::kBlueGreen;
  for (const state::JournalEntry& e : j) {
    if (e.step != "preflight" || e.phase != "intent") continue;
    json x = json::parse(e.detail, nullptr, false);
    if (!x.is_object()) break;
    r.artifact = x.value("artifact", std::string());
    r.sha256 = x.value("sha256", std::string());
    break;
  }
  return r;
}

}  // namespace

Status Deployer::Impl::recover(const state::Deployment& dead, ResumeMode mode,
                               Result<Outcome>* out) {
  reset_run();
  dep = dead;
  auto j = MD_TRY(s.store.journal(dead.id));
  req = request_from_journal(j, dead);
  const ResumeDecision d = decide_resume(j, mode, !dead.previous_version.empty());
  t0 = s.clock.mono();
  progress(ProgressKind::kBegin, Step::kPreflight,
           fmt::format("resuming {} {} of {} ({}): {}", dead.kind, dead.version, dead.id,
                       d.interrupted ? "died during " + std::string(step_name(*d.interrupted))
                                     : "died between steps",
                       d.summary));
  if (d.interrupted) {
    MD_TRY_STATUS(
        journal(step_name(*d.interrupted), "outcome", "failed",
                json{{"interrupted", true}, {"error", "the controller died during this step"}}));
  }
  MD_TRY_STATUS(journal("resume", "intent", "",
                        json{{"by", o.holder},
                             {"mode", mode == ResumeMode::kFinish ? "finish" : "rollback"},
                             {"next", step_name(d.next)},
                             {"summary", d.summary}}));
  MD_TRY_STATUS(journal("resume", "outcome", "ok", json::object()));
  failing = d.failing;
  traffic_moved = d.traffic_moved;
  weight_done = d.weight_done;
  failure = d.failure;
  // A rollback that went through already put traffic back.
  for (const state::JournalEntry& e : j)
    if (e.step == "rollback_traffic" && e.phase == "outcome" && e.outcome == "ok")
      rolled_back = true;
  const Kind kind = dead.kind == "rollback" ? Kind::kRollback : Kind::kDeploy;
  plan = plan_steps(
      plan_input(env, kind, *req.strategy, !dead.previous_version.empty(), s.migrator != nullptr));
  build_launch();
  *out = run_from(d.next);
  return ok();
}

Result<Outcome> Deployer::Impl::deploy(const DeployRequest& r) {
  MD_TRY_STATUS(agent::check_version(r.version));
  if (web_count() == 0)
    return fail(Errc::kInvalidArgument,
                fmt::format("environment {} has no web service: meshdeploy deploys web services "
                            "behind its proxy",
                            env.name));
  const std::string id = new_deployment_id(s.clock.now());
  MD_TRY_STATUS(take_lock_settling(id));
  reset_run();
  req = r;
  auto hv = view_host();
  if (!hv && hv.error().code() == Errc::kCancelled) return tl::unexpected(hv.error());  // a signal
  std::string live = hv ? hv->live() : "";
  if (!hv) {
    // Preflight reports the unreachable agent; the plan needs the old version.
    auto past = MD_TRY(s.store.deployments(env.name, 50));
    for (const state::Deployment& d : past)
      if (d.status == state::DeployStatus::kSucceeded) {
        live = d.version;
        break;
      }
  }
  if (live == r.version)
    return fail(Errc::kAlreadyExists,
                fmt::format("{} is already live in {}; build a new version, or use "
                            "`meshdeploy rollback`",
                            r.version, env.name));
  const config::StrategyKind strategy = r.strategy.value_or(env.strategy.kind);
  dep.id = id;
  dep.environment = env.name;
  dep.kind = "deploy";
  dep.version = r.version;
  dep.previous_version = live;
  dep.strategy = strategy_name(strategy);
  dep.actor = o.actor;
  dep.trigger = o.trigger;
  dep.status = state::DeployStatus::kRunning;
  dep.started_at = s.clock.now();
  plan = plan_steps(plan_input(env, Kind::kDeploy, strategy, !live.empty(), s.migrator != nullptr));
  build_launch();
  MD_TRY_STATUS(start_record("deploy.start"));
  return run_from(Step::kPreflight);
}

Result<Outcome> Deployer::Impl::resume() {
  auto dead = MD_TRY(s.store.running(env.name));
  if (!dead)
    return fail(Errc::kNotFound, fmt::format("no interrupted deploy in {} to resume", env.name));
  MD_TRY_STATUS(take_lock(dead->id));
  // The lock is ours now: the deploy is still running only if its controller died.
  Result<Outcome> out = fail(Errc::kInternal, "");
  MD_TRY_STATUS(recover(*dead, ResumeMode::kFinish, &out));
  return out;
}

}  // namespace md::deploy
