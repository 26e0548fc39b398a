// Proxy: the control plane. Owns the model of services and target sets,
// persists it, builds immutable routing tables from it and hands them to the
// workers; waits for health before switching and for draining after.
#include "proxy/proxy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/log.h"
#include "http/http.h"
#include "proxy/health.h"
#include "proxy/state_file.h"
#include "proxy/worker.h"

namespace md::proxy {

namespace {

log::Logger plog("proxy");

constexpr size_t kKeepReplaced = 4;   // replaced sets kept in metrics per service
constexpr Millis kPublishWait{5000};  // for every worker to adopt a new table

struct ServiceRuntime {
  ServiceRecord rec;
  std::shared_ptr<TargetSet> live;
  std::shared_ptr<TargetSet> canary;
  std::shared_ptr<ServiceShared> shared;
  std::deque<std::shared_ptr<TargetSet>> replaced;  // newest first
  bool switching = false;
};

std::string random_instance() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

Result<int> bind_listener(const Endpoint& ep, bool reuseport) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  TargetState probe("", ep, 1);
  MD_TRY_STATUS(probe.resolve());
  ss = probe.addr;
  len = probe.addr_len;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    int e = errno;
    ::close(fd);
    Errc code = e == EADDRINUSE ? Errc::kUnavailable
                : e == EACCES   ? Errc::kPermissionDenied
                                : Errc::kIo;
    return fail(code, "listen on " + ep.str() + ": " + std::strerror(e));
  }
  return fd;
}

// Inherited sockets of one listener spread over the workers: socket i goes
// to worker i % threads; a worker left without one polls a duplicate (the
// same socket: every worker's epoll sees it, the kernel hands each
// connection to one accept). Non-blocking: the workers accept until EAGAIN.
Result<std::vector<std::vector<int>>> share_sockets(const std::vector<int>& fds, int threads) {
  std::vector<std::vector<int>> out(threads);
  for (int fd : fds) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
      return fail(Errc::kIo, std::string("inherited listening socket: ") + std::strerror(errno));
  }
  for (size_t i = 0; i < fds.size(); ++i) out[i % threads].push_back(fds[i]);
  for (int w = static_cast<int>(fds.size()); w < threads; ++w) {
    int d = ::fcntl(fds[w % fds.size()], F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
      int e = errno;
      for (int x = static_cast<int>(fds.size()); x < w; ++x) ::close(out[x][0]);
      return fail(Errc::kIo,
                  std::string("dup of an inherited listening socket: ") + std::strerror(e));
    }
    out[w].push_back(d);
  }
  return out;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

Limits auto_limits(Limits asked, uint64_t nofile, size_t listeners) {
  // WHY at least 16 each: a tiny limit must still leave a usable proxy.
  uint64_t budget = nofile > kReservedFds + 64 ? nofile - kReservedFds : 64;
  uint64_t half = budget / 2;
  if (asked.max_connections == 0)
    asked.max_connections = std::max<uint64_t>(16, half / std::max<size_t>(1, listeners));
  if (asked.max_upstream_connections == 0)
    asked.max_upstream_connections = std::max<uint64_t>(16, half);
  return asked;
}

uint64_t raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 20 : static_cast<uint64_t>(rl.rlim_cur);
}

struct Proxy::Impl {
  Options opts;
  Shared shared;
  std::vector<std::unique_ptr<TlsContext>> tls;
  std::vector<Endpoint> bound;
  std::vector<int> listen_fds;  // GUARDED_BY(mu); owned by the workers' acceptors; cleared by stop
  std::vector<std::unique_ptr<ListenerState>> listeners;  // outlive the workers
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<HealthChecker> health;
  std::unique_ptr<http::UnixServer> admin;
  std::string instance = random_instance();
  SysTime started_at = std::chrono::system_clock::now();

  mutable std::mutex mu;  // guards everything below
  std::map<std::string, ServiceRuntime, std::less<>> services;
  uint64_t next_set_id = 1;
  std::map<std::pair<std::string, std::string>, std::weak_ptr<TargetState>> registry;
  std::shared_ptr<const RouteTable> table;
  bool stopped = false;

