#include "core/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace md::proc {
namespace {

using SteadyClock = std::chrono::steady_clock;

// argv and envp for exec, NULL-terminated, pointing into `strings`.
struct ExecVectors {
  ExecVectors(const Command& cmd, const Env& env) : strings(env.build()) {
    envp.reserve(strings.size() + 1);
    for (std::string& s : strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    argv.reserve(cmd.argv.size() + 1);
    for (const std::string& a : cmd.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
  }
  std::vector<std::string> strings;
  std::vector<char*> envp, argv;
};

Error errno_error(std::string_view what, int err) {
  Errc code = err == ENOENT                     ? Errc::kNotFound
              : (err == EACCES || err == EPERM) ? Errc::kPermissionDenied
                                                : Errc::kIo;
  return Error(code, std::string(what) + ": " + std::strerror(err));
}

Result<std::pair<Fd, Fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail(errno_error("pipe", errno));
  return std::make_pair(Fd(p[0]), Fd(p[1]));
}

Result<Fd> open_null() {
  int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(errno_error("open /dev/null", errno));
  return Fd(fd);
}

// posix_spawn attribute and file-action objects, destroyed on scope exit.
struct SpawnPlan {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnPlan() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnPlan() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnPlan(const SpawnPlan&) = delete;
  SpawnPlan& operator=(const SpawnPlan&) = delete;
};

// Starts the child with fds 0/1/2 = in/out/err and nothing else open, in a
// new session (setsid) or a new process group.
Result<pid_t> start(const Command& cmd, const std::filesystem::path& cwd, const Env& env,
                    std::array<int, 3> fds, bool new_session) {
  if (cmd.argv.empty() || cmd.argv[0].empty())
    return fail(Errc::kInvalidArgument, "run: empty command");
  if (!cwd.empty()) {
    struct stat st;
    if (::stat(cwd.c_str(), &st) != 0)
      return fail(
          errno_error("run " + cmd.describe() + ": working directory " + cwd.string(), errno));
    if (!S_ISDIR(st.st_mode))
      return fail(Errc::kInvalidArgument, "run " + cmd.describe() + ": working directory " +
                                              cwd.string() + " is not a directory");
  }
  SpawnPlan plan;
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  flags |= new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setflags(&plan.attr, flags);
  posix_spawnattr_setsigmask(&plan.attr, &empty);
  posix_spawnattr_setsigdefault(&plan.attr, &all);
  posix_spawnattr_setpgroup(&plan.attr, 0);
  for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&plan.actions, fds[i], i);
  // WHY closefrom: fds opened by libraries without O_CLOEXEC (or inherited
  // from our own parent) must not leak into release processes and hooks.
  posix_spawn_file_actions_addclosefrom_np(&plan.actions, 3);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&plan.actions, cwd.c_str());

  ExecVectors ev(cmd, env);
  char** argv = ev.argv.data();
  char** envp = ev.envp.data();

  pid_t pid = -1;
  bool search = cmd.argv[0].find('/') == std::string::npos;
  int rc = search ? ::posix_spawnp(&pid, argv[0], &plan.actions, &plan.attr, argv, envp)
                  : ::posix_spawn(&pid, argv[0], &plan.actions, &plan.attr, argv, envp);
  if (rc != 0) {
    std::string what = "run " + cmd.describe();
    if (rc == ENOENT) return fail(Errc::kNotFound, what + ": executable not found");
    return fail(errno_error(what, rc));
  }
  return pid;
}

