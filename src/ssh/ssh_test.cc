#include "ssh/ssh.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "core/process.h"

namespace md::ssh {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Endpoint, ParsesUserHostPort) {
  auto ep = Endpoint::parse("ssh://deploy@web-1.example.com:2222");
  ASSERT_TRUE(ep) << ep.error().what();
  EXPECT_EQ(ep->user, "deploy");
  EXPECT_EQ(ep->host, "web-1.example.com");
  EXPECT_EQ(ep->port, 2222);
  EXPECT_EQ(ep->describe(), "ssh://deploy@web-1.example.com:2222");
  EXPECT_EQ(ep->known_hosts_name(), "[web-1.example.com]:2222");
}

TEST(Endpoint, UserAndPortAreOptional) {
  auto ep = Endpoint::parse("ssh://10.0.0.5");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->user, "");
  EXPECT_EQ(ep->host, "10.0.0.5");
  EXPECT_EQ(ep->port, 0);
  EXPECT_EQ(ep->known_hosts_name(), "10.0.0.5");
  EXPECT_EQ(Endpoint::parse("ssh://h:22")->known_hosts_name(), "h");
}

TEST(Endpoint, Ipv6InBrackets) {
  auto ep = Endpoint::parse("ssh://root@[2001:db8::1]:2200");
  ASSERT_TRUE(ep) << ep.error().what();
  EXPECT_EQ(ep->host, "2001:db8::1");
  EXPECT_EQ(ep->port, 2200);
  EXPECT_EQ(ep->describe(), "ssh://root@[2001:db8::1]:2200");
  EXPECT_EQ(ep->known_hosts_name(), "[2001:db8::1]:2200");
  auto bare = Endpoint::parse("ssh://[::1]");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->host, "::1");
  EXPECT_EQ(bare->port, 0);
}

TEST(Endpoint, RefusesBadAddressesSayingWhy) {
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{
           {"web-1:22", "must start with ssh://"},
           {"http://web-1", "must start with ssh://"},
           {"ssh://", "the host is empty"},
           {"ssh://user@", "the host is empty"},
           {"ssh://@web", "the user before '@' is empty"},
           {"ssh://web:", "':' without a port"},
           {"ssh://web:0", "port 0 is not in 1..65535"},
           {"ssh://web:65536", "not in 1..65535"},
           {"ssh://web:22x", "is not a number"},
           {"ssh://2001:db8::1", "must be in brackets"},
           {"ssh://[2001:db8::1", "'[' without ']'"},
           {"ssh://[web]:22", "not an IPv6 address"},
           {"ssh://[::1]x", "unexpected text after ']'"},
           {"ssh://web/path", "no path or query"},
           {"ssh://-oProxyCommand", "starts with '-'"},
           {"ssh://-oProxyCommand=x", "'=' is not allowed"},
           {"ssh://we b", "is not allowed in a host name"},
           {"ssh://a;b@web", "the user may hold"},
       }) {
    auto ep = Endpoint::parse(c.address);
    ASSERT_FALSE(ep) << c.address;
    EXPECT_EQ(ep.error().code(), Errc::kInvalidArgument);
    EXPECT_THAT(ep.error().what(), HasSubstr(c.why)) << c.address;
    EXPECT_THAT(ep.error().what(), HasSubstr("expected ssh://[user@]host[:port]")) << c.address;
  }
}

TEST(KnownHosts, EmptyTrustUsesSshDefaults) {
  EXPECT_EQ(assemble_known_hosts(*Endpoint::parse("ssh://h"), Trust{}), "");
}

TEST(KnownHosts, FileTextThenHostKeyNamedAfterTheEndpoint) {
  Trust t;
  t.known_hosts_text = "other ssh-ed25519 AAAAother";  // no final newline
  t.host_key = "ssh-ed25519 AAAAC3Nza key-comment\n";
  EXPECT_EQ(assemble_known_hosts(*Endpoint::parse("ssh://u@10.0.0.2:2222"), t),
            "other ssh-ed25519 AAAAother\n[10.0.0.2]:2222 ssh-ed25519 AAAAC3Nza key-comment\n");
  t.known_hosts_text.clear();
  t.host_key = "ecdsa-sha2-nistp256 AAAAE2";
  EXPECT_EQ(assemble_known_hosts(*Endpoint::parse("ssh://web"), t),
            "web ecdsa-sha2-nistp256 AAAAE2\n");
}