  // ---- model helpers (mu held)
  Result<std::shared_ptr<TargetState>> target(const std::string& service, const Endpoint& ep) {
    auto key = std::make_pair(service, ep.str());
    if (auto it = registry.find(key); it != registry.end())
      if (auto sp = it->second.lock()) return sp;
    auto t = std::make_shared<TargetState>(service, ep, shared.workers);
    MD_TRY_STATUS(t->resolve());
    registry[key] = t;
    return t;
  }
  Result<std::shared_ptr<TargetSet>> make_set(const std::string& service,
                                              const std::vector<Endpoint>& eps, uint64_t id) {
    std::vector<std::shared_ptr<TargetState>> ts;
    ts.reserve(eps.size());
    for (const auto& e : eps) ts.push_back(MD_TRY(target(service, e)));
    return std::make_shared<TargetSet>(id, std::move(ts), shared.workers);
  }

  StateRecord record() const {
    StateRecord s;
    s.next_set_id = next_set_id;
    for (const auto& [name, rt] : services) s.services.push_back(rt.rec);
    return s;
  }

  Status persist(const StateRecord& s) {
    if (opts.state_file.empty()) return ok();
    return save_state(opts.state_file, s).map_error([](Error e) {
      return std::move(e).with_context("persist proxy state (nothing changed)");
    });
  }

  // Builds and installs a routing table from the model; waits until every
  // worker adopted it, up to kPublishWait (false, logged, when one did not).
  // (mu held)
  bool publish() {
    auto t = std::make_shared<RouteTable>();
    t->generation = (table ? table->generation : 0) + 1;
    std::set<const TargetState*> used;
    std::set<const TargetSet*> sets;
    std::vector<HealthChecker::Item> items;
    for (auto& [name, rt] : services) {
      auto r = std::make_shared<ServiceRoute>();
      r->spec = rt.rec.spec;
      std::string_view host = rt.rec.spec.host;
      if (host.substr(0, 2) == "*.") {
        r->host_wildcard = true;
        host.remove_prefix(2);
      }
      r->host = std::string(host);
      r->live = rt.live;
      r->canary = rt.canary;
      r->canary_weight = rt.canary ? rt.rec.canary_weight : 0;
      r->maintenance = rt.rec.maintenance;
      if (r->maintenance) {
        r->maintenance_response = maintenance_response(rt.rec.maintenance_page, false);
        r->maintenance_response_close = maintenance_response(rt.rec.maintenance_page, true);
      }
      r->paused = rt.rec.paused;
      r->pause = rt.rec.pause;
      r->shared = rt.shared;
      for (const auto* s : {rt.live.get(), rt.canary.get()}) {
        if (!s) continue;
        sets.insert(s);
        for (const auto& tg : s->targets) {
          if (used.insert(tg.get()).second)
            items.push_back({tg, rt.rec.spec.health,
                             rt.rec.spec.host.substr(0, 2) == "*." ? "" : rt.rec.spec.host});
        }
      }
      t->services.push_back(std::move(r));
    }
    sort_for_matching(t->services);
    // Retire sets that are no longer routed to; mark targets in use.
    if (table)
      for (const auto& s : table->services)
        for (const auto* set : {s->live.get(), s->canary.get()})
          if (set && !sets.count(set)) const_cast<TargetSet*>(set)->retired.store(true);
    for (auto it = registry.begin(); it != registry.end();) {
      auto sp = it->second.lock();
      if (!sp) {
        it = registry.erase(it);
        continue;
      }
      sp->in_use.store(used.count(sp.get()) > 0);
      ++it;
    }
    table = t;
    {
      std::lock_guard lock(shared.table_mu);
      shared.table = t;
      shared.generation.store(t->generation, std::memory_order_release);
    }
    // Every worker adopts it (closes idle connections to dropped targets,
    // arms drain deadlines, releases held requests) before we return.
    auto pending = std::make_shared<std::atomic<int>>(static_cast<int>(workers.size()));
    auto done_mu = std::make_shared<std::mutex>();
    auto done_cv = std::make_shared<std::condition_variable>();
    for (auto& w : workers)
      w->notify_table([pending, done_mu, done_cv] {
        if (pending->fetch_sub(1) == 1) {
          std::lock_guard l(*done_mu);
          done_cv->notify_all();
        }
      });
    bool adopted;
    {
      std::unique_lock l(*done_mu);
      adopted = done_cv->wait_for(l, kPublishWait, [&] { return pending->load() == 0; });
    }
    if (!adopted)
      // WHY not an error: the table is installed and every worker takes it
      // for its next request (the generation moved); what waits is the
      // stuck worker's clean-up (idle pools, drain deadlines, held requests).
      plog.error("a worker did not adopt the new routing table in time; it will when its loop runs",
                 {{"generation", std::to_string(t->generation)},
                  {"workers_behind", std::to_string(pending->load())},
                  {"waited_ms", std::to_string(kPublishWait.count())}});
    if (health) health->set_items(std::move(items));
    return adopted;
  }

