// Reaching a host over SSH with the system OpenSSH client (`ssh`): one
// multiplexed master connection per host (ControlMaster in a private 0700
// directory), remote commands, atomic file upload and unix-socket
// forwarding over it. Host keys are always verified (StrictHostKeyChecking
// =yes, BatchMode=yes); an unknown or changed key is an error naming the
// host, the key's fingerprint and how to accept it.
//
// The pure parts (parsing, known_hosts assembly, argv building, reading
// ssh's messages) are free functions, tested without a network.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::ssh {

// Where to connect: `ssh://[user@]host[:port]`, IPv6 in brackets
// (`ssh://deploy@[2001:db8::1]:2222`).
struct Endpoint {
  std::string user;  // "" = ssh's default (its config, else the local user)
  std::string host;  // a name or an address; IPv6 without brackets
  int port = 0;      // 0 = ssh's default (its config, else 22)

  // kInvalidArgument naming the address and what is wrong (scheme, empty
  // host, bad port, unclosed bracket, a path or query after the host).
  static Result<Endpoint> parse(std::string_view address);
  // "ssh://user@host:port" as parse() reads it (brackets around IPv6).
  std::string describe() const;
  // The host as known_hosts names it: "host" on port 22/default, else
  // "[host]:port" (what ssh looks up and ssh-keyscan prints).
  std::string known_hosts_name() const;
};

// How the host is trusted and how we log in.
struct Trust {
  // known_hosts lines: the text of a file (ssh.known_hosts) and/or of a
  // secret; "" = none.
  std::string known_hosts_text;
  // This host's public key, "ssh-ed25519 AAAA..." (hosts[].host_key); a
  // full known_hosts line (with host names first) is taken as it is.
  std::string host_key;
  // A private key (the text of a vault secret). "" = ssh-agent or ssh's
  // default identities. Written 0600 in the private directory only while
  // the master connection logs in, then removed; never in argv or messages.
  std::string identity;
};

// The known_hosts file for `ep`: `trust.known_hosts_text` then the host key
// line ("<known_hosts_name> <type> <base64>"). "" when `trust` has neither:
// ssh's own files (~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts) are used
// then. Pure.
std::string assemble_known_hosts(const Endpoint& ep, const Trust& trust);

// The options every ssh invocation of one connection shares (pure).
struct ArgvContext {
  std::filesystem::path control_path;  // the master's socket
  std::filesystem::path known_hosts;   // "" = ssh's default files
  std::filesystem::path identity;      // "" = ssh-agent / default identities
  Millis connect_timeout{10000};
};
// `ssh <options> [-p port] [-l user] <extra...> -- host` is never built by
// hand elsewhere: base_argv gives argv up to (not including) the
// destination; destination() the last word(s).
std::vector<std::string> base_argv(const Endpoint& ep, const ArgvContext& ctx);
// argv that starts the master (-M -N -f, ControlPersist, log to `log`).
std::vector<std::string> master_argv(const Endpoint& ep, const ArgvContext& ctx,
                                     const std::filesystem::path& log, bool debug);
// argv that runs `remote_command` through the master.
std::vector<std::string> run_argv(const Endpoint& ep, const ArgvContext& ctx,
                                  const std::string& remote_command);
// argv of a control command (-O check | exit | forward ...).
std::vector<std::string> control_argv(const Endpoint& ep, const ArgvContext& ctx,
                                      const std::vector<std::string>& op);

// What went wrong, read from ssh's messages (stderr or its -E log).
enum class Failure {
  kNone,            // nothing recognised
  kUnknownHostKey,  // no key known for the host (strict checking)
  kChangedHostKey,  // the host's key differs from the known one
  kAuth,            // the host refused our key (Permission denied)
  kUnreachable,     // refused, timed out, no route, name not resolved, closed
  kMuxGone,         // the master connection is gone
};
struct Diagnosis {
  Failure failure = Failure::kNone;
  std::string fingerprint;  // "SHA256:..." of the host's key when ssh printed it
  std::string key_type;     // "ED25519", "ssh-ed25519"... when printed
  std::string line;         // ssh's most telling line, for the message
};
Diagnosis diagnose(std::string_view ssh_messages);

// The error for a failed connection to host `name`: says what and, for host
// keys, the fingerprint and how to accept the key (ssh-keyscan, or
// hosts[].host_key). kPermissionDenied for keys and authentication,
// kUnavailable (retryable) when unreachable, else kUnavailable.
Error connect_error(std::string_view name, const Endpoint& ep, const Diagnosis& d);

// A shell word: 'text' with every ' escaped. Pure.
std::string shell_quote(std::string_view text);

// What a remote command did.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// One master connection to one host. Not thread-safe: use it from one
// thread at a time (the forwarded sockets may be used from any thread).
class Connection {
 public:
  // Starts the master: logs in (blocking, at most `timeout`), verifying the
  // host key. Errors: connect_error() for key, authentication and network
  // failures (nothing has run on the host then); kIo for the private
  // directory. `name` is the host's name for messages.
  static Result<std::unique_ptr<Connection>> open(std::string name, Endpoint ep, const Trust& trust,
                                                  Millis timeout);
  // Stops the master (-O exit) and removes the private directory.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& name() const { return name_; }
  const Endpoint& endpoint() const { return ep_; }

  // Runs `remote_command` with the login shell of the remote user, feeding
  // `stdin_text` (nullopt = none). A non-zero exit is NOT an error (it is in
  // the result). Errors: kTimeout after `timeout` (0 = none); kUnavailable
  // (retryable) when the connection is gone.
  Result<RunResult> run(const std::string& remote_command,
                        std::optional<std::string> stdin_text = std::nullopt,
                        Millis timeout = Millis(60000));
  // Copies the local file to `remote_path` (absolute) with `mode`,
  // atomically: a temp file beside it, then rename. Reads the file into
  // memory (meant for binaries and configs, not artifacts: those go through
  // the agent's chunked upload). Errors as run(), plus kIo (local read) and
  // kFailedPrecondition (the remote side failed, with its stderr).
  Status put(const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
             Millis timeout = Millis(300000));
  // A local unix socket (in the private directory, mode 0600) forwarded to
  // `remote_socket` on the host; each connection to it is one channel of
  // the master. Calling it again for the same socket returns the same path.
  Result<std::filesystem::path> forward(const std::string& remote_socket);

 private:
  Connection() = default;
  Status start(Millis timeout);
  std::string name_;
  Endpoint ep_;
  std::filesystem::path dir_;
  ArgvContext ctx_;
  std::vector<std::pair<std::string, std::filesystem::path>> forwards_;
  bool master_up_ = false;
};

}  // namespace md::ssh
