// claim_root: what the agent may take as its root, and that it never changes
// the mode of a directory it did not create.
#include "agent/root.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace md::agent {
namespace {

namespace stdfs = std::filesystem;

unsigned mode_of(const stdfs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class Root : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-root-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0755);
  }
  void TearDown() override { stdfs::remove_all(dir_); }
  stdfs::path dir_;
};

TEST_F(Root, ANewRootIsCreated0700AndMarked) {
  auto r = claim_root(dir_ / "a" / "agent");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r, stdfs::canonical(dir_ / "a" / "agent"));
  EXPECT_EQ(mode_of(*r), 0700u);
  EXPECT_TRUE(stdfs::exists(*r / kRootMarker));
  EXPECT_EQ(mode_of(dir_), 0755u);  // the parent that existed is untouched
}

// Regression: `agent run --root EXISTING_DIR` chmod'ed it (and run/) 0700.
TEST_F(Root, AnExistingEmptyDirectoryIsAdoptedWithItsModeUntouched) {
  auto r = claim_root(dir_);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(mode_of(dir_), 0755u);
  EXPECT_TRUE(stdfs::exists(dir_ / kRootMarker));
  // Marked now: claimed again even though it is no longer empty.
  std::ofstream(dir_ / "agent.state") << "x";
  EXPECT_TRUE(claim_root(dir_));
  EXPECT_EQ(mode_of(dir_), 0755u);
}

TEST_F(Root, ANonEmptyForeignDirectoryIsRefusedAndLeftAlone) {
  std::ofstream(dir_ / "someone-elses.db") << "x";
  auto r = claim_root(dir_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "agent root " + dir_.string() +
                " is not empty and was not made by meshdeploy (no .meshdeploy-agent-root); give a "
                "directory of the agent's own, new or empty (e.g. /var/lib/meshdeploy)");
  EXPECT_FALSE(stdfs::exists(dir_ / kRootMarker));
  EXPECT_EQ(mode_of(dir_), 0755u);
}

TEST_F(Root, ARootOfAnOlderMeshdeployIsKept) {
  std::ofstream(dir_ / "agent.lock") << "123\n";
  std::ofstream(dir_ / "agent.state") << "x";
  EXPECT_TRUE(claim_root(dir_));
  EXPECT_TRUE(stdfs::exists(dir_ / kRootMarker));
}

TEST_F(Root, SystemDirectoriesAndNonDirectoriesAreRefused) {
  for (const char* p :
       {"/", "/etc", "/usr", "/var", "/var/lib", "/var/lib/", "/home", "/tmp", "/proc"}) {
    const unsigned before = mode_of(p);
    auto r = claim_root(p);
    ASSERT_FALSE(r) << p;
    EXPECT_NE(r.error().message().find("is a system directory"), std::string::npos)
        << r.error().what();
    EXPECT_EQ(mode_of(p), before) << p;
    EXPECT_FALSE(stdfs::exists(stdfs::path(p) / kRootMarker)) << p;
  }
  // A symlink to one is refused too.
  stdfs::create_directory_symlink("/var/lib", dir_ / "lib");
  EXPECT_FALSE(claim_root(dir_ / "lib"));
  std::ofstream(dir_ / "file") << "x";
  auto r = claim_root(dir_ / "file");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("is not a directory"), std::string::npos);
}

}  // namespace
}  // namespace md::agent
