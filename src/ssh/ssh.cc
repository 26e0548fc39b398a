#include "ssh/ssh.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "core/fs.h"
#include "core/log.h"
#include "core/process.h"

namespace md::ssh {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

Error bad_address(std::string_view address, std::string_view why) {
  return Error(Errc::kInvalidArgument,
               fmt::format("ssh address '{}': {} (expected ssh://[user@]host[:port], IPv6 in "
                           "brackets: ssh://user@[2001:db8::1]:22)",
                           address.substr(0, 200), why));
}

bool host_char_ok(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// Seconds for ssh's ConnectTimeout (at least 1).
std::string seconds(Millis d) {
  return std::to_string(std::max<int64_t>(1, (d.count() + 999) / 1000));
}

std::string destination(const Endpoint& ep) {
  return ep.user.empty() ? ep.host : ep.user + "@" + ep.host;
}

// The line of `text` holding `needle`, trimmed; "" if none.
std::string line_with(std::string_view text, std::string_view needle) {
  size_t at = text.find(needle);
  if (at == std::string_view::npos) return "";
  size_t b = text.rfind('\n', at);
  b = b == std::string_view::npos ? 0 : b + 1;
  size_t e = text.find('\n', at);
  std::string l(text.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  return l;
}

// The first "SHA256:..." (or "MD5:...") word after `from`.
std::string fingerprint_after(std::string_view text, size_t from) {
  size_t at = text.find("SHA256:", from);
  if (at == std::string_view::npos) return "";
  size_t e = at + 7;
  while (e < text.size() &&
         (std::isalnum(static_cast<unsigned char>(text[e])) || text[e] == '+' || text[e] == '/'))
    ++e;
  return std::string(text.substr(at, e - at));
}

}  // namespace

// ---- Endpoint ---------------------------------------------------------------------

Result<Endpoint> Endpoint::parse(std::string_view address) {
  constexpr std::string_view kScheme = "ssh://";
  if (!starts_with(address, kScheme))
    return fail(bad_address(address, "it must start with ssh://"));
  std::string_view rest = address.substr(kScheme.size());
  Endpoint ep;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    ep.user = std::string(rest.substr(0, at));
    rest = rest.substr(at + 1);
    if (ep.user.empty()) return fail(bad_address(address, "the user before '@' is empty"));
    for (char c : ep.user)
      if (!host_char_ok(c))
        return fail(bad_address(address, "the user may hold letters, digits, '.', '-', '_'"));
    if (ep.user.front() == '-') return fail(bad_address(address, "the user starts with '-'"));
  }
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return fail(bad_address(address, "'[' without ']' around the IPv6 address"));
    ep.host = std::string(rest.substr(1, close - 1));
    for (char c : ep.host)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.' && c != '%')
        return fail(bad_address(address, "the bracketed host is not an IPv6 address"));
    if (ep.host.find(':') == std::string::npos)
      return fail(bad_address(address, "the bracketed host is not an IPv6 address"));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(bad_address(address, "unexpected text after ']'"));
      port_text = rest.substr(1);
      if (port_text.empty()) return fail(bad_address(address, "':' without a port"));
    }
  } else {
    size_t colon = rest.find(':');
    ep.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return fail(bad_address(address, "':' without a port"));
      if (port_text.find(':') != std::string_view::npos)
        return fail(bad_address(address, "an IPv6 address must be in brackets"));
    }
    for (char c : ep.host) {
      if (c == '/' || c == '?' || c == '#')
        return fail(bad_address(address, "no path or query after the host"));
      if (!host_char_ok(c))
        return fail(bad_address(address, fmt::format("'{}' is not allowed in a host name", c)));
    }
  }
  if (ep.host.empty()) return fail(bad_address(address, "the host is empty"));
  if (ep.host.front() == '-') return fail(bad_address(address, "the host starts with '-'"));
  if (!port_text.empty()) {
    int port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size())
      return fail(bad_address(address, fmt::format("port '{}' is not a number", port_text)));
    if (port < 1 || port > 65535)
      return fail(bad_address(address, fmt::format("port {} is not in 1..65535", port)));
    ep.port = port;
  }
  return ep;
}

