#include "core/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "core/fs.h"
#include "core/guard.h"

namespace md::log {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reset();
    set_clock(&clock_);
  }
  void TearDown() override { reset(); }
  FakeClock clock_{from_unix_ms(1'700'000'000'123)};
};

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t i = 0;
  for (size_t j; (j = text.find(from, i)) != std::string_view::npos; i = j + from.size()) {
    out.append(text.substr(i, j - i));
    out.append(to);
  }
  out.append(text.substr(i));
  return out;
}

TEST_F(LogTest, TextLineHasTimeLevelComponentMessageFields) {
  auto mem = std::make_shared<MemorySink>();
  set_sinks({mem});
  Logger lg("proxy");
  lg.info("switched {} to {}", "web", "v42");
  lg.warn("upstream slow", {{"target", "127.0.0.1:9001"}, {"note", "two words"}});
  auto lines = mem->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "2023-11-14T22:13:20.123Z info  proxy: switched web to v42");
  EXPECT_EQ(lines[1],
            "2023-11-14T22:13:20.123Z warn  proxy: upstream slow target=127.0.0.1:9001 "
            "note=\"two words\"");
}

TEST_F(LogTest, TextLineEscapesNewlinesSoOneRecordIsOneLine) {
  auto mem = std::make_shared<MemorySink>();
  set_sinks({mem});
  Logger("hook").error("failed:\nfake 2023 line\x01");
  ASSERT_EQ(mem->lines().size(), 1u);
  EXPECT_EQ(mem->lines()[0], "2023-11-14T22:13:20.123Z error hook: failed:\\nfake 2023 line\\x01");
}

TEST_F(LogTest, JsonLineIsEscapedAndValidUtf8) {
  auto mem = std::make_shared<MemorySink>(Format::kJson);
  set_sinks({mem});
  Logger("deploy").info("quote \" back \\ nl \n bad \xff ok \xc3\xa9", {{"step", "7"}});
  ASSERT_EQ(mem->lines().size(), 1u);
  EXPECT_EQ(mem->lines()[0],
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"component\":\"deploy\","
            "\"msg\":\"quote \\\" back \\\\ nl \\n bad \\ufffd ok \xc3\xa9\",\"step\":\"7\"}");
}

TEST_F(LogTest, LevelThresholdDropsLowerLines) {
  auto mem = std::make_shared<MemorySink>();
  set_sinks({mem});
  Logger lg("x");
  lg.debug("hidden");
  set_level(Level::kDebug);
  lg.debug("shown {}", 1);
  set_level(Level::kError);
  lg.warn("hidden too");
  lg.error("kept");
  auto lines = mem->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("debug x: shown 1"), std::string::npos);
  EXPECT_NE(lines[1].find("error x: kept"), std::string::npos);
}

TEST_F(LogTest, ParseLevelAndFormat) {
  EXPECT_EQ(*parse_level("warning"), Level::kWarn);
  auto bad = parse_level("loud");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "unknown log level 'loud' (valid: debug, info, warn, error)");
  EXPECT_EQ(*parse_format("json"), Format::kJson);
  EXPECT_FALSE(parse_format("xml"));
}

