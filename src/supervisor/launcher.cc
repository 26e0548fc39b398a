#include "supervisor/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <system_error>
#include <thread>
#include <utility>

#include "core/log.h"
#include "core/process.h"
#include "http/http.h"
#include "supervisor/proc_scan.h"

namespace md::supervisor {
namespace {

const log::Logger kLog("supervisor");

// Binds 127.0.0.1:<port> (0 = any) the way servers do (SO_REUSEADDR) and
// returns the bound port, or 0 when it cannot.
int try_bind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  int bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) bound = ntohs(a.sin_port);
  }
  ::close(fd);
  return bound;
}

class PipeEnds {
 public:
  ~PipeEnds() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  Status open() {
    if (::pipe2(fds_, O_CLOEXEC) != 0)
      return fail(Errc::kIo, std::string("pipe: ") + std::strerror(errno));
    return ok();
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void close() {
    for (int& fd : fds_)
      if (fd >= 0) ::close(std::exchange(fd, -1));
  }

 private:
  int fds_[2] = {-1, -1};
};

// Is `ref` still the process we started (pid reuse guard)?
bool same_process(const ProcRef& ref) {
  auto t = proc::start_time(ref.pid);
  return !t || *t == ref.start_time;  // gone entirely: its group may linger
}

}  // namespace

RealLauncher::RealLauncher(LauncherOptions options) : options_(std::move(options)) {
  if (options_.cgroup_tree.empty()) return;
  auto tree = CgroupTree::open(options_.cgroup_tree);
  if (tree) {
    cgroups_.emplace(std::move(*tree));
    kLog.info("release processes run in cgroups under {}", cgroups_->dir().string());
    if (!cgroups_->agent_leaf().empty())
      kLog.info("the agent moved into {} (cgroup v2 keeps processes in leaves)",
                cgroups_->agent_leaf().string());
    if (!cgroups_->note().empty()) kLog.warn("{}", cgroups_->note());
  } else {
    disable_cgroups_locked(tree.error());
  }
}

RealLauncher::~RealLauncher() {
  // Empty cgroups go with the agent (crashed runs', a stop --all's), and the
  // tree when nothing runs in it; rmdir fails on any still populated.
  if (!cgroups_) return;
  std::error_code ec;
  for (const auto& rel : std::filesystem::directory_iterator(cgroups_->dir(), ec)) {
    if (!rel.is_directory(ec) || rel.path().filename() == kAgentLeaf) continue;
    std::error_code ec2;
    for (const auto& leaf : std::filesystem::directory_iterator(rel.path(), ec2))
      if (leaf.is_directory(ec2)) ::rmdir(leaf.path().c_str());
    ::rmdir(rel.path().c_str());
  }
  if (cgroups_->agent_leaf().empty()) ::rmdir(cgroups_->dir().c_str());
}

std::string RealLauncher::cgroup_for(const ProcessSpec& spec) {
  std::lock_guard lock(mu_);
  if (!cgroups_) return {};
  auto cg = cgroups_->make(spec.release, spec.service + "." + std::to_string(spec.index));
  if (cg) return cg->string();
  disable_cgroups_locked(cg.error());
  return {};
}

void RealLauncher::disable_cgroups(const Error& why) {
  std::lock_guard lock(mu_);
  disable_cgroups_locked(why);
}

void RealLauncher::disable_cgroups_locked(const Error& why) {
  cgroups_.reset();
  if (warned_) return;
  warned_ = true;
  fallback_reason_ = why.what();
  kLog.warn(
      "{}; release processes are stopped by process group only (a daemon that leaves its "
      "group with setsid survives its release)",
      why.what());
}

bool RealLauncher::uses_cgroups() {
  std::lock_guard lock(mu_);
  return cgroups_.has_value();
}

int RealLauncher::stop_unknown_cgroups(const std::set<std::string>& known, Millis grace) {
  std::filesystem::path tree;
  {
    std::lock_guard lock(mu_);
    if (!cgroups_) return 0;
    tree = cgroups_->dir();
  }
  std::vector<std::filesystem::path> unknown;
  std::error_code ec;
  for (const auto& rel : std::filesystem::directory_iterator(tree, ec)) {
    if (!rel.is_directory(ec) || rel.path().filename() == kAgentLeaf) continue;
    for (const auto& leaf : std::filesystem::directory_iterator(rel.path(), ec)) {
      if (!leaf.is_directory(ec) || known.count(leaf.path().string())) continue;
      if (!cgroup_populated(leaf.path())) {
        cgroup_remove(leaf.path());
        continue;
      }
      kLog.warn("cgroup {} belongs to no process the state knows: stopping what runs in it",
                leaf.path().string());
      (void)cgroup_signal(leaf.path(), SIGTERM);
      unknown.push_back(leaf.path());
    }
  }
  Clock& clock = real_clock();
  auto deadline = clock.mono() + grace;
  for (const auto& cg : unknown) {
    while (cgroup_populated(cg) && clock.mono() < deadline) clock.sleep_for(Millis(20));
    (void)cgroup_signal(cg, SIGKILL);
  }
  for (const auto& cg : unknown) {
    for (int i = 0; i < 100 && cgroup_populated(cg); ++i) clock.sleep_for(Millis(10));
    cgroup_remove(cg);
  }
  return static_cast<int>(unknown.size());
}

