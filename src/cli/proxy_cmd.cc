// `meshdeploy proxy ...`: run the traffic proxy, and drive a running one
// through its admin socket (--admin-socket or MESHDEPLOY_PROXY_SOCKET).
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>

#include "cli/commands.h"
#include "config/config.h"
#include "core/fs.h"
#include "core/json.h"
#include "proxy/proxy.h"

namespace md::cli {
namespace {

using proxy::AdminClient;

// The one duration grammar of meshdeploy.yml (config::parse_duration:
// "500ms", "30s", "1h30m", "1.5s"), with the flag named in the error.
Result<Millis> parse_duration(const std::string& s, std::string_view flag) {
  auto d = config::parse_duration(s);
  if (!d) return fail(Errc::kInvalidArgument, std::string(flag) + ": " + d.error().what());
  return *d;
}

// Where the admin socket is: --admin-socket, else $MESHDEPLOY_PROXY_SOCKET.
Result<std::string> admin_socket(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("MESHDEPLOY_PROXY_SOCKET"); env && *env)
    return std::string(env);
  return fail(Errc::kInvalidArgument,
              "no admin socket: pass --admin-socket PATH or set MESHDEPLOY_PROXY_SOCKET");
}

void add_socket_option(CLI::App& cmd, std::string* path) {
  cmd.add_option("--admin-socket", *path,
                 "the proxy's admin socket (default: $MESHDEPLOY_PROXY_SOCKET)");
}

std::string targets_text(const proxy::SetStatus& s) {
  std::string out;
  for (const auto& t : s.targets) {
    out += (out.empty() ? "" : " ") + t.endpoint.str() + " " +
           (t.ejected   ? "ejected"
            : t.healthy ? "healthy"
                        : "UNHEALTHY");
  }
  return out;
}

void print_status(std::ostream& o, const proxy::ServiceStatus& s) {
  o << s.spec.name << "\n";
  o << "  route:    host " << (s.spec.host.empty() ? "*" : s.spec.host) << ", path prefix "
    << s.spec.path_prefix << "\n";
  if (s.live)
    o << "  live:     set " << s.live->id << ": " << targets_text(*s.live) << " (" << s.live->active
      << " active)\n";
  else
    o << "  live:     none\n";
  if (s.canary)
    o << "  canary:   set " << s.canary->id << " at " << s.canary_weight
      << "%: " << targets_text(*s.canary) << " (" << s.canary->active << " active)\n";
  for (const auto& d : s.draining)
    o << "  draining: set " << d.id << ": " << targets_text(d) << " (" << d.active << " active)\n";
  o << "  health:   GET " << (s.spec.health.path.empty() ? "(tcp connect)" : s.spec.health.path)
    << " every " << s.spec.health.interval.count() << " ms\n";
  if (s.maintenance) o << "  MAINTENANCE: answering 503\n";
  if (s.paused) o << "  PAUSED: holding requests (" << s.held << " held now)\n";
  for (const auto* set : {s.live ? &*s.live : nullptr, s.canary ? &*s.canary : nullptr})
    if (set)
      for (const auto& t : set->targets)
        if (!t.last_error.empty())
          o << "  last error of " << t.endpoint.str() << ": " << t.last_error << "\n";
}

void print_counters(std::ostream& o, const std::string& label, const proxy::Counters& c) {
  o << fmt::format(
      "  {:<24} {:>10} req  2xx {:>9}  3xx {:>7}  4xx {:>7}  5xx {:>7}  aborted {:>5}  "
      "upstream errors {:>5}  retries {:>5}  active {:>4}  p50 {:.2f} ms  p90 {:.2f} ms  "
      "p99 {:.2f} ms\n",
      label, c.requests, c.by_class[1], c.by_class[2], c.by_class[3], c.by_class[4], c.aborted,
      c.upstream_errors, c.retries, c.active, c.percentile_ms(0.5), c.percentile_ms(0.9),
      c.percentile_ms(0.99));
}

struct RunOpts {
  std::vector<std::string> listen;
  std::vector<std::string> tls_listen;
  std::string tls_cert, tls_key;
  std::string admin_socket;
  std::string state;
  std::vector<std::string> routes;
  std::string health_path = "/healthz";
  int threads = 0;
  int64_t max_connections = 0;
  std::string grace = "10s";
};

Exit run_proxy(const RunOpts& o, Io& io) {
  proxy::Options opts;
  std::vector<std::string> plain = o.listen;
  std::vector<std::string> tls = o.tls_listen;
  bool have_tls = !o.tls_cert.empty() || !o.tls_key.empty();
  if (have_tls && (o.tls_cert.empty() || o.tls_key.empty()))
    return report(io, Error(Errc::kInvalidArgument, "--tls-cert and --tls-key go together"));
  if (!have_tls && !tls.empty())
    return report(io, Error(Errc::kInvalidArgument, "--tls-listen needs --tls-cert and --tls-key"));
  // With a certificate but no --tls-listen, the --listen addresses are HTTPS.
  if (have_tls && tls.empty()) tls.swap(plain);
  if (plain.empty() && tls.empty()) plain.push_back("127.0.0.1:8080");
  for (const auto& a : plain) opts.listeners.push_back({a, {}, {}, {}});
  for (const auto& a : tls) opts.listeners.push_back({a, o.tls_cert, o.tls_key, {}});
  std::string sock = o.admin_socket;
  if (sock.empty())
    if (const char* env = std::getenv("MESHDEPLOY_PROXY_SOCKET"); env && *env) sock = env;
  opts.admin_socket = sock;
  opts.state_file = o.state;
  opts.threads = o.threads;
  opts.limits.max_connections = static_cast<size_t>(o.max_connections);
  for (const auto& r : o.routes) {
    auto route = proxy::parse_route(r);
    if (!route) return report(io, route.error());
    route->spec.health.path = o.health_path;
    auto v = proxy::validate(route->spec);
    if (!v) return report(io, v.error());
    opts.routes.push_back(std::move(*route));
  }
  auto grace = parse_duration(o.grace, "--grace");
  if (!grace) return report(io, grace.error());

  // Signals are taken by sigwait below; every thread started after this
  // inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto p = proxy::Proxy::start(std::move(opts));
  if (!p) {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return report(io, p.error());
  }
  std::string addrs;
  for (const auto& e : (*p)->listening()) addrs += (addrs.empty() ? "" : ", ") + e.str();
  io.out << "proxy listening on " << addrs;
  if (!sock.empty()) io.out << "; admin socket " << sock;
  io.out << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  io.out << "stopping (signal " << sig << ")" << std::endl;
  (*p)->stop(*grace);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  return Exit::kOk;
}

struct DeployOpts {
  std::string service, targets, host, path_prefix, socket;
  std::optional<std::string> health_path;
  std::string health_timeout = "60s";
  bool no_wait = false;
};

Exit deploy(const DeployOpts& o, Io& io) {
  auto sock = admin_socket(o.socket);
  if (!sock) return report(io, sock.error());
  auto targets = proxy::parse_endpoints(o.targets);
  if (!targets) return report(io, targets.error());
  auto timeout = parse_duration(o.health_timeout, "--health-timeout");
  if (!timeout) return report(io, timeout.error());
  AdminClient c(*sock);
  proxy::ServiceSpec spec;
  spec.name = o.service;
  auto cur = c.status(o.service);
  if (cur) {
    spec = cur->spec;
  } else if (cur.error().code() != Errc::kNotFound) {
    return report(io, cur.error());
  }
  if (!o.host.empty()) spec.host = o.host;
  if (!o.path_prefix.empty()) spec.path_prefix = o.path_prefix;
  if (o.health_path) spec.health.path = *o.health_path;
  proxy::DeployOptions d;
  d.health_timeout = *timeout;
  d.wait_for_drain = !o.no_wait;
  auto r = c.deploy(o.service, *targets, d, spec);
  if (!r) return report(io, r.error());
  io.out << fmt::format(
      "{}: set {} is live ({} ms health checks, {} ms draining{})\n", o.service, r->set_id,
      r->health_wait.count(), r->drain_wait.count(),
      r->drained ? "" : fmt::format("; {} streams closed at the deadline", r->closed_streams));
  return Exit::kOk;
}

}  // namespace

