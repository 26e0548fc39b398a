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

namespace md::ssh {
class Connection;
}

namespace md::deploy {

// The agent's control socket for `env`: agent.socket, else
// <agent.root>/agent.sock, relative paths taken from meshdeploy.yml's folder.
std::filesystem::path agent_socket(const config::Environment& env);

// How this process reaches the agent of one host: a unix socket here — the
// local agent's, or one forwarded over ssh to <agent_root>/agent.sock on the
// host, open while `connection` lives. Cheap to copy (shared connection).
struct AgentLink {
  std::string host;                             // the host's name (config)
  std::filesystem::path socket;                 // connect the agent client here
  std::string remote_socket;                    // ssh hosts: the socket on the host
  std::shared_ptr<ssh::Connection> connection;  // ssh hosts: the master connection
};

// True when `env` has ssh hosts whose key or known_hosts come from the vault
// (commands that otherwise need no secrets must load them then).
bool needs_ssh_secrets(const config::Environment& env);

// Opens the way to the agent of `env.hosts[host_index]`. Local host: its
// socket (agent_socket). ssh host: one ssh master connection (ssh/ssh.h:
// host key checked against ssh.known_hosts, ssh.known_hosts_secret and
// hosts[].host_key; key from ssh.key_secret, else ssh-agent), then a
// forward of <agent_root>/agent.sock (relative roots under the login
// user's home). Blocks up to ssh.connect_timeout (+ the forward). Errors:
// ssh's (an unknown/changed host key says how to accept it; nothing has
// run on the host then); kNotFound for a missing known_hosts file or secret.
Result<AgentLink> open_agent_link(const config::Environment& env, size_t host_index,
                                  const secrets::SecretMap& secrets);

// The ssh master connection to `env.hosts[host_index]` (an ssh host), with
// the trust open_agent_link uses; errors as that. Blocking (login).
Result<std::unique_ptr<ssh::Connection>> open_host_ssh(const config::Environment& env,
                                                       size_t host_index,
                                                       const secrets::SecretMap& secrets);

// The local host's agent. Calls that wait for processes (stop, drain) may
// block up to their own limits; others time out after `call_timeout`.
// A single host only: kInvalidArgument for an environment with ssh hosts.
Result<std::unique_ptr<Host>> make_agent_host(const config::Environment& env,
                                              Millis call_timeout = Millis(30000));

// The agent of ssh host `env.hosts[host_index]` over open_agent_link (errors
// as that). The Host owns the ssh connection (closed when it is destroyed).
// `ship` streams the artifact through the socket (agent upload, verified by
// sha256 on the host), then unpacks it. Named after the config's host.
Result<std::unique_ptr<Host>> make_ssh_agent_host(const config::Environment& env, size_t host_index,
                                                  const secrets::SecretMap& secrets,
                                                  Millis call_timeout = Millis(30000));

// Every host of `env` as one Host: one host alone (local or ssh), or for
// several a fleet (make_fleet) whose hosts' connections are opened in
// parallel. Each host's calls are retried while its agent restarts
// (with_retries, at most `patience`; several hosts: at most
// strategy.hosts.unreachable_after). Errors: the first host that could not
// be reached (open_agent_link's), nothing having run on any host.
Result<std::unique_ptr<Host>> make_hosts(const config::Environment& env,
                                         const secrets::SecretMap& secrets, Clock& clock,
                                         Millis patience,
                                         std::function<void(const std::string&)> on_retry = {},
                                         Millis call_timeout = Millis(30000));

// Several hosts as one (fleet.cc): every call goes to all hosts in parallel
// and succeeds only when it succeeded on each; an error names every host
// that failed ("host h2: ...; host h3: ..."). A route() that failed on some
// hosts says which moved. view() merges the hosts' views (HostView::hosts,
// ReleaseView::on_hosts, processes of all hosts, the mean split); per-host
// views, metrics, the switch spread and a per-host call log are the Host
// interface's fleet calls. One host: returned as it is.
std::unique_ptr<Host> make_fleet(std::vector<std::unique_ptr<Host>> hosts);

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
