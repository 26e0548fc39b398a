#include "supervisor/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/fs.h"

namespace md::supervisor {
namespace stdfs = std::filesystem;
namespace {

Error unavailable(const std::string& why) {
  return Error(Errc::kUnavailable, "cgroup v2 unavailable: " + why);
}

// The mount point and root of the cgroup2 hierarchy, from mountinfo lines
// "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS".
Result<std::pair<std::string, std::string>> cgroup2_mount() {
  auto text = fs::read_file("/proc/self/mountinfo");
  if (!text) return fail(unavailable("cannot read /proc/self/mountinfo"));
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line.substr(0, dash));
    std::string id, parent, dev, root, mount;
    if (f >> id >> parent >> dev >> root >> mount) return std::make_pair(mount, root);
  }
  return fail(unavailable("no cgroup2 file system is mounted"));
}

// Writes `value` to a cgroup file (one write(2): the kernel acts on it).
bool write_knob(const stdfs::path& file, std::string_view value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool done = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return done;
}

bool valid_name(const std::string& n) {
  return !n.empty() && n.front() != '.' && n.find('/') == std::string::npos;
}

}  // namespace

Result<CgroupTree> CgroupTree::open(const std::string& name) {
  if (!valid_name(name)) return fail(Errc::kInvalidArgument, "bad cgroup name '" + name + "'");
  auto [mount, root] = MD_TRY(cgroup2_mount());
  auto self = fs::read_file("/proc/self/cgroup");
  if (!self) return fail(unavailable("cannot read /proc/self/cgroup"));
  std::string own;
  std::istringstream in(*self);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  if (own.empty()) return fail(unavailable("this process has no cgroup v2 path"));
  if (root != "/" && own.rfind(root, 0) == 0) own = own.substr(root.size());
  stdfs::path mine = stdfs::path(mount) / stdfs::path(own).relative_path();
  // An agent that moved itself into <tree>/.agent (below), then re-executed
  // itself (`agent restart`), finds its tree where it was.
  if (mine.filename() == kAgentLeaf && mine.parent_path().filename() == name)
    mine = mine.parent_path().parent_path();
  if (::access((mine / "cgroup.procs").c_str(), F_OK) != 0)
    return fail(unavailable((mine / "cgroup.procs").string() + " does not exist"));
  stdfs::path dir = mine / name;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(unavailable("cannot create " + dir.string() + ": " + std::strerror(errno) +
                            " (under systemd the unit needs Delegate=yes)"));
  if (::access((dir / "cgroup.procs").c_str(), W_OK) != 0)
    return fail(unavailable((dir / "cgroup.procs").string() + " is not writable"));
  CgroupTree tree(dir);
  // WHY the agent leaves its own cgroup: with the tree in it, that cgroup is
  // an inner node, and cgroup v2 keeps processes in leaves only ("no
  // internal processes": controllers cannot be enabled for the tree while
  // the agent sits above it; systemd's delegation contract asks the same of
  // a Delegate=yes service). The root cgroup is exempt (no cgroup.type).
  if (::access((mine / "cgroup.type").c_str(), F_OK) == 0) {
    stdfs::path leaf = dir / kAgentLeaf;
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST)
      tree.note_ = "the agent stays in " + mine.string() + " (create " + leaf.string() + ": " +
                   std::strerror(errno) + ")";
    else if (!write_knob(leaf / "cgroup.procs", "0"))
      tree.note_ =
          "the agent stays in " + mine.string() + " (cannot move into " + leaf.string() + ")";
    else
      tree.agent_leaf_ = leaf;
  }
  return tree;
}

Result<stdfs::path> CgroupTree::make(const std::string& release, const std::string& leaf) const {
  if (!valid_name(release) || !valid_name(leaf))
    return fail(Errc::kInvalidArgument, "bad cgroup name '" + release + "/" + leaf + "'");
  stdfs::path rel = dir_ / release;
  if (::mkdir(rel.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(Errc::kIo, "create cgroup " + rel.string() + ": " + std::strerror(errno));
  // WHY a new cgroup for every run, never one that exists: the cgroup of the
  // previous run (a crash, then a restart) may still hold its leftovers, which
  // must not be taken for the new run's; and a process cloned into a cgroup
  // that was once killed through cgroup.kill is killed at birth (seen on
  // Linux 6.18: every restart after a crash died at once). An empty earlier
  // cgroup is removed on the way.
  for (int n = 1; n <= 1000; ++n) {
    stdfs::path at = rel / (leaf + "-" + std::to_string(n));
    if (::mkdir(at.c_str(), 0755) == 0) return at;
    if (errno != EEXIST)
      return fail(Errc::kIo, "create cgroup " + at.string() + ": " + std::strerror(errno));
    ::rmdir(at.c_str());  // fails (EBUSY) while anything runs in it
  }
  return fail(Errc::kIo,
              "create cgroup under " + rel.string() + ": 1000 cgroups of " + leaf + " are in use");
}

std::vector<pid_t> cgroup_pids(const stdfs::path& cg) {
  std::vector<pid_t> out;
  auto text = fs::read_file(cg / "cgroup.procs");
  if (!text) return out;
  std::istringstream in(*text);
  for (long pid; in >> pid;) out.push_back(static_cast<pid_t>(pid));
  return out;
}

bool cgroup_populated(const stdfs::path& cg) {
  auto text = fs::read_file(cg / "cgroup.events");
  if (!text) return !cgroup_pids(cg).empty();
  return text->find("populated 1") != std::string::npos;
}

Status cgroup_signal(const stdfs::path& cg, int sig) {
  if (sig == SIGKILL) {
    // WHY cgroup.kill first: it reaches a process that forks while we read
    // cgroup.procs; the loop below is the fallback for kernels before 5.14.
    if (write_knob(cg / "cgroup.kill", "1")) return ok();
  }
  for (pid_t pid : cgroup_pids(cg))
    if (pid > 1) ::kill(pid, sig);
  return ok();
}

void cgroup_remove(const stdfs::path& cg) {
  if (::rmdir(cg.c_str()) != 0 && errno != ENOENT) return;
  // Earlier runs of the same process (<leaf>-<n>) whose kill had not ended
  // when the next run began; rmdir fails (EBUSY) on any still populated.
  std::string name = cg.filename().string();
  if (name.rfind('-') == std::string::npos) return;
  std::string prefix = name.substr(0, name.rfind('-') + 1);
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(cg.parent_path(), ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) ::rmdir(e.path().c_str());
  ::rmdir(cg.parent_path().c_str());
}

}  // namespace md::supervisor