  // Commits a change: `apply` edits a copy of the model; the copy is
  // persisted, then installed and published. (mu held)
  template <class Apply>
  Status commit(Apply&& apply) {
    StateRecord before = record();
    auto saved = services;
    uint64_t saved_next = next_set_id;
    Status s = apply();
    if (s) s = persist(record());
    if (!s) {
      services = std::move(saved);
      next_set_id = saved_next;
      return s;
    }
    publish();
    return ok();
  }

  Result<ServiceRuntime*> find(std::string_view name) {
    auto it = services.find(name);
    if (it == services.end())
      return fail(Errc::kNotFound, "no service named '" + std::string(name) + "'");
    return &it->second;
  }

  static void add_replaced(ServiceRuntime& rt, std::shared_ptr<TargetSet> s) {
    if (!s) return;
    rt.replaced.push_front(std::move(s));
    while (rt.replaced.size() > kKeepReplaced) rt.replaced.pop_back();
  }

  // Waits until `sets` have nothing in flight, bounded by the drain deadline
  // (the workers close what is left at the deadline and count it). Not under mu.
  void wait_drain(const std::vector<std::shared_ptr<TargetSet>>& sets, Millis deadline,
                  SwitchResult* r) {
    auto start = std::chrono::steady_clock::now();
    auto hard = start + deadline + Millis(2000);
    for (;;) {
      int64_t active = 0;
      for (const auto& s : sets) active += s->stats.active();
      if (active == 0 || std::chrono::steady_clock::now() >= hard) break;
      real_clock().sleep_for(Millis(5));
    }
    r->closed_streams = 0;
    for (const auto& s : sets) r->closed_streams += s->drain_closed.load();
    int64_t left = 0;
    for (const auto& s : sets) left += s->stats.active();
    r->drained = r->closed_streams == 0 && left == 0;
    r->drain_wait = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
  }

  // Marks a service as switching; kConflict if it already is. (mu held)
  Result<ServiceRuntime*> begin_switch(std::string_view name) {
    ServiceRuntime* rt = MD_TRY(find(name));
    if (rt->switching)
      return fail(Errc::kConflict,
                  "another switch of service '" + std::string(name) + "' is running");
    rt->switching = true;
    return rt;
  }
  void end_switch(std::string_view name) {
    std::lock_guard lock(mu);
    if (auto it = services.find(name); it != services.end()) it->second.switching = false;
  }
  // Ends the switch begun by begin_switch() when it goes out of scope.
  struct SwitchGuard {
    Impl& p;
    std::string_view service;
    ~SwitchGuard() { p.end_switch(service); }
  };

