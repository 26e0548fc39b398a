#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"

namespace md {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail(Errc::kInvalidArgument, "not positive: " + std::to_string(v));
  return v;
}
Result<int> doubled(int v) { return MD_TRY_CTX(parse_positive(v), "doubling") * 2; }

TEST(Error, TryPropagatesWithContextChain) {
  EXPECT_EQ(*doubled(4), 8);
  auto r = doubled(-1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(r.error().what(), "doubling: not positive: -1");
  EXPECT_EQ(r.error().message(), "not positive: -1");
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-core-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(TempDir, AtomicWriteReplacesAndSetsMode) {
  auto p = dir_ / "state.json";
  ASSERT_TRUE(fs::atomic_write(p, "one", 0600));
  ASSERT_TRUE(fs::atomic_write(p, "two", 0600));
  EXPECT_EQ(*fs::read_file(p), "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temp files left behind.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) (void)e, ++n;
  EXPECT_EQ(n, 1);
}

TEST_F(TempDir, AtomicWriteIntoMissingDirFailsCleanly) {
  auto r = fs::atomic_write(dir_ / "no" / "such" / "f", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
}

TEST_F(TempDir, ReadMissingFileIsNotFound) {
  auto r = fs::read_file(dir_ / "missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
}

TEST_F(TempDir, CheckPrivateRefusesGroupReadable) {
  auto p = dir_ / "key";
  ASSERT_TRUE(fs::atomic_write(p, "k", 0640));
  auto r = fs::check_private(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPermissionDenied);
  EXPECT_NE(r.error().message().find("0640"), std::string::npos);
  ASSERT_TRUE(fs::atomic_write(p, "k", 0600));
  EXPECT_TRUE(fs::check_private(p));
}

TEST(Hash, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Clock, FakeClockAdvancesBothClocks) {
  FakeClock c;
  auto s = c.now();
  auto m = c.mono();
  c.sleep_for(Millis(1500));
  EXPECT_EQ(c.now() - s, Millis(1500));
  EXPECT_EQ(c.mono() - m, Millis(1500));
  EXPECT_EQ(format_time(from_unix_ms(0)), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace md