TEST(KnownHosts, AWholeLineIsKeptAsItIs) {
  Trust t;
  t.host_key = "[web]:2222,10.0.0.2 ssh-ed25519 AAAA";
  EXPECT_EQ(assemble_known_hosts(*Endpoint::parse("ssh://web:2222"), t),
            "[web]:2222,10.0.0.2 ssh-ed25519 AAAA\n");
}

bool has_pair(const std::vector<std::string>& argv, const std::string& a, const std::string& b) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == a && argv[i + 1] == b) return true;
  return false;
}

TEST(Argv, NeverDisablesHostKeyChecking) {
  ArgvContext ctx;
  ctx.control_path = "/tmp/d/ctl";
  ctx.known_hosts = "/tmp/d/known_hosts";
  ctx.identity = "/tmp/d/identity";
  ctx.connect_timeout = Millis(2500);
  const Endpoint ep = *Endpoint::parse("ssh://deploy@web:2222");
  const auto argv = master_argv(ep, ctx, "/tmp/d/master.log", false);
  EXPECT_EQ(argv.front(), "ssh");
  EXPECT_TRUE(has_pair(argv, "-o", "StrictHostKeyChecking=yes"));
  EXPECT_TRUE(has_pair(argv, "-o", "BatchMode=yes"));
  EXPECT_TRUE(has_pair(argv, "-o", "ConnectTimeout=3"));
  EXPECT_TRUE(has_pair(argv, "-o", "ControlPath=/tmp/d/ctl"));
  EXPECT_TRUE(has_pair(argv, "-o", "UserKnownHostsFile=/tmp/d/known_hosts"));
  EXPECT_TRUE(has_pair(argv, "-o", "GlobalKnownHostsFile=/dev/null"));
  EXPECT_TRUE(has_pair(argv, "-o", "IdentityFile=/tmp/d/identity"));
  EXPECT_TRUE(has_pair(argv, "-o", "IdentitiesOnly=yes"));
  EXPECT_TRUE(has_pair(argv, "-o", "ControlPersist=yes"));
  EXPECT_TRUE(has_pair(argv, "-o", "StreamLocalBindUnlink=yes"));
  EXPECT_TRUE(has_pair(argv, "-E", "/tmp/d/master.log"));
  EXPECT_TRUE(has_pair(argv, "-p", "2222"));
  EXPECT_TRUE(std::find(argv.begin(), argv.end(), "-M") != argv.end());
  EXPECT_TRUE(has_pair(argv, "--", "deploy@web"));
  EXPECT_EQ(argv.back(), "deploy@web");
  EXPECT_EQ(
      std::count_if(argv.begin(), argv.end(),
                    [](const std::string& a) { return a.find("StrictHostKeyChecking") == 0; }),
      1);
  EXPECT_TRUE(has_pair(master_argv(ep, ctx, "l", true), "-o", "LogLevel=DEBUG1"));
}

TEST(Argv, DefaultsWhenNoFilesAreGiven) {
  ArgvContext ctx;
  ctx.control_path = "/tmp/d/ctl";
  const auto argv = base_argv(*Endpoint::parse("ssh://web"), ctx);
  for (const std::string& a : argv) {
    EXPECT_THAT(a, Not(HasSubstr("UserKnownHostsFile")));
    EXPECT_THAT(a, Not(HasSubstr("IdentityFile")));
  }
  EXPECT_TRUE(std::find(argv.begin(), argv.end(), "-p") == argv.end());
}

