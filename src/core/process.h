// Child processes: run a command to completion (hooks, pg_dump, ssh), or
// spawn a long-running one in its own session (release processes), plus the
// helpers a supervisor needs: signal a group, is a pid still the process we
// started (start time guards against pid reuse), reap.
//
// Hygiene: every child starts with only fds 0, 1 and 2 open (all others are
// closed in the child, whatever their close-on-exec flag), default signal
// dispositions and an empty signal mask. Every fd this file opens in the
// parent is O_CLOEXEC.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::proc {

// What to execute: an argv (argv[0] searched in $PATH of the parent when it
// has no '/') or a shell string run as `/bin/sh -c STRING`.
struct Command {
  std::vector<std::string> argv;
  static Command args(std::vector<std::string> argv) { return Command{std::move(argv)}; }
  static Command shell(std::string script) { return Command{{"/bin/sh", "-c", std::move(script)}}; }
  // For messages: argv joined by spaces, each word quoted when needed,
  // cut at 200 characters. Never pass a secret in argv.
  std::string describe() const;
};

// The child's environment.
struct Env {
  bool inherit = true;                     // start from the parent's environ
  std::map<std::string, std::string> set;  // added or replaced
  std::vector<std::string> unset;          // removed (after inherit, before set)
  static Env exact(std::map<std::string, std::string> vars) {
    return Env{false, std::move(vars), {}};
  }
  // The final NAME=VALUE list, sorted by name.
  std::vector<std::string> build() const;
};

// How a process ended.
struct ExitStatus {
  int code = -1;   // exit code when exited normally, else -1
  int signal = 0;  // terminating signal, else 0
  bool ok() const { return code == 0; }
  // "exit 0", "exit 3", "killed by SIGKILL".
  std::string describe() const;
};
ExitStatus decode_wait_status(int status);

enum class Stream { kStdout, kStderr };

struct RunOptions {
  std::filesystem::path cwd;              // "" = the parent's cwd
  Env env;                                // default: inherit
  std::optional<std::string> stdin_text;  // nullopt = /dev/null
  Millis timeout{0};                      // 0 = none; then SIGTERM to the process group
  Millis kill_grace{5000};                // after SIGTERM, SIGKILL to the group
  // Streaming: called on the calling thread as output arrives. With
  // `line_mode` each call is one line without its '\n' (the last line may
  // lack one); otherwise raw chunks. Output is still captured unless
  // `capture` is false.
  std::function<void(Stream, std::string_view)> on_output;
  bool line_mode = false;
  bool capture = true;
  size_t max_capture = 16 << 20;  // per stream; beyond it output is dropped (truncated=true)
  // After the child exits, keep reading its pipes this long for output from
  // background grandchildren that still hold them, then stop.
  Millis wait_delay{1000};
};

struct RunResult {
  ExitStatus status;
  bool timed_out = false;  // the timeout fired (status then shows the signal)
  std::string out, err;    // captured output
  bool out_truncated = false, err_truncated = false;
  Millis duration{0};
  bool ok() const { return status.ok() && !timed_out; }
  // "exit 3", "timed out after 5000ms (killed by SIGTERM)".
  std::string describe() const;
};

// Runs `cmd` to completion in a new process group, blocking the calling
// thread. A non-zero exit, a signal or a timeout is NOT an error: it is in the
// result. Errors: kNotFound (executable or cwd missing), kPermissionDenied
// (not executable), kIo (fork/pipe failures). SIGPIPE from a child that
// closes stdin early is handled (the rest of stdin_text is dropped).
Result<RunResult> run(const Command& cmd, const RunOptions& opts = {});

// Where a spawned process's standard stream goes.
struct Redirect {
  enum class Kind { kNull, kInherit, kFd, kFile } kind = Kind::kNull;
  int fd = -1;                 // kFd: dup2'd into the child; the caller keeps it
  std::filesystem::path path;  // kFile: opened O_CREAT (mode 0600)
  bool append = true;          // kFile: O_APPEND, else O_TRUNC
  static Redirect null() { return {}; }
  static Redirect inherit() { return make(Kind::kInherit); }
  static Redirect to_fd(int fd) {
    Redirect r = make(Kind::kFd);
    r.fd = fd;
    return r;
  }
  static Redirect to_file(std::filesystem::path p, bool append = true) {
    Redirect r = make(Kind::kFile);
    r.path = std::move(p);
    r.append = append;
    return r;
  }

 private:
  static Redirect make(Kind k) {
    Redirect r;
    r.kind = k;
    return r;
  }
};

struct SpawnOptions {
  std::filesystem::path cwd;  // "" = the parent's cwd
  Env env;
  Redirect in = Redirect::null();
  Redirect out = Redirect::null();
  Redirect err = Redirect::null();
  // true: setsid(), its own session and process group; false: its own process
  // group in our session. Either way pgid == pid, so signal_group(pid) reaches
  // its children too.
  bool new_session = true;
  // >= 0: an O_PATH/O_DIRECTORY fd of a cgroup v2 directory the child is
  // born in (clone3 with CLONE_INTO_CGROUP: it never runs outside it, so
  // it cannot fork away before being moved). The caller keeps the fd.
  // Linux >= 5.7; when the kernel refuses, spawn() fails with
  // kUnavailable and nothing was started.
  int cgroup_fd = -1;
};

// An owned file descriptor, closed on destruction unless released. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int f = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = f;
  }

 private:
  int fd_ = -1;
};

// A started process. `start_time` identifies it across pid reuse.
struct Spawned {
  pid_t pid = -1;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
  // A pidfd of the child (poll() it: readable once it has exited; it never
  // names another process after pid reuse), owned here. Only when started
  // into a cgroup (clone3 with CLONE_PIDFD); -1 after posix_spawn, which
  // cannot give one on glibc 2.36 (pidfd_open(pid) then).
  Fd pidfd;
};

// Starts `cmd` and returns at once. The caller owns the child: reap it with
// reap() (or it stays a zombie until this process exits). Errors as run().
Result<Spawned> spawn(const Command& cmd, const SpawnOptions& opts = {});

// Sends `sig` to the process group `pgid`. kNotFound if the group is empty
// (already gone); kPermissionDenied if it is not ours.
Status signal_group(pid_t pgid, int sig);

// Start time of `pid` from /proc/<pid>/stat; nullopt if there is no such
// process (a zombie still has one).
std::optional<uint64_t> start_time(pid_t pid);

// True if `pid` exists, is not a zombie, and (when `expected_start` is given)
// started at that time — i.e. it is still the process we recorded.
bool alive(pid_t pid, std::optional<uint64_t> expected_start = std::nullopt);

// Collects the exit status of our child `pid`. With `block` false returns
// nullopt while it runs. kNotFound if `pid` is not our child (e.g. a process
// re-adopted after a restart: watch it with alive() instead).
Result<std::optional<ExitStatus>> reap(pid_t pid, bool block);

// SIGTERM to the group of our child `pid` (pgid == pid), wait up to `grace`
// for the child to exit, then SIGKILL the group and reap. Once the child has
// exited, whatever is left in its group is SIGKILLed. Blocks. Returns how the
// child ended; not an error if it had already exited (kNotFound if it was
// already reaped or is not our child). Polls every 10 ms on `clock`.
Result<ExitStatus> stop_group(pid_t pid, Millis grace, Clock& clock = real_clock());

// "SIGTERM", "SIGKILL", ... or "signal N".
std::string signal_name(int sig);

}  // namespace md::proc
