// The real implementations of deploy's seams: the host agent over its unix
// socket (agent/api.h), the migration engine (migrate/migrate.h) and hook
// commands (core/process.h).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/clock.h"
#include "deploy/seams.h"
#include "secrets/secrets.h"

namespace md::deploy {

// The agent's control socket for `env`: agent.socket, else
// <agent.root>/agent.sock, relative paths taken from meshdeploy.yml's folder.
std::filesystem::path agent_socket(const config::Environment& env);

// The local host's agent. Calls that wait for processes (stop, drain) may
// block up to their own limits; others time out after `call_timeout`.
// A single host only: kInvalidArgument for an environment with ssh hosts.
Result<std::unique_ptr<Host>> make_agent_host(const config::Environment& env,
                                              Millis call_timeout = Millis(30000));

// The migration engine for `env`'s database (URL from the secret named by
// migrations.database_url_secret). nullptr with `why_none` set when
// migrations are disabled or the folder holds no migration; kNotFound when
// there are migrations but the vault lacks the URL secret.
Result<std::unique_ptr<Migrator>> make_migrator(const config::Environment& env,
                                                const secrets::SecretMap& secrets,
                                                const std::string& actor, std::string* why_none);

// Runs hooks with /bin/sh -c in `cwd`, inheriting the environment plus the
// MESHDEPLOY_* variables. Each output line goes to `on_line` (redacted by
// the process-wide filter) as it arrives.
std::unique_ptr<HookRunner> make_shell_hooks(std::filesystem::path cwd,
                                             std::function<void(std::string_view line)> on_line);

}  // namespace md::deploy

namespace md::deploy {

// Wraps `inner` so that, once the agent has answered, calls failing with a
// retryable error (the agent is restarting: kUnavailable) are repeated with
// backoff until `patience` has passed. Safe because every Host call is
// idempotent. An agent that never answered fails at once. `on_retry` hears
// about the first retry of each call.
std::unique_ptr<Host> with_retries(std::unique_ptr<Host> inner, Clock& clock, Millis patience,
                                   std::function<void(const std::string&)> on_retry = {});

}  // namespace md::deploy
