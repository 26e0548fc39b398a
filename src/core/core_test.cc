#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/files.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/wakeup.h"

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
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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

namespace md {
namespace {

TEST(JsonText, InvalidUtf8BecomesReplacementCharacterNeverAThrow) {
  nlohmann::json j = {{"table", std::string("caf\xe9")}, {std::string("k\xff"), "ok"}};
  std::string text;
  ASSERT_NO_THROW(text = to_json_text(j));
  const auto back = nlohmann::json::parse(text);  // valid UTF-8 JSON again
  EXPECT_EQ(back["table"], "caf\xef\xbf\xbd");
  EXPECT_EQ(back["k\xef\xbf\xbd"], "ok");
  EXPECT_EQ(to_json_text(nlohmann::json{{"a", "é"}}, 2), "{\n  \"a\": \"é\"\n}");
}

// Every JSON text goes through to_json_text: a raw dump() throws on the
// first invalid UTF-8 byte (type_error 316) and aborted `migrate lint --json`
// and the controller's journal. Tests may dump their own valid data.
TEST(JsonText, NoRawDumpOutsideTheHelper) {
  namespace sfs = std::filesystem;
  const std::regex raw(R"((\.|->)dump\()");
  std::vector<std::string> offenders;
  for (const char* top : {"src", "fuzz", "bench"}) {
    const sfs::path root = sfs::path(MD_SOURCE_DIR) / top;
    if (!sfs::is_directory(root)) continue;
    for (const auto& e : sfs::recursive_directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
      if (name.ends_with("_test.cc") || e.path() == sfs::path(MD_SOURCE_DIR) / "src/core/json.cc")
        continue;
      std::ifstream in(e.path());
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        if (std::regex_search(line, raw))
          offenders.push_back(sfs::relative(e.path(), MD_SOURCE_DIR).string() + ":" +
                              std::to_string(n));
      }
    }
  }
  EXPECT_TRUE(offenders.empty()) << "use md::to_json_text (core/json.h) instead of dump() at:\n"
                                 << ::testing::PrintToString(offenders);
}

}  // namespace
}  // namespace md

namespace md {
namespace {

// Regression: a FIFO given as an artifact blocked the agent's release store
// in open() (it waits for a writer) and with it every later call.
TEST_F(TempDir, AFifoIsRefusedAtOnceNeverWaitedOn) {
  const std::filesystem::path fifo = dir_ / "v1.tar.gz";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto hashed = std::async(std::launch::async, [&] { return sha256_file_hex(fifo); });
  if (hashed.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    // Unblock the reader (a writer appears, then EOF) so the test can end.
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (w >= 0) ::close(w);
    FAIL() << "sha256_file_hex blocked on a FIFO";
  }
  auto r = hashed.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            fifo.string() + " is a FIFO, not a regular file; give the file itself");
  auto d = fs::open_regular(dir_);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("is a directory"), std::string::npos);
  std::ofstream(dir_ / "f") << "x";
  auto f = fs::open_regular(dir_ / "f");
  ASSERT_TRUE(f) << f.error().what();
  EXPECT_EQ(::fcntl(*f, F_GETFL) & O_NONBLOCK, 0);  // blocking again for the reader
  ::close(*f);
  EXPECT_EQ(fs::open_regular(dir_ / "missing").error().code(), Errc::kNotFound);
}

// Regression: ensure_dir chmod'ed an existing directory (`agent run --root
// /var/lib` made /var/lib 0700). Only a directory it creates gets the mode.
TEST_F(TempDir, EnsureDirNeverChangesTheModeOfAnExistingDirectory) {
  const std::filesystem::path existing = dir_ / "existing";
  ASSERT_EQ(::mkdir(existing.c_str(), 0755), 0);
  ::chmod(existing.c_str(), 0755);
  ASSERT_TRUE(fs::ensure_dir(existing, 0700));
  struct stat st {};
  ASSERT_EQ(::stat(existing.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  const std::filesystem::path fresh = dir_ / "a" / "b";
  ASSERT_TRUE(fs::ensure_dir(fresh, 0700));
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(SystemDirs, RootAndSystemDirectoriesButNotTheirChildren) {
  for (const char* p :
       {"/", "/etc", "/usr", "/var", "/var/lib", "/var/lib/", "/home", "/proc", "/sys", "/dev",
        "/boot", "/bin", "/sbin", "/lib", "/tmp", "/var/lib/../lib", "//"})
    EXPECT_TRUE(fs::is_system_dir(p)) << p;
  for (const char* p :
       {"/var/lib/meshdeploy", "/tmp/md-x", "/home/alice", "/srv/app", "/opt/meshdeploy"})
    EXPECT_FALSE(fs::is_system_dir(p)) << p;
}

// Wakeup: the agent's loops sleep on it. On the fake clock a wait advances
// time instead of blocking; a notify (even one sent before the wait) ends
// the next wait at once; stop ends every wait for good.
TEST(Wakeup, SleepsOnTheClockUntilNotified) {
  FakeClock clock;
  Wakeup w(clock);
  const MonoTime t0 = clock.mono();
  EXPECT_TRUE(w.wait_for(Millis(5000)));
  EXPECT_EQ(clock.mono(), t0 + Millis(5000));
  w.notify();
  EXPECT_TRUE(w.wait_for(Millis(5000)));
  EXPECT_EQ(clock.mono(), t0 + Millis(5000));  // did not sleep
  EXPECT_TRUE(w.wait_for(Millis(1)));          // the notify was used up
  EXPECT_EQ(clock.mono(), t0 + Millis(5001));
  w.stop();
  EXPECT_FALSE(w.wait_for(Millis(5000)));
  EXPECT_EQ(clock.mono(), t0 + Millis(5001));
}

TEST(Wakeup, ANotifyFromAnotherThreadEndsARealWait) {
  Wakeup w(real_clock());
  auto waiting = std::async(std::launch::async, [&w] { return w.wait_for(Millis(600000)); });
  w.notify();
  // WHY a bound at all: without the notify the wait would last 10 minutes.
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  auto stopping = std::async(std::launch::async, [&w] { return w.wait_for(Millis(600000)); });
  w.stop();
  ASSERT_EQ(stopping.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_FALSE(stopping.get());
}

}  // namespace
}  // namespace md
