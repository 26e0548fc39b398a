#include "supervisor/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/fs.h"

namespace md::supervisor {
namespace {
namespace stdfs = std::filesystem;

constexpr std::string_view kSecret = "hunter2-very-secret-token";

std::shared_ptr<const secrets::Redactor> redactor() {
  secrets::SecretMap m;
  m.emplace("API_TOKEN", secrets::Secret(std::string(kSecret)));
  return std::make_shared<const secrets::Redactor>(m);
}

class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-log-writer-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { stdfs::remove_all(dir_); }
  stdfs::path dir_;
  FakeClock clock_;
};

TEST_F(LogWriterTest, StampsCompleteLinesAndHoldsPartialOnes) {
  // No secrets: nothing is held back by the redactor, so lines flow at once.
  LineFormatter f(std::make_shared<const secrets::Redactor>(secrets::SecretMap{}), clock_);
  std::string ts = format_time(clock_.now());
  EXPECT_EQ(f.write("hello\nwor"), ts + " hello\n");
  EXPECT_EQ(f.write("ld\n"), ts + " world\n");
  EXPECT_EQ(f.write("no newline yet"), "");
  EXPECT_EQ(f.flush_partial(), ts + " no newline yet\n");
  EXPECT_EQ(f.finish(), "");
}

TEST_F(LogWriterTest, MasksASecretSplitAcrossReads) {
  LineFormatter f(redactor(), clock_);
  std::string out = f.write("token=hunter2-very");
  out += f.write("-secret-token done\n");
  out += f.finish();
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_NE(out.find("token=[REDACTED] done"), std::string::npos) << out;
}

// Regression: the formatter cut the stream at every newline, so a read that
// ended inside a secret, then a line break, then the rest wrote both halves.
TEST_F(LogWriterTest, MasksASecretSplitByALineBreakAcrossReads) {
  LineFormatter f(redactor(), clock_);
  std::string out = f.write("token=hunter2-very");
  out += f.write("\n");
  out += f.write("-secret-token done\n");
  out += f.finish();
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_EQ(out.find("secret-token"), std::string::npos) << out;
  EXPECT_NE(out.find("token=[REDACTED] done"), std::string::npos) << out;
}

TEST_F(LogWriterTest, APauseReleasesAHeldPossiblePrefix) {
  LineFormatter f(redactor(), clock_);
  std::string ts = format_time(clock_.now());
  EXPECT_EQ(f.write("waiting for hunter2\n"), "");  // "hunter2" may begin the secret
  EXPECT_EQ(f.flush_partial(), ts + " waiting for hunter2\n");
}

TEST_F(LogWriterTest, ALineWithoutSecretPrefixIsWrittenAtOnce) {
  // Freshness: "listening on 3000" must reach the log before more output
  // comes, although the redactor knows a 25-byte secret.
  LineFormatter f(redactor(), clock_);
  EXPECT_EQ(f.write("listening on 3000\n"), format_time(clock_.now()) + " listening on 3000\n");
}

TEST_F(LogWriterTest, MasksEachLineOfAMultiLineSecret) {
  secrets::SecretMap m;
  m.emplace("KEY", secrets::Secret("first-line-of-key\nsecond-line-of-key"));
  LineFormatter f(std::make_shared<const secrets::Redactor>(m), clock_);
  std::string out = f.write("key: first-line-of-");
  out += f.write("key\nsecond-line-of-key\nafter\n");
  out += f.finish();
  EXPECT_EQ(out.find("line-of-key"), std::string::npos) << out;
  EXPECT_NE(out.find(" after\n"), std::string::npos) << out;
}

TEST_F(LogWriterTest, FinishWritesTheLastLineWithoutNewline) {
  LineFormatter f(redactor(), clock_);
  std::string out = f.write("Error: boom");
  out += f.finish();
  EXPECT_EQ(out, format_time(clock_.now()) + " Error: boom\n");
}

TEST_F(LogWriterTest, SplitsOverlongLines) {
  LineFormatter f(redactor(), clock_);
  std::string out = f.write(std::string(LineFormatter::kMaxLine + 10, 'x') + "\n");
  out += f.finish();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
}

TEST_F(LogWriterTest, SecretsFileRoundTripIsPrivate) {
  secrets::SecretMap m;
  m.emplace("A", secrets::Secret("value-a"));
  ASSERT_TRUE(write_secrets_file(dir_ / "s.json", m));
  EXPECT_EQ(stdfs::status(dir_ / "s.json").permissions() & stdfs::perms::all,
            stdfs::perms::owner_read | stdfs::perms::owner_write);
  auto back = read_secrets_file(dir_ / "s.json");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->at("A").reveal(), "value-a");
  ASSERT_TRUE(fs::atomic_write(dir_ / "bad.json", "{\"A\": \"value-a", 0600));
  auto bad = read_secrets_file(dir_ / "bad.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kCorruption);
  EXPECT_EQ(bad.error().what().find("value-a"), std::string::npos);
  ASSERT_TRUE(fs::atomic_write(dir_ / "open.json", "{}", 0644));
  EXPECT_EQ(read_secrets_file(dir_ / "open.json").error().code(), Errc::kPermissionDenied);
}

TEST_F(LogWriterTest, RunCopiesAPipeToTheFileRedactedUntilEof) {
  secrets::SecretMap m;
  m.emplace("API_TOKEN", secrets::Secret(std::string(kSecret)));
  ASSERT_TRUE(write_secrets_file(dir_ / "secrets.json", m));
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread producer([fd = p[1]] {
    std::string a = "starting with hunter2-very-";
    std::string b = "secret-token\nlast line without newline";
    (void)!::write(fd, a.data(), a.size());
    (void)!::write(fd, b.data(), b.size());
    ::close(fd);
  });
  LogWriterOptions o;
  o.out = dir_ / "web.1.log";
  o.secrets_file = dir_ / "secrets.json";
  ASSERT_TRUE(run_log_writer(p[0], o));
  producer.join();
  ::close(p[0]);
  std::string text = *fs::read_file(o.out);
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_NE(text.find(" starting with [REDACTED]\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" last line without newline\n"), std::string::npos) << text;
  EXPECT_EQ(stdfs::status(o.out).permissions() & stdfs::perms::all,
            stdfs::perms::owner_read | stdfs::perms::owner_write);
}

TEST_F(LogWriterTest, RotatesPastMaxBytes) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread producer([fd = p[1]] {
    std::string line(99, 'y');
    line += '\n';
    for (int i = 0; i < 30; ++i) (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  });
  LogWriterOptions o;
  o.out = dir_ / "w.log";
  o.max_bytes = 1000;
  ASSERT_TRUE(run_log_writer(p[0], o));
  producer.join();
  ::close(p[0]);
  EXPECT_TRUE(stdfs::exists(dir_ / "w.log.1"));
  EXPECT_LE(stdfs::file_size(dir_ / "w.log"), 2000u);
}

TEST_F(LogWriterTest, MissingSecretsFileIsAnError) {
  LogWriterOptions o;
  o.out = dir_ / "x.log";
  o.secrets_file = dir_ / "missing.json";
  auto st = run_log_writer(0, o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kNotFound);
}

}  // namespace
}  // namespace md::supervisor