// The redaction hook reaches every sink, of every format, for the message and
// for field values; removing it shows the values again (so the test can fail).
TEST_F(LogTest, RedactionFilterAppliesToEverySink) {
  char tmpl[] = "/tmp/md-log-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto text = std::make_shared<MemorySink>(Format::kText);
  auto json = std::make_shared<MemorySink>(Format::kJson);
  auto file = FileSink::open((dir / "log.jsonl").string(), Format::kJson);
  ASSERT_TRUE(file) << file.error().what();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  auto fdsink = std::make_shared<FdSink>(fds[1], Format::kText);
  set_sinks({text, json, *file, fdsink});
  set_redaction_filter(
      [](std::string_view s) { return replace_all(s, "hunter2-secret", "[REDACTED]"); });

  Logger lg("supervisor");
  lg.info("password is {}", "hunter2-secret");
  lg.info("env", {{"DATABASE_URL", "postgres://u:hunter2-secret@db/x"}});
  set_redaction_filter(nullptr);
  lg.info("unfiltered hunter2-secret");

  char buf[4096];
  ssize_t n = ::read(fds[0], buf, sizeof buf);
  ASSERT_GT(n, 0);
  std::string piped(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  ::close(fds[1]);
  auto stored = fs::read_file(dir / "log.jsonl");
  ASSERT_TRUE(stored);
  for (const std::string& out : {text->text(), json->text(), *stored, piped}) {
    SCOPED_TRACE(out);
    // Only the line logged without the filter shows the value.
    size_t first = out.find("hunter2-secret");
    ASSERT_NE(first, std::string::npos);
    EXPECT_NE(out.find("unfiltered hunter2-secret"), std::string::npos);
    EXPECT_EQ(out.find("hunter2-secret"), out.find("unfiltered hunter2-secret") + 11);
    EXPECT_EQ(out.find("hunter2-secret", first + 1), std::string::npos);
    EXPECT_NE(out.find("password is [REDACTED]"), std::string::npos);
    EXPECT_NE(out.find("postgres://u:[REDACTED]@db/x"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(LogTest, ThrowingFilterDropsTheLineInsteadOfLeakingIt) {
  auto mem = std::make_shared<MemorySink>();
  set_sinks({mem});
  set_redaction_filter([](std::string_view) -> std::string { throw std::runtime_error("x"); });
  Logger("x").info("secret-value-123");
  ASSERT_EQ(mem->lines().size(), 1u);
  EXPECT_EQ(mem->lines()[0].find("secret-value-123"), std::string::npos);
  EXPECT_NE(mem->lines()[0].find("redaction filter failed"), std::string::npos);
}

TEST_F(LogTest, RedactHelperUsesTheSameFilter) {
  EXPECT_EQ(redact("abc"), "abc");
  set_redaction_filter([](std::string_view s) { return replace_all(s, "b", "*"); });
  EXPECT_EQ(redact("abc"), "a*c");
}

// Many threads, several sinks: every line arrives whole, none lost.
TEST_F(LogTest, ConcurrentLinesNeverInterleave) {
  char tmpl[] = "/tmp/md-log-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto mem = std::make_shared<MemorySink>();
  auto file = FileSink::open((dir / "log.txt").string(), Format::kText);
  ASSERT_TRUE(file);
  set_sinks({mem, *file});
  set_redaction_filter([](std::string_view s) { return std::string(s); });
  constexpr int kThreads = 8, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      Logger lg("t" + std::to_string(t));
      for (int i = 0; i < kLines; ++i) lg.info("line {} {}", i, std::string(200, 'x'));
    });
  // Swapping the configuration concurrently is safe too.
  for (int i = 0; i < 100; ++i) set_level(Level::kInfo);
  for (auto& th : threads) th.join();
  EXPECT_EQ(mem->lines().size(), static_cast<size_t>(kThreads * kLines));
  file->reset();
  set_sinks({});
  auto stored = fs::read_file(dir / "log.txt");
  ASSERT_TRUE(stored);
  size_t count = 0;
  for (size_t i = 0, j; (j = stored->find('\n', i)) != std::string::npos; i = j + 1, ++count)
    ASSERT_EQ(stored->substr(j - 200, 200), std::string(200, 'x')) << "line " << count;
  EXPECT_EQ(count, static_cast<size_t>(kThreads * kLines));
  std::filesystem::remove_all(dir);
}

TEST_F(LogTest, FileSinkReportsMissingDirectory) {
  auto r = FileSink::open("/nonexistent-dir-md/log", Format::kText);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
}

TEST_F(LogTest, GuardedLogsAnExceptionOfAThreadInsteadOfTerminating) {
  auto mem = std::make_shared<MemorySink>();
  set_sinks({mem});
  Logger lg("agent");
  bool ran = false;
  std::vector<bool> results;
  // WHY a real thread: an exception out of a thread's function calls
  // std::terminate; this test program would abort.
  std::thread t([&] {
    results.push_back(guarded(lg, "tick", [&] { ran = true; }));
    results.push_back(guarded(lg, "tick", [] { throw std::runtime_error("boom"); }));
    results.push_back(guarded(lg, "tick", [] { throw 42; }));
  });
  t.join();
  EXPECT_TRUE(ran);
  EXPECT_EQ(results, (std::vector<bool>{true, false, false}));
  auto lines = mem->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("error agent: tick: uncaught exception (continuing): boom"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("error agent: tick: uncaught exception (continuing)"), std::string::npos)
      << lines[1];
}

}  // namespace
}  // namespace md::log
