// Host over the agent's control API (agent/api.h): a local agent, or one
// on an ssh host reached through a forwarded socket (host_ssh.cc).
#include <fmt/format.h>

#include <thread>

#include "agent/api.h"
#include "deploy/adapters.h"
#include "deploy/state_place.h"
#include "ssh/ssh.h"

namespace md::deploy {
namespace {

agent::Role to_agent(Role r) {
  switch (r) {
    case Role::kWeb:
      return agent::Role::kWeb;
    case Role::kWorkers:
      return agent::Role::kWorkers;
    case Role::kAll:
      return agent::Role::kAll;
  }
  return agent::Role::kAll;
}

SetMetrics to_set(const proxy::Counters& c) {
  SetMetrics m;
  m.requests = c.requests;
  m.errors = c.by_class[4];
  for (size_t i = 0; i < c.latency.size(); ++i)
    if (c.latency[i] != 0)
      m.latency.push_back({static_cast<double>(proxy::bucket_lower_us(i)) / 1000.0,
                           static_cast<double>(proxy::bucket_upper_us(i)) / 1000.0, c.latency[i]});
  return m;
}

class AgentHost : public Host {
 public:
  // `link.connection` set: the agent is on another machine, so artifacts are
  // uploaded through the socket instead of registered by path.
  AgentHost(AgentLink link, Millis timeout, Millis health_timeout)
      : link_(std::move(link)),
        socket_(link_.socket),
        client_(socket_, timeout),
        health_timeout_(health_timeout) {}

  std::string name() const override { return link_.host; }

  Result<HostView> view() override {
    auto st = client_.status();
    if (!st) {
      Error e = st.error();
      if (e.code() == Errc::kUnavailable && link_.connection)
        e.context(
            fmt::format("agent of host {} at {} over ssh (is `meshdeploy agent run` "
                        "running there with that root?)",
                        link_.host, link_.remote_socket));
      else if (e.code() == Errc::kUnavailable)
        e.context(
            fmt::format("agent at {} (start it with `meshdeploy agent run`)", socket_.string()));
      return tl::unexpected(e);
    }
    HostView hv;
    hv.agent_version = st->agent_version;
    hv.disk_free_bytes = st->disk_free_bytes;
    hv.disk_free_inodes = st->disk_free_inodes;
    hv.weights = st->weights;
    hv.root = st->root;
    hv.listen = st->listen;
    hv.tls_cert = st->tls_cert;
    hv.tls_key = st->tls_key;
    hv.tls_cert_sha256 = st->tls_cert_sha256;
    for (const agent::ReleaseInfo& r : st->releases) {
      if (!r.unpacked) continue;
      ReleaseView rv;
      rv.version = r.version;
      rv.sha256 = r.sha256;
      rv.warm_until = r.warm_until;
      for (const agent::ProcessInfo& p : r.processes) {
        ProcessView pv;
        pv.service = p.service;
        pv.index = p.index;
        pv.web = p.web;
        pv.state = p.state;
        pv.healthy = p.healthy;
        pv.restarts = p.restarts;
        pv.last_exit = p.error.empty() ? p.last_exit : p.error;
        rv.processes.push_back(pv);
      }
      hv.releases.push_back(std::move(rv));
    }
    return hv;
  }

  Status ship(const std::string& version, const std::filesystem::path& artifact,
              const std::string& sha256) override {
    if (link_.connection) {
      // The agent verifies the sha256 of what it received before keeping it.
      MD_TRY_CTX(client_.upload_artifact(version, sha256, artifact),
                 fmt::format("upload {} to host {}", version, link_.host));
      agent::Unpack u;
      u.version = version;
      MD_TRY(client_.unpack(u));
      return ok();
    }
    agent::RegisterArtifact r;
    r.version = version;
    r.sha256 = sha256;
    r.path = std::filesystem::absolute(artifact);
    MD_TRY(client_.register_artifact(r));
    agent::Unpack u;
    u.version = version;
    MD_TRY(client_.unpack(u));
    return ok();
  }

  Status start(const std::string& version, Role role, const LaunchSpec& spec) override {
    agent::Start s;
    s.version = version;
    s.role = to_agent(role);
    s.environment = spec.environment;
    s.deployment_id = spec.deployment_id;
    s.services = spec.services;
    s.env = spec.env;
    s.secrets = spec.secrets;
    s.sticky_cookie = spec.sticky_cookie;
    s.sticky_header = spec.sticky_header;
    s.drain_deadline = spec.drain_deadline;
    MD_TRY(client_.start(s));
    return ok();
  }

  Result<Millis> route(const std::map<std::string, int>& weights) override {
    agent::Route r;
    r.weights = weights;
    r.health_timeout = health_timeout_;
    const agent::AgentStatus st = MD_TRY(client_.route(r));
    return Millis(std::max<int64_t>(st.probe_ms, 0));
  }

  Result<std::map<std::string, SetMetrics>> metrics() override {
    const agent::VersionMetrics vm = MD_TRY(client_.metrics());
    std::map<std::string, SetMetrics> out;
    // WHY: counters of another agent instance are not comparable with the
    // last snapshot; empty sets make the analysis start over (went backwards).
    if (!instance_.empty() && vm.instance != instance_) {
      instance_ = vm.instance;
      return out;
    }
    instance_ = vm.instance;
    for (const auto& [version, c] : vm.by_version) out[version] = to_set(c);
    return out;
  }