TEST(Argv, RunPutsTheCommandLastAfterTheDestination) {
  ArgvContext ctx;
  ctx.control_path = "/c";
  const auto argv = run_argv(*Endpoint::parse("ssh://[::1]:22"), ctx, "echo hi");
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[argv.size() - 3], "--");
  EXPECT_EQ(argv[argv.size() - 2], "::1");
  EXPECT_EQ(argv.back(), "echo hi");
  EXPECT_TRUE(has_pair(argv, "-o", "ControlMaster=no"));
  const auto fwd = control_argv(*Endpoint::parse("ssh://h"), ctx, {"-O", "forward", "-L", "a:b"});
  EXPECT_TRUE(has_pair(fwd, "-O", "forward"));
  EXPECT_TRUE(has_pair(fwd, "-L", "a:b"));
  EXPECT_EQ(fwd.back(), "h");
}

TEST(ShellQuote, SingleQuotesEscaped) {
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

// Messages as OpenSSH 9.2 prints them (captured from Debian 12's ssh).
constexpr const char* kUnknown =
    "debug1: Server host key: ssh-ed25519 SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk\n"
    "debug1: checking without port identifier\n"
    "No ED25519 host key is known for [127.0.0.2]:43997 and you have requested strict "
    "checking.\r\nHost key verification failed.\r\n";
constexpr const char* kChanged =
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
    "The fingerprint for the ED25519 key sent by the remote host is\n"
    "SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk.\n"
    "Please contact your system administrator.\n"
    "Host key for [127.0.0.2]:43997 has changed and you have requested strict checking.\n"
    "Host key verification failed.\n";

TEST(Diagnose, UnknownHostKeyWithItsFingerprint) {
  const Diagnosis d = diagnose(kUnknown);
  EXPECT_EQ(d.failure, Failure::kUnknownHostKey);
  EXPECT_EQ(d.fingerprint, "SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk");
  EXPECT_EQ(d.key_type, "ssh-ed25519");
  const Error e = connect_error("web-1", *Endpoint::parse("ssh://root@127.0.0.2:43997"), d);
  EXPECT_EQ(e.code(), Errc::kPermissionDenied);
  EXPECT_THAT(e.what(), HasSubstr("host web-1 (ssh://root@127.0.0.2:43997)"));
  EXPECT_THAT(e.what(), HasSubstr("not known"));
  EXPECT_THAT(e.what(), HasSubstr("SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk"));
  EXPECT_THAT(e.what(), HasSubstr("ssh-keyscan -p 43997 127.0.0.2 >> KNOWN_HOSTS"));
  EXPECT_THAT(e.what(), HasSubstr("hosts[].host_key"));
}

TEST(Diagnose, UnknownHostKeyWithoutDebugLines) {
  const Diagnosis d = diagnose(
      "No ED25519 host key is known for web and you have requested strict checking.\n"
      "Host key verification failed.\n");
  EXPECT_EQ(d.failure, Failure::kUnknownHostKey);
  EXPECT_EQ(d.fingerprint, "");
  EXPECT_EQ(d.key_type, "ED25519");
}

TEST(Diagnose, ChangedHostKey) {
  const Diagnosis d = diagnose(kChanged);
  EXPECT_EQ(d.failure, Failure::kChangedHostKey);
  EXPECT_EQ(d.fingerprint, "SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk");
  EXPECT_EQ(d.key_type, "ED25519");
  const Error e = connect_error("h", *Endpoint::parse("ssh://h:2222"), d);
  EXPECT_EQ(e.code(), Errc::kPermissionDenied);
  EXPECT_THAT(e.what(), HasSubstr("CHANGED"));
  EXPECT_THAT(e.what(), HasSubstr("ssh-keygen -R '[h]:2222'"));
  EXPECT_THAT(e.what(), HasSubstr("SHA256:mFQM6YM7RK7t8Rm7JyxxANhd1U2CJocyosRLnCJlUSk"));
}

TEST(Diagnose, AuthAndNetwork) {
  Diagnosis d = diagnose("root@127.0.0.2: Permission denied (publickey).\n");
  EXPECT_EQ(d.failure, Failure::kAuth);
  EXPECT_EQ(connect_error("h", *Endpoint::parse("ssh://h"), d).code(), Errc::kPermissionDenied);
  d = diagnose("ssh: connect to host 127.0.0.2 port 1: Connection refused\n");
  EXPECT_EQ(d.failure, Failure::kUnreachable);
  const Error e = connect_error("h", *Endpoint::parse("ssh://h"), d);
  EXPECT_EQ(e.code(), Errc::kUnavailable);
  EXPECT_TRUE(e.retryable());
  EXPECT_THAT(e.what(), HasSubstr("Connection refused"));
  EXPECT_EQ(diagnose("ssh: Could not resolve hostname nope: Name or service not known").failure,
            Failure::kUnreachable);
  EXPECT_EQ(diagnose("Control socket connect(/x/ctl): No such file or directory").failure,
            Failure::kMuxGone);
  EXPECT_EQ(diagnose("").failure, Failure::kNone);
}

// The real ssh client against a closed loopback port: the error is a
// retryable kUnavailable naming the host, and nothing is left behind.
TEST(Connection, ClosedPortIsUnreachable) {
  if (::access("/usr/bin/ssh", X_OK) != 0) GTEST_SKIP() << "no ssh client";
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);  // bound then closed: nothing listens there
  Trust t;
  t.identity = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----";
  auto c = Connection::open("web-1", *Endpoint::parse("ssh://u@127.0.0.1:" + std::to_string(port)),
                            t, Millis(5000));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kUnavailable);
  EXPECT_TRUE(c.error().retryable());
  EXPECT_THAT(c.error().what(), HasSubstr("host web-1"));
  EXPECT_THAT(c.error().what(), Not(HasSubstr("not a key")));
}

