// cgroup v2 for release processes: each process is born in a cgroup of its
// own, <agent's cgroup>/<tree>/<release>/<service>.<index>-<n>, so stopping it
// reaches every process it left behind — also daemons that called setsid()
// (another session and process group) or cleared their environment.
//
// Where the agent's cgroup cannot be written (no cgroup2 mount, a container
// that mounts it read-only, a systemd unit without Delegate=yes as a
// non-root user), CgroupTree::open() fails and the launcher falls back to
// process groups.
//
// Concurrency: the functions touch only the files of one cgroup; a
// CgroupTree is immutable after open(). Every function blocks on /sys I/O.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"

namespace md::supervisor {

class CgroupTree {
 public:
  // Finds the cgroup2 hierarchy (/proc/self/mountinfo) and this process's
  // cgroup in it (/proc/self/cgroup, "0::<path>"), and creates `name` (one
  // path component) under it. kUnavailable saying why when any step fails.
  static Result<CgroupTree> open(const std::string& name);

  // The directory of the tree, e.g. /sys/fs/cgroup/system.slice/x.service/meshdeploy-1a2b.
  const std::filesystem::path& dir() const { return dir_; }

  // Creates a new, empty cgroup <dir>/<release>/<leaf>-<n> (never one that
  // exists: each run of a process gets its own; empty earlier ones are
  // removed) and returns its path.
  // kInvalidArgument for a name with '/' or starting with '.'; kIo otherwise.
  Result<std::filesystem::path> make(const std::string& release, const std::string& leaf) const;

 private:
  explicit CgroupTree(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

// The pids in cgroup `cg` (cgroup.procs). Empty when it is gone.
std::vector<pid_t> cgroup_pids(const std::filesystem::path& cg);
// True while any process is in `cg` or below it (cgroup.events "populated 1").
bool cgroup_populated(const std::filesystem::path& cg);
// Sends `sig` to every process in `cg`. For SIGKILL, cgroup.kill (Linux
// 5.14) when there is one, so a process forking meanwhile is reached too.
// Not an error if `cg` is gone or empty.
Status cgroup_signal(const std::filesystem::path& cg, int sig);
// Removes `cg` if it is empty, then its parent if that is empty too (a
// release's cgroup once its last process cgroup is gone). Never an error.
void cgroup_remove(const std::filesystem::path& cg);

}  // namespace md::supervisor