  Status drain(const std::string& version, Millis timeout) override {
    agent::Drain d;
    d.version = version;
    d.timeout = timeout;
    return client_.drain(d);
  }

  Status stop(const std::string& version, Role role) override {
    agent::Stop s;
    s.version = version;
    s.role = to_agent(role);
    MD_TRY(client_.stop(s));
    return ok();
  }

  Result<SysTime> keep_warm(const std::string& version, Millis window) override {
    agent::KeepWarm k;
    k.version = version;
    k.window = window;
    MD_TRY(client_.keep_warm(k));
    return real_clock().now() + window;
  }

  Result<std::vector<std::string>> prune(int keep,
                                         const std::vector<std::string>& protect) override {
    agent::Prune p;
    p.keep = keep;
    p.protect = protect;
    return client_.prune(p);
  }

 private:
  AgentLink link_;  // first: the ssh connection outlives the client using it
  std::filesystem::path socket_;
  // WHY one client: every call has a deadline — the call timeout, plus what
  // the call itself waits for (agent/api.h says which); never an hour.
  agent::Client client_;
  Millis health_timeout_;
  std::string instance_;
};

}  // namespace

std::filesystem::path agent_socket(const config::Environment& env) {
  std::filesystem::path p = env.agent.socket.empty()
                                ? std::filesystem::path(env.agent.root) / "agent.sock"
                                : std::filesystem::path(env.agent.socket);
  return p.is_absolute() ? p : env.base_dir / p;
}

Millis route_health_timeout(const config::Environment& env) {
  Millis health{0};
  for (const config::Service& s : env.services)
    if (s.kind == config::ServiceKind::kWeb) health = std::max(health, s.health.start_timeout);
  return std::max(health, Millis(10000));
}

Result<std::unique_ptr<Host>> make_agent_host(const config::Environment& env, Millis call_timeout) {
  for (const config::Host& h : env.hosts)
    if (h.address != "local")
      return fail(Errc::kInvalidArgument,
                  fmt::format("environment {}: host {} ({}) is an ssh host: use "
                              "make_hosts",
                              env.name, h.name, h.address));
  if (env.hosts.size() > 1)
    return fail(Errc::kInvalidArgument,
                fmt::format("environment {}: {} hosts configured: use make_hosts", env.name,
                            env.hosts.size()));
  AgentLink link;
  link.host = env.hosts.empty() ? "local" : env.hosts[0].name;
  link.socket = agent_socket(env);
  return std::unique_ptr<Host>(
      std::make_unique<AgentHost>(std::move(link), call_timeout, route_health_timeout(env)));
}

Result<std::unique_ptr<Host>> make_hosts(const config::Environment& env,
                                         const secrets::SecretMap& secrets, Clock& clock,
                                         Millis patience,
                                         std::function<void(const std::string&)> on_retry,
                                         Millis call_timeout) {
  if (env.hosts.size() <= 1) {
    std::unique_ptr<Host> one;
    if (env.hosts.size() == 1 && env.hosts[0].address != "local")
      one = MD_TRY(make_ssh_agent_host(env, 0, secrets, call_timeout));
    else
      one = MD_TRY(make_agent_host(env, call_timeout));
    return with_retries(std::move(one), clock, patience, std::move(on_retry));
  }
  // WHY in parallel: each ssh host's connection takes a round trip or three
  // and the connect timeout when it is down; N hosts must not take N times.
  std::vector<Result<AgentLink>> links(env.hosts.size(), fail(Errc::kInternal, "not opened"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < env.hosts.size(); ++i)
    threads.emplace_back([&, i] {
      const config::Host& h = env.hosts[i];
      if (h.address == "local") {
        AgentLink l;
        l.host = h.name;
        l.socket = local_agent_socket(env, h);
        links[i] = std::move(l);
      } else {
        links[i] = open_agent_link(env, i, secrets);
      }
    });
  for (std::thread& t : threads) t.join();
  std::vector<std::unique_ptr<Host>> hosts;
  for (size_t i = 0; i < links.size(); ++i) {
    if (!links[i]) return tl::unexpected(links[i].error());
    // WHY each host its own patience: one host's agent restarting is waited
    // out on that host only; strategy.hosts.unreachable_after bounds it.
    hosts.push_back(with_retries(
        std::make_unique<AgentHost>(std::move(*links[i]), call_timeout, route_health_timeout(env)),
        clock, std::min(patience, env.strategy.hosts.unreachable_after), on_retry));
  }
  return make_fleet(std::move(hosts));
}

Result<std::unique_ptr<Host>> make_ssh_agent_host(const config::Environment& env, size_t host_index,
                                                  const secrets::SecretMap& secrets,
                                                  Millis call_timeout) {
  AgentLink link = MD_TRY(open_agent_link(env, host_index, secrets));
  return std::unique_ptr<Host>(
      std::make_unique<AgentHost>(std::move(link), call_timeout, route_health_timeout(env)));
}

}  // namespace md::deploy
