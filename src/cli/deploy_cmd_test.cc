// `meshdeploy deploy | rollback | promote | abort | status | history` as a
// user meets them, through md::cli::run with string streams: argument
// errors, exit codes, and what they print against a store with no agent.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "state/state.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

using testing::make_temp_dir;
using testing::Ran;
using testing::run_cli;

class DeployCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("deploy-cmd");
    cfg_ = (dir_ / "meshdeploy.yml").string();
    std::ofstream(cfg_) << "app: meshhook\n"
                           "defaults:\n"
                           "  services:\n"
                           "    web: {command: node build}\n"
                           "  agent: {root: agent}\n"
                           "  migrations: {enabled: false}\n"
                           "environments:\n"
                           "  staging: {}\n";
  }
  void TearDown() override { sfs::remove_all(dir_); }
  Ran cli(std::vector<std::string> args) {
    args.push_back("-c");
    args.push_back(cfg_);
    return run_cli(std::move(args));
  }
  sfs::path dir_;
  std::string cfg_;
};

TEST_F(DeployCmd, DeployNeedsAReleaseAndOneWayToNameIt) {
  Ran r = cli({"deploy", "--env", "staging"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--artifact PATH or --version V"), std::string::npos) << r.err;
  r = cli({"deploy", "--env", "staging", "--version", "v1", "--artifact", "x.tar.gz"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = cli({"deploy", "--env", "staging", "--version", "v1", "--resume"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = cli({"deploy", "--env", "staging", "--version", "v1", "--strategy", "rolling"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = run_cli({"deploy", "--version", "v1"});
  EXPECT_EQ(r.code, 2) << r.err;  // --env is required
}

TEST_F(DeployCmd, UnknownEnvironmentIsNotFound) {
  Ran r = cli({"deploy", "--env", "prod", "--version", "v1"});
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_NE(r.err.find("staging"), std::string::npos) << r.err;  // lists the known ones
}

TEST_F(DeployCmd, MissingArtifactSaysWhereItLooked) {
  Ran r = cli({"deploy", "--env", "staging", "--version", "v1"});
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_NE(r.err.find("dist/meshhook-v1.tar.gz"), std::string::npos) << r.err;
  std::ofstream(dir_ / "other.tar.gz") << "x";
  std::ofstream(dir_ / "other.tar.gz.sha256") << std::string(64, 'a') << "  other.tar.gz\n";
  r = cli({"deploy", "--env", "staging", "--artifact", (dir_ / "other.tar.gz").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("does not fit artifact.name_template"), std::string::npos) << r.err;
}

TEST_F(DeployCmd, AgentDownFailsPreflightAndIsRecorded) {
  std::ofstream(dir_ / "meshhook-v1.tar.gz") << "x";
  std::ofstream(dir_ / "meshhook-v1.tar.gz.sha256") << std::string(64, 'a') << "\n";
  setenv("MESHDEPLOY_LOCK_TTL", "1s", 1);  // meshdeploy.yml's duration grammar
  Ran r = cli({"deploy", "--env", "staging", "--artifact", (dir_ / "meshhook-v1.tar.gz").string(),
               "--json"});
  unsetenv("MESHDEPLOY_LOCK_TTL");
  // The agent is not running: preflight fails after its retries, recorded as failed.
  EXPECT_EQ(r.code, 1) << r.err << r.out;
  std::string last, line;
  for (std::istringstream lines(r.out); std::getline(lines, line);)
    if (!line.empty()) last = line;
  const auto j = nlohmann::json::parse(last);
  EXPECT_EQ(j["event"], "result");
  EXPECT_EQ(j["deployment"]["status"], "failed");
  EXPECT_NE(j["deployment"]["reason"].get<std::string>().find("preflight"), std::string::npos);
  r = cli({"history", "--env", "staging", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 1u);
  const std::string id = nlohmann::json::parse(r.out)[0]["id"];
  r = cli({"history", "--env", "staging", "--id", id, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["complete"].get<bool>());
}

// One duration grammar: MESHDEPLOY_LOCK_TTL is read as meshdeploy.yml writes
// durations; the older MESHDEPLOY_LOCK_TTL_MS (milliseconds) still works (the
// tests below use it). A bad value is refused before anything is touched.
TEST_F(DeployCmd, LockTtlUsesTheConfigDurationGrammar) {
  const std::string artifact = (dir_ / "meshhook-v1.tar.gz").string();
  auto deploy_with = [&](const char* name, const char* value) {
    setenv(name, value, 1);
    Ran r = cli({"deploy", "--env", "staging", "--artifact", artifact});
    unsetenv(name);
    return r;
  };
  Ran r = deploy_with("MESHDEPLOY_LOCK_TTL", "30");  // no unit
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("MESHDEPLOY_LOCK_TTL: "), std::string::npos) << r.err;
  r = deploy_with("MESHDEPLOY_LOCK_TTL", "200ms");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("at least 300ms"), std::string::npos) << r.err;
  r = deploy_with("MESHDEPLOY_LOCK_TTL_MS", "1s");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("MESHDEPLOY_LOCK_TTL_MS must be a number of milliseconds"),
            std::string::npos)
      << r.err;
  setenv("MESHDEPLOY_LOCK_TTL_MS", "1000", 1);
  r = deploy_with("MESHDEPLOY_LOCK_TTL", "1s");
  unsetenv("MESHDEPLOY_LOCK_TTL_MS");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("not both"), std::string::npos) << r.err;
  r = cli({"history", "--env", "staging", "--json"});
  EXPECT_TRUE(r.code != 0 || nlohmann::json::parse(r.out).empty()) << r.out;  // nothing recorded
}

// Regression: a hook printing bytes that are not UTF-8 killed the controller
// (type_error 316 from the JSON output line and from the journal record of
// the failed hook). Now they print as U+FFFD and the deploy ends normally.
TEST_F(DeployCmd, HookPrintingInvalidUtf8DoesNotKillTheController) {
  std::ofstream(cfg_) << "app: meshhook\n"
                         "defaults:\n"
                         "  services:\n"
                         "    web: {command: node build}\n"
                         "  agent: {root: agent}\n"
                         "  migrations: {enabled: false}\n"
                         "  hooks:\n"
                         "    on_failure: \"printf 'caf\\\\351 down\\\\n'; exit 1\"\n"
                         "environments:\n"
                         "  staging: {}\n";
  std::ofstream(dir_ / "meshhook-v1.tar.gz") << "x";
  std::ofstream(dir_ / "meshhook-v1.tar.gz.sha256") << std::string(64, 'a') << "\n";
  setenv("MESHDEPLOY_LOCK_TTL_MS", "1000", 1);
  Ran r = cli({"deploy", "--env", "staging", "--artifact", (dir_ / "meshhook-v1.tar.gz").string(),
               "--json"});
  unsetenv("MESHDEPLOY_LOCK_TTL_MS");
  EXPECT_EQ(r.code, 1) << r.err << r.out;  // preflight failed (no agent); the hook ran
  bool hook_line = false;
  std::string line;
  for (std::istringstream lines(r.out); std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);  // every line valid JSON
    if (j.value("text", "") == "caf\xef\xbf\xbd down") hook_line = true;
  }
  EXPECT_TRUE(hook_line) << r.out;
  r = cli({"history", "--env", "staging", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string id = nlohmann::json::parse(r.out)[0]["id"];
  r = cli({"history", "--env", "staging", "--id", id, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["complete"].get<bool>());
  EXPECT_NE(r.out.find("on_failure hook failed (exit 1): caf\xef\xbf\xbd down"), std::string::npos)
      << r.out;
}

TEST_F(DeployCmd, PromoteAndAbortWithNothingRunningAreNotFound) {
  EXPECT_EQ(cli({"promote", "--env", "staging"}).code, 5);
  Ran r = cli({"abort", "--env", "staging", "--reason", "x"});
  EXPECT_EQ(r.code, 5);
  EXPECT_NE(r.err.find("no deploy is running in staging"), std::string::npos) << r.err;
}

TEST_F(DeployCmd, StatusWithoutAnAgentSaysSoAndFails) {
  Ran r = cli({"status", "--env", "staging"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("agent unreachable"), std::string::npos) << r.out;
  r = cli({"status", "--env", "staging", "--json"});
  EXPECT_FALSE(nlohmann::json::parse(r.out)["reachable"].get<bool>());
}

TEST_F(DeployCmd, RollbackWithNothingDeployedFails) {
  setenv("MESHDEPLOY_LOCK_TTL_MS", "1000", 1);
  Ran r = cli({"rollback", "--env", "staging"});
  unsetenv("MESHDEPLOY_LOCK_TTL_MS");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("agent"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace md::cli