// The real client against a real Debian sshd on loopback (root only: sshd
// must switch users to log one in). One sshd for the suite, its own host
// key, authorized_keys and client key in a temp dir.
class RealSshd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/usr/sbin/sshd", X_OK) != 0 ||
        ::access("/usr/bin/ssh", X_OK) != 0)
      return;
    std::string tmpl = (std::filesystem::temp_directory_path() / "md-ssh-test-XXXXXX").string();
    dir_ = new std::filesystem::path(::mkdtemp(tmpl.data()));
    const std::filesystem::path d = *dir_;
    for (const char* k : {"host_key", "client_key"})
      MD_CHECK(proc::run(proc::Command::args({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                                              (d / k).string()}))
                   ->ok());
    std::filesystem::copy_file(d / "client_key.pub", d / "authorized_keys");
    port_ = free_port();
    std::ofstream(d / "sshd_config")
        << "ListenAddress 127.0.0.1:" << port_ << "\nHostKey " << (d / "host_key").string()
        << "\nPidFile " << (d / "sshd.pid").string() << "\nAuthorizedKeysFile "
        << (d / "authorized_keys").string()
        << "\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
           "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
           "AllowStreamLocalForwarding yes\n";
    std::filesystem::create_directories("/run/sshd");
    proc::SpawnOptions o;
    o.err = proc::Redirect::to_file(d / "sshd.log");
    auto s = proc::spawn(
        proc::Command::args({"/usr/sbin/sshd", "-D", "-e", "-f", (d / "sshd_config").string()}), o);
    MD_CHECK(s.has_value());
    sshd_ = s->pid;
    for (int i = 0; i < 200 && !listening(); ++i) ::usleep(50000);
    auto pub = fs::read_file(d / "host_key.pub");
    host_key_ = pub->substr(0, pub->find(' ', pub->find(' ') + 1));
    client_key_ = *fs::read_file(d / "client_key");
  }
  static void TearDownTestSuite() {
    if (sshd_ > 0) (void)proc::stop_group(sshd_, Millis(5000));
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
  }
  void SetUp() override {
    if (sshd_ <= 0 || !listening()) GTEST_SKIP() << "needs root and Debian's openssh-server";
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  static bool listening() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  static Endpoint endpoint() {
    return *Endpoint::parse("ssh://root@127.0.0.1:" + std::to_string(port_));
  }
  static Trust trust() {
    Trust t;
    t.host_key = host_key_;
    t.identity = client_key_;
    return t;
  }
  // 40 characters of this suite's private key that no other key shares: the
  // first base64 lines of every OpenSSH ed25519 key are the same header, so a
  // search for them would find the keys of tests running beside this one.
  static std::string private_part() {
    size_t at = 0;
    for (int line = 0; line < 4; ++line) at = client_key_.find('\n', at) + 1;
    return client_key_.substr(at + 8, 40);
  }
  // The private directories of live connections that hold `text` in a file.
  static std::vector<std::string> files_holding(const std::string& text) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/tmp", ec)) {
      if (e.path().filename().string().rfind("meshdeploy-ssh-", 0) != 0) continue;
      for (auto& f : std::filesystem::directory_iterator(e.path(), ec)) {
        auto body = fs::read_file(f.path());
        if (body && body->find(text) != std::string::npos) out.push_back(f.path().string());
      }
    }
    return out;
  }

  static inline std::filesystem::path* dir_ = nullptr;
  static inline int port_ = 0;
  static inline pid_t sshd_ = -1;
  static inline std::string host_key_, client_key_;
};