std::string RealLauncher::containment() {
  std::lock_guard lock(mu_);
  if (cgroups_) return "cgroup v2 (" + cgroups_->dir().string() + ")";
  if (options_.cgroup_tree.empty()) return "process groups";
  return "process groups (" + fallback_reason_ + ")";
}

std::filesystem::path RealLauncher::own_cgroup(const ProcRef& ref) const {
  if (ref.cgroup.empty() || options_.cgroup_tree.empty()) return {};
  std::filesystem::path cg(ref.cgroup);
  // WHY the check: the path comes back from the state file; only a cgroup
  // of this agent's tree is ever signalled.
  if (!cg.is_absolute() || cg.lexically_normal() != cg ||
      cg.parent_path().parent_path().filename() != options_.cgroup_tree)
    return {};
  return cg;
}

Result<int> RealLauncher::allocate_port() {
  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < 64; ++attempt) {
    int port = try_bind(0);
    if (port > 0 && !handed_out_.count(port)) {
      handed_out_.insert(port);
      return port;
    }
  }
  return fail(Errc::kUnavailable, "no free TCP port on 127.0.0.1", true);
}

bool RealLauncher::port_free(int port) { return try_bind(port) == port; }

Result<ProcRef> RealLauncher::launch(const ProcessSpec& spec, int port) {
  MD_CHECK(!options_.log_writer_argv.empty());
  reap_log_writers();
  std::string ctx = "start " + spec.id();
  PipeEnds pipe;
  MD_TRY_STATUS(pipe.open().map_error([&](Error e) { return std::move(e).with_context(ctx); }));

  std::vector<std::string> argv = options_.log_writer_argv;
  argv.insert(argv.end(), {"--out", spec.log_file.string()});
  if (!spec.secrets_file.empty())
    argv.insert(argv.end(), {"--secrets", spec.secrets_file.string()});
  proc::SpawnOptions lw;
  lw.cwd = "/";
  lw.env.inherit = true;
  lw.in = proc::Redirect::to_fd(pipe.read_end());
  lw.err = options_.log_writer_errors.empty() ? proc::Redirect::null()
                                              : proc::Redirect::to_file(options_.log_writer_errors);
  lw.new_session = true;
  auto writer = proc::spawn(proc::Command::args(argv), lw);
  if (!writer) return fail(std::move(writer.error()).with_context(ctx + ": log writer"));
  {
    std::lock_guard lock(mu_);
    log_writers_.insert(writer->pid);
  }

  std::map<std::string, std::string> env = spec.env;
  if (port > 0) env["PORT"] = std::to_string(port);
  for (const auto& [name, secret] : spec.secret_env) env[name] = secret.reveal();
  proc::SpawnOptions app;
  app.cwd = spec.cwd;
  app.env = proc::Env::exact(std::move(env));
  app.in = proc::Redirect::null();
  app.out = proc::Redirect::to_fd(pipe.write_end());
  app.err = proc::Redirect::to_fd(pipe.write_end());
  app.new_session = true;
  std::string cgroup = cgroup_for(spec);
  Result<proc::Spawned> started = fail(Errc::kInternal, "not started");
  if (!cgroup.empty()) {
    int fd = ::open(cgroup.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      app.cgroup_fd = fd;
      started = proc::spawn(proc::Command::shell(spec.command), app);
      ::close(fd);
      app.cgroup_fd = -1;
    }
    if (fd < 0 || (!started && started.error().code() == Errc::kUnavailable)) {
      disable_cgroups(fd < 0 ? Error(Errc::kIo, "open " + cgroup + ": " + std::strerror(errno))
                             : started.error());
      cgroup.clear();
    }
  }
  if (cgroup.empty()) started = proc::spawn(proc::Command::shell(spec.command), app);
  // Our ends close when `pipe` goes out of scope: the log writer then sees
  // EOF exactly when the last process of the group has exited.
  if (!started) {
    // WHY wait: a failed start is final. The log writer sees EOF once our
    // ends close; it must not create or write its file after the caller is
    // told (a retry, or a test removing the directory, would race it).
    pipe.close();
    end_log_writer(writer->pid);
    if (!cgroup.empty()) cgroup_remove(cgroup);
    return fail(std::move(started.error()).with_context(ctx));
  }
  ProcRef ref;
  ref.pid = started->pid;
  ref.start_time = started->start_time;
  ref.log_pid = writer->pid;
  ref.log_start_time = writer->start_time;
  ref.child = true;
  ref.cgroup = cgroup;
  kLog.info("{}: started pid {}{}", spec.id(), ref.pid,
            port > 0 ? " on port " + std::to_string(port) : std::string());
  return ref;
}