std::string Endpoint::describe() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return fmt::format("ssh://{}{}{}", user.empty() ? "" : user + "@", h,
                     port == 0 ? "" : ":" + std::to_string(port));
}

std::string Endpoint::known_hosts_name() const {
  if (port == 0 || port == 22) return host;
  return fmt::format("[{}]:{}", host, port);
}

// ---- pure helpers -----------------------------------------------------------------

std::string assemble_known_hosts(const Endpoint& ep, const Trust& trust) {
  std::string out = trust.known_hosts_text;
  if (!out.empty() && out.back() != '\n') out += '\n';
  std::string key = trust.host_key;
  while (!key.empty() && (key.back() == '\n' || key.back() == ' ' || key.back() == '\r'))
    key.pop_back();
  if (!key.empty()) {
    // A bare key starts with its type (ssh-ed25519, ecdsa-sha2-..., sk-...);
    // anything else is a whole known_hosts line.
    const bool bare = starts_with(key, "ssh-") || starts_with(key, "ecdsa-") ||
                      starts_with(key, "sk-") || starts_with(key, "rsa-");
    out += bare ? ep.known_hosts_name() + " " + key : key;
    out += '\n';
  }
  return out;
}

std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::vector<std::string> base_argv(const Endpoint& ep, const ArgvContext& ctx) {
  std::vector<std::string> a = {"ssh",
                                "-o",
                                "BatchMode=yes",
                                "-o",
                                "StrictHostKeyChecking=yes",
                                "-o",
                                "UpdateHostKeys=no",
                                "-o",
                                "CheckHostIP=no",
                                "-o",
                                "ConnectTimeout=" + seconds(ctx.connect_timeout),
                                "-o",
                                "ControlPath=" + ctx.control_path.string()};
  if (!ctx.known_hosts.empty()) {
    a.insert(a.end(), {"-o", "UserKnownHostsFile=" + ctx.known_hosts.string(), "-o",
                       "GlobalKnownHostsFile=/dev/null"});
  }
  if (!ctx.identity.empty())
    a.insert(a.end(), {"-o", "IdentitiesOnly=yes", "-o", "IdentityFile=" + ctx.identity.string()});
  if (ep.port != 0) a.insert(a.end(), {"-p", std::to_string(ep.port)});
  return a;
}

std::vector<std::string> master_argv(const Endpoint& ep, const ArgvContext& ctx,
                                     const std::filesystem::path& log, bool debug) {
  std::vector<std::string> a = base_argv(ep, ctx);
  a.insert(a.end(), {"-M",
                     "-N",
                     "-f",
                     "-o",
                     "ControlPersist=yes",
                     "-o",
                     "StreamLocalBindUnlink=yes",
                     "-o",
                     "StreamLocalBindMask=0177",
                     "-o",
                     "ServerAliveInterval=15",
                     "-o",
                     "ServerAliveCountMax=3",
                     "-o",
                     "ExitOnForwardFailure=yes",
                     "-o",
                     debug ? "LogLevel=DEBUG1" : "LogLevel=ERROR",
                     "-E",
                     log.string(),
                     "--",
                     destination(ep)});
  return a;
}

std::vector<std::string> run_argv(const Endpoint& ep, const ArgvContext& ctx,
                                  const std::string& remote_command) {
  std::vector<std::string> a = base_argv(ep, ctx);
  a.insert(a.end(), {"-o", "ControlMaster=no", "-T", "--", destination(ep), remote_command});
  return a;
}

std::vector<std::string> control_argv(const Endpoint& ep, const ArgvContext& ctx,
                                      const std::vector<std::string>& op) {
  std::vector<std::string> a = base_argv(ep, ctx);
  a.insert(a.end(), op.begin(), op.end());
  a.insert(a.end(), {"--", destination(ep)});
  return a;
}