TEST_F(RealSshd, RunPutForwardAndCleanUp) {
  auto c = Connection::open("h1", endpoint(), trust(), Millis(10000));
  ASSERT_TRUE(c) << c.error().what();
  // The key was needed only to log in: no file holds it any more.
  EXPECT_TRUE(files_holding(private_part()).empty());

  auto r = (*c)->run("cat; echo err >&2; exit 3", std::string("in"));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "in");
  EXPECT_EQ(r->err, "err\n");

  const std::filesystem::path local = *dir_ / "payload";
  std::ofstream(local) << "payload\n";
  const std::string remote = (*dir_ / "sub dir" / "put's target").string();
  std::filesystem::create_directories(*dir_ / "sub dir");
  ASSERT_TRUE((*c)->put(local, remote, 0640));
  EXPECT_EQ(*fs::read_file(remote), "payload\n");
  EXPECT_EQ(std::filesystem::status(remote).permissions(), std::filesystem::perms(0640));
  auto bad = (*c)->put(local, (*dir_ / "missing" / "x").string(), 0600);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kFailedPrecondition);

  auto f1 = (*c)->forward("/run/nothing.sock");
  ASSERT_TRUE(f1) << f1.error().what();
  EXPECT_EQ(*(*c)->forward("/run/nothing.sock"), *f1);  // same socket, same path
  EXPECT_EQ(std::filesystem::status(*f1).type(), std::filesystem::file_type::socket);
  const std::filesystem::path private_dir = f1->parent_path();
  c->reset();  // -O exit, directory removed
  EXPECT_FALSE(std::filesystem::exists(private_dir));
}

TEST_F(RealSshd, UnknownAndChangedKeysFailBeforeAnyCommand) {
  Trust t = trust();
  t.host_key.clear();
  t.known_hosts_text = "# nothing known\n";
  auto c = Connection::open("h1", endpoint(), t, Millis(10000));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kPermissionDenied);
  EXPECT_THAT(c.error().what(), HasSubstr("its host key is not known"));
  auto fp =
      proc::run(proc::Command::args({"ssh-keygen", "-lf", (*dir_ / "host_key.pub").string()}));
  const std::string fingerprint = fp->out.substr(fp->out.find(' ') + 1, 50);
  EXPECT_THAT(c.error().what(), HasSubstr(fingerprint));
  EXPECT_THAT(c.error().what(), Not(HasSubstr(private_part())));
  EXPECT_TRUE(files_holding(private_part()).empty());

  t.host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy0ExPW3fzMOFy1OQ3SCVeYPPhHNFVRVwMg3Bv0ISJ8";
  c = Connection::open("h1", endpoint(), t, Millis(10000));
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().what(), HasSubstr("CHANGED"));
  EXPECT_THAT(c.error().what(), HasSubstr(fingerprint));
}

}  // namespace
}  // namespace md::ssh
