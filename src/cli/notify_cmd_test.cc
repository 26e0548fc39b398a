// `meshdeploy notify test|status|retry` driven through md::cli::run.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "core/fs.h"
#include "secrets/secrets.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

using testing::make_temp_dir;
using testing::Ran;

// A loopback port nobody listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class NotifyCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("notify-cli");
    url_ = "http://127.0.0.1:" + std::to_string(closed_port()) + "/hook/s3cret-path-token";
    std::string yml =
        "app: shop\n"
        "defaults:\n"
        "  services:\n"
        "    web: {command: \"true\"}\n"
        "  migrations: {enabled: false}\n"
        "  state: " +
        (dir_ / "state.db").string() +
        "\n"
        "  notifications:\n"
        "    channels:\n"
        "      hooks: {kind: webhook, url_secret: HOOK_URL, timeout: 1s}\n"
        "      prod-only: {kind: slack, url_secret: HOOK_URL, environments: [production]}\n"
        "environments:\n"
        "  staging: {}\n"
        "  production: {}\n";
    ASSERT_TRUE(fs::atomic_write(dir_ / "meshdeploy.yml", yml));
    for (const char* env : {"staging", "production"}) {
      secrets::MasterKey key = secrets::MasterKey::generate();
      ::setenv(secrets::key_env_var(env).c_str(), key.reveal_text().c_str(), 1);
      auto v = secrets::Vault::create(dir_ / ".meshdeploy/secrets" / (std::string(env) + ".vault"),
                                      env, key);
      ASSERT_TRUE(v.set("HOOK_URL", secrets::Secret(url_), real_clock().now()));
      ASSERT_TRUE(v.save());
    }
  }
  void TearDown() override {
    sfs::remove_all(dir_);
    ::unsetenv("MESHDEPLOY_KEY_STAGING");
    ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
  }
  // `meshdeploy <args...> -c <this test's meshdeploy.yml>`
  Ran run_cli(std::vector<std::string> args) {
    args.push_back("-c");
    args.push_back((dir_ / "meshdeploy.yml").string());
    return testing::run_cli(args);
  }

  sfs::path dir_;
  std::string url_;
};

TEST_F(NotifyCmdTest, TestWithTheReceiverDownQueuesAndExitsOne) {
  Ran r = run_cli({"notify", "test", "--env", "staging", "--wait", "0s"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("Test notification for staging:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  hooks   retrying  attempt 1 failed: POST: Couldn't connect to server"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("prod-only"), std::string::npos)
      << "a production-only channel is not tested for staging";
  for (const std::string& text : {r.out, r.err})
    EXPECT_EQ(text.find("s3cret-path-token"), std::string::npos);

  Ran s = run_cli({"notify", "status", "--json"});
  ASSERT_EQ(s.code, 0) << s.err;
  auto rows = nlohmann::json::parse(s.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["status"], "pending");
  EXPECT_EQ(rows[0]["environment"], "staging");
  EXPECT_EQ(rows[0]["channel"], "hooks");
  EXPECT_EQ(rows[0]["event"], "test");
  EXPECT_EQ(rows[0]["attempts"], 1);
  EXPECT_TRUE(rows[0]["next_attempt_at"].is_string());

  Ran table = run_cli({"notify", "status", "--env", "staging"});
  EXPECT_EQ(table.code, 0);
  EXPECT_EQ(table.out.rfind("ID  STATUS   ENVIRONMENT  CHANNEL  EVENT  ATTEMPTS  NEXT ATTEMPT", 0),
            0u)
      << table.out;
  EXPECT_NE(table.out.find("1 pending, 0 failed"), std::string::npos);
  Ran other = run_cli({"notify", "status", "--env", "production"});
  EXPECT_NE(other.out.find("No pending or failed notification deliveries."), std::string::npos);

  // Retry from the wrong environment is refused; from the right one it tries again.
  Ran wrong = run_cli({"notify", "retry", "1", "--env", "production", "--wait", "0s"});
  EXPECT_EQ(wrong.code, 2) << wrong.err;
  EXPECT_NE(wrong.err.find("belongs to environment 'staging'"), std::string::npos) << wrong.err;
  Ran again = run_cli({"notify", "retry", rows[0]["event_id"], "--env", "staging", "--wait", "0s"});
  EXPECT_EQ(again.code, 1) << again.out << again.err;
  EXPECT_NE(again.out.find("attempt 2 failed"), std::string::npos) << again.out;
}

TEST_F(NotifyCmdTest, BadArgumentsExitWithTheirCodes) {
  EXPECT_EQ(run_cli({"notify", "test"}).code, 2);  // --env is required
  Ran unknown = run_cli({"notify", "test", "--env", "staging", "--channel", "nope"});
  EXPECT_EQ(unknown.code, 5);
  EXPECT_NE(unknown.err.find(
                "no channel 'nope' in environment 'staging'; its channels: hooks, prod-only"),
            std::string::npos)
      << unknown.err;
  Ran foreign = run_cli({"notify", "test", "--env", "staging", "--channel", "prod-only"});
  EXPECT_EQ(foreign.code, 2) << foreign.err;
  Ran wait = run_cli({"notify", "test", "--env", "staging", "--wait", "soon"});
  EXPECT_EQ(wait.code, 2);
  EXPECT_NE(wait.err.find("--wait"), std::string::npos) << wait.err;
  EXPECT_EQ(run_cli({"notify", "retry", "42", "--env", "staging"}).code, 5);
  EXPECT_EQ(run_cli({"notify", "retry", "drop-table", "--env", "staging"}).code, 2);
  EXPECT_EQ(run_cli({"notify", "status", "--env", "qa"}).code, 5);
}

TEST_F(NotifyCmdTest, AMissingKeySaysHowToProvideIt) {
  ::unsetenv("MESHDEPLOY_KEY_STAGING");
  Ran r = run_cli({"notify", "test", "--env", "staging"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("MESHDEPLOY_KEY_STAGING"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace md::cli
