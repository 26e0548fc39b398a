// The agent's lifecycle: open the root, restore from the state file, run the
// supervisor's threads, serve, stop. Plus the status views.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "agent/agent_impl.h"
#include "agent/disk_need.h"
#include "agent/root.h"
#include "core/fs.h"
#include "core/guard.h"
#include "core/hash.h"
#include "core/process.h"
#include "core/systemd.h"
#include "supervisor/log_writer.h"
#include "supervisor/proc_scan.h"

namespace md::agent {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

http::Router make_router(Agent::Impl& a);          // server.cc
http::Router make_metrics_router(Agent::Impl& a);  // server.cc: GET /metrics only

bool in_role(Role role, const config::Service& svc) {
  switch (role) {
    case Role::kAll:
      return true;
    case Role::kWeb:
      return svc.kind == config::ServiceKind::kWeb;
    case Role::kWorkers:
      return svc.kind == config::ServiceKind::kWorker;
  }
  return true;
}

const config::Service* find_service(const SavedRelease& rel, const std::string& name) {
  for (const auto& s : rel.services)
    if (s.name == name) return &s;
  return nullptr;
}

// ---- helpers ---------------------------------------------------------------------

stdfs::path Agent::Impl::secrets_path(const std::string& version) const {
  return run_dir / (version + ".secrets");
}

supervisor::ProcessSpec Agent::Impl::process_spec(const SavedRelease& rel,
                                                  const config::Service& svc, int index,
                                                  const secrets::SecretMap& secrets) const {
  supervisor::ProcessSpec p;
  p.release = rel.version;
  p.service = svc.name;
  p.index = index;
  p.kind = svc.kind;
  p.command = svc.command;
  p.cwd = store->release_dir(rel.version);
  // A clean environment: the basics of the agent's own, then the release's.
  for (const char* name : {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"})
    if (const char* v = std::getenv(name)) p.env[name] = v;
  // WHY: a release must be reachable only through the proxy; servers that
  // read HOST (Node's adapter-node, many others) bind every address without
  // it. A service's own env may still set HOST.
  p.env["HOST"] = "127.0.0.1";
  for (const auto& [k, v] : rel.env) p.env[k] = v;
  for (const auto& [k, v] : svc.env) p.env[k] = v;
  std::string name = svc.name + "." + std::to_string(index);
  p.env["MESHDEPLOY_VERSION"] = rel.version;
  p.env["MESHDEPLOY_ENV"] = rel.environment;
  p.env["MESHDEPLOY_SERVICE"] = svc.name;
  p.env["MESHDEPLOY_PROCESS"] = name;
  p.env["MESHDEPLOY_RELEASE_DIR"] = p.cwd.string();
  if (!rel.deployment_id.empty()) p.env["MESHDEPLOY_DEPLOYMENT_ID"] = rel.deployment_id;
  // WHY: marks every process of this root, so a restarted agent can find
  // one it started but never recorded (crash between spawn and save).
  p.env["MESHDEPLOY_AGENT_ROOT"] = root.string();
  for (const auto& n : rel.secret_names)
    if (auto it = secrets.find(n); it != secrets.end()) p.secret_env.emplace(n, it->second);
  p.health = svc.health;
  p.stop_grace = svc.stop_grace;
  p.log_file = logs_dir / rel.version / (name + ".log");
  p.secrets_file = secrets_path(rel.version);
  return p;
}

proxy::ServiceSpec Agent::Impl::proxy_spec(const SavedRelease& rel,
                                           const config::Service& svc) const {
  proxy::ServiceSpec s;
  s.name = svc.name;
  s.host = svc.host;
  s.path_prefix = svc.path_prefix.empty() ? "/" : svc.path_prefix;
  s.health.path = svc.health.path;
  s.health.interval = svc.health.interval;
  // WHY min: the proxy wants timeout <= interval; the config's defaults
  // (1 s interval, 2 s timeout) are about the supervisor's start-up probes.
  s.health.timeout = std::min(svc.health.timeout, svc.health.interval);
  s.health.healthy_threshold = std::max(1, svc.health.healthy_threshold);
  s.health.unhealthy_threshold = std::max(1, svc.health.unhealthy_threshold);
  s.sticky_cookie = rel.sticky_cookie;
  s.sticky_header = rel.sticky_header;
  s.drain_deadline = Millis(rel.drain_deadline_ms);
  return s;
}

std::vector<proxy::Endpoint> Agent::Impl::targets(const std::string& version,
                                                  const std::string& service) const {
  std::vector<proxy::Endpoint> out;
  for (const auto& p : sup->status()) {
    if (p.release != version || p.service != service || p.port <= 0) continue;
    if (p.state == supervisor::State::kStopped || p.state == supervisor::State::kStopping ||
        p.state == supervisor::State::kFailed)
      continue;
    out.push_back({"127.0.0.1", static_cast<uint16_t>(p.port)});
  }
  return out;
}

Status Agent::Impl::persist() {
  std::lock_guard lock(mu);
  saved_generation = sup->generation();
  auto procs = sup->status();
  for (auto& [v, rel] : state.releases) rel.processes.clear();
  for (const auto& p : procs) {
    auto it = state.releases.find(p.release);
    if (it == state.releases.end()) continue;
    it->second.processes.push_back({p.service, p.index, p.port, p.ref,
                                    std::string(supervisor::state_name(p.state)), p.error,
                                    p.restarts});
    if (p.port > 0) port_version[p.port] = p.release;
  }
  auto st = save_state(state_file, state);
  if (!st) kLog.error("cannot save the state file: {}", st.error().what());
  return st;
}

// ---- views -------------------------------------------------------------------------

namespace {

ProcessInfo process_info(const supervisor::ProcessStatus& p) {
  ProcessInfo i;
  i.name = p.service + "." + std::to_string(p.index);
  i.service = p.service;
  i.index = p.index;
  i.web = p.kind == config::ServiceKind::kWeb;
  i.state = std::string(supervisor::state_name(p.state));
  i.healthy = p.healthy;
  i.port = p.port;
  i.pid = p.ref.pid;
  i.log_pid = p.ref.log_pid;
  i.restarts = p.restarts;
  i.last_exit = p.last_exit;
  i.error = p.error;
  if (p.started_at != SysTime{}) i.started_at = format_time(p.started_at);
  i.adopted = p.adopted;
  return i;
}

}  // namespace

Result<ReleaseInfo> Agent::Impl::release_info(const std::string& version) const {
  AgentStatus st = status();
  for (auto& r : st.releases)
    if (r.version == version) return r;
  return fail(Errc::kNotFound, "no release " + version + " on this host");
}

AgentStatus Agent::Impl::status() const {
  AgentStatus st;
  st.agent_version = opts.agent_version;
  st.pid = ::getpid();
  st.root = root.string();
  for (const auto& e : proxy->listening()) st.listen.push_back(e.str());
  st.tls_cert = opts.tls_cert.string();
  st.tls_key = opts.tls_key.string();
  st.tls_cert_sha256 = tls_cert_sha256;
  st.started_at = format_time(started_at);
  if (auto free = disk_free(root)) {
    st.disk_free_bytes = free->bytes;
    st.disk_free_inodes = free->inodes;
  }
  st.adopted = adopted;
  st.containment = launcher->containment();

  std::map<std::string, ReleaseInfo> by_version;
  if (auto stored = store->list())
    for (const auto& s : *stored)
      by_version[s.version] =
          ReleaseInfo{s.version, s.sha256, s.unpacked_at_ms, true, "", 0, {}, ""};
  std::map<std::string, ServiceRoute> routes;
  {
    std::lock_guard lock(mu);
    for (const auto& [v, a] : state.artifacts) {
      auto& r = by_version[v];
      r.version = v;
      if (r.sha256.empty()) r.sha256 = a.sha256;
    }
    for (const auto& [v, rel] : state.releases) {
      auto& r = by_version[v];
      r.version = v;
      if (r.sha256.empty()) r.sha256 = rel.sha256;
      if (rel.warm_until_ms > 0) r.warm_until = format_time(from_unix_ms(rel.warm_until_ms));
    }
    for (const auto& [s, r] : state.routes) {
      routes[s] = ServiceRoute{r.live, r.canary, r.canary_weight};
      st.routes.push_back(
          RouteInfo{s, "", "/", r.live, r.canary, r.canary_weight, 0, 0, r.maintenance});
    }
  }
  for (const auto& p : sup->status()) {
    auto& r = by_version[p.release];
    r.version = p.release;
    r.processes.push_back(process_info(p));
  }
  st.weights = weights_of(routes);
  for (auto& [v, r] : by_version) {
    auto w = st.weights.find(v);
    r.weight = w == st.weights.end() ? 0 : w->second;
    for (const auto& [s, route] : routes) {
      if (route.live == v)
        r.traffic = "live";
      else if (route.canary == v && r.traffic.empty())
        r.traffic = "canary";
    }
  }
  for (auto& ri : st.routes) {
    if (auto s = proxy->status(ri.service)) {
      ri.host = s->spec.host;
      ri.path_prefix = s->spec.path_prefix;
      if (s->live) ri.live_set = s->live->id;
      if (s->canary) ri.canary_set = s->canary->id;
    }
  }
  for (auto& [v, r] : by_version) st.releases.push_back(std::move(r));
  std::stable_sort(st.releases.begin(), st.releases.end(),
                   [](const ReleaseInfo& a, const ReleaseInfo& b) {
                     return a.unpacked_at_ms < b.unpacked_at_ms;
                   });
  return st;
}

// ---- lifecycle -----------------------------------------------------------------------

Status Agent::Impl::open() {
  if (opts.root.empty()) return fail(Errc::kInvalidArgument, "agent: --root is required");
  if (opts.log_writer_argv.empty())
    return fail(Errc::kInvalidArgument, "agent: no log writer command");
  root = MD_TRY(claim_root(opts.root));
  socket = opts.socket.empty() ? root / "agent.sock" : opts.socket;
  state_file = root / "agent.state";
  logs_dir = root / "logs";
  run_dir = root / "run";
  state_service = std::make_unique<StateService>(root / "state.db", clock);
  if (!opts.tls_cert.empty()) {
    // WHY absolute and hashed: a deploy compares them with its config's
    // proxy.tls_cert (deploy/host_check.cc), from another working directory.
    opts.tls_cert = stdfs::absolute(opts.tls_cert);
    opts.tls_key = stdfs::absolute(opts.tls_key);
    tls_cert_sha256 = MD_TRY_CTX(sha256_file_hex(opts.tls_cert), "agent: --tls-cert");
  }
  MD_TRY_STATUS(fs::ensure_dir(logs_dir, 0700));
  MD_TRY_STATUS(fs::ensure_dir(run_dir, 0700));

  stdfs::path lock_path = root / "agent.lock";
  lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0)
    return fail(Errc::kIo, "open " + lock_path.string() + ": " + std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::string holder = fs::read_file(lock_path).value_or("");
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    return fail(Errc::kConflict, "another agent runs on " + root.string() +
                                     (holder.empty() ? "" : " (pid " + holder + ")"));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0)
    kLog.warn("cannot write the agent pid into {}", lock_path.string());

  auto loaded = load_state(state_file);
  if (loaded)
    state = std::move(*loaded);
  else if (loaded.error().code() != Errc::kNotFound)
    return fail(std::move(loaded.error())
                    .with_context("agent: refusing to start (processes it lists would be "
                                  "orphaned); move the file away to "
                                  "start empty"));
  store.emplace(MD_TRY(ReleaseStore::open(root)));
  // One cgroup tree per agent root: two agents in one cgroup (tests, two
  // roots on a host) never touch each other's processes.
  launcher = std::make_unique<supervisor::RealLauncher>(
      supervisor::LauncherOptions{opts.log_writer_argv, logs_dir / "log-writer.err",
                                  "meshdeploy-" + short_checksum(root.string()).substr(0, 12)});
  sup = std::make_unique<supervisor::Supervisor>(*launcher, prober, clock, opts.restart);
  sup->on_change([this] {
    exits.wake();
    health_wake.notify();
  });
  return ok();
}

Status Agent::Impl::restore() {
  // 1. The proxy, serving the saved live routes from its first accept().
  proxy::Options po;
  for (const auto& addr : opts.listen)
    po.listeners.push_back({addr, opts.tls_cert, opts.tls_key, {}});
  if (!opts.inherited_sockets.empty()) {
    MD_TRY_STATUS(proxy::adopt_listen_sockets(po.listeners, std::move(opts.inherited_sockets)));
    opts.inherited_sockets.clear();
    for (auto& l : po.listeners) {
      l.tls_cert_file = opts.tls_cert;
      l.tls_key_file = opts.tls_key;
    }
  }
  po.threads = opts.proxy_threads;
  po.limits.max_connections = opts.max_connections;
  for (const auto& [service, route] : state.routes) {
    auto rel = state.releases.find(route.live);
    if (route.live.empty() || rel == state.releases.end()) continue;
    const config::Service* svc = find_service(rel->second, service);
    if (!svc) continue;
    proxy::StaticRoute sr;
    sr.spec = proxy_spec(rel->second, *svc);
    for (const auto& p : rel->second.processes)
      if (p.service == service && p.port > 0 && p.state != "stopped" && p.state != "failed")
        sr.targets.push_back({"127.0.0.1", static_cast<uint16_t>(p.port)});
    if (!sr.targets.empty()) po.routes.push_back(std::move(sr));
  }
  proxy = MD_TRY_CTX(proxy::Proxy::start(po), "agent: start the proxy");

  // 2. The processes of the previous agent.
  for (const auto& [v, rel] : state.releases) {
    if (rel.processes.empty()) continue;
    auto secrets = supervisor::read_secrets_file(secrets_path(v));
    if (!secrets && !rel.secret_names.empty())
      kLog.warn("release {}: {}; restarted processes will lack their secrets", v,
                secrets.error().what());
    for (const auto& p : rel.processes) {
      const config::Service* svc = find_service(rel, p.service);
      if (!svc) continue;
      auto saved = supervisor::parse_state(p.state).value_or(supervisor::State::kStarting);
      sup->adopt(process_spec(rel, *svc, p.index, secrets.value_or(secrets::SecretMap{})), p.ref,
                 p.port, saved, p.restarts, p.error);
      if (p.port > 0) port_version[p.port] = v;
      auto now = sup->status(v + "/" + p.service + "." + std::to_string(p.index));
      if (now && now->ref.pid > 0 && now->adopted) ++adopted;
    }
  }
  kill_orphans();

  // 3. Canaries and maintenance on top of the live routes.
  for (auto& [service, route] : state.routes) {
    if (!route.canary.empty() && route.canary_weight > 0) {
      auto t = targets(route.canary, service);
      auto r = t.empty() ? Result<proxy::SwitchResult>(fail(Errc::kNotFound, "no targets"))
                         : proxy->set_canary(service, t, route.canary_weight,
                                             proxy::DeployOptions{10000ms, 50ms, false});
      if (!r) {
        kLog.error("{}: cannot restore the canary {} at {}%: {}; all traffic to {}", service,
                   route.canary, route.canary_weight, r.error().what(), route.live);
        route.canary.clear();
        route.canary_weight = 0;
      }
    }
    if (route.maintenance)
      if (auto st = proxy->set_maintenance(service, true); !st)
        kLog.error("{}: cannot restore maintenance: {}", service, st.error().what());
  }
  if (!state.releases.empty())
    kLog.info("restored {} release(s), {} route(s); re-adopted {} running process(es)",
              state.releases.size(), state.routes.size(), adopted);
  return persist();
}

void Agent::Impl::kill_orphans() {
  std::set<pid_t> known;
  std::set<std::string> known_cgroups;
  for (const auto& p : sup->status()) {
    if (p.ref.pid > 0) known.insert(p.ref.pid);
    if (!p.ref.cgroup.empty()) known_cgroups.insert(p.ref.cgroup);
  }
  // WHY cgroups too: a daemon that cleared its environment (env -i) carries
  // no mark, but stays in the cgroup of the run that started it.
  launcher->stop_unknown_cgroups(known_cgroups, 5s);
  std::vector<pid_t> orphans;
  for (pid_t pid : supervisor::marked_session_leaders("MESHDEPLOY_AGENT_ROOT=" + root.string()))
    if (!known.count(pid)) orphans.push_back(pid);
  if (orphans.empty()) return;
  for (pid_t pid : orphans) {
    kLog.warn("pid {} belongs to this root but to no release the state knows: stopping it", pid);
    (void)proc::signal_group(pid, SIGTERM);
  }
  MonoTime deadline = clock.mono() + 5s;
  for (pid_t pid : orphans) {
    while (!supervisor::group_members(pid).empty() && clock.mono() < deadline)
      clock.sleep_for(20ms);
    (void)proc::signal_group(pid, SIGKILL);
  }
}

// Keeps the proxy's live and canary sets in line with the processes (a web
// process restarted on another port because its own was taken).
bool Agent::Impl::reconcile_targets() {
  std::unique_lock op(op_mu, std::try_to_lock);
  if (!op.owns_lock()) return false;
  for (const auto& [service, route] : current_routes()) {
    auto st = proxy->status(service);
    if (!st) continue;
    auto endpoints = [](const std::optional<proxy::SetStatus>& set) {
      std::vector<proxy::Endpoint> e;
      if (set)
        for (const auto& t : set->targets) e.push_back(t.endpoint);
      std::sort(e.begin(), e.end());
      return e;
    };
    auto want_live = targets(route.live, service);
    std::sort(want_live.begin(), want_live.end());
    if (!route.live.empty() && !want_live.empty() && want_live != endpoints(st->live)) {
      kLog.info("{}: targets of {} changed; updating the live set", service, route.live);
      if (auto r = proxy->deploy(service, want_live, proxy::DeployOptions{30000ms, 100ms, false});
          !r)
        kLog.warn("{}: cannot update the live set: {}", service, r.error().what());
    }
    auto want_canary = targets(route.canary, service);
    std::sort(want_canary.begin(), want_canary.end());
    if (!route.canary.empty() && !want_canary.empty() && want_canary != endpoints(st->canary)) {
      kLog.info("{}: targets of {} changed; updating the canary set", service, route.canary);
      if (auto r = proxy->set_canary(service, want_canary, route.weight,
                                     proxy::DeployOptions{30000ms, 100ms, false});
          !r)
        kLog.warn("{}: cannot update the canary set: {}", service, r.error().what());
    }
  }
  return true;
}

void Agent::Impl::start_threads() {
  // WHY these bounds: the supervisor loop also reaps log writers and proves
  // it is alive to the watchdog, so it goes round at least every kIdleTick;
  // the other fallbacks only cover a missed notify.
  constexpr Millis kIdleTick = 1s;
  const Millis watchdog = sd::watchdog_interval();
  const Millis idle_tick = watchdog > 0ms ? std::min<Millis>(kIdleTick, watchdog / 4) : kIdleTick;
  auto until = [this](std::optional<MonoTime> at, Millis cap) {
    if (!at) return cap;
    return std::clamp(std::chrono::ceil<Millis>(*at - clock.mono()), 0ms, cap);
  };
  threads.emplace_back([this, idle_tick, until] {
    while (!quitting) {
      last_tick_ms = clock.mono().time_since_epoch() / 1ms;
      guarded(kLog, "supervisor tick", [&] {
        sup->tick();
        if (sup->generation() != saved_generation) {
          (void)persist();
          reconcile_wake.notify();
        }
      });
      exits.wait(sup->leaders(), until(sup->next_tick(), idle_tick));
    }
  });
  threads.emplace_back([this, until] {
    while (health_wake.wait_for(until(sup->next_probe(), 60s)))
      guarded(kLog, "health checks", [&] { sup->health_round(); });
  });
  threads.emplace_back([this] {
    bool retry = false;
    while (reconcile_wake.wait_for(retry ? 500ms : 30s))
      guarded(kLog, "route reconciliation", [&] { retry = !reconcile_targets(); });
  });
  // systemd's WatchdogSec=: ping at half the interval while the supervisor
  // loop goes round; a stuck loop stops the pings and systemd restarts us.
  if (watchdog > 0ms)
    threads.emplace_back([this, watchdog] {
      do {
        guarded(kLog, "watchdog ping", [&] {
          int64_t age = clock.mono().time_since_epoch() / 1ms - last_tick_ms.load();
          if (age < watchdog.count())
            sd::notify("WATCHDOG=1");
          else
            kLog.warn("supervisor loop silent for {} ms: no watchdog ping", age);
        });
      } while (quit_wake.wait_for(watchdog / 2));
    });
  // WHY a thread of its own: stopping a release blocks for its stop grace.
  // WHY a fifth of the expiry: an abandoned upload goes within 1.2 times its
  // expiry, and with the default (10 min) an idle agent looks once a minute.
  const Millis upload_check = std::clamp<Millis>(opts.upload_expiry / 5, 1s, 60s);
  threads.emplace_back([this, until, upload_check] {
    MonoTime next_uploads = clock.mono() + upload_check;
    auto next = [&] {
      auto warm = next_warm_deadline();
      return warm && *warm < next_uploads ? *warm : next_uploads;
    };
    while (retire_wake.wait_for(until(next(), 60s))) {
      guarded(kLog, "keep-warm retirement", [&] { retire_expired(); });
      if (clock.mono() >= next_uploads) {
        guarded(kLog, "upload expiry", [&] { expire_uploads(); });
        next_uploads = clock.mono() + upload_check;
      }
    }
  });
}

void Agent::Impl::stop_threads() {
  quitting = true;
  exits.wake();
  for (Wakeup* w : {&health_wake, &reconcile_wake, &retire_wake, &quit_wake}) w->stop();
  for (auto& t : threads) t.join();
  threads.clear();
}

// ---- Agent -------------------------------------------------------------------------

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Agent>> Agent::start(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  impl->started_at = real_clock().now();
  MD_TRY_STATUS(impl->open());
  MD_TRY_STATUS(impl->restore());
  impl->start_threads();
  std::unique_ptr<Agent> agent(new Agent(std::move(impl)));
  http::ServerOptions so;
  so.socket_path = agent->impl_->socket;
  so.socket_mode = 0600;
  so.handler_threads = 8;
  so.max_body_bytes = 9 << 20;  // an upload chunk (4 MiB) and then some
  auto server = http::UnixServer::start(so, make_router(*agent->impl_));
  if (!server) {
    agent->stop(false);
    return fail(std::move(server.error()).with_context("agent: control socket"));
  }
  agent->impl_->server = std::move(*server);
  if (!agent->impl_->opts.metrics_listen.empty()) {
    http::ServerOptions mo;
    mo.tcp_address = agent->impl_->opts.metrics_listen;
    mo.handler_threads = 1;
    mo.max_body_bytes = 1 << 10;  // GET only
    auto metrics = http::UnixServer::start(mo, make_metrics_router(*agent->impl_));
    if (!metrics) {
      agent->stop(false);
      return fail(std::move(metrics.error()).with_context("agent: --metrics-listen"));
    }
    agent->impl_->metrics_server = std::move(*metrics);
    kLog.info("metrics on http://{}/metrics (port {})", mo.tcp_address,
              agent->impl_->metrics_server->tcp_port());
  }
  kLog.info("agent on {} (pid {}), control socket {}", agent->impl_->root.string(), ::getpid(),
            agent->impl_->socket.string());
  sd::notify("READY=1");
  return agent;
}

bool Agent::wait() {
  std::unique_lock lock(impl_->wake_mu);
  impl_->wake_cv.wait(lock, [&] { return impl_->stop_requested; });
  return impl_->stop_all;
}

void Agent::request_stop(bool all) {
  std::lock_guard lock(impl_->wake_mu);
  impl_->stop_requested = true;
  impl_->stop_all = impl_->stop_all || all;
  impl_->wake_cv.notify_all();
}

bool Agent::restart_requested() const {
  std::lock_guard lock(impl_->wake_mu);
  return impl_->restart;
}

std::vector<int> Agent::stop_for_restart(Millis grace) {
  Impl& a = *impl_;
  if (a.stopped || !a.proxy) return {};
  sd::notify("RELOADING=1");
  std::vector<int> fds = a.proxy->duplicate_listeners();
  a.restarting = true;
  stop(false, grace);
  return fds;
}

void Agent::stop(bool all, Millis grace) {
  Impl& a = *impl_;
  if (a.stopped) return;
  a.stopped = true;
  if (!a.restarting) sd::notify("STOPPING=1");
  if (a.server) a.server->stop();
  if (a.metrics_server) a.metrics_server->stop();
  {
    std::unique_lock lock(a.wake_mu);
    std::thread waker = std::move(a.waker);
    lock.unlock();
    if (waker.joinable()) waker.join();
  }
  if (all && a.sup) (void)a.stop_everything();
  a.stop_threads();
  if (a.sup) (void)a.persist();
  if (a.proxy) a.proxy->stop(grace);
  if (a.lock_fd >= 0) ::close(a.lock_fd);
  a.lock_fd = -1;
  kLog.info(all ? "agent stopped with every release"
                : "agent stopped; release processes keep running");
}

Agent::~Agent() { stop(false, Millis(0)); }

AgentStatus Agent::status() const { return impl_->status(); }
const stdfs::path& Agent::socket_path() const { return impl_->socket; }

}  // namespace md::agent
