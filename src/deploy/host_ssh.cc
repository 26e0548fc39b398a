// The way to a host's agent: its local socket, or an ssh forward to it.
#include <fmt/format.h>

#include <algorithm>

#include "core/fs.h"
#include "deploy/adapters.h"
#include "ssh/ssh.h"

namespace md::deploy {
namespace {

std::filesystem::path from_config(const config::Environment& env, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : env.base_dir / path;
}

Result<std::string> vault_secret(const config::Environment& env, const secrets::SecretMap& secrets,
                                 const std::string& name, const std::string& key) {
  auto it = secrets.find(name);
  if (it == secrets.end())
    return fail(Errc::kNotFound,
                fmt::format("{} names secret {}, which is not in the {} vault (meshdeploy "
                            "secrets set {} --env {} < FILE)",
                            key, name, env.name, name, env.name));
  return it->second.reveal();
}

// The trust of one host from the config and the vault.
Result<ssh::Trust> trust_for(const config::Environment& env, const config::Host& h,
                             const secrets::SecretMap& secrets) {
  ssh::Trust t;
  if (!env.ssh.known_hosts.empty()) {
    const std::filesystem::path p = from_config(env, env.ssh.known_hosts);
    auto text = fs::read_file(p);
    if (!text)
      return fail(text.error().code(),
                  fmt::format("ssh.known_hosts {}: {}", p.string(), text.error().message()));
    t.known_hosts_text = std::move(*text);
  }
  if (!env.ssh.known_hosts_secret.empty()) {
    std::string more =
        MD_TRY(vault_secret(env, secrets, env.ssh.known_hosts_secret, "ssh.known_hosts_secret"));
    if (!t.known_hosts_text.empty() && t.known_hosts_text.back() != '\n')
      t.known_hosts_text += '\n';
    t.known_hosts_text += more;
  }
  t.host_key = h.host_key;
  if (!env.ssh.key_secret.empty())
    t.identity = MD_TRY(vault_secret(env, secrets, env.ssh.key_secret, "ssh.key_secret"));
  return t;
}

}  // namespace

bool needs_ssh_secrets(const config::Environment& env) {
  const bool any_ssh = std::any_of(env.hosts.begin(), env.hosts.end(),
                                   [](const config::Host& h) { return h.address != "local"; });
  return any_ssh && (!env.ssh.key_secret.empty() || !env.ssh.known_hosts_secret.empty());
}

Result<std::unique_ptr<ssh::Connection>> open_host_ssh(const config::Environment& env,
                                                       size_t host_index,
                                                       const secrets::SecretMap& secrets) {
  MD_CHECK(host_index < env.hosts.size());
  const config::Host& h = env.hosts[host_index];
  const std::string where = fmt::format("environment {}, host {}", env.name, h.name);
  ssh::Endpoint ep = MD_TRY_CTX(ssh::Endpoint::parse(h.address), where);
  if (ep.user.empty()) ep.user = env.ssh.user;
  if (ep.port == 0) ep.port = env.ssh.port;
  const ssh::Trust trust = MD_TRY_CTX(trust_for(env, h, secrets), where);
  return ssh::Connection::open(h.name, ep, trust, env.ssh.connect_timeout);
}

Result<AgentLink> open_agent_link(const config::Environment& env, size_t host_index,
                                  const secrets::SecretMap& secrets) {
  MD_CHECK(host_index < env.hosts.size());
  const config::Host& h = env.hosts[host_index];
  AgentLink link;
  link.host = h.name;
  if (h.address == "local") {
    link.socket = agent_socket(env);
    return link;
  }
  std::unique_ptr<ssh::Connection> conn = MD_TRY(open_host_ssh(env, host_index, secrets));
  std::string root = h.agent_root;
  if (!root.empty() && root.front() != '/') {
    // WHY ask: the forward needs an absolute path, and the login user's home
    // is known only on the host.
    ssh::RunResult home =
        MD_TRY(conn->run("printf '%s' \"$HOME\"", std::nullopt, env.ssh.connect_timeout * 3));
    if (home.exit_code != 0 || home.out.empty() || home.out.front() != '/')
      return fail(Errc::kFailedPrecondition,
                  fmt::format("host {}: agent_root {} is relative and the login user's home is "
                              "unknown there; set hosts[].agent_root to an absolute path",
                              h.name, root));
    root = home.out + "/" + root;
  }
  link.remote_socket = (std::filesystem::path(root) / "agent.sock").lexically_normal().string();
  link.socket = MD_TRY(conn->forward(link.remote_socket));
  link.connection = std::move(conn);
  return link;
}

}  // namespace md::deploy