Action setup_proxy_run(CLI::App& cmd, Io& io) {
  auto o = std::make_shared<RunOpts>();
  cmd.add_option("--listen", o->listen,
                 "HOST:PORT to serve HTTP on (repeatable; default 127.0.0.1:8080)");
  cmd.add_option("--tls-listen", o->tls_listen, "HOST:PORT to serve HTTPS on (repeatable)");
  cmd.add_option("--tls-cert", o->tls_cert, "PEM certificate chain for HTTPS");
  cmd.add_option("--tls-key", o->tls_key, "PEM private key for HTTPS");
  add_socket_option(cmd, &o->admin_socket);
  cmd.add_option("--state", o->state, "state file: routes survive restarts");
  cmd.add_option(
      "--route", o->routes,
      "SERVICE=HOST:PORT[,HOST:PORT...]: a service at start-up (if the state file lacks it)");
  cmd.add_option("--health-path", o->health_path,
                 "health-check path of --route services ('' = TCP)");
  cmd.add_option("--threads", o->threads, "worker threads (default: one per core)")
      ->check(CLI::Range(0, 64));
  cmd.add_option("--max-connections", o->max_connections,
                 "client connections per listener (default 0: from the open-file limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  cmd.add_option("--grace", o->grace,
                 "on SIGTERM, let in-flight requests finish this long (default 10s)");
  return [o, &io] { return run_proxy(*o, io); };
}

