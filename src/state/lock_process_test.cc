// Lock contention between real processes (fork), on both backends, with the
// real clock: what two controllers on one environment actually do.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "state/state_test_util.h"

namespace md::state {
namespace {

using testing::PostgresBackend;
using testing::SqliteBackend;

// A pipe pair to step a child process through a script.
struct Channel {
  int to_child[2];
  int to_parent[2];
  Channel() {
    MD_CHECK(::pipe(to_child) == 0);
    MD_CHECK(::pipe(to_parent) == 0);
  }
  ~Channel() {
    for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
  }
  static void send(int fd, char c) { MD_CHECK(::write(fd, &c, 1) == 1); }
  static char recv(int fd) {
    char c = 0;
    return ::read(fd, &c, 1) == 1 ? c : '\0';
  }
};

template <class B>
class LockProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.set_up();
    // Create the schema first so the children race on the lock, not on it.
    auto s = open_store(backend_.url());
    ASSERT_TRUE(s) << s.error().what();
  }
  void TearDown() override { backend_.tear_down(); }

  // Runs `body` in a child process; its return value is the exit status.
  // WHY _exit: the child must not run the parent's destructors (gtest, open
  // connections) on the way out.
  pid_t spawn(const std::function<int()>& body) {
    pid_t pid = ::fork();
    MD_CHECK(pid >= 0);
    if (pid == 0) ::_exit(body());
    return pid;
  }
  static int wait_exit(pid_t pid) {
    int status = 0;
    MD_CHECK(::waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  B backend_;
};

using testing::BackendNames;
using testing::Backends;
TYPED_TEST_SUITE(LockProcessTest, Backends, BackendNames);

TYPED_TEST(LockProcessTest, SecondProcessIsToldWhoHoldsTheLock) {
  Channel ch;
  std::string url = this->backend_.url();
  pid_t child = this->spawn([&] {
    auto s = open_store(url);
    if (!s) return 10;
    if (!(*s)->acquire_lock("production", "child@host pid 1", "d-child", Millis(60000))) return 11;
    Channel::send(ch.to_parent[1], 'L');
    Channel::recv(ch.to_child[0]);  // hold until told
    if (!(*s)->release_lock("production", "child@host pid 1")) return 12;
    return 0;
  });
  ASSERT_EQ(Channel::recv(ch.to_parent[0]), 'L');
  auto s = open_store(url);
  ASSERT_TRUE(s) << s.error().what();
  auto denied = (*s)->acquire_lock("production", "parent@host pid 2", "d-parent", Millis(60000));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), Errc::kConflict);
  EXPECT_TRUE(denied.error().message().starts_with(
      "environment production is locked by child@host pid 1 (deployment d-child) since "))
      << denied.error().message();
  Channel::send(ch.to_child[1], 'R');
  EXPECT_EQ(this->wait_exit(child), 0);
  auto mine = (*s)->acquire_lock("production", "parent@host pid 2", "d-parent", Millis(60000));
  EXPECT_TRUE(mine) << mine.error().what();
}

TYPED_TEST(LockProcessTest, ExactlyOneOfManyRacingProcessesWins) {
  constexpr int kProcs = 4;
  Channel ch;
  std::string url = this->backend_.url();
  std::vector<pid_t> kids;
  kids.reserve(kProcs);
  for (int i = 0; i < kProcs; ++i) {
    kids.push_back(this->spawn([&, i] {
      auto s = open_store(url);
      if (!s) return 10;
      Channel::send(ch.to_parent[1], 'o');
      Channel::recv(ch.to_child[0]);  // start together
      auto r = (*s)->acquire_lock("production", "p" + std::to_string(i), "d", Millis(60000));
      if (r) return 0;
      return r.error().code() == Errc::kConflict ? 1 : 20;
    }));
  }
  for (int i = 0; i < kProcs; ++i) ASSERT_EQ(Channel::recv(ch.to_parent[0]), 'o');
  for (int i = 0; i < kProcs; ++i) Channel::send(ch.to_child[1], 'g');
  int winners = 0, losers = 0;
  for (pid_t k : kids) {
    int code = this->wait_exit(k);
    if (code == 0)
      ++winners;
    else if (code == 1)
      ++losers;
    else
      ADD_FAILURE() << "child exited " << code;
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(losers, kProcs - 1);
}

TYPED_TEST(LockProcessTest, ProcessesOpeningANewStoreAtOnceCreateItOnce) {
  constexpr int kProcs = 4;
  Channel ch;
  std::string url = this->backend_.fresh_url();
  std::vector<pid_t> kids;
  kids.reserve(kProcs);
  for (int i = 0; i < kProcs; ++i) {
    kids.push_back(this->spawn([&, i] {
      Channel::send(ch.to_parent[1], 'o');
      Channel::recv(ch.to_child[0]);  // start together
      auto s = open_store(url);
      if (!s) {
        std::fprintf(stderr, "child %d: %s\n", i, s.error().what().c_str());
        return 10;
      }
      AuditEntry e{0, {}, "p" + std::to_string(i), "test.open", "production", "", ""};
      return (*s)->commit({.audit = {e}}) ? 0 : 11;
    }));
  }
  for (int i = 0; i < kProcs; ++i) ASSERT_EQ(Channel::recv(ch.to_parent[0]), 'o');
  for (int i = 0; i < kProcs; ++i) Channel::send(ch.to_child[1], 'g');
  for (pid_t k : kids) EXPECT_EQ(this->wait_exit(k), 0);
  auto s = open_store(url);
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_EQ((*s)->schema_version(), latest_schema_version());
  EXPECT_EQ((*s)->audit("", 0)->size(), static_cast<size_t>(kProcs));
}

TYPED_TEST(LockProcessTest, LeaseOfAKilledHolderExpiresAndIsTakenOver) {
  Channel ch;
  std::string url = this->backend_.url();
  pid_t child = this->spawn([&] {
    auto s = open_store(url);
    if (!s || !(*s)->acquire_lock("production", "doomed", "d-1", Millis(1500))) return 10;
    Channel::send(ch.to_parent[1], 'L');
    for (;;) ::pause();  // killed below, never releases
  });
  ASSERT_EQ(Channel::recv(ch.to_parent[0]), 'L');
  ::kill(child, SIGKILL);
  EXPECT_EQ(this->wait_exit(child), 128 + SIGKILL);

  auto s = open_store(url);
  ASSERT_TRUE(s) << s.error().what();
  MonoTime deadline = real_clock().mono() + Millis(10000);
  Result<LockInfo> got = fail(Errc::kInternal, "not tried");
  int conflicts = 0;
  while (real_clock().mono() < deadline) {
    got = (*s)->acquire_lock("production", "rescuer", "d-2", Millis(60000));
    if (got || got.error().code() != Errc::kConflict) break;
    ++conflicts;
    real_clock().sleep_for(Millis(20));
  }
  ASSERT_TRUE(got) << got.error().what();
  EXPECT_EQ(got->holder, "rescuer");
  EXPECT_GT(conflicts, 0);  // it was held until the lease ran out
}

}  // namespace
}  // namespace md::state
