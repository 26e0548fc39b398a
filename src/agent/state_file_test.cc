#include "agent/state_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/hash.h"

namespace md::agent {
namespace {

AgentState sample() {
  AgentState s;
  SavedRelease r;
  r.version = "v2";
  r.sha256 = std::string(64, 'a');
  r.environment = "production";
  r.deployment_id = "d-1";
  config::Service web;
  web.name = "web";
  web.command = "node server.js";
  web.count = 2;
  web.health.path = "/up";
  web.host = "example.com";
  web.env = {{"NODE_ENV", "production"}};
  config::Service worker;
  worker.name = "worker";
  worker.kind = config::ServiceKind::kWorker;
  worker.command = "node worker.js";
  r.services = {web, worker};
  r.env = {{"LOG_LEVEL", "info"}};
  r.secret_names = {"DATABASE_URL"};
  r.running = {"web", "worker"};
  r.warm_until_ms = 1'790'000'000'123;
  SavedProcess p;
  p.service = "web";
  p.index = 1;
  p.port = 31001;
  p.ref = {4242, 123456, 4243, 123450, false, "/sys/fs/cgroup/meshdeploy-1a/v1/web.1"};
  p.state = "running";
  p.restarts = 3;
  r.processes = {p};
  s.releases["v2"] = r;
  s.routes["web"] = SavedRoute{"web", "v1", "v2", 25, false};
  s.artifacts["v3"] = SavedArtifact{"v3", std::string(64, 'b'), "v3.tar.gz"};
  return s;
}

TEST(StateFile, RoundTrip) {
  std::string text = encode_state(sample());
  EXPECT_TRUE(text.starts_with("meshdeploy-agent-state 2 "));
  auto back = decode_state(text);
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(encode_state(*back), text);
  const SavedRelease& r = back->releases.at("v2");
  EXPECT_EQ(r.services.at(0).health.path, "/up");
  EXPECT_EQ(r.services.at(1).kind, config::ServiceKind::kWorker);
  EXPECT_EQ(r.processes.at(0).ref.start_time, 123456u);
  EXPECT_FALSE(r.processes.at(0).ref.child);
  EXPECT_EQ(back->routes.at("web"), (SavedRoute{"web", "v1", "v2", 25, false}));
  EXPECT_EQ(back->artifacts.at("v3").file, "v3.tar.gz");
  EXPECT_EQ(r.warm_until_ms, 1'790'000'000'123);
}

// An upgraded agent takes over the file of the agent it replaces: version 1
// has no keep-warm deadline, and reads as "none".
TEST(StateFile, ReadsVersionOneWithoutWarmDeadline) {
  AgentState s = sample();
  std::string text = encode_state(s);
  auto j = nlohmann::json::parse(text.substr(text.find('\n') + 1));
  ASSERT_EQ(j["releases"][0].erase("warm_until_ms"), 1u);
  const std::string body = j.dump(1) + "\n";
  auto v1 = decode_state("meshdeploy-agent-state 1 " + sha256_hex(body) + "\n" + body);
  ASSERT_TRUE(v1) << v1.error().what();
  EXPECT_EQ(v1->releases.at("v2").warm_until_ms, 0);
  // The same body claimed as version 2 lacks a required field.
  auto v2 = decode_state("meshdeploy-agent-state 2 " + sha256_hex(body) + "\n" + body);
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code(), Errc::kCorruption);
}

TEST(StateFile, EveryFlippedByteIsDetected) {
  std::string text = encode_state(sample());
  // Any single changed byte in the body (or checksum) fails the check.
  for (size_t i = text.find('\n') + 1; i < text.size(); i += 7) {
    std::string bad = text;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    auto r = decode_state(bad);
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error().code(), Errc::kCorruption);
  }
}

TEST(StateFile, RefusesTruncatedForeignAndFutureFiles) {
  std::string text = encode_state(sample());
  EXPECT_NE(decode_state(text.substr(0, text.size() / 2)).error().what().find("checksum"),
            std::string::npos);
  EXPECT_FALSE(decode_state(""));
  EXPECT_FALSE(decode_state("{\"releases\": []}\n"));
  std::string future = text;
  future.replace(future.find(" 2 "), 3, " 3 ");
  auto r = decode_state(future);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("format version 3 is not supported"), std::string::npos);
}

TEST(StateFile, ValidChecksumButWrongShapeIsCorruption) {
  std::string body = "{\"releases\": 5}\n";
  std::string text = "meshdeploy-agent-state 1 " + sha256_hex(body) + "\n" + body;
  auto r = decode_state(text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
}

TEST(StateFile, SaveIsPrivateAndLoadNamesTheFile) {
  char tmpl[] = "/tmp/md-agent-state-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::filesystem::path dir = tmpl;
  EXPECT_EQ(load_state(dir / "agent.state").error().code(), Errc::kNotFound);
  ASSERT_TRUE(save_state(dir / "agent.state", sample()));
  EXPECT_EQ(
      std::filesystem::status(dir / "agent.state").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_TRUE(load_state(dir / "agent.state"));
  ASSERT_TRUE(fs::atomic_write(dir / "agent.state", "garbage"));
  auto r = load_state(dir / "agent.state");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("agent.state"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace md::agent
