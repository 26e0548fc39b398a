#include "deploy/host_check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace md::deploy {
namespace {

namespace fs = std::filesystem;

class HostCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "md-host-check-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    env_.name = "production";
    env_.base_dir = dir_;
    env_.agent.root = "agent";
    fs::create_directories(dir_ / "agent");
    hv_.root = (dir_ / "agent").string();
    hv_.listen = {"127.0.0.1:8080"};
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  std::vector<std::string> check() { return config_mismatches(env_, hv_, "web-1"); }

  fs::path dir_;
  config::Environment env_;
  HostView hv_;
};

TEST_F(HostCheck, MatchingAgentHasNothingToSay) {
  EXPECT_TRUE(check().empty());
  env_.proxy.listen = "localhost:8080";  // a name resolves to the agent's address
  EXPECT_TRUE(check().empty());
  hv_.listen = {"0.0.0.0:443", "[::]:443"};  // the agent may listen on more
  env_.proxy.listen = "[::]:443";
  EXPECT_TRUE(check().empty());
}

TEST_F(HostCheck, ListenerElsewhereNamesBothValuesAndTheWaysOut) {
  env_.proxy.listen = "0.0.0.0:443";
  EXPECT_EQ(check(),
            (std::vector<std::string>{
                "proxy.listen is 0.0.0.0:443 in the config (environment production), but the "
                "agent on host web-1 listens on 127.0.0.1:8080: restart the agent with --listen "
                "0.0.0.0:443 (systemd: ListenStream=0.0.0.0:443 in meshdeploy-agent.socket), or "
                "set proxy.listen to 127.0.0.1:8080"}));
  env_.proxy.listen = "127.0.0.1:8081";  // same host, other port
  EXPECT_EQ(check().size(), 1u);
}

TEST_F(HostCheck, AnSshHostIsComparedWithItsOwnListenerAndRoot) {
  config::Host h;
  h.name = "web-1";
  h.address = "ssh://deploy@10.0.0.5";
  h.agent_root = "/srv/meshdeploy";
  h.listen = "127.0.0.2:8080";
  env_.hosts = {h};
  hv_.listen = {"127.0.0.2:8080"};
  hv_.root = "/srv/meshdeploy/";  // not resolved on this machine: compared as written
  EXPECT_TRUE(check().empty());
  hv_.listen = {"127.0.0.1:8080"};  // proxy.listen's, not this host's
  hv_.root = "/var/lib/other";
  EXPECT_EQ(check(),
            (std::vector<std::string>{
                "hosts[web-1].listen is 127.0.0.2:8080 in the config (environment production), "
                "but the agent on host web-1 listens on 127.0.0.1:8080: restart the agent with "
                "--listen 127.0.0.2:8080 (systemd: ListenStream=127.0.0.2:8080 in "
                "meshdeploy-agent.socket), or set hosts[web-1].listen to 127.0.0.1:8080",
                "hosts[web-1].agent_root is /srv/meshdeploy in the config (environment "
                "production), but the root of the agent on host web-1 is /var/lib/other: set it "
                "to /var/lib/other"}));
}

TEST_F(HostCheck, TlsFromTheSameCertificateOrRefused) {
  write(dir_ / "cert.pem", "CERT A");
  write(dir_ / "copy.pem", "CERT A");
  write(dir_ / "other.pem", "CERT B");
  env_.proxy.tls_cert = "cert.pem";  // relative: from meshdeploy.yml's folder
  env_.proxy.tls_key = "key.pem";
  auto v = check();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(
      v[0].substr(0, v[0].find(':', 20)),
      "proxy.tls_cert is cert.pem in the config (environment production), but the agent on host "
      "web-1 serves plain HTTP");
  hv_.tls_cert = (dir_ / "cert.pem").string();
  hv_.tls_key = (dir_ / "key.pem").string();
  hv_.tls_cert_sha256 = "whatever";  // same path: the same file
  EXPECT_TRUE(check().empty());
  hv_.tls_cert = (dir_ / "copy.pem").string();  // another path, same bytes
  hv_.tls_cert_sha256 = "708f5266711ed967e9eb0bad642d50f724cf70ee9820ed4657cb589d9cdcf7bb";
  EXPECT_TRUE(check().empty());
  env_.proxy.tls_cert = "other.pem";
  v = check();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("but the agent on host web-1 serves " + (dir_ / "copy.pem").string()),
            std::string::npos)
      << v[0];
  env_.proxy.tls_cert = "";
  env_.proxy.tls_key = "";
  v = check();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(
      v[0].substr(0, v[0].find(':', 20)),
      "proxy.tls_cert is not set in the config (environment production, plain HTTP), but the agent "
      "on host web-1 serves HTTPS with " +
          (dir_ / "copy.pem").string());
}

TEST_F(HostCheck, OtherCertificateAtAnotherPathShowsBothFingerprints) {
  write(dir_ / "cert.pem", "CERT A");
  env_.proxy.tls_cert = "cert.pem";
  env_.proxy.tls_key = "key.pem";
  hv_.tls_cert = "/etc/elsewhere/fullchain.pem";
  hv_.tls_key = "/etc/elsewhere/privkey.pem";
  hv_.tls_cert_sha256 = "c2b5d6d1b3d1c3f6c8b5b0f8c0b4fe0a7f6b3f0c5b4a6e3d1c2b0a9f8e7d6c5b";
  const auto v = check();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("proxy.tls_cert is cert.pem (sha256 708f5266711e)"), std::string::npos)
      << v[0];
  EXPECT_NE(v[0].find("serves /etc/elsewhere/fullchain.pem (sha256 c2b5d6d1b3d1)"),
            std::string::npos)
      << v[0];
}

TEST_F(HostCheck, AnotherRootNamesBoth) {
  env_.agent.root = "/srv/meshdeploy";
  EXPECT_EQ(check(),
            (std::vector<std::string>{
                "agent.root is /srv/meshdeploy in the config (environment production), but the "
                "root of the agent on host web-1 is " +
                hv_.root + ": set agent.root: " + hv_.root +
                ", or point agent.socket at the agent started with --root /srv/meshdeploy"}));
  fs::create_directory_symlink(dir_ / "agent", dir_ / "link");
  env_.agent.root = (dir_ / "link").string();  // a symlink to the same root
  EXPECT_TRUE(check().empty());
}

TEST_F(HostCheck, WhatTheAgentDoesNotReportIsNotCompared) {
  env_.proxy.listen = "0.0.0.0:443";
  env_.agent.root = "/elsewhere";
  hv_ = HostView{};
  EXPECT_TRUE(check().empty());
}

}  // namespace
}  // namespace md::deploy