  Result<std::vector<std::shared_ptr<TargetState>>> probe_targets(std::string_view name,
                                                                  const std::vector<Endpoint>& eps,
                                                                  const DeployOptions& o,
                                                                  SwitchResult* r) {
    if (eps.empty()) return fail(Errc::kInvalidArgument, "no targets given");
    for (size_t i = 0; i < eps.size(); ++i) {
      if (eps[i].port == 0)
        return fail(Errc::kInvalidArgument, "target " + eps[i].str() + ": port 0");
      for (size_t j = 0; j < i; ++j)
        if (eps[i] == eps[j])
          return fail(Errc::kInvalidArgument, "target " + eps[i].str() + " is listed twice");
    }
    std::vector<std::shared_ptr<TargetState>> ts;
    HealthCheck hc;
    std::string host;
    {
      std::lock_guard lock(mu);
      ServiceRuntime* rt = MD_TRY(find(name));
      hc = rt->rec.spec.health;
      host = rt->rec.spec.host.substr(0, 2) == "*." ? "" : rt->rec.spec.host;
      for (const auto& e : eps) ts.push_back(MD_TRY(target(std::string(name), e)));
    }
    auto t0 = std::chrono::steady_clock::now();
    MD_TRY_STATUS(wait_healthy(ts, hc, host, o.probe_interval, o.health_timeout));
    r->health_wait = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0);
    for (auto& t : ts) {
      t->healthy.store(true);
      t->ejected_until_ms.store(0);
      t->fail_streak.store(0);
      t->set_error("");
    }
    return ts;
  }

  SetStatus set_status(const TargetSet& s, const char* role) const {
    SetStatus st;
    st.id = s.id;
    st.role = role;
    st.active = s.stats.active();
    int64_t now = mono_ms();
    for (const auto& t : s.targets)
      st.targets.push_back(
          {t->endpoint, t->healthy.load(), t->ejected_until_ms.load() > now, t->error()});
    return st;
  }

  ServiceStatus service_status(const ServiceRuntime& rt) const {
    ServiceStatus s;
    s.spec = rt.rec.spec;
    if (rt.live) s.live = set_status(*rt.live, "live");
    if (rt.canary) {
      s.canary = set_status(*rt.canary, "canary");
      s.canary_weight = rt.rec.canary_weight;
    }
    for (const auto& r : rt.replaced)
      if (r->stats.active() > 0) s.draining.push_back(set_status(*r, "draining"));
    s.maintenance = rt.rec.maintenance;
    s.paused = rt.rec.paused;
    s.pause = rt.rec.pause;
    s.held = rt.shared->held.load();
    return s;
  }

  void stop(Millis grace) {
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      stopped = true;
      listen_fds.clear();
    }
    if (admin) admin->stop();
    for (auto& w : workers) w->begin_stop(grace.count());
    for (auto& w : workers) w->join();
    workers.clear();
    if (health) health->stop();
  }
};

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Proxy::~Proxy() { stop(Millis(0)); }
void Proxy::stop(Millis grace) { impl_->stop(grace); }
std::vector<Endpoint> Proxy::listening() const { return impl_->bound; }

std::vector<int> Proxy::duplicate_listeners() const {
  std::lock_guard lock(impl_->mu);
  std::vector<int> out;
  std::set<std::pair<dev_t, ino_t>> seen;  // a socket shared by workers is handed over once
  for (int fd : impl_->listen_fds) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !seen.insert({st.st_dev, st.st_ino}).second) continue;
    int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d >= 0)
      out.push_back(d);
    else
      plog.warn("cannot duplicate a listening socket", {{"error", std::strerror(errno)}});
  }
  return out;
}

