#include "agent/artifact_gc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

namespace md::agent {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

class ArtifactGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-artifact-gc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  // A file whose last write was `age` before `now_`.
  void file(const std::string& name, Millis age) {
    std::ofstream(dir_ / name) << "bytes";
    const int64_t ms = to_unix_ms(now_ - age);
    timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ms / 1000;
    t[0].tv_nsec = t[1].tv_nsec = (ms % 1000) * 1'000'000;
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / name).c_str(), t, 0), 0);
  }
  bool has(const std::string& name) const { return stdfs::exists(dir_ / name); }

  stdfs::path dir_;
  SysTime now_ = from_unix_ms(1'700'000'000'000);
};

// Regression: an upload abandoned mid-way stayed until the agent restarted.
TEST_F(ArtifactGcTest, RemovesUploadsSilentPastTheExpiryOnly) {
  file(".tmp-upload-v1", 11min);  // abandoned
  file(".tmp-upload-v2", 30s);    // in progress: a chunk 30 s ago
  file("v3.tar.gz", 1h);          // registered artifact: not an upload
  EXPECT_EQ(remove_stale_uploads(dir_, kDefaultUploadExpiry, now_),
            std::vector<std::string>{".tmp-upload-v1"});
  EXPECT_FALSE(has(".tmp-upload-v1"));
  EXPECT_TRUE(has(".tmp-upload-v2"));
  EXPECT_TRUE(has("v3.tar.gz"));
  // A shorter expiry (agent run --upload-expiry) takes the other one too.
  EXPECT_EQ(remove_stale_uploads(dir_, 10s, now_), std::vector<std::string>{".tmp-upload-v2"});
  EXPECT_TRUE(remove_stale_uploads(dir_ / "missing", 10s, now_).empty());
}

// Regression: artifacts refused at unpack or left by a crash stayed forever.
TEST_F(ArtifactGcTest, OrphansGoRegisteredArtifactsAndUploadsStay) {
  file("v1.tar.gz", 1h);       // registered
  file("v2.tar.zst", 1h);      // orphan
  file(".tmp-v3.tar.gz", 1h);  // a copy a crash interrupted
  file(".tmp-upload-v4", 1h);  // an upload: its expiry decides
  EXPECT_EQ(remove_orphan_artifacts(dir_, {"v1.tar.gz"}),
            (std::vector<std::string>{".tmp-v3.tar.gz", "v2.tar.zst"}));
  EXPECT_TRUE(has("v1.tar.gz"));
  EXPECT_TRUE(has(".tmp-upload-v4"));
  EXPECT_FALSE(has("v2.tar.zst"));
}

}  // namespace
}  // namespace md::agent