Status RealLauncher::signal_group(const ProcRef& ref, int sig) {
  // The cgroup holds the group and whatever left it (setsid daemons).
  if (auto cg = own_cgroup(ref); !cg.empty()) MD_TRY_STATUS(cgroup_signal(cg, sig));
  if (ref.pid <= 1) return ok();
  if (!same_process(ref)) {
    kLog.warn("pid {} now belongs to another process; not signalling it", ref.pid);
    return ok();
  }
  auto st = proc::signal_group(ref.pid, sig);
  if (!st && st.error().code() == Errc::kNotFound) return ok();
  return st;
}

std::optional<ExitInfo> RealLauncher::poll(const ProcRef& ref) {
  reap_log_writers();
  if (ref.child) {
    auto r = proc::reap(ref.pid, false);
    if (r) {
      if (!*r) return std::nullopt;
      return ExitInfo{true, (*r)->code, (*r)->signal};
    }
    // Not our child after all (reaped elsewhere): fall back to /proc.
  }
  // WHY the reaps: after `agent restart` (an exec: same pid) a re-adopted
  // process and its log writer are still our children; reap them as they end,
  // or they stay zombies. For anyone else's child waitpid says ECHILD.
  if (ref.log_pid > 0) {
    std::lock_guard lock(mu_);
    if (!log_writers_.count(ref.log_pid))
      if (auto r = proc::reap(ref.log_pid, false); r && !*r) log_writers_.insert(ref.log_pid);
  }
  // WHY not proc::alive(): a /proc read that fails for lack of descriptors
  // (a connection flood) is not a dead process; "unknown" waits for the next tick.
  if (liveness(ref.pid, ref.start_time) != Liveness::kGone) return std::nullopt;
  (void)proc::reap(ref.pid, false);
  return ExitInfo{};
}

bool RealLauncher::group_alive(const ProcRef& ref) {
  if (!group_members(ref.pid).empty()) return true;
  auto cg = own_cgroup(ref);
  if (cg.empty()) return false;
  if (cgroup_populated(cg)) return true;
  cgroup_remove(cg);  // and the release's, once its last process is gone
  return false;
}

void RealLauncher::end_log_writer(pid_t pid) {
  Clock& clock = real_clock();
  auto deadline = clock.mono() + std::chrono::seconds(2);
  auto r = proc::reap(pid, false);
  while (r && !*r && clock.mono() < deadline) {
    clock.sleep_for(Millis(5));
    r = proc::reap(pid, false);
  }
  if (r && !*r) {
    kLog.warn("log writer pid {} did not end at EOF: killing it", pid);
    ::kill(pid, SIGKILL);
    (void)proc::reap(pid, true);
  }
  std::lock_guard lock(mu_);
  log_writers_.erase(pid);
}

void RealLauncher::reap_log_writers() {
  std::lock_guard lock(mu_);
  for (auto it = log_writers_.begin(); it != log_writers_.end();) {
    auto r = proc::reap(*it, false);
    if (r && !*r) {
      ++it;
      continue;
    }
    if (r && (*r)->code != 0) kLog.warn("log writer pid {} ended with {}", *it, (*r)->describe());
    it = log_writers_.erase(it);
  }
}

std::vector<ProbeResult> HttpProber::probe(const std::vector<ProbeTarget>& targets) {
  auto one = [](const ProbeTarget& t) -> ProbeResult {
    auto r = http::get("127.0.0.1", static_cast<uint16_t>(t.port), t.path, t.timeout);
    if (!r && http::is_local_resource_error(r.error())) {
      kLog.warn("health check of port {} inconclusive: {}", t.port, r.error().what());
      return std::nullopt;
    }
    return r && r->status >= 200 && r->status < 400;
  };
  std::vector<ProbeResult> out(targets.size(), false);
  std::vector<std::future<ProbeResult>> running;
  running.reserve(targets.size());
  if (targets.size() > 1) {
    try {
      for (const auto& t : targets) running.push_back(std::async(std::launch::async, one, t));
    } catch (const std::system_error&) {
      // No thread to be had: the rest run in turn below.
    }
  }
  for (size_t i = 0; i < targets.size(); ++i)
    out[i] = i < running.size() ? running[i].get() : one(targets[i]);
  return out;
}

}  // namespace md::supervisor