// Like start(), but the child is born in the cgroup `cgroup_fd` (clone3 with
// CLONE_INTO_CGROUP). WHY not posix_spawn: glibc 2.36 (Debian 12) cannot
// spawn into a cgroup, and moving the child after the spawn races with a
// child that forks at once. The child only makes async-signal-safe calls.
// The pid and a pidfd (CLONE_PIDFD) of the child.
Result<std::pair<pid_t, Fd>> start_in_cgroup(const Command& cmd, const std::filesystem::path& cwd,
                                             const Env& env, std::array<int, 3> fds,
                                             bool new_session, int cgroup_fd) {
  if (cmd.argv.empty() || cmd.argv[0].empty())
    return fail(Errc::kInvalidArgument, "run: empty command");
  ExecVectors ev(cmd, env);
  char** argv = ev.argv.data();
  char** envp = ev.envp.data();
  bool search = cmd.argv[0].find('/') == std::string::npos;
  auto [err_r, err_w] = MD_TRY(make_pipe());

  clone_args args{};
  int pidfd = -1;
  args.flags = CLONE_INTO_CGROUP | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  sigset_t all, old, empty;
  sigfillset(&all);
  sigemptyset(&empty);
  // Signals stay blocked in the child until it has reset every handler.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    int err = 0;
    if (new_session ? ::setsid() < 0 : ::setpgid(0, 0) != 0) err = errno;
    for (int i = 0; i < 3 && err == 0; ++i)
      if (::dup2(fds[i], i) < 0) err = errno;
    // Every other fd closes at exec (the error pipe too, which tells the parent).
    if (err == 0 && ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) err = errno;
    if (err == 0 && !cwd.empty() && ::chdir(cwd.c_str()) != 0) err = errno;
    if (err == 0) {
      if (search)
        ::execvpe(argv[0], argv, envp);
      else
        ::execve(argv[0], argv, envp);
      err = errno;
    }
    ssize_t n = ::write(err_w.get(), &err, sizeof err);
    (void)n;
    ::_exit(127);
  }
  int clone_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  std::string what = "run " + cmd.describe();
  if (pid < 0) {
    return fail(Error(Errc::kUnavailable, what + ": cannot start it in a cgroup (clone3: " +
                                              std::strerror(clone_err) + ")"));
  }
  Fd child_pidfd(pidfd);
  err_w.reset();
  int child_err = 0;
  ssize_t n;
  do n = ::read(err_r.get(), &child_err, sizeof child_err);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_err)) {
    int status;
    while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
    if (child_err == ENOENT)
      return fail(Errc::kNotFound, what + ": executable or directory not found");
    return fail(errno_error(what, child_err));
  }
  return std::make_pair(static_cast<pid_t>(pid), std::move(child_pidfd));
}

// Splits chunks into lines for line-mode callbacks.
class LineSplitter {
 public:
  static constexpr size_t kMaxLine = 64 << 10;  // a longer line is emitted in pieces
  void feed(std::string_view chunk, const std::function<void(std::string_view)>& emit) {
    buf_.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = buf_.find('\n', start)) != std::string::npos; start = nl + 1)
      emit(std::string_view(buf_).substr(start, nl - start));
    buf_.erase(0, start);
    if (buf_.size() >= kMaxLine) {
      emit(buf_);
      buf_.clear();
    }
  }
  void finish(const std::function<void(std::string_view)>& emit) {
    if (!buf_.empty()) emit(buf_);
    buf_.clear();
  }

 private:
  std::string buf_;
};

// Blocks SIGPIPE on this thread while it writes to a child's stdin, and
// discards a SIGPIPE raised meanwhile (the write then fails with EPIPE).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      struct timespec zero = {0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

std::optional<std::string> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  if (line.empty()) return std::nullopt;
  return line;
}

// Fields after "pid (comm) ": index 0 is field 3 (state).
std::vector<std::string> stat_fields(const std::string& stat) {
  std::vector<std::string> out;
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(stat.substr(close + 1));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;
}

bool safe_word(const std::string& w) {
  if (w.empty()) return false;
  for (char c : w)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./:=@%+-,", c)))
      return false;
  return true;
}

}  // namespace

std::string Command::describe() const {
  std::string s;
  for (const std::string& w : argv) {
    if (!s.empty()) s += ' ';
    if (safe_word(w)) {
      s += w;
      continue;
    }
    s += '\'';
    for (char c : w) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    s += '\'';
  }
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

std::vector<std::string> Env::build() const {
  std::map<std::string, std::string> vars;
  if (inherit) {
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      vars.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const std::string& name : unset) vars.erase(name);
  for (const auto& [k, v] : set) vars[k] = v;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [k, v] : vars) {
    std::string kv;
    kv.reserve(k.size() + 1 + v.size());
    kv.append(k).append("=").append(v);
    out.push_back(std::move(kv));
  }
  return out;
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

ExitStatus decode_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status))
    s.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    s.signal = WTERMSIG(status);
  return s;
}

std::string ExitStatus::describe() const {
  if (signal != 0) return "killed by " + signal_name(signal);
  return "exit " + std::to_string(code);
}

std::string RunResult::describe() const {
  if (timed_out)
    return "timed out after " + std::to_string(duration.count()) + "ms (" + status.describe() + ")";
  return status.describe();
}