Result<std::unique_ptr<Proxy>> Proxy::start(const Options& o) {
  if (o.listeners.empty()) return fail(Errc::kInvalidArgument, "no listener given");
  if (o.limits.max_head_bytes < 1024 || o.limits.max_head_bytes > size_t{64} * 1024)
    return fail(Errc::kInvalidArgument, "max_head_bytes must be between 1 KiB and 64 KiB");
  if (o.limits.max_headers < 8 || o.limits.max_headers > http::kMaxHeaderFields)
    return fail(Errc::kInvalidArgument, "max_headers must be between 8 and 128");
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  if (threads > kMaxWorkers)
    return fail(Errc::kInvalidArgument, "threads must be at most " + std::to_string(kMaxWorkers));

  // WHY: a peer that vanished must cost an EPIPE, not the process (OpenSSL
  // writes with write(2), which raises SIGPIPE).
  ::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  Impl& p = *impl;
  p.opts = o;
  p.shared.timeouts = o.timeouts;
  // WHY here: the caps below follow from the limit, and a proxy meant to
  // hold many connections must not stop at the common soft limit of 1024.
  uint64_t nofile = raise_open_file_limit();
  p.shared.limits = auto_limits(o.limits, nofile, o.listeners.size());
  p.shared.workers = threads;
  p.shared.batch_writes = o.batch_writes;
  p.shared.buffer_size = std::max<size_t>(size_t{16} * 1024, o.limits.max_head_bytes);

  // The health checks' HTTP client loop now, while descriptors are plenty.
  MD_TRY_STATUS(http::start_client_loop());

  // State first: a bad state file starts nothing.
  std::optional<StateRecord> restored;
  if (!o.state_file.empty()) restored = MD_TRY(load_state(o.state_file));

  // Listeners: one socket per worker (SO_REUSEPORT), all on the same port.
  // Inherited sockets (Listener::sockets) are shared by the workers instead.
  // Until the workers own them, any early return closes them, and the
  // inherited sockets of the listeners not reached yet (ours too).
  struct PendingSockets {
    std::vector<std::vector<ListenSocket>> per_worker;
    const std::vector<Listener>& listeners;
    size_t next_listener = 0;
    ~PendingSockets() {
      for (auto& v : per_worker)
        for (auto& ls : v) ::close(ls.fd);
      for (size_t k = next_listener; k < listeners.size(); ++k)
        for (int fd : listeners[k].sockets) ::close(fd);
    }
  } pending{std::vector<std::vector<ListenSocket>>(threads), o.listeners};
  auto& per_worker = pending.per_worker;
  for (const Listener& l : o.listeners) {
    Endpoint ep = MD_TRY(parse_endpoint(l.address));
    TlsContext* ctx = nullptr;
    if (!l.tls_cert_file.empty() || !l.tls_key_file.empty()) {
      if (l.tls_cert_file.empty() || l.tls_key_file.empty())
        return fail(Errc::kInvalidArgument,
                    "listener " + l.address + ": TLS needs both a certificate and a key");
      p.tls.push_back(MD_TRY(TlsContext::load(l.tls_cert_file, l.tls_key_file)));
      ctx = p.tls.back().get();
    }
    auto& st = p.listeners.emplace_back(std::make_unique<ListenerState>());
    st->address = l.address;
    st->max_connections = static_cast<int64_t>(p.shared.limits.max_connections);
    st->max_per_worker = std::max<int64_t>(1, (st->max_connections + threads - 1) / threads);
    Endpoint bind_ep = ep;
    if (!l.sockets.empty()) {
      auto shared = MD_TRY(share_sockets(l.sockets, threads));
      ++pending.next_listener;
      for (int w = 0; w < threads; ++w)
        for (int fd : shared[w])
          per_worker[w].push_back(ListenSocket{fd, ctx != nullptr, ctx, st.get()});
      bind_ep.port = bound_port(l.sockets[0]);
      p.bound.push_back(bind_ep);
      continue;
    }
    ++pending.next_listener;
    for (int w = 0; w < threads; ++w) {
      int fd = MD_TRY(bind_listener(bind_ep, true));
      if (w == 0) bind_ep.port = bound_port(fd);
      per_worker[w].push_back(ListenSocket{fd, ctx != nullptr, ctx, st.get()});
    }
    p.bound.push_back(bind_ep);
  }

  // The model: restored state, then static routes it does not have.
  {
    std::lock_guard lock(p.mu);
    auto add = [&](ServiceRecord rec) -> Status {
      ServiceRuntime rt;
      rt.shared = std::make_shared<ServiceShared>(threads);
      if (rec.live) rt.live = MD_TRY(p.make_set(rec.spec.name, rec.live->targets, rec.live->id));
      if (rec.canary)
        rt.canary = MD_TRY(p.make_set(rec.spec.name, rec.canary->targets, rec.canary->id));
      rt.rec = std::move(rec);
      p.services[rt.rec.spec.name] = std::move(rt);
      return ok();
    };
    Status s = ok();
    if (restored) {
      p.next_set_id = restored->next_set_id;
      for (auto& r : restored->services)
        if (s) s = add(std::move(r));
    }
    bool added = false;
    for (const StaticRoute& r : o.routes) {
      if (!s) break;
      if (p.services.count(r.spec.name)) {
        plog.info("route from the command line ignored: the state file has this service",
                  {{"service", r.spec.name}});
        continue;
      }
      s = validate(r.spec);
      ServiceRecord rec;
      rec.spec = r.spec;
      rec.live = SetRecord{p.next_set_id++, r.targets};
      if (s) s = add(std::move(rec));
      added = true;
    }
    if (s && added) s = p.persist(p.record());
    if (!s) return fail(s.error());
    p.publish();  // no workers yet: installs the first table
  }

  for (const auto& v : per_worker)
    for (const auto& ls : v) p.listen_fds.push_back(ls.fd);
  for (int w = 0; w < threads; ++w) {
    auto wk = std::make_unique<Worker>(w, &p.shared);
    Status s = wk->init(per_worker[w]);
    per_worker[w].clear();
    if (!s) return fail(s.error());
    p.workers.push_back(std::move(wk));
  }
  for (auto& w : p.workers) w->start();
  p.health = std::make_unique<HealthChecker>();
  {
    std::lock_guard lock(p.mu);
    p.publish();
  }
  auto proxy = std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
  if (!o.admin_socket.empty()) {
    http::Router router;
    add_admin_routes(router, *proxy);
    // WHY 8 handler threads: deploys of different services block one each
    // while they wait for health; status and metrics must still answer.
    auto srv = http::UnixServer::start({.socket_path = o.admin_socket, .handler_threads = 8},
                                       std::move(router));
    if (!srv) {
      proxy->stop(Millis(0));
      Error e = srv.error();
      return fail(std::move(e).with_context("admin socket"));
    }
    proxy->impl_->admin = std::move(*srv);
  }
  std::string addrs;
  for (const auto& b : proxy->impl_->bound) addrs += (addrs.empty() ? "" : ",") + b.str();
  plog.info("proxy listening",
            {{"address", addrs},
             {"threads", std::to_string(threads)},
             {"open_file_limit", std::to_string(nofile)},
             {"max_connections", std::to_string(p.shared.limits.max_connections)},
             {"max_upstream_connections", std::to_string(p.shared.limits.max_upstream_connections)},
             {"services", std::to_string(proxy->impl_->services.size())}});
  return proxy;
}

