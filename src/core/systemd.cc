// libsystemd's daemon helpers (sd-daemon.h), and the exec that hands our
// listening sockets to a new image the same way a service manager would.
#include "core/systemd.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/fs.h"
#include "core/log.h"

extern char** environ;

namespace md::sd {

namespace {
log::Logger kLog("systemd");
}

Result<std::vector<int>> take_listen_fds() {
  int n = ::sd_listen_fds(/*unset_environment=*/1);
  if (n < 0)
    return fail(
        Errc::kInvalidArgument,
        std::string("LISTEN_FDS/LISTEN_PID from the service manager: ") + std::strerror(-n));
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    // sd_listen_fds already set FD_CLOEXEC; a service manager may hand us a
    // unix or datagram socket by mistake (ListenStream=/path): refuse it.
    if (::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, /*port=*/0) <= 0) {
      for (int j = 0; j < n; ++j) ::close(SD_LISTEN_FDS_START + j);
      return fail(Errc::kInvalidArgument,
                  "fd " + std::to_string(fd) +
                      " passed by the service manager is not a listening TCP socket "
                      "(use ListenStream=ADDRESS:PORT in the .socket unit)");
    }
    fds.push_back(fd);
  }
  return fds;
}

Status exec_with_listen_fds(const std::string& exe, const std::vector<std::string>& argv,
                            const std::vector<int>& fds) {
  const int n = static_cast<int>(fds.size());
  // First above the target range, so the dup2s below never overwrite a source.
  std::vector<int> high;
  for (int fd : fds) {
    int h = ::fcntl(fd, F_DUPFD_CLOEXEC, SD_LISTEN_FDS_START + n);
    if (h < 0) {
      int e = errno;
      for (int x : high) ::close(x);
      return fail(Errc::kIo, std::string("dup of a listening socket: ") + std::strerror(e));
    }
    high.push_back(h);
  }
  for (int i = 0; i < n; ++i)
    if (::dup2(high[i], SD_LISTEN_FDS_START + i) < 0)  // the copy is not close-on-exec
      return fail(Errc::kIo, std::string("dup2 of a listening socket: ") + std::strerror(errno));
  // WHY a built environment instead of setenv: other threads may still read
  // environ; execve takes its own array.
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view v(*e);
    if (v.starts_with("LISTEN_PID=") || v.starts_with("LISTEN_FDS=") ||
        v.starts_with("LISTEN_FDNAMES="))
      continue;
    env.emplace_back(v);
  }
  env.push_back("LISTEN_PID=" + std::to_string(::getpid()));
  env.push_back("LISTEN_FDS=" + std::to_string(n));
  std::vector<char*> envp, args;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  ::execve(exe.c_str(), args.data(), envp.data());
  return fail(Errc::kIo, "exec " + exe + ": " + std::strerror(errno));
}

void notify(std::string_view state) {
  static std::atomic<bool> warned{false};
  int r = ::sd_notify(/*unset_environment=*/0, std::string(state).c_str());
  if (r < 0 && !warned.exchange(true))
    kLog.warn("cannot notify the service manager ({}): {}", state, std::strerror(-r));
}

Millis watchdog_interval() {
  uint64_t usec = 0;
  if (::sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0) return Millis(0);
  return Millis(std::max<uint64_t>(1, usec / 1000));
}

Result<std::vector<std::string>> own_argv() {
  auto raw = fs::read_file("/proc/self/cmdline");
  if (!raw) return fail(raw.error());
  std::vector<std::string> out;
  std::string cur;
  for (char c : *raw) {
    if (c == '\0') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  if (out.empty()) return fail(Errc::kIo, "/proc/self/cmdline is empty");
  return out;
}

}  // namespace md::sd