Result<RunResult> run(const Command& cmd, const RunOptions& opts) {
  auto t0 = SteadyClock::now();
  auto [out_r, out_w] = MD_TRY(make_pipe());
  auto [err_r, err_w] = MD_TRY(make_pipe());
  Fd null = MD_TRY(open_null());
  Fd in_r, in_w;
  if (opts.stdin_text) {
    auto p = MD_TRY(make_pipe());
    in_r = std::move(p.first);
    in_w = std::move(p.second);
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  }
  SigpipeGuard sigpipe;
  pid_t pid = MD_TRY(start(cmd, opts.cwd, opts.env,
                           {opts.stdin_text ? in_r.get() : null.get(), out_w.get(), err_w.get()},
                           /*new_session=*/false));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  null.reset();
  Fd pidfd(pidfd_open(pid));

  RunResult res;
  std::string_view to_write = opts.stdin_text ? std::string_view(*opts.stdin_text) : "";
  if (in_w.get() >= 0 && to_write.empty()) in_w.reset();
  LineSplitter lines[2];
  bool exited = false;
  SteadyClock::time_point exit_at, term_at;
  bool termed = false, killed = false;
  auto deliver = [&](int which, std::string_view chunk) {
    std::string& buf = which == 0 ? res.out : res.err;
    bool& trunc = which == 0 ? res.out_truncated : res.err_truncated;
    if (opts.capture) {
      size_t room = opts.max_capture > buf.size() ? opts.max_capture - buf.size() : 0;
      if (chunk.size() > room) trunc = true;
      buf.append(chunk.substr(0, room));
    }
    if (!opts.on_output) return;
    Stream s = which == 0 ? Stream::kStdout : Stream::kStderr;
    if (!opts.line_mode) return opts.on_output(s, chunk);
    lines[which].feed(chunk, [&](std::string_view l) { opts.on_output(s, l); });
  };
  auto try_reap = [&] {
    int st = 0;
    pid_t r;
    do r = ::waitpid(pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == pid) {
      res.status = decode_wait_status(st);
      exited = true;
      exit_at = SteadyClock::now();
      pidfd.reset();
    }
  };

  char buf[65536];
  Fd* outs[2] = {&out_r, &err_r};
  for (;;) {
    auto now = SteadyClock::now();
    if (opts.timeout.count() > 0 && !termed && now - t0 >= opts.timeout) {
      ::kill(-pid, SIGTERM);
      termed = true;
      res.timed_out = true;
      term_at = now;
    }
    if (termed && !killed && now - term_at >= opts.kill_grace) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    bool pipes_open = out_r.get() >= 0 || err_r.get() >= 0;
    if (exited && (!pipes_open || now - exit_at >= opts.wait_delay)) break;

    // How long poll may sleep: until the next deadline of ours.
    Millis wait{-1};
    auto until = [&](SteadyClock::time_point t) {
      auto d = std::chrono::duration_cast<Millis>(t - now) + Millis(1);
      if (d < Millis(0)) d = Millis(0);
      if (wait.count() < 0 || d < wait) wait = d;
    };
    if (opts.timeout.count() > 0 && !termed) until(t0 + opts.timeout);
    if (termed && !killed) until(term_at + opts.kill_grace);
    if (exited) until(exit_at + opts.wait_delay);
    if (!exited && pidfd.get() < 0) until(now + Millis(10));  // no pidfd: poll waitpid

    std::vector<pollfd> pfds;
    for (Fd* f : outs)
      if (f->get() >= 0) pfds.push_back({f->get(), POLLIN, 0});
    if (in_w.get() >= 0) pfds.push_back({in_w.get(), POLLOUT, 0});
    if (pidfd.get() >= 0) pfds.push_back({pidfd.get(), POLLIN, 0});
    int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail(errno_error("run " + cmd.describe() + ": poll", errno));
    }
    for (const pollfd& p : pfds) {
      if (p.revents == 0) continue;
      if (p.fd == pidfd.get()) continue;  // handled by try_reap below
      if (p.fd == in_w.get()) {
        ssize_t w = ::write(in_w.get(), to_write.data(), to_write.size());
        if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || to_write.empty()) in_w.reset();
        continue;
      }
      for (int which = 0; which < 2; ++which) {
        if (p.fd != outs[which]->get()) continue;
        ssize_t r = ::read(p.fd, buf, sizeof buf);
        if (r > 0)
          deliver(which, std::string_view(buf, static_cast<size_t>(r)));
        else if (r == 0 || (errno != EINTR && errno != EAGAIN))
          outs[which]->reset();
      }
    }
    if (!exited) try_reap();
  }
  for (int which = 0; which < 2; ++which) {
    if (opts.on_output && opts.line_mode) {
      Stream s = which == 0 ? Stream::kStdout : Stream::kStderr;
      lines[which].finish([&](std::string_view l) { opts.on_output(s, l); });
    }
  }
  res.duration = std::chrono::duration_cast<Millis>(SteadyClock::now() - t0);
  return res;
}