Action setup_proxy_deploy(CLI::App& cmd, Io& io) {
  auto o = std::make_shared<DeployOpts>();
  cmd.add_option("service", o->service, "service name")->required();
  cmd.add_option("--target", o->targets, "HOST:PORT[,HOST:PORT...] of the new version")->required();
  cmd.add_option("--host", o->host, "route this Host (default: any)");
  cmd.add_option("--path-prefix", o->path_prefix, "route this path prefix (default /)");
  cmd.add_option("--health-path", o->health_path, "health-check path (default /healthz; '' = TCP)");
  cmd.add_option("--health-timeout", o->health_timeout,
                 "give up if not healthy within this (default 60s)");
  cmd.add_flag("--no-wait", o->no_wait,
               "return right after the switch, without waiting for the drain");
  add_socket_option(cmd, &o->socket);
  return [o, &io] { return deploy(*o, io); };
}

Action setup_proxy_canary(CLI::App& cmd, Io& io) {
  struct O {
    std::string service, targets, socket, health_timeout = "60s";
    int weight = -1;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "service name")->required();
  cmd.add_option("--target", o->targets,
                 "HOST:PORT[,...] of the canary (omit to change the weight only)");
  cmd.add_option("--weight", o->weight, "percent of new requests sent to the canary")
      ->required()
      ->check(CLI::Range(0, 100));
  cmd.add_option("--health-timeout", o->health_timeout,
                 "give up if not healthy within this (default 60s)");
  add_socket_option(cmd, &o->socket);
  return [o, &io] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    std::vector<proxy::Endpoint> targets;
    if (!o->targets.empty()) {
      auto t = proxy::parse_endpoints(o->targets);
      if (!t) return report(io, t.error());
      targets = *t;
    }
    auto timeout = parse_duration(o->health_timeout, "--health-timeout");
    if (!timeout) return report(io, timeout.error());
    proxy::DeployOptions d;
    d.health_timeout = *timeout;
    auto r = AdminClient(*sock).set_canary(o->service, targets, o->weight, d);
    if (!r) return report(io, r.error());
    io.out << fmt::format("{}: canary set {} gets {}% of new requests\n", o->service, r->set_id,
                          o->weight);
    return Exit::kOk;
  };
}

namespace {
template <class Fn>
Action simple(CLI::App& cmd, Io& io, Fn fn) {
  struct O {
    std::string service, socket;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "service name")->required();
  add_socket_option(cmd, &o->socket);
  return [o, &io, fn] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    AdminClient c(*sock);
    return fn(c, o->service, io);
  };
}
}  // namespace

Action setup_proxy_promote(CLI::App& cmd, Io& io) {
  return simple(cmd, io, [](AdminClient& c, const std::string& s, Io& io) {
    auto r = c.promote(s);
    if (!r) return report(io, r.error());
    io.out << fmt::format("{}: canary set {} is live\n", s, r->set_id);
    return Exit::kOk;
  });
}

Action setup_proxy_abort(CLI::App& cmd, Io& io) {
  return simple(cmd, io, [](AdminClient& c, const std::string& s, Io& io) {
    auto r = c.abort_canary(s);
    if (!r) return report(io, r.error());
    io.out << fmt::format("{}: canary set {} dropped; all traffic to set {}\n", s,
                          r->previous_set_id, r->set_id);
    return Exit::kOk;
  });
}