Status Proxy::upsert_service(const ServiceSpec& spec) {
  MD_TRY_STATUS(validate(spec));
  Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  for (const auto& [name, rt] : p.services)
    if (name != spec.name && rt.rec.spec.host == spec.host &&
        rt.rec.spec.path_prefix == spec.path_prefix)
      return fail(Errc::kConflict, "service '" + name + "' already routes host '" + spec.host +
                                       "' path prefix '" + spec.path_prefix + "'");
  return p.commit([&]() -> Status {
    auto it = p.services.find(spec.name);
    if (it == p.services.end()) {
      ServiceRuntime rt;
      rt.rec.spec = spec;
      rt.shared = std::make_shared<ServiceShared>(p.shared.workers);
      p.services[spec.name] = std::move(rt);
    } else {
      it->second.rec.spec = spec;
    }
    return ok();
  });
}

Status Proxy::remove_service(std::string_view name) {
  Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  ServiceRuntime* rt = MD_TRY(p.find(name));
  if (rt->switching)
    return fail(Errc::kConflict, "a switch of service '" + std::string(name) + "' is running");
  return p.commit([&]() -> Status {
    p.services.erase(p.services.find(name));
    return ok();
  });
}

Result<SwitchResult> Proxy::deploy(std::string_view service, const std::vector<Endpoint>& targets,
                                   const DeployOptions& o) {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mu);
    MD_TRY(p.begin_switch(service));
  }
  Impl::SwitchGuard guard{p, service};
  SwitchResult r;
  auto ts = MD_TRY_CTX(p.probe_targets(service, targets, o, &r), "deploy " + std::string(service));
  std::vector<std::shared_ptr<TargetSet>> old;
  Millis deadline;
  {
    std::lock_guard lock(p.mu);
    ServiceRuntime* rt = MD_TRY(p.find(service));
    deadline = rt->rec.spec.drain_deadline;
    uint64_t id = 0;
    MD_TRY_STATUS(p.commit([&]() -> Status {
      id = p.next_set_id++;
      ServiceRuntime& x = p.services.at(std::string(service));
      auto set = std::make_shared<TargetSet>(id, ts, p.shared.workers);
      r.previous_set_id = x.live ? x.live->id : 0;
      if (x.live) old.push_back(x.live);
      if (x.canary) old.push_back(x.canary);
      Impl::add_replaced(x, x.canary);
      Impl::add_replaced(x, x.live);
      x.live = set;
      x.canary = nullptr;
      x.rec.live = SetRecord{id, targets};
      x.rec.canary.reset();
      x.rec.canary_weight = 0;
      return ok();
    }));
    r.set_id = id;
  }
  plog.info("deployed", {{"service", std::string(service)},
                         {"set", std::to_string(r.set_id)},
                         {"previous_set", std::to_string(r.previous_set_id)}});
  if (o.wait_for_drain) p.wait_drain(old, deadline, &r);
  return r;
}