Result<Spawned> spawn(const Command& cmd, const SpawnOptions& opts) {
  Fd null = MD_TRY(open_null());
  std::array<Fd, 3> owned;
  std::array<int, 3> fds{};
  const Redirect* r[3] = {&opts.in, &opts.out, &opts.err};
  for (int i = 0; i < 3; ++i) {
    switch (r[i]->kind) {
      case Redirect::Kind::kNull:
        fds[i] = null.get();
        break;
      case Redirect::Kind::kInherit:
        fds[i] = i;
        break;
      case Redirect::Kind::kFd:
        if (r[i]->fd < 0) return fail(Errc::kInvalidArgument, "spawn: redirect to a negative fd");
        fds[i] = r[i]->fd;
        break;
      case Redirect::Kind::kFile: {
        int flags = i == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | (r[i]->append ? O_APPEND : O_TRUNC));
        int fd = ::open(r[i]->path.c_str(), flags | O_CLOEXEC, 0600);
        if (fd < 0) return fail(errno_error("spawn: open " + r[i]->path.string(), errno));
        owned[i].reset(fd);
        fds[i] = fd;
        break;
      }
    }
  }
  Spawned s;
  if (opts.cgroup_fd >= 0) {
    auto [pid, pidfd] =
        MD_TRY(start_in_cgroup(cmd, opts.cwd, opts.env, fds, opts.new_session, opts.cgroup_fd));
    s.pid = pid;
    s.pidfd = std::move(pidfd);
  } else {
    s.pid = MD_TRY(start(cmd, opts.cwd, opts.env, fds, opts.new_session));
  }
  s.start_time = start_time(s.pid).value_or(0);
  return s;
}

Status signal_group(pid_t pgid, int sig) {
  if (pgid <= 1)
    return fail(Errc::kInvalidArgument, "signal_group: bad process group " + std::to_string(pgid));
  if (::kill(-pgid, sig) == 0) return ok();
  int err = errno;
  if (err == ESRCH)
    return fail(Errc::kNotFound, "process group " + std::to_string(pgid) + " does not exist");
  return fail(errno_error("signal process group " + std::to_string(pgid), err));
}

std::optional<uint64_t> start_time(pid_t pid) {
  auto stat = read_stat(pid);
  if (!stat) return std::nullopt;
  auto f = stat_fields(*stat);
  if (f.size() < 20) return std::nullopt;
  try {
    return std::stoull(f[19]);
  } catch (...) {
    return std::nullopt;
  }
}

bool alive(pid_t pid, std::optional<uint64_t> expected_start) {
  if (pid <= 0) return false;
  auto stat = read_stat(pid);
  if (!stat) return false;
  auto f = stat_fields(*stat);
  if (f.size() < 20) return false;
  if (f[0] == "Z" || f[0] == "X" || f[0] == "x") return false;
  if (expected_start) {
    auto t = start_time(pid);
    if (!t || *t != *expected_start) return false;
  }
  return true;
}

Result<std::optional<ExitStatus>> reap(pid_t pid, bool block) {
  int st = 0;
  pid_t r;
  do r = ::waitpid(pid, &st, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == ECHILD)
      return fail(Errc::kNotFound, "process " + std::to_string(pid) + " is not our child");
    return fail(errno_error("waitpid " + std::to_string(pid), errno));
  }
  if (r == 0) return std::optional<ExitStatus>();
  return std::optional<ExitStatus>(decode_wait_status(st));
}

Result<ExitStatus> stop_group(pid_t pid, Millis grace, Clock& clock) {
  if (auto done = MD_TRY(reap(pid, false))) {
    ::kill(-pid, SIGKILL);  // the leader is gone; stragglers of its group go too
    return *done;
  }
  ::kill(-pid, SIGTERM);
  auto deadline = clock.mono() + grace;
  while (clock.mono() < deadline) {
    if (auto done = MD_TRY(reap(pid, false))) {
      ::kill(-pid, SIGKILL);
      return *done;
    }
    clock.sleep_for(Millis(10));
  }
  ::kill(-pid, SIGKILL);
  auto done = MD_TRY(reap(pid, true));
  return *done;
}

}  // namespace md::proc
