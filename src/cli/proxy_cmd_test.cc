// `meshdeploy proxy ...` client commands against a real proxy in this
// process (admin socket, real upstream), through md::cli::run.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "proxy/proxy.h"
#include "proxy/test_support.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

using testing::make_temp_dir;
using Out = testing::Ran;
Out cli(const std::vector<std::string>& args) { return testing::run_cli(args); }

class ProxyCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("proxycmd");
    ASSERT_FALSE(dir_.empty());
    sock_ = (dir_ / "admin.sock").string();
    proxy::Options o;
    o.listeners.push_back({"127.0.0.1:0", {}, {}, {}});
    o.threads = 1;
    o.admin_socket = sock_;
    auto p = proxy::Proxy::start(o);
    ASSERT_TRUE(p) << p.error().what();
    p_ = std::move(*p);
    port_ = p_->listening()[0].port;
    ::unsetenv("MESHDEPLOY_PROXY_SOCKET");
  }
  void TearDown() override {
    p_.reset();
    sfs::remove_all(dir_);
  }
  sfs::path dir_;
  std::string sock_;
  std::unique_ptr<proxy::Proxy> p_;
  uint16_t port_ = 0;
};

TEST_F(ProxyCmd, DeployStatusMetricsCanary) {
  proxy::testing::Upstream blue("blue"), green("green");
  // Durations use meshdeploy.yml's grammar (compound units too).
  Out r = cli({"proxy", "deploy", "web", "--target", blue.addr(), "--health-timeout", "1m30s",
               "--admin-socket", sock_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("web: set 1 is live"), std::string::npos) << r.out;
  EXPECT_EQ(proxy::testing::fetch(port_, proxy::testing::get_req("/")).body, "blue");

  ::setenv("MESHDEPLOY_PROXY_SOCKET", sock_.c_str(), 1);
  r = cli({"proxy", "canary", "web", "--target", green.addr(), "--weight", "100"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(proxy::testing::fetch(port_, proxy::testing::get_req("/")).body, "green");
  r = cli({"proxy", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("canary:   set 2 at 100%"), std::string::npos) << r.out;
  r = cli({"proxy", "status", "web", "--json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["canary_weight"], 100);
  r = cli({"proxy", "metrics", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("set 2 (canary)"), std::string::npos) << r.out;
  r = cli({"proxy", "metrics", "--prometheus"});
  EXPECT_NE(r.out.find("meshdeploy_proxy_requests_total"), std::string::npos);
  r = cli({"proxy", "promote", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = cli({"proxy", "maintenance", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(proxy::testing::fetch(port_, proxy::testing::get_req("/")).status, 503);
  r = cli({"proxy", "resume", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(proxy::testing::fetch(port_, proxy::testing::get_req("/")).body, "green");
}

TEST_F(ProxyCmd, BadInputExitCodes) {
  Out r = cli({"proxy", "status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("MESHDEPLOY_PROXY_SOCKET"), std::string::npos) << r.err;
  r = cli({"proxy", "deploy", "web", "--target", "nope", "--admin-socket", sock_});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing port"), std::string::npos) << r.err;
  r = cli({"proxy", "canary", "web", "--weight", "101", "--admin-socket", sock_});
  EXPECT_EQ(r.code, 2);
  r = cli({"proxy", "promote", "nosuch", "--admin-socket", sock_});
  EXPECT_EQ(r.code, 5);
  EXPECT_NE(r.err.find("no service named 'nosuch'"), std::string::npos) << r.err;
  r = cli({"proxy", "pause", "web", "--max-wait", "soon", "--admin-socket", sock_});
  EXPECT_EQ(r.code, 2);
  r = cli({"proxy", "pause", "web", "--max-wait", "30", "--admin-socket", sock_});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--max-wait: '30' is not a duration: missing unit"), std::string::npos)
      << r.err;
  r = cli({"proxy", "maintenance", "web", "--page", (dir_ / "missing.html").string(),
           "--admin-socket", sock_});
  EXPECT_EQ(r.code, 5);
  r = cli({"proxy", "status", "--admin-socket", (dir_ / "none.sock").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is the server running"), std::string::npos) << r.err;
  r = cli({"proxy", "run", "--listen", "127.0.0.1:0", "--route", "bad"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("SERVICE=HOST:PORT"), std::string::npos) << r.err;
  r = cli({"proxy", "run", "--tls-cert", "x.pem"});
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace md::cli
