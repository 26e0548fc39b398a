// Access control as a user meets it through md::cli::run: a refused deploy,
// resume, rollback, promote and abort exit 6 with the rule and its place,
// change nothing and leave an `access.denied` audit row; an allowed deploy
// runs and its audit row names the actor; $MESHDEPLOY_ACTOR grants nothing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "deploy/access.h"
#include "state/state.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

using testing::make_temp_dir;
using testing::Ran;
using testing::run_cli;

class AccessCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("access-cmd");
    cfg_ = (dir_ / "meshdeploy.yml").string();
    me_ = deploy::current_identity().actor;
  }
  void TearDown() override { sfs::remove_all(dir_); }

  // `deploy_allow` is written on line 9 of the file.
  void write_config(const std::string& deploy_allow) {
    std::ofstream(cfg_) << "app: meshhook\n"
                           "defaults:\n"
                           "  services:\n"
                           "    web: {command: node build}\n"
                           "  agent: {root: agent}\n"
                           "  migrations: {enabled: false}\n"
                           "  access:\n"
                           "    rollback: [\"nobody-*\"]\n"
                           "    deploy: "
                        << deploy_allow
                        << "\n"
                           "    promote: []\n"
                           "environments:\n"
                           "  staging: {}\n";
  }
  Ran cli(std::vector<std::string> args) {
    args.push_back("-c");
    args.push_back(cfg_);
    return run_cli(args);
  }
  std::vector<state::AuditEntry> audit() {
    auto s = state::open_store((dir_ / ".meshdeploy/state.db").string());
    EXPECT_TRUE(s) << s.error().what();
    auto a = (*s)->audit("staging", 100);
    EXPECT_TRUE(a);
    return a ? *a : std::vector<state::AuditEntry>{};
  }
  size_t deployments() {
    auto s = state::open_store((dir_ / ".meshdeploy/state.db").string());
    auto d = (*s)->deployments("staging", 100);
    EXPECT_TRUE(d);
    return d ? d->size() : 0;
  }
  void artifact() {
    std::ofstream(dir_ / "meshhook-v1.tar.gz") << "x";
    std::ofstream(dir_ / "meshhook-v1.tar.gz.sha256") << std::string(64, 'a') << "\n";
  }

  sfs::path dir_;
  std::string cfg_, me_;
};

TEST_F(AccessCmd, RefusedDeployExitsSixChangesNothingAndIsAudited) {
  write_config("[alice, \"team-*\"]");
  artifact();
  Ran r = cli({"deploy", "--env", "staging", "--artifact", (dir_ / "meshhook-v1.tar.gz").string()});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_EQ(r.err, "meshdeploy: user " + me_ + " may not deploy to staging (access.deploy in " +
                       cfg_ + ":9 allows: alice, team-*)\n");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(deployments(), 0u) << "nothing was recorded as a deployment";
  EXPECT_FALSE(sfs::exists(dir_ / "agent")) << "no agent was started or touched";
  auto a = audit();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].action, "access.denied");
  EXPECT_EQ(a[0].actor, me_);
  EXPECT_EQ(nlohmann::json::parse(a[0].detail)["where"], cfg_ + ":9");

  r = cli({"deploy", "--env", "staging", "--resume"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("may not resume a deploy in staging (access.deploy in"), std::string::npos)
      << r.err;
  EXPECT_EQ(audit().size(), 2u);
}

TEST_F(AccessCmd, RollbackPromoteAndAbortAreRefusedBeforeAnythingElse) {
  write_config("[\"*\"]");
  Ran r = cli({"rollback", "--env", "staging"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(
      r.err.find("may not roll back staging (access.rollback in " + cfg_ + ":8 allows: nobody-*)"),
      std::string::npos)
      << r.err;
  // Nothing runs, which would be exit 5: the refusal comes first.
  r = cli({"promote", "--env", "staging"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("may not promote the deploy in staging (access.promote in " + cfg_ +
                       ":10 allows: nobody)"),
            std::string::npos)
      << r.err;
  r = cli({"abort", "--env", "staging", "--reason", "x"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("may not abort the deploy in staging"), std::string::npos) << r.err;
  auto a = audit();
  ASSERT_EQ(a.size(), 3u);
  for (const auto& e : a) EXPECT_EQ(e.action, "access.denied");
}

TEST_F(AccessCmd, ActorVariablesGrantNothing) {
  write_config("[alice, \"github:alice\"]");
  setenv("MESHDEPLOY_ACTOR", "alice", 1);
  Ran r = cli({"deploy", "--env", "staging", "--version", "v1"});
  unsetenv("MESHDEPLOY_ACTOR");
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("user " + me_ + " may not deploy"), std::string::npos) << r.err;
  auto a = audit();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].actor, me_ == "alice" ? me_ : "alice (" + me_ + ")")
      << "the label is kept, beside the user";
}

TEST_F(AccessCmd, AllowedDeployRunsAndItsAuditRowNamesTheActor) {
  write_config("[\"" + me_ + "\", alice]");
  artifact();
  setenv("MESHDEPLOY_LOCK_TTL_MS", "1000", 1);
  Ran r = cli({"deploy", "--env", "staging", "--artifact", (dir_ / "meshhook-v1.tar.gz").string(),
               "--json"});
  unsetenv("MESHDEPLOY_LOCK_TTL_MS");
  // Allowed: it runs, and fails its preflight only because no agent is running.
  EXPECT_EQ(r.code, 1) << r.err << r.out;
  EXPECT_EQ(r.err.find("may not"), std::string::npos) << r.err;
  EXPECT_EQ(deployments(), 1u);
  auto a = audit();
  ASSERT_FALSE(a.empty());
  bool started = false;
  for (const auto& e : a) {
    EXPECT_NE(e.action, "access.denied");
    if (e.action == "deploy.start") {
      started = true;
      EXPECT_EQ(e.actor, me_);
    }
  }
  EXPECT_TRUE(started);
}

TEST_F(AccessCmd, NoAccessSectionMeansEveryoneAsBefore) {
  std::ofstream(cfg_) << "app: meshhook\n"
                         "defaults:\n"
                         "  services:\n"
                         "    web: {command: node build}\n"
                         "  migrations: {enabled: false}\n"
                         "environments:\n"
                         "  staging: {}\n";
  EXPECT_EQ(cli({"promote", "--env", "staging"}).code, 5) << "not refused: nothing runs";
  Ran r = cli({"config", "show", "--env", "staging"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("access:\n  deploy: ~\n  rollback: ~\n  promote: ~\n"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace md::cli