Result<SwitchResult> Proxy::set_canary(std::string_view service,
                                       const std::vector<Endpoint>& targets, int weight,
                                       const DeployOptions& o) {
  if (weight < 0 || weight > 100)
    return fail(Errc::kInvalidArgument,
                "canary weight " + std::to_string(weight) + " is not 0..100");
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mu);
    ServiceRuntime* rt = MD_TRY(p.begin_switch(service));
    bool same = targets.empty() || (rt->canary && rt->canary->endpoints() == targets);
    if (same) {
      rt->switching = false;
      if (!rt->canary)
        return fail(Errc::kFailedPrecondition,
                    "service '" + std::string(service) + "' has no canary; give its targets");
      SwitchResult r;
      r.set_id = rt->canary->id;
      r.previous_set_id = rt->canary->id;
      MD_TRY_STATUS(p.commit([&]() -> Status {
        p.services.at(std::string(service)).rec.canary_weight = weight;
        return ok();
      }));
      return r;
    }
  }
  Impl::SwitchGuard guard{p, service};
  SwitchResult r;
  auto ts = MD_TRY_CTX(p.probe_targets(service, targets, o, &r), "canary " + std::string(service));
  std::vector<std::shared_ptr<TargetSet>> old;
  Millis deadline;
  {
    std::lock_guard lock(p.mu);
    ServiceRuntime* rt = MD_TRY(p.find(service));
    deadline = rt->rec.spec.drain_deadline;
    if (!rt->live)
      return fail(Errc::kFailedPrecondition,
                  "service '" + std::string(service) + "' has no live targets; deploy first");
    uint64_t id = 0;
    MD_TRY_STATUS(p.commit([&]() -> Status {
      id = p.next_set_id++;
      ServiceRuntime& x = p.services.at(std::string(service));
      r.previous_set_id = x.canary ? x.canary->id : 0;
      if (x.canary) old.push_back(x.canary);
      Impl::add_replaced(x, x.canary);
      x.canary = std::make_shared<TargetSet>(id, ts, p.shared.workers);
      x.rec.canary = SetRecord{id, targets};
      x.rec.canary_weight = weight;
      return ok();
    }));
    r.set_id = id;
  }
  plog.info("canary set", {{"service", std::string(service)},
                           {"set", std::to_string(r.set_id)},
                           {"weight", std::to_string(weight)}});
  if (o.wait_for_drain && !old.empty()) p.wait_drain(old, deadline, &r);
  return r;
}

namespace {

// Ends a service's canary: `promote` makes the canary set the live one,
// otherwise it is dropped and the live set keeps all traffic. The set that
// loses its traffic is drained when asked.
Result<SwitchResult> end_canary(Proxy::Impl& p, std::string_view service, bool promote,
                                const DeployOptions& o) {
  const std::string name(service);
  SwitchResult r;
  std::vector<std::shared_ptr<TargetSet>> old;
  Millis deadline;
  {
    std::lock_guard lock(p.mu);
    ServiceRuntime* rt = MD_TRY(p.find(service));
    if (rt->switching)
      return fail(Errc::kConflict, "another switch of service '" + name + "' is running");
    if (!rt->canary)
      return fail(Errc::kFailedPrecondition,
                  "service '" + name + "' has no canary to " + (promote ? "promote" : "abort"));
    deadline = rt->rec.spec.drain_deadline;
    MD_TRY_STATUS(p.commit([&]() -> Status {
      ServiceRuntime& x = p.services.at(name);
      const uint64_t live_id = x.live ? x.live->id : 0;
      r.previous_set_id = promote ? live_id : x.canary->id;
      r.set_id = promote ? x.canary->id : live_id;
      std::shared_ptr<TargetSet> loser = promote ? x.live : x.canary;
      if (loser) old.push_back(loser);
      Proxy::Impl::add_replaced(x, loser);
      if (promote) {
        x.live = x.canary;
        x.rec.live = x.rec.canary;
      }
      x.canary = nullptr;
      x.rec.canary.reset();
      x.rec.canary_weight = 0;
      return ok();
    }));
  }
  plog.info(promote ? "canary promoted" : "canary aborted",
            {{"service", name}, {"set", std::to_string(promote ? r.set_id : r.previous_set_id)}});
  if (o.wait_for_drain) p.wait_drain(old, deadline, &r);
  return r;
}

}  // namespace

