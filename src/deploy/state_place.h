// Where an environment's state store lives, and opening it: a SQLite file, a
// Postgres URL, or the store a host's agent serves (`state: agent`,
// agent/state_api.h), reached through that host's agent socket.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/clock.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::deploy {

// The host whose agent serves `env`'s store (`state: agent:<name>`), or
// nullptr when the store is a file or a Postgres URL.
const config::Host* state_host(const config::Environment& env);

// The control socket of `h`, a local host of `env`: its own agent_root's
// agent.sock when the environment has several hosts (each its own agent),
// else the environment's agent socket (agent_socket()).
std::filesystem::path local_agent_socket(const config::Environment& env, const config::Host& h);

// Opens `env`'s store. For `state: agent:<host>`: a store whose calls go to
// that host's agent — the local socket, or for an ssh host a forward over its
// own ssh connection (open_agent_link; ssh's errors, e.g. an unknown host
// key), closed with the store; kUnavailable (retryable) naming the host when
// the agent does not answer. `secrets` holds the ssh key (ssh.key_secret);
// nullptr = loaded from the vault when the environment's ssh needs it.
// Otherwise state::open_store(state::store_url(env)). Blocks on the store.
Result<std::unique_ptr<state::Store>> open_state(const config::Environment& env,
                                                 const secrets::SecretMap* secrets = nullptr,
                                                 Millis timeout = Millis(30000));

}  // namespace md::deploy
