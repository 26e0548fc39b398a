#include "core/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "core/fs.h"

namespace md::proc {
namespace {

using namespace std::chrono_literals;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-proc-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// Polls `cond` for up to 5 s.
// RunOptions with one field set (g++ 12 warns on partial designated initializers).
template <class F>
RunOptions with(F set) {
  RunOptions o;
  set(o);
  return o;
}

SpawnOptions spawn_out(Redirect out) {
  SpawnOptions o;
  o.out = std::move(out);
  return o;
}

template <class F>
bool eventually(F cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

std::set<std::string> open_fds(pid_t pid) {
  std::set<std::string> fds;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    fds.insert(e.path().filename().string());
  return fds;
}

// Whether `pid` ignores `sig` (/proc/<pid>/status SigIgn mask).
bool ignores(pid_t pid, int sig) {
  auto status = fs::read_file("/proc/" + std::to_string(pid) + "/status");
  if (!status) return false;
  size_t at = status->find("SigIgn:\t");
  if (at == std::string::npos) return false;
  uint64_t mask = std::stoull(status->substr(at + 8, 16), nullptr, 16);
  return (mask >> (sig - 1)) & 1;
}

TEST_F(ProcessTest, RunCapturesOutputAndExitCode) {
  auto r = run(Command::shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->status.code, 3);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->describe(), "exit 3");
}

TEST_F(ProcessTest, ArgvIsPassedWithoutAShell) {
  auto r = run(Command::args({"printf", "%s|", "a b", "$HOME", "*"}),
               with([&](RunOptions& o) { o.cwd = dir_; }));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->out, "a b|$HOME|*|");
  EXPECT_TRUE(r->ok());
}

TEST_F(ProcessTest, EnvironmentInheritsWithOverridesOrIsExact) {
  ::setenv("MD_TEST_INHERITED", "from-parent", 1);
  ::setenv("MD_TEST_UNSET", "gone", 1);
  RunOptions o;
  o.env.set["MD_TEST_SET"] = "x y";
  o.env.unset = {"MD_TEST_UNSET"};
  auto r =
      run(Command::shell("echo \"$MD_TEST_INHERITED|$MD_TEST_SET|${MD_TEST_UNSET-unset}\""), o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "from-parent|x y|unset\n");

  auto exact =
      run(Command::shell("echo \"${MD_TEST_INHERITED-none}|$ONLY\""), with([](RunOptions& o) {
            o.env = Env::exact({{"ONLY", "1"}});
          }));
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->out, "none|1\n");
  EXPECT_EQ(Env::exact({{"B", "2"}, {"A", "1"}}).build(), (std::vector<std::string>{"A=1", "B=2"}));
}

TEST_F(ProcessTest, WorkingDirectory) {
  auto r = run(Command::args({"pwd", "-P"}), with([&](RunOptions& o) { o.cwd = dir_; }));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, std::filesystem::canonical(dir_).string() + "\n");
  auto missing = run(Command::args({"pwd"}), with([&](RunOptions& o) { o.cwd = dir_ / "nope"; }));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_NE(missing.error().what().find("working directory"), std::string::npos);
}

TEST_F(ProcessTest, StdinTextLargerThanThePipeBuffer) {
  std::string big;
  for (int i = 0; i < 100000; ++i) big += "line " + std::to_string(i) + "\n";
  auto r = run(Command::args({"cat"}), with([&](RunOptions& o) { o.stdin_text = big; }));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out.size(), big.size());
  EXPECT_TRUE(r->out == big);
  auto none = run(Command::args({"cat"}));  // default stdin is /dev/null: EOF at once
  ASSERT_TRUE(none);
  EXPECT_EQ(none->out, "");
}

TEST_F(ProcessTest, ChildClosingStdinEarlyDoesNotKillUs) {
  auto r = run(Command::shell("exec 0<&-; exit 0"),
               with([](RunOptions& o) { o.stdin_text = std::string(1 << 20, 'x'); }));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok());
}

TEST_F(ProcessTest, TimeoutSendsSigtermToTheGroup) {
  auto r = run(Command::shell("sleep 30 & echo $!; wait"),
               with([](RunOptions& o) { o.timeout = 200ms; }));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->status.signal, SIGTERM);
  EXPECT_LT(r->duration, 5000ms);
  EXPECT_EQ(r->describe().rfind("timed out after ", 0), 0u);
  pid_t grandchild = std::stoi(r->out);
  EXPECT_TRUE(eventually([&] { return !alive(grandchild); })) << "grandchild survived the timeout";
}

