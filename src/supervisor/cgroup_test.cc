// The cgroup layer on the real cgroup2 file system (skipped where it is not
// writable: no cgroup2 mount, or not root and not delegated).
#include "supervisor/cgroup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "core/fs.h"
#include "core/process.h"

namespace md::supervisor {
namespace {
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

// This process's cgroup v2 directory, or "" when there is none to write.
stdfs::path own_cgroup_dir() {
  auto mounts = fs::read_file("/proc/self/mountinfo");
  auto self = fs::read_file("/proc/self/cgroup");
  if (!mounts || !self) return {};
  std::string mount;
  std::istringstream in(*mounts);
  for (std::string line; std::getline(in, line);) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line.substr(0, dash));
    std::string id, parent, dev, root;
    f >> id >> parent >> dev >> root >> mount;
  }
  std::string own;
  std::istringstream sin(*self);
  for (std::string line; std::getline(sin, line);)
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  if (mount.empty() || own.empty()) return {};
  return stdfs::path(mount) / stdfs::path(own).relative_path();
}

bool move_self(const stdfs::path& cg) {
  int fd = ::open((cg / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool done = ::write(fd, "0", 1) == 1;
  ::close(fd);
  return done;
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = own_cgroup_dir();
    if (home_.empty() || ::access((home_ / "cgroup.procs").c_str(), W_OK) != 0)
      GTEST_SKIP() << "cgroup v2 is not writable here";
    // A non-root cgroup of our own to start from, as an agent under systemd.
    base_ = home_ / ("md-cgroup-test-" + std::to_string(::getpid()));
    ASSERT_EQ(::mkdir(base_.c_str(), 0755), 0) << base_;
  }
  void TearDown() override {
    if (base_.empty()) return;
    move_self(home_);
    // Deepest first: every directory under base_, then base_.
    std::vector<stdfs::path> dirs;
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(base_, ec);
         it != stdfs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec)) dirs.push_back(it->path());
    std::sort(dirs.rbegin(), dirs.rend());
    for (const auto& d : dirs) ::rmdir(d.c_str());
    ::rmdir(base_.c_str());
  }
  std::string my_cgroup() {
    auto self = fs::read_file("/proc/self/cgroup").value_or("");
    size_t at = self.find("0::");
    return at == std::string::npos ? "" : self.substr(at + 3, self.find('\n', at) - at - 3);
  }
  stdfs::path home_, base_;
};

// cgroup v2's "no internal processes": once the tree is below the agent's
// cgroup, the agent itself moves into a leaf of it.
TEST_F(CgroupTest, TheAgentMovesIntoALeafOfItsTreeAndFindsTheTreeAgain) {
  ASSERT_TRUE(move_self(base_));
  auto tree = CgroupTree::open("tree");
  ASSERT_TRUE(tree) << tree.error().what();
  EXPECT_EQ(tree->dir(), base_ / "tree");
  EXPECT_EQ(tree->agent_leaf(), base_ / "tree" / kAgentLeaf);
  EXPECT_EQ(tree->note(), "");
  EXPECT_TRUE(stdfs::path(my_cgroup()).filename() == kAgentLeaf) << my_cgroup();
  EXPECT_EQ(fs::read_file(base_ / "cgroup.procs").value_or("?"), "") << "the agent left it";
  // Again from the leaf (an agent that re-executed itself): the same tree.
  auto again = CgroupTree::open("tree");
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_EQ(again->dir(), base_ / "tree");
}

TEST_F(CgroupTest, EachRunGetsANewCgroupAndTheEmptyOnesGo) {
  ASSERT_TRUE(move_self(base_));
  auto tree = CgroupTree::open("tree");
  ASSERT_TRUE(tree) << tree.error().what();
  auto a = tree->make("v1", "web.1");
  auto b = tree->make("v1", "web.1");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, base_ / "tree/v1/web.1-1");
  EXPECT_EQ(*b, base_ / "tree/v1/web.1-2");
  EXPECT_FALSE(stdfs::exists(*a)) << "empty earlier run's cgroup removed";
  EXPECT_FALSE(tree->make("../x", "web.1"));
  EXPECT_FALSE(tree->make("v1", ".agent"));
  cgroup_remove(*b);
  EXPECT_FALSE(stdfs::exists(base_ / "tree/v1")) << "the release's goes with its last";
}

// A process spawned into a cgroup is there from its first instruction, and
// its pidfd (for the supervisor's event-driven waits) says when it exits.
TEST_F(CgroupTest, SpawnIntoACgroupGivesAPidfdAndCgroupKillEndsAll) {
  ASSERT_TRUE(move_self(base_));
  auto tree = CgroupTree::open("tree");
  ASSERT_TRUE(tree) << tree.error().what();
  auto cg = tree->make("v1", "web.1");
  ASSERT_TRUE(cg);
  int dirfd = ::open(cg->c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dirfd, 0);
  proc::SpawnOptions o;
  o.cgroup_fd = dirfd;
  auto s = proc::spawn(proc::Command::shell("setsid sleep 1000 & exec sleep 1000"), o);
  ::close(dirfd);
  ASSERT_TRUE(s) << s.error().what();
  ASSERT_GE(s->pidfd.get(), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 500 && pids.size() < 2; ++i) {
    pids = cgroup_pids(*cg);
    if (pids.size() < 2) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(pids.size(), 2u) << "the leader and its setsid daemon";
  EXPECT_TRUE(cgroup_populated(*cg));
  pollfd p{s->pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "not exited yet";
  ASSERT_TRUE(cgroup_signal(*cg, SIGKILL));
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the pidfd is readable once the child exited";
  (void)proc::reap(s->pid, true);
  bool populated = true;
  for (int i = 0; i < 1000 && populated; ++i) {
    populated = cgroup_populated(*cg);
    if (populated) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(populated) << "the daemon outside the process group is gone too";
  for (pid_t pid : pids) EXPECT_FALSE(proc::alive(pid)) << pid;
}

TEST(CgroupNames, ABadTreeNameIsRefused) {
  auto t = CgroupTree::open("a/b");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace md::supervisor
