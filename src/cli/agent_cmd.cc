// `meshdeploy agent ...`: run the host agent, ask a running one for its
// status, stop it, and the log writer the agent starts beside each process.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <thread>

#include "agent/agent.h"
#include "cli/commands.h"
#include "cli/version.h"
#include "config/config.h"
#include "core/guard.h"
#include "core/json.h"
#include "core/systemd.h"
#include "notify/courier.h"
#include "supervisor/log_writer.h"

namespace md::cli {
namespace {

struct Where {
  std::string root;
  std::string socket;
};

void add_where(CLI::App& cmd, Where& w) {
  cmd.add_option("--root", w.root, "the agent's root directory (its socket is ROOT/agent.sock)");
  cmd.add_option("--socket", w.socket,
                 "the agent's control socket (default: $MESHDEPLOY_AGENT_SOCKET)");
}

Result<std::string> socket_of(const Where& w) {
  if (!w.socket.empty()) return w.socket;
  if (!w.root.empty()) return (std::filesystem::path(w.root) / "agent.sock").string();
  if (const char* env = std::getenv("MESHDEPLOY_AGENT_SOCKET"); env && *env)
    return std::string(env);
  return fail(Errc::kInvalidArgument,
              "no agent: pass --root DIR or --socket PATH, or set MESHDEPLOY_AGENT_SOCKET");
}

// This binary, for the log writers the agent starts.
Result<std::string> self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec)
    return fail(Errc::kIo, "cannot find this program's path (/proc/self/exe): " + ec.message());
  return p.string();
}

void print_status(std::ostream& o, const agent::AgentStatus& s) {
  o << "agent pid " << s.pid << " on " << s.root << " since " << s.started_at << " (meshdeploy "
    << s.agent_version << ")\n";
  o << "  proxy listens on";
  for (const auto& l : s.listen) o << " " << l;
  o << "\n";
  if (!s.containment.empty()) o << "  a release's stop reaches: " << s.containment << "\n";
  if (s.adopted) o << "  re-adopted " << s.adopted << " process(es) at start-up\n";
  for (const auto& r : s.routes) {
    o << "  route " << r.service << " (" << (r.host.empty() ? "*" : r.host) << r.path_prefix
      << "): live " << (r.live.empty() ? "none" : r.live);
    if (!r.canary.empty()) o << ", canary " << r.canary << " at " << r.canary_weight << "%";
    if (r.maintenance) o << ", MAINTENANCE";
    o << "\n";
  }
  for (const auto& r : s.releases) {
    o << "release " << r.version
      << (r.traffic.empty() ? "" : " [" + r.traffic + " " + std::to_string(r.weight) + "%]")
      << (r.unpacked ? "" : " (artifact only)") << "\n";
    for (const auto& p : r.processes) {
      o << "  " << p.name << "  " << p.state
        << (p.web ? (p.healthy ? " healthy" : " unhealthy") : "");
      if (p.pid > 0) o << "  pid " << p.pid;
      if (p.port > 0) o << "  port " << p.port;
      if (p.restarts) o << "  restarts " << p.restarts;
      if (!p.last_exit.empty()) o << "  last " << p.last_exit;
      if (p.adopted) o << "  (adopted)";
      if (!p.error.empty()) o << "\n    " << p.error;
      o << "\n";
    }
  }
}

}  // namespace