Diagnosis diagnose(std::string_view m) {
  Diagnosis d;
  if (size_t at = m.find("Server host key: "); at != std::string_view::npos) {
    std::string l = line_with(m.substr(at), "Server host key: ");
    l = l.substr(l.find("Server host key: ") + 17);
    d.key_type = l.substr(0, l.find(' '));
    d.fingerprint = fingerprint_after(m, at);
  }
  if (m.find("REMOTE HOST IDENTIFICATION HAS CHANGED") != std::string_view::npos ||
      m.find("has changed and you have requested strict checking") != std::string_view::npos) {
    d.failure = Failure::kChangedHostKey;
    if (size_t at = m.find("key sent by the remote host is"); at != std::string_view::npos) {
      d.fingerprint = fingerprint_after(m, at);
      size_t t = m.rfind("The fingerprint for the ", at);
      if (t != std::string_view::npos) {
        t += 24;
        d.key_type = std::string(m.substr(t, m.find(' ', t) - t));
      }
    }
    d.line = line_with(m, "has changed and you have requested strict checking");
    return d;
  }
  if (m.find("host key is known for") != std::string_view::npos ||
      m.find("Host key verification failed") != std::string_view::npos) {
    d.failure = Failure::kUnknownHostKey;
    d.line = line_with(m, "host key is known for");
    if (d.line.empty()) d.line = line_with(m, "Host key verification failed");
    if (d.key_type.empty() && starts_with(d.line, "No "))
      d.key_type = d.line.substr(3, d.line.find(' ', 3) - 3);
    return d;
  }
  if (m.find("Permission denied") != std::string_view::npos) {
    d.failure = Failure::kAuth;
    d.line = line_with(m, "Permission denied");
    return d;
  }
  for (std::string_view s :
       {"Connection refused", "Connection timed out", "timed out", "No route to host",
        "Could not resolve hostname", "Network is unreachable", "Connection closed by",
        "Connection reset", "kex_exchange_identification"}) {
    if (m.find(s) != std::string_view::npos) {
      d.failure = Failure::kUnreachable;
      d.line = line_with(m, s);
      return d;
    }
  }
  for (std::string_view s : {"Control socket connect", "mux_client", "master is not running",
                             "No such file or directory"}) {
    if (m.find(s) != std::string_view::npos) {
      d.failure = Failure::kMuxGone;
      d.line = line_with(m, s);
      return d;
    }
  }
  return d;
}

Error connect_error(std::string_view name, const Endpoint& ep, const Diagnosis& d) {
  const std::string who = fmt::format("host {} ({})", name, ep.describe());
  const std::string keyscan =
      fmt::format("ssh-keyscan{} {}", ep.port ? fmt::format(" -p {}", ep.port) : "", ep.host);
  const std::string fp =
      d.fingerprint.empty()
          ? ""
          : fmt::format(" It presents the {}key {}.", d.key_type.empty() ? "" : d.key_type + " ",
                        d.fingerprint);
  switch (d.failure) {
    case Failure::kUnknownHostKey:
      return Error(Errc::kPermissionDenied,
                   fmt::format("{}: its host key is not known, so nothing was done there.{} "
                               "Check the fingerprint with the host's owner (`ssh-keygen -lf "
                               "/etc/ssh/ssh_host_*_key.pub` on the host), then accept it: "
                               "`{} >> KNOWN_HOSTS` (the file ssh.known_hosts names), or set "
                               "hosts[].host_key to the key line `{}` prints",
                               who, fp, keyscan, keyscan));
    case Failure::kChangedHostKey:
      return Error(Errc::kPermissionDenied,
                   fmt::format("{}: its host key has CHANGED since it was recorded, so nothing "
                               "was done there (it may be a man-in-the-middle, or the host was "
                               "reinstalled).{} If the change is expected, remove the old line "
                               "(`ssh-keygen -R '{}' -f KNOWN_HOSTS`) and accept the new key "
                               "(`{} >> KNOWN_HOSTS`), or update hosts[].host_key",
                               who, fp, ep.known_hosts_name(), keyscan));
    case Failure::kAuth:
      return Error(Errc::kPermissionDenied,
                   fmt::format("{}: the host refused our key ({}): put the public key of the "
                               "private key in ssh.key_secret (or of one in ssh-agent) into the "
                               "user's ~/.ssh/authorized_keys there",
                               who, d.line));
    case Failure::kUnreachable:
      return Error(Errc::kUnavailable, fmt::format("{}: unreachable: {}", who, d.line), true);
    case Failure::kMuxGone:
      return Error(Errc::kUnavailable,
                   fmt::format("{}: the ssh connection is gone: {}", who, d.line), true);
    case Failure::kNone:
      break;
  }
  return Error(Errc::kUnavailable,
               fmt::format("{}: ssh failed{}", who, d.line.empty() ? "" : ": " + d.line), true);
}

