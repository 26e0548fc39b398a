#include "deploy/host_check.h"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>

#include <set>

#include "core/hash.h"
#include "proxy/proxy.h"

namespace md::deploy {
namespace {

namespace fs = std::filesystem;

fs::path from_config(const config::Environment& env, const std::string& p) {
  const fs::path path(p);
  std::error_code ec;
  const fs::path abs = path.is_absolute() ? path : env.base_dir / path;
  fs::path canon = fs::weakly_canonical(abs, ec);
  return ec ? abs.lexically_normal() : canon;
}

// The numeric forms of `host` ("localhost" -> 127.0.0.1 and ::1; "::" as
// getnameinfo writes it). A name that does not resolve stands for itself.
std::set<std::string> numeric_hosts(const std::string& host) {
  std::set<std::string> out;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
    for (addrinfo* a = res; a; a = a->ai_next) {
      char buf[NI_MAXHOST];
      if (::getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) ==
          0)
        out.insert(buf);
    }
    ::freeaddrinfo(res);
  }
  if (out.empty()) out.insert(host);
  return out;
}

bool same_listener(const std::string& want, const std::string& have) {
  auto w = proxy::parse_endpoint(want);
  auto h = proxy::parse_endpoint(have);
  if (!w || !h) return want == have;
  if (w->port != h->port) return false;
  const std::set<std::string> a = numeric_hosts(w->host), b = numeric_hosts(h->host);
  for (const std::string& x : a)
    if (b.count(x)) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::vector<std::string> config_mismatches(const config::Environment& env, const HostView& hv,
                                           std::string_view host) {
  std::vector<std::string> out;
  const std::string in = fmt::format("in the config (environment {})", env.name);
  const std::string agent = fmt::format("the agent on host {}", host);

  // The host's own listener and root when the config has them (hosts[]).
  const config::Host* h = nullptr;
  for (const config::Host& c : env.hosts)
    if (c.name == host) h = &c;
  std::string listen = env.proxy.listen, listen_key = "proxy.listen";
  if (h != nullptr && !h->listen.empty() && h->listen != env.proxy.listen) {
    listen = h->listen;
    listen_key = fmt::format("hosts[{}].listen", host);
  }
  if (!hv.listen.empty()) {
    bool found = false;
    for (const std::string& l : hv.listen) found = found || same_listener(listen, l);
    if (!found)
      out.push_back(fmt::format(
          "{} is {} {}, but {} listens on {}: restart the agent with --listen {} (systemd: "
          "ListenStream={} in meshdeploy-agent.socket), or set {} to {}{}",
          listen_key, listen, in, agent, join(hv.listen), listen, listen, listen_key,
          hv.listen.size() > 1 ? "one of " : "", join(hv.listen)));
  }

  const bool want_tls = !env.proxy.tls_cert.empty();
  const bool has_tls = !hv.tls_cert.empty();
  if (want_tls && !has_tls && !hv.listen.empty()) {
    out.push_back(fmt::format(
        "proxy.tls_cert is {} {}, but {} serves plain HTTP: restart the agent with --tls-cert {} "
        "--tls-key {}, or remove proxy.tls_cert and proxy.tls_key",
        env.proxy.tls_cert, in, agent, from_config(env, env.proxy.tls_cert).string(),
        from_config(env, env.proxy.tls_key).string()));
  } else if (!want_tls && has_tls) {
    out.push_back(fmt::format(
        "proxy.tls_cert is not set in the config (environment {}, plain HTTP), but {} serves HTTPS "
        "with {}: set proxy.tls_cert: {} and proxy.tls_key: {}, or restart the agent without "
        "--tls-cert",
        env.name, agent, hv.tls_cert, hv.tls_cert, hv.tls_key));
  } else if (want_tls && has_tls) {
    const fs::path want = from_config(env, env.proxy.tls_cert);
    bool same = want == from_config(env, hv.tls_cert);
    std::string sum;
    if (!same) {
      auto s = sha256_file_hex(want);
      sum = s ? *s : "";
      same = !sum.empty() && sum == hv.tls_cert_sha256;
    }
    if (!same)
      out.push_back(fmt::format(
          "proxy.tls_cert is {} ({}) {}, but {} serves {} (sha256 {}): restart the agent with "
          "--tls-cert {} --tls-key {}, or set proxy.tls_cert: {} and proxy.tls_key: {}",
          env.proxy.tls_cert, sum.empty() ? "not readable here" : "sha256 " + sum.substr(0, 12), in,
          agent, hv.tls_cert, hv.tls_cert_sha256.substr(0, 12), want.string(),
          from_config(env, env.proxy.tls_key).string(), hv.tls_cert, hv.tls_key));
  }

  if (!hv.root.empty() && h != nullptr && h->address != "local") {
    // An ssh host: its paths are not on this machine (a relative root is
    // under the login user's home, where the deploy found the agent).
    auto norm = [](const std::string& p) {
      std::string n = fs::path(p).lexically_normal().string();
      while (n.size() > 1 && n.back() == '/') n.pop_back();
      return n;
    };
    if (!h->agent_root.empty() && h->agent_root.front() == '/' &&
        norm(h->agent_root) != norm(hv.root))
      out.push_back(
          fmt::format("hosts[{}].agent_root is {} {}, but the root of {} is {}: set it to {}", host,
                      h->agent_root, in, agent, hv.root, hv.root));
  } else if (!hv.root.empty()) {
    const fs::path want = from_config(env, env.agent.root);
    if (want != from_config(env, hv.root))
      out.push_back(
          fmt::format("agent.root is {} {}, but the root of {} is {}: set agent.root: {}, or point "
                      "agent.socket "
                      "at the agent started with --root {}",
                      env.agent.root, in, agent, hv.root, hv.root, want.string()));
  }
  return out;
}

}  // namespace md::deploy
