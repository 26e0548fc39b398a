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

// The agent's own leaf in its tree. A release can never be named so (a
// version never starts with '.').
inline constexpr const char* kAgentLeaf = ".agent";

class CgroupTree {
 public:
  // Finds the cgroup2 hierarchy (/proc/self/mountinfo) and this process's
  // cgroup in it (/proc/self/cgroup, "0::<path>"), and creates `name` (one
  // path component) under it. kUnavailable saying why when any step fails.
  // Unless that cgroup is the root, the calling process then moves itself
  // into <name>/.agent (a leaf: cgroup v2 keeps processes out of inner
  // nodes); a failure to move is not an error (see note()). Called again
  // from <name>/.agent, it finds the same tree.
  static Result<CgroupTree> open(const std::string& name);
  // The leaf the caller moved into, "" if it did not move.
  const std::filesystem::path& agent_leaf() const { return agent_leaf_; }
  // Why the caller could not move into its leaf, "" if nothing to say.
  const std::string& note() const { return note_; }

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
  std::filesystem::path agent_leaf_;
  std::string note_;
};

// The pids in cgroup `cg` (cgroup.procs). Empty when it is gone.
std::vector<pid_t> cgroup_pids(const std::filesystem::path& cg);
// True while any process is in `cg` or below it (cgroup.events "populated 1").
bool cgroup_populated(const std::filesystem::path& cg);
// Sends `sig` to every process in `cg`. For SIGKILL, cgroup.kill (Linux
// 5.14) when there is one, so a process forking meanwhile is reached too.
// Not an error if `cg` is gone or empty.
Status cgroup_signal(const std::filesystem::path& cg, int sig);
// Removes `cg` if it is empty, and the empty cgroups of the same process's
// earlier runs, then its parent if that is empty too (a release's cgroup
// once its last process cgroup is gone). Never an error.
void cgroup_remove(const std::filesystem::path& cg);

}  // namespace md::supervisor