Action setup_proxy_status(CLI::App& cmd, Io& io) {
  struct O {
    std::string service, socket;
    bool json = false;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "only this service");
  cmd.add_flag("--json", o->json, "print JSON");
  add_socket_option(cmd, &o->socket);
  return [o, &io] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    AdminClient c(*sock);
    std::vector<proxy::ServiceStatus> all;
    if (!o->service.empty()) {
      auto s = c.status(o->service);
      if (!s) return report(io, s.error());
      all.push_back(std::move(*s));
    } else {
      auto s = c.status();
      if (!s) return report(io, s.error());
      all = std::move(*s);
    }
    if (o->json) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& s : all) a.push_back(proxy::to_json(s));
      io.out << (o->service.empty() ? to_json_text(nlohmann::json{{"services", a}}, 2)
                                    : to_json_text(a[0], 2))
             << "\n";
      return Exit::kOk;
    }
    if (all.empty()) io.out << "no services\n";
    for (const auto& s : all) print_status(io.out, s);
    return Exit::kOk;
  };
}

Action setup_proxy_metrics(CLI::App& cmd, Io& io) {
  struct O {
    std::string service, socket;
    bool json = false, prometheus = false;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "only this service");
  cmd.add_flag("--json", o->json,
               "print JSON (cumulative counters; diff two snapshots for a window)");
  cmd.add_flag("--prometheus", o->prometheus, "print the Prometheus text format");
  add_socket_option(cmd, &o->socket);
  return [o, &io] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    AdminClient c(*sock);
    if (o->prometheus) {
      auto t = c.metrics_prometheus();
      if (!t) return report(io, t.error());
      io.out << *t;
      return Exit::kOk;
    }
    auto m = c.metrics();
    if (!m) return report(io, m.error());
    if (!o->service.empty()) {
      std::erase_if(m->services, [&](const auto& s) { return s.service != o->service; });
      if (m->services.empty())
        return report(io, Error(Errc::kNotFound, "no service named '" + o->service + "'"));
    }
    if (o->json) {
      io.out << to_json_text(proxy::to_json(*m), 2) << "\n";
      return Exit::kOk;
    }
    io.out << "instance " << m->instance << ", started " << format_time(m->started_at) << ", "
           << m->client_connections << " client connections\n";
    for (const auto& s : m->services) {
      io.out << s.service << "\n";
      for (const auto& set : s.sets)
        print_counters(io.out, fmt::format("set {} ({})", set.id, set.role), set.counters);
      if (s.local.requests) print_counters(io.out, "answered by proxy", s.local);
    }
    return Exit::kOk;
  };
}

Action setup_proxy_maintenance(CLI::App& cmd, Io& io) {
  struct O {
    std::string service, socket, page;
    bool off = false;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "service name")->required();
  cmd.add_option("--page", o->page, "HTML file to answer with (default: a built-in page)");
  cmd.add_flag("--off", o->off, "end maintenance");
  add_socket_option(cmd, &o->socket);
  return [o, &io] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    std::string page;
    if (!o->page.empty()) {
      auto text = fs::read_file(o->page);
      if (!text) return report(io, text.error());
      page = std::move(*text);
    }
    auto s = AdminClient(*sock).set_maintenance(o->service, !o->off, page);
    if (!s) return report(io, s.error());
    io.out << o->service
           << (o->off ? ": maintenance off\n"
                      : ": maintenance on (503 to every request but health checks)\n");
    return Exit::kOk;
  };
}

Action setup_proxy_pause(CLI::App& cmd, Io& io) {
  struct O {
    std::string service, socket, max_wait = "30s";
    int64_t max_held = 10000;
  };
  auto o = std::make_shared<O>();
  cmd.add_option("service", o->service, "service name")->required();
  cmd.add_option("--max-held", o->max_held,
                 "hold at most this many requests; more get 503 (default 10000)");
  cmd.add_option("--max-wait", o->max_wait, "a request held longer gets 503 (default 30s)");
  add_socket_option(cmd, &o->socket);
  return [o, &io] {
    auto sock = admin_socket(o->socket);
    if (!sock) return report(io, sock.error());
    auto wait = parse_duration(o->max_wait, "--max-wait");
    if (!wait) return report(io, wait.error());
    proxy::PauseOptions p;
    p.max_held = o->max_held;
    p.max_wait = *wait;
    auto s = AdminClient(*sock).pause(o->service, p);
    if (!s) return report(io, s.error());
    io.out << o->service << ": paused; new requests are held until 'meshdeploy proxy resume "
           << o->service << "'\n";
    return Exit::kOk;
  };
}

Action setup_proxy_resume(CLI::App& cmd, Io& io) {
  return simple(cmd, io, [](AdminClient& c, const std::string& s, Io& io) {
    auto r = c.resume(s);
    if (!r) return report(io, r.error());
    io.out << s << ": resumed\n";
    return Exit::kOk;
  });
}

}  // namespace md::cli
