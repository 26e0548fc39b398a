#include "deploy/lease.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace md::deploy {
namespace {

namespace fs = std::filesystem;

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        std::string(fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + "/md-lease-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    store_ = std::move(*state::open_store((dir_ / "s.db").string(), clock_));
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<state::Store> store_;
};

TEST(Holder, Parse) {
  std::string host;
  long pid = 0;
  ASSERT_TRUE(parse_holder("ann@ci-7 pid 4121", &host, &pid));
  EXPECT_EQ(host, "ci-7");
  EXPECT_EQ(pid, 4121);
  EXPECT_FALSE(parse_holder("ann pid 1", &host, &pid));
  EXPECT_FALSE(parse_holder("ann@x pid", &host, &pid));
  EXPECT_FALSE(parse_holder("ann@x pid 1a", &host, &pid));
  ASSERT_TRUE(parse_holder(default_holder(), &host, &pid));
  EXPECT_EQ(pid, getpid());
}

TEST_F(LeaseTest, ConflictNamesTheLiveHolderAndReleaseFreesIt) {
  auto a = Lease::acquire(*store_, "prod", "ann@elsewhere pid 1", "d-a", Millis(30000), clock_, {});
  ASSERT_TRUE(a);
  auto b = Lease::acquire(*store_, "prod", "bob@elsewhere pid 2", "d-b", Millis(30000), clock_, {});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kConflict);
  EXPECT_NE(b.error().what().find("ann@elsewhere pid 1"), std::string::npos) << b.error().what();
  (*a)->release();
  EXPECT_TRUE(
      Lease::acquire(*store_, "prod", "bob@elsewhere pid 2", "d-b", Millis(30000), clock_, {}));
}

TEST_F(LeaseTest, ADeadLocalHolderIsWaitedOutNotRefused) {
  // A holder on this host whose pid is not running (a controller killed -9).
  std::string host;
  long pid = 0;
  ASSERT_TRUE(parse_holder(default_holder(), &host, &pid));
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  const std::string holder = "ghost@" + host + " pid " + std::to_string(dead);
  ASSERT_TRUE(store_->acquire_lock("prod", holder, "d-dead", Millis(5000)));
  std::string told;
  const MonoTime t = clock_.mono();
  auto l = Lease::acquire(*store_, "prod", "me@" + host + " pid 1", "d-new", Millis(5000), clock_,
                          [&](const std::string& m) { told = m; });
  ASSERT_TRUE(l) << l.error().what();
  EXPECT_GE(clock_.mono() - t, Millis(5000));
  EXPECT_NE(told.find("no longer running"), std::string::npos) << told;
}

}  // namespace
}  // namespace md::deploy