Action setup_agent_run(CLI::App& cmd, Io& io) {
  struct Opts {
    std::string root, socket, tls_cert, tls_key, metrics_listen, upload_expiry = "10m";
    std::vector<std::string> listen;
    int threads = 0;
    int64_t max_connections = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd.add_option("--root", o->root, "directory for releases, logs and state")->required();
  cmd.add_option("--socket", o->socket, "control socket (default: ROOT/agent.sock)");
  cmd.add_option("--listen", o->listen,
                 "proxy listener HOST:PORT, repeatable (default 127.0.0.1:8080)");
  cmd.add_option("--tls-cert", o->tls_cert, "PEM certificate chain: HTTPS on the listeners");
  cmd.add_option("--tls-key", o->tls_key, "PEM private key for --tls-cert");
  cmd.add_option("--threads", o->threads, "proxy worker threads (default: cores)");
  cmd.add_option("--metrics-listen", o->metrics_listen,
                 "serve GET /metrics (Prometheus) over TCP on HOST:PORT (default: off)");
  cmd.add_option(
         "--max-connections", o->max_connections,
         "client connections per listener (proxy.max_connections; 0 = from the open-file limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  cmd.add_option("--upload-expiry", o->upload_expiry,
                 "remove an artifact upload that received nothing for this long (default 10m)");
  return [o, &io] {
    if (o->tls_cert.empty() != o->tls_key.empty())
      return report(io, Error(Errc::kInvalidArgument, "--tls-cert and --tls-key go together"));
    auto expiry = config::parse_duration(o->upload_expiry);
    if (!expiry || *expiry <= Millis(0))
      return report(io, Error(Errc::kInvalidArgument,
                              "--upload-expiry: " + (expiry ? std::string("must be positive")
                                                            : expiry.error().what())));
    auto exe = self_exe();
    if (!exe) return report(io, exe.error());
    // Sockets from systemd (meshdeploy-agent.socket) or from the agent this
    // process replaced (`agent restart`): the port never closed.
    auto inherited = sd::take_listen_fds();
    if (!inherited) return report(io, inherited.error());
    agent::Options opts;
    opts.root = o->root;
    opts.socket = o->socket;
    if (!o->listen.empty())
      opts.listen = o->listen;
    else if (!inherited->empty())
      opts.listen.clear();  // the handed sockets are the listeners
    opts.inherited_sockets = *inherited;
    opts.tls_cert = o->tls_cert;
    opts.tls_key = o->tls_key;
    opts.proxy_threads = o->threads;
    opts.metrics_listen = o->metrics_listen;
    opts.max_connections = static_cast<size_t>(o->max_connections);
    opts.upload_expiry = *expiry;
    opts.log_writer_argv = {*exe, "agent", "log-writer"};
    opts.agent_version = std::string(version());
    // The outboxes handed over by controllers: sent from here until the agent
    // stops (docs/notifications.md, "Delivery").
    auto transport = notify::make_curl_transport();
    notify::Courier courier(std::filesystem::path(o->root) / "notify", *transport);
    const std::filesystem::path state_db = std::filesystem::absolute(o->root) / "state.db";
    opts.notify_handoff = [&courier, state_db](const std::string& body) -> Status {
      auto h = notify::parse_handoff(body);
      if (!h) return fail(std::move(h.error()));
      // "agent:<host>": the store this agent serves (`state: agent`).
      if (h->store_url.starts_with("agent:")) h->store_url = state_db.string();
      return courier.accept(*h);
    };
    // Signals go to one waiting thread, never to the proxy's or supervisor's.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    auto a = agent::Agent::start(opts);
    if (!a) return report(io, a.error());
    agent::Agent& ag = **a;
    courier.load();
    std::thread waiter([&ag, set] {
      int sig = 0;
      sigwait(&set, &sig);
      md::guarded(md::log::Logger("agent"), "signal waiter", [&] { ag.request_stop(false); });
    });
    auto st = ag.status();
    io.out << "meshdeploy agent: root " << st.root << ", socket " << ag.socket_path().string()
           << ", proxy on";
    for (const auto& l : st.listen) io.out << " " << l;
    io.out << std::endl;
    bool all = ag.wait();
    if (ag.restart_requested()) {
      // The same command line, the binary now on disk (an upgrade takes
      // effect), the public sockets kept open across the exec. The signal
      // thread is left blocked in sigwait: exec ends it.
      auto argv = sd::own_argv();
      std::vector<int> fds = ag.stop_for_restart();
      courier.stop();
      waiter.detach();
      Status st = argv ? sd::exec_with_listen_fds(*exe, *argv, fds) : Status(fail(argv.error()));
      io.err << "meshdeploy: agent restart: " << st.error().what() << "\n";
      std::_Exit(static_cast<int>(Exit::kFailed));  // WHY _Exit: the waiter thread is still blocked
    }
    ag.stop(all);
    courier.stop();
    // Wake the signal thread if a shutdown came through the API.
    ::kill(::getpid(), SIGTERM);
    waiter.join();
    return Exit::kOk;
  };
}

Action setup_agent_status(CLI::App& cmd, Io& io) {
  auto w = std::make_shared<Where>();
  auto json = std::make_shared<bool>(false);
  add_where(cmd, *w);
  cmd.add_flag("--json", *json, "print the status as JSON");
  return [w, json, &io] {
    auto sock = socket_of(*w);
    if (!sock) return report(io, sock.error());
    auto st = agent::Client(*sock).status();
    if (!st) return report(io, st.error());
    if (*json)
      io.out << to_json_text(agent::to_json(*st), 2) << "\n";
    else
      print_status(io.out, *st);
    return Exit::kOk;
  };
}

Action setup_agent_stop(CLI::App& cmd, Io& io) {
  auto w = std::make_shared<Where>();
  auto all = std::make_shared<bool>(false);
  add_where(cmd, *w);
  cmd.add_flag("--all", *all, "stop every release process too (SIGTERM, grace, SIGKILL)");
  return [w, all, &io] {
    auto sock = socket_of(*w);
    if (!sock) return report(io, sock.error());
    if (auto st = agent::Client(*sock).shutdown(*all); !st) return report(io, st.error());
    io.out << (*all ? "agent stopping with every release\n"
                    : "agent stopping; release processes keep running\n");
    return Exit::kOk;
  };
}

Action setup_agent_restart(CLI::App& cmd, Io& io) {
  auto w = std::make_shared<Where>();
  add_where(cmd, *w);
  return [w, &io] {
    auto sock = socket_of(*w);
    if (!sock) return report(io, sock.error());
    auto st = agent::Client(*sock).restart();
    if (!st) return report(io, st.error());
    io.out << "agent restarted (pid " << st->pid << ", meshdeploy " << st->agent_version
           << "); listeners kept open:";
    for (const auto& l : st->listen) io.out << " " << l;
    io.out << "\n";
    return Exit::kOk;
  };
}

Action setup_agent_log_writer(CLI::App& cmd, Io& io) {
  auto o = std::make_shared<supervisor::LogWriterOptions>();
  auto out = std::make_shared<std::string>();
  auto secrets = std::make_shared<std::string>();
  cmd.add_option("--out", *out, "log file to append to")->required();
  cmd.add_option("--secrets", *secrets, "JSON file of the secrets to mask (mode 0600)");
  cmd.add_option("--max-bytes", o->max_bytes, "rotate the log file past this size");
  return [o, out, secrets, &io] {
    o->out = *out;
    o->secrets_file = *secrets;
    if (auto st = supervisor::run_log_writer(STDIN_FILENO, *o); !st) return report(io, st.error());
    return Exit::kOk;
  };
}

}  // namespace md::cli
