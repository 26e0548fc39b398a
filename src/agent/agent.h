// The host agent (`meshdeploy agent run`): owns a root directory, the
// release store under it, the supervisor of the release processes, the
// embedded proxy, and the control API on a unix socket (api.h).
//
// Lifecycle: start() takes the root's lock, loads the state file, starts the
// proxy with the saved routes, re-adopts the saved processes (killing any
// process of this root the state does not know: an orphan), restores
// canaries and maintenance, then serves the API. stop() leaves every release
// process running (they live in sessions of their own) unless asked to stop
// them all; a restarted agent picks them up again.
//
// Concurrency: mutating operations are serialised (one at a time, in the
// order they arrive); status reads do not wait for them. The supervisor
// runs on two threads of the agent (ticks every 20 ms, health rounds every
// 50 ms); a third keeps the proxy's targets in line with restarted processes
// and persists changes.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/api.h"
#include "agent/artifact_gc.h"
#include "core/error.h"
#include "supervisor/supervisor.h"

namespace md::agent {

struct Options {
  std::filesystem::path root;                         // required; created if missing
  std::filesystem::path socket;                       // "" = <root>/agent.sock
  std::vector<std::string> listen{"127.0.0.1:8080"};  // the proxy's public listeners
  // Listening sockets handed to this process (systemd socket activation, or
  // the previous agent across `agent restart`); the agent owns them. Each is
  // used by the `listen` entry with its address; with `listen` empty they are
  // the listeners. Default: none (every listener is bound).
  std::vector<int> inherited_sockets;
  std::filesystem::path tls_cert, tls_key;  // PEM; both set = HTTPS on every listener
  int proxy_threads = 0;                    // 0 = number of cores
  size_t max_connections = 0;  // client connections per listener; 0 = auto (proxy::Limits)
  // The log writer command (see supervisor/log_writer.h), normally
  // {"<this binary>", "agent", "log-writer"}. Required.
  std::vector<std::string> log_writer_argv;
  supervisor::RestartPolicy restart;
  std::string agent_version;  // reported in status
  // "IP:PORT": serve GET /metrics (Prometheus text, nothing of the control
  // API) over TCP there, for a Prometheus server to scrape. "" (default): the
  // metrics are only on the control socket.
  std::string metrics_listen;
  // An upload that receives no chunk for this long is removed (its
  // controller died mid-way). `agent run --upload-expiry`; default 10 min.
  Millis upload_expiry = kDefaultUploadExpiry;
  // Takes an environment's notification hand-off (`PUT /v1/agent/notify`,
  // the body as sent; see notify.h). Wired by the CLI, which owns the
  // notify layer the agent must not include. Empty = the route answers 501.
  std::function<Status(const std::string& body)> notify_handoff;
};

// The controller's side of `PUT /v1/agent/notify`: hands `body` (a
// notification hand-off, notify/courier.h; it holds secret values, so it
// goes only over this socket) to the agent at `socket`. kUnavailable when no
// agent listens; kFailedPrecondition (HTTP 501) from an agent without the
// hook. Blocks up to `timeout`.
Status send_notify_handoff(const std::filesystem::path& socket, const std::string& body,
                           Millis timeout);

class Agent {
 public:
  // Everything in the lifecycle above. Errors: kConflict (another agent owns
  // the root), kCorruption (state file damaged: nothing is touched),
  // kUnavailable (a listener's port is taken), kInvalidArgument (options).
  static Result<std::unique_ptr<Agent>> start(Options options);
  ~Agent();  // stop(false)

  // Blocks until a shutdown was asked (API `shutdown`, or request_stop()).
  // Returns true if it asked to stop every release too.
  bool wait();
  // Wakes wait(). Thread-safe; not async-signal-safe.
  void request_stop(bool all = false);
  // True when the shutdown wait() returned for was a restart (API `shutdown`
  // with "restart": the caller runs stop_for_restart() and execs).
  bool restart_requested() const;
  // Like stop(false, grace), but first duplicates the public listening
  // sockets: returned close-on-exec, owned by the caller, to be handed to the
  // next agent (sd::exec_with_listen_fds). Connections arriving meanwhile wait
  // in the sockets' backlog instead of being refused.
  std::vector<int> stop_for_restart(Millis grace = Millis(5000));
  // Stops the API server, the agent's threads and the proxy (in-flight
  // requests get `grace`). With `all`, every release process is stopped
  // first (SIGTERM, its grace period, SIGKILL). Idempotent.
  void stop(bool all, Millis grace = Millis(5000));

  AgentStatus status() const;
  const std::filesystem::path& socket_path() const;

  struct Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace md::agent