TEST_F(ProcessTest, TimeoutEscalatesToSigkill) {
  auto r = run(Command::shell("trap '' TERM; sleep 30"), with([](RunOptions& o) {
                 o.timeout = 100ms;
                 o.kill_grace = 200ms;
               }));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->status.signal, SIGKILL);
  EXPECT_EQ(r->status.describe(), "killed by SIGKILL");
}

TEST_F(ProcessTest, BackgroundGrandchildHoldingThePipeDoesNotBlockForever) {
  auto r =
      run(Command::shell("sleep 30 & echo $!"), with([](RunOptions& o) { o.wait_delay = 200ms; }));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok());
  EXPECT_LT(r->duration, 5000ms);
  pid_t grandchild = std::stoi(r->out);
  ::kill(grandchild, SIGKILL);
}

TEST_F(ProcessTest, StreamsLinesAndChunks) {
  std::vector<std::pair<Stream, std::string>> got;
  RunOptions o;
  o.line_mode = true;
  o.capture = false;
  o.on_output = [&](Stream s, std::string_view l) { got.emplace_back(s, std::string(l)); };
  auto r = run(Command::shell("printf 'a\\nb\\n'; printf 'e\\n' >&2; printf c"), o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "");  // capture off
  std::vector<std::string> out_lines, err_lines;
  for (auto& [s, l] : got) (s == Stream::kStdout ? out_lines : err_lines).push_back(l);
  EXPECT_EQ(out_lines, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(err_lines, (std::vector<std::string>{"e"}));

  std::string chunks;
  auto raw = run(Command::shell("seq 1 20000"), with([&](RunOptions& o) {
                   o.on_output = [&](Stream, std::string_view c) { chunks.append(c); };
                 }));
  ASSERT_TRUE(raw);
  EXPECT_EQ(chunks, raw->out);
  EXPECT_EQ(chunks.size(), 108894u);
}

TEST_F(ProcessTest, CaptureIsCapped) {
  auto r = run(Command::args({"head", "-c", "100000", "/dev/zero"}),
               with([](RunOptions& o) { o.max_capture = 1000; }));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_TRUE(r->out_truncated);
  EXPECT_FALSE(r->err_truncated);
}

TEST_F(ProcessTest, MissingExecutableIsNotFound) {
  auto a = run(Command::args({"md-no-such-command-xyz"}));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::kNotFound);
  EXPECT_EQ(a.error().what(), "run md-no-such-command-xyz: executable not found");
  auto b = spawn(Command::args({(dir_ / "nope").string()}));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kNotFound);
  ASSERT_TRUE(fs::atomic_write(dir_ / "noexec", "#!/bin/sh\n", 0644));
  auto c = run(Command::args({(dir_ / "noexec").string()}));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kPermissionDenied);
  EXPECT_FALSE(run(Command::args({})));
}

// A descriptor the parent left inheritable must not reach the child.
TEST_F(ProcessTest, NoDescriptorLeaksIntoChildren) {
  int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 63), 63);
  auto r = run(Command::shell("ls /proc/$$/fd"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "0\n1\n2\n");

  auto s = spawn(Command::args({"sleep", "30"}), spawn_out(Redirect::to_file(dir_ / "o")));
  ASSERT_TRUE(s);
  // Right after exec the dynamic loader briefly holds the libraries it maps
  // open (fd 3 for a moment); a leaked descriptor would stay, so wait for the
  // set to settle rather than read it once.
  std::set<std::string> fds = open_fds(s->pid);
  for (int i = 0; i < 200 && fds != std::set<std::string>{"0", "1", "2"}; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    fds = open_fds(s->pid);
  }
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2"}));
  ASSERT_TRUE(signal_group(s->pid, SIGKILL));
  ASSERT_TRUE(reap(s->pid, true));
  ::close(63);
  ::close(fd);
}

TEST_F(ProcessTest, ChildrenGetDefaultSignalDispositions) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGUSR1, &ign, &old), 0);
  auto r = run(Command::shell("kill -USR1 $$; echo survived"));
  ::sigaction(SIGUSR1, &old, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status.signal, SIGUSR1);
  EXPECT_EQ(r->out, "");
}

