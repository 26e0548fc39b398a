// Opening an environment's state store where `state:` puts it (state_place.h).
#include "deploy/state_place.h"

#include <fmt/format.h>

#include "agent/state_api.h"
#include "deploy/adapters.h"

namespace md::deploy {

const config::Host* state_host(const config::Environment& env) {
  const std::string url = state::store_url(env);
  if (!url.starts_with("agent:")) return nullptr;
  const std::string name = url.substr(6);
  for (const config::Host& h : env.hosts)
    if (h.name == name) return &h;
  return nullptr;
}

std::filesystem::path local_agent_socket(const config::Environment& env, const config::Host& h) {
  if (env.hosts.size() <= 1 || h.agent_root.empty()) return agent_socket(env);
  std::filesystem::path p = std::filesystem::path(h.agent_root) / "agent.sock";
  return p.is_absolute() ? p : env.base_dir / p;
}

Result<std::unique_ptr<state::Store>> open_state(const config::Environment& env,
                                                 const secrets::SecretMap* secrets,
                                                 Millis timeout) {
  const std::string url = state::store_url(env);
  if (!url.starts_with("agent:")) return state::open_store(url);
  const config::Host* h = state_host(env);
  if (!h)
    return fail(Errc::kInvalidArgument,
                fmt::format("environment {}: state: '{}' names no host of it", env.name, url));
  std::string where = "agent of " + h->name;
  if (env.state_defaulted) where += ", the default with ssh hosts";
  if (h->address == "local")
    return agent::open_agent_store(local_agent_socket(env, *h), where, timeout);
  // An ssh host: its own master connection, held as long as the store.
  secrets::SecretMap loaded;
  if (!secrets && needs_ssh_secrets(env)) {
    loaded = MD_TRY_CTX(secrets::load_secrets(env), "secrets of " + env.name + " (ssh key)");
    secrets = &loaded;
  }
  const auto index = static_cast<size_t>(h - env.hosts.data());
  AgentLink link = MD_TRY_CTX(open_agent_link(env, index, secrets ? *secrets : loaded),
                              "state store on the " + where);
  return agent::open_agent_store(link.socket, where, timeout, link.connection);
}

}  // namespace md::deploy