// ---- Connection -------------------------------------------------------------------

namespace {

// A private directory for one connection: $TMPDIR (else /tmp)/meshdeploy-ssh-XXXXXX,
// mode 0700. WHY the length check: unix socket paths are limited to 108
// bytes and ssh adds ~17 to the ControlPath while creating it.
Result<std::filesystem::path> make_private_dir() {
  std::string base = "/tmp";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0' && std::strlen(t) < 60)
    base = t;
  std::string tmpl = base + "/meshdeploy-ssh-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return fail(Errc::kIo, fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
  ::chmod(tmpl.c_str(), 0700);
  return std::filesystem::path(tmpl);
}

Status write_private(const std::filesystem::path& p, std::string_view data) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return fail(Errc::kIo, fmt::format("create {}: {}", p.string(), std::strerror(errno)));
  proc::Fd owned(fd);
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return fail(Errc::kIo, fmt::format("write {}: {}", p.string(), std::strerror(errno)));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

std::string last_lines(const std::string& s) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  if (t.size() > 400) t = "..." + t.substr(t.size() - 400);
  return t;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::open(std::string name, Endpoint ep,
                                                     const Trust& trust, Millis timeout) {
  std::unique_ptr<Connection> c(new Connection());
  c->name_ = std::move(name);
  c->ep_ = std::move(ep);
  c->dir_ = MD_TRY_CTX(make_private_dir(), "ssh to host " + c->name_);
  c->ctx_.control_path = c->dir_ / "ctl";
  c->ctx_.connect_timeout = timeout;
  const std::string kh = assemble_known_hosts(c->ep_, trust);
  if (!kh.empty() || !trust.host_key.empty()) {
    c->ctx_.known_hosts = c->dir_ / "known_hosts";
    MD_TRY_STATUS(write_private(c->ctx_.known_hosts, kh));
  }
  if (!trust.identity.empty()) {
    c->ctx_.identity = c->dir_ / "identity";
    std::string key = trust.identity;
    // WHY: OpenSSH refuses a private key file without its final newline.
    if (key.back() != '\n') key += '\n';
    MD_TRY_STATUS(write_private(c->ctx_.identity, key));
  }
  Status st = c->start(timeout);
  // The key is needed only to log in: the master holds the session now.
  if (!c->ctx_.identity.empty()) {
    std::error_code ec;
    std::filesystem::remove(c->ctx_.identity, ec);
  }
  if (!st) return fail(st.error());
  return c;
}

Status Connection::start(Millis timeout) {
  const std::filesystem::path log = dir_ / "master.log";
  proc::RunOptions o;
  o.timeout = timeout + Millis(5000);
  o.wait_delay = Millis(200);
  auto r = proc::run(proc::Command::args(master_argv(ep_, ctx_, log, false)), o);
  if (!r) return fail(std::move(r.error()).with_context("ssh to host " + name_));
  if (r->ok()) {
    master_up_ = true;
    return ok();
  }
  std::string messages = fs::read_file(log).value_or("") + r->err;
  if (r->timed_out) messages += "\nConnection timed out (no answer within the connect timeout)";
  Diagnosis d = diagnose(messages);
  if (d.failure == Failure::kUnknownHostKey || d.failure == Failure::kChangedHostKey) {
    // WHY a second try: ssh prints the fingerprint of an unknown key only at
    // debug level; it stops at the same point (the key is refused again).
    const std::filesystem::path dlog = dir_ / "probe.log";
    auto p = proc::run(proc::Command::args(master_argv(ep_, ctx_, dlog, true)), o);
    Diagnosis dd = diagnose(fs::read_file(dlog).value_or(""));
    if (p && !p->ok() && dd.failure == d.failure && !dd.fingerprint.empty()) {
      d.fingerprint = dd.fingerprint;
      if (d.key_type.empty() || dd.key_type.size() > d.key_type.size()) d.key_type = dd.key_type;
    }
    if (p && p->ok()) {
      // Accepted the second time (the file changed underneath): stop it.
      (void)proc::run(proc::Command::args(control_argv(ep_, ctx_, {"-O", "exit"})), o);
    }
  }
  if (d.failure == Failure::kNone) d.line = last_lines(messages);
  return fail(connect_error(name_, ep_, d));
}

Connection::~Connection() {
  if (master_up_) {
    proc::RunOptions o;
    o.timeout = Millis(10000);
    o.wait_delay = Millis(200);
    auto r = proc::run(proc::Command::args(control_argv(ep_, ctx_, {"-O", "exit"})), o);
    if (!r || !r->ok())
      log::Logger("ssh").warn("host {}: stopping the master connection: {}", name_,
                              r ? last_lines(r->err) : r.error().what());
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

Result<RunResult> Connection::run(const std::string& remote_command,
                                  std::optional<std::string> stdin_text, Millis timeout) {
  proc::RunOptions o;
  o.timeout = timeout;
  o.stdin_text = std::move(stdin_text);
  o.wait_delay = Millis(200);
  auto r = proc::run(proc::Command::args(run_argv(ep_, ctx_, remote_command)), o);
  if (!r) return fail(std::move(r.error()).with_context("ssh to host " + name_));
  if (r->timed_out)
    return fail(Errc::kTimeout,
                fmt::format("ssh to host {}: `{}` timed out after {} ms", name_,
                            remote_command.substr(0, 80), timeout.count()),
                true);
  // WHY 255 only: ssh exits 255 on its own errors; anything else is the
  // remote command's (a remote 255 with no ssh message is passed through).
  if (r->status.code == 255) {
    Diagnosis d = diagnose(r->err);
    if (d.failure != Failure::kNone) return fail(connect_error(name_, ep_, d));
  }
  RunResult out;
  out.exit_code = r->status.code;
  out.out = std::move(r->out);
  out.err = std::move(r->err);
  return out;
}

Status Connection::put(const std::filesystem::path& local, const std::string& remote_path,
                       unsigned mode, Millis timeout) {
  if (remote_path.empty() || remote_path.front() != '/')
    return fail(
        Errc::kInvalidArgument,
        fmt::format("ssh put to host {}: '{}' is not an absolute path", name_, remote_path));
  std::string data = MD_TRY_CTX(fs::read_file(local), "ssh put " + local.string());
  const std::string script = fmt::format(
      "set -e; p={}; d=$(dirname \"$p\"); t=$(mktemp \"$d/.$(basename \"$p\").XXXXXX\"); "
      "trap 'rm -f \"$t\"' EXIT; cat >\"$t\"; chmod {:o} \"$t\"; mv -f \"$t\" \"$p\"; trap - EXIT",
      shell_quote(remote_path), mode);
  RunResult r = MD_TRY(run("sh -c " + shell_quote(script), std::move(data), timeout));
  if (r.exit_code != 0)
    return fail(Errc::kFailedPrecondition,
                fmt::format("ssh put {} to host {}:{}: exit {}: {}", local.string(), name_,
                            remote_path, r.exit_code, last_lines(r.err)));
  return ok();
}

Result<std::filesystem::path> Connection::forward(const std::string& remote_socket) {
  for (const auto& [remote, local] : forwards_)
    if (remote == remote_socket) return local;
  const std::filesystem::path local = dir_ / fmt::format("fwd-{}.sock", forwards_.size() + 1);
  proc::RunOptions o;
  o.timeout = ctx_.connect_timeout + Millis(5000);
  o.wait_delay = Millis(200);
  auto r = proc::run(proc::Command::args(control_argv(
                         ep_, ctx_, {"-O", "forward", "-L", local.string() + ":" + remote_socket})),
                     o);
  if (!r) return fail(std::move(r.error()).with_context("ssh to host " + name_));
  if (!r->ok()) {
    Diagnosis d = diagnose(r->err);
    if (d.failure != Failure::kNone) return fail(connect_error(name_, ep_, d));
    return fail(
        Errc::kUnavailable,
        fmt::format("ssh to host {}: forwarding {}: {}", name_, remote_socket, last_lines(r->err)),
        true);
  }
  forwards_.emplace_back(remote_socket, local);
  return local;
}

}  // namespace md::ssh