TEST_F(ProcessTest, SpawnInOwnSessionWithRedirectsAndCwd) {
  SpawnOptions o;
  o.cwd = dir_;
  o.env.set["GREETING"] = "hello";
  o.out = Redirect::to_file(dir_ / "out.log");
  o.err = Redirect::to_file(dir_ / "err.log");
  auto s = spawn(Command::shell("echo $GREETING from $(pwd -P); echo oops >&2; sleep 30"), o);
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_EQ(::getsid(s->pid), s->pid);
  EXPECT_EQ(::getpgid(s->pid), s->pid);
  EXPECT_TRUE(eventually([&] {
    auto t = fs::read_file(dir_ / "out.log");
    return t && !t->empty();
  }));
  EXPECT_EQ(*fs::read_file(dir_ / "out.log"),
            "hello from " + std::filesystem::canonical(dir_).string() + "\n");
  EXPECT_TRUE(eventually([&] { return fs::read_file(dir_ / "err.log").value_or("") == "oops\n"; }));

  auto ended = stop_group(s->pid, 5000ms);
  ASSERT_TRUE(ended) << ended.error().what();
  EXPECT_EQ(ended->signal, SIGTERM);
}

TEST_F(ProcessTest, SpawnRedirectToCallerFd) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = spawn(Command::shell("echo via-fd"), spawn_out(Redirect::to_fd(p[1])));
  ASSERT_TRUE(s);
  ::close(p[1]);
  char buf[64];
  ssize_t n = ::read(p[0], buf, sizeof buf);
  ::close(p[0]);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "via-fd\n");
  auto st = reap(s->pid, true);
  ASSERT_TRUE(st && *st);
  EXPECT_TRUE((*st)->ok());
}

TEST_F(ProcessTest, AliveChecksStartTimeAgainstPidReuse) {
  auto s = spawn(Command::args({"sleep", "30"}));
  ASSERT_TRUE(s);
  ASSERT_NE(s->start_time, 0u);
  EXPECT_EQ(start_time(s->pid), s->start_time);
  EXPECT_TRUE(alive(s->pid));
  EXPECT_TRUE(alive(s->pid, s->start_time));
  EXPECT_FALSE(alive(s->pid, s->start_time + 1));  // same pid, another process
  auto still = reap(s->pid, false);
  ASSERT_TRUE(still);
  EXPECT_FALSE(*still);  // running: nothing to reap yet
  ASSERT_TRUE(signal_group(s->pid, SIGTERM));
  auto st = reap(s->pid, true);
  ASSERT_TRUE(st && *st);
  EXPECT_EQ((*st)->signal, SIGTERM);
  EXPECT_FALSE(alive(s->pid));
  EXPECT_EQ(signal_group(s->pid, SIGTERM).error().code(), Errc::kNotFound);
  EXPECT_EQ(reap(s->pid, false).error().code(), Errc::kNotFound);
  EXPECT_FALSE(alive(-1));
}

TEST_F(ProcessTest, ZombieIsNotAlive) {
  auto s = spawn(Command::args({"true"}));
  ASSERT_TRUE(s);
  EXPECT_TRUE(eventually([&] { return !alive(s->pid); }));
  EXPECT_TRUE(start_time(s->pid).has_value());  // a zombie still has a stat entry
  auto st = reap(s->pid, true);
  ASSERT_TRUE(st && *st);
  EXPECT_EQ((*st)->code, 0);
}

TEST_F(ProcessTest, StopGroupEscalatesWhenTermIsIgnored) {
  auto s = spawn(Command::shell("trap '' TERM; sleep 30 & wait"));
  ASSERT_TRUE(s);
  // Wait until the shell has installed its trap before we signal.
  ASSERT_TRUE(eventually([&] { return ignores(s->pid, SIGTERM); }));
  auto ended = stop_group(s->pid, 200ms);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->signal, SIGKILL);
  EXPECT_TRUE(eventually([&] { return !signal_group(s->pid, 0); })) << "group members survived";
}

TEST(CommandTest, DescribeQuotesWords) {
  EXPECT_EQ(Command::args({"pg_dump", "-Fc", "a b", "it's"}).describe(),
            "pg_dump -Fc 'a b' 'it'\\''s'");
  EXPECT_EQ(Command::shell("echo hi").describe(), "/bin/sh -c 'echo hi'");
  EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
}

}  // namespace
}  // namespace md::proc