Result<SwitchResult> Proxy::promote(std::string_view service, const DeployOptions& o) {
  return end_canary(*impl_, service, /*promote=*/true, o);
}

Result<SwitchResult> Proxy::abort_canary(std::string_view service, const DeployOptions& o) {
  return end_canary(*impl_, service, /*promote=*/false, o);
}

Status Proxy::set_maintenance(std::string_view service, bool on, std::string page) {
  if (page.size() > size_t{1024} * 1024)
    return fail(Errc::kInvalidArgument, "maintenance page larger than 1 MiB");
  Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  MD_TRY(p.find(service));
  return p.commit([&]() -> Status {
    ServiceRuntime& x = p.services.at(std::string(service));
    x.rec.maintenance = on;
    if (on) x.rec.maintenance_page = std::move(page);
    return ok();
  });
}

Status Proxy::pause(std::string_view service, const PauseOptions& o) {
  if (o.max_held < 0 || o.max_held > 10'000'000)
    return fail(Errc::kInvalidArgument, "pause max_held must be 0..10000000");
  if (o.max_wait.count() < 1 || o.max_wait.count() > 3'600'000)
    return fail(Errc::kInvalidArgument, "pause max_wait must be between 1 ms and 1 h");
  Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  MD_TRY(p.find(service));
  return p.commit([&]() -> Status {
    ServiceRuntime& x = p.services.at(std::string(service));
    x.rec.paused = true;
    x.rec.pause = o;
    return ok();
  });
}

Status Proxy::resume(std::string_view service) {
  Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  MD_TRY(p.find(service));
  return p.commit([&]() -> Status {
    ServiceRuntime& x = p.services.at(std::string(service));
    x.rec.paused = false;
    x.rec.maintenance = false;
    return ok();
  });
}

std::vector<ServiceStatus> Proxy::status() const {
  const Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  std::vector<ServiceStatus> out;
  for (const auto& [name, rt] : p.services) out.push_back(p.service_status(rt));
  return out;
}

Result<ServiceStatus> Proxy::status(std::string_view service) const {
  const Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  auto it = p.services.find(service);
  if (it == p.services.end())
    return fail(Errc::kNotFound, "no service named '" + std::string(service) + "'");
  return p.service_status(it->second);
}

MetricsSnapshot Proxy::metrics() const {
  const Impl& p = *impl_;
  std::lock_guard lock(p.mu);
  MetricsSnapshot m;
  m.instance = p.instance;
  m.started_at = p.started_at;
  m.taken_at = std::chrono::system_clock::now();
  m.client_connections = p.shared.client_connections.load();
  for (const auto& [name, rt] : p.services) {
    ServiceMetrics sm;
    sm.service = name;
    sm.local = rt.shared->local.read();
    auto add = [&](const TargetSet& s, std::string role) {
      sm.sets.push_back({s.id, std::move(role), s.endpoints(), s.stats.read()});
    };
    if (rt.live) add(*rt.live, "live");
    if (rt.canary) add(*rt.canary, "canary");
    for (const auto& r : rt.replaced) {
      bool current = (rt.live && r->id == rt.live->id) || (rt.canary && r->id == rt.canary->id);
      if (!current) add(*r, r->stats.active() > 0 ? "draining" : "retired");
    }
    m.services.push_back(std::move(sm));
  }
  return m;
}

}  // namespace md::proxy
