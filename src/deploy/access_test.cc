// Identity (where the actor comes from and what cannot change it) and
// authorize(): a refusal is kPermissionDenied with the rule's place and an
// audit row; an allowed command writes nothing unless asked (resume).
#include "deploy/access.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "state/state.h"

namespace md::deploy {
namespace {

namespace sfs = std::filesystem;

config::EnvLookup vars(std::map<std::string, std::string> m) {
  return [m = std::move(m)](const std::string& name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

TEST(AccessIdentity, LocallyTheOsUserWhateverTheVariablesSay) {
  Identity id = identity_from(vars({{"USER", "root"},
                                    {"LOGNAME", "root"},
                                    {"GITHUB_ACTOR", "octocat"},
                                    {"MESHDEPLOY_ACTOR", "alice"}}),
                              "bob");
  EXPECT_EQ(id.actor, "bob");
  EXPECT_EQ(id.source, "os-user");
  EXPECT_EQ(id.label, "alice");
  EXPECT_EQ(id.display(), "alice (bob)") << "the label is shown, the real user beside it";
  EXPECT_EQ(identity_from(vars({}), "bob").display(), "bob");
  EXPECT_EQ(identity_from(vars({{"MESHDEPLOY_ACTOR", "bob"}}), "bob").display(), "bob");
}

TEST(AccessIdentity, OnGithubActionsTheWorkflowActorWithAPrefix) {
  Identity id =
      identity_from(vars({{"GITHUB_ACTIONS", "true"}, {"GITHUB_ACTOR", "octocat"}}), "runner");
  EXPECT_EQ(id.actor, "github:octocat");
  EXPECT_EQ(id.source, "github-actions");
  // Without GITHUB_ACTIONS=true (or without an actor) the OS user stands.
  EXPECT_EQ(identity_from(vars({{"GITHUB_ACTOR", "octocat"}}), "runner").actor, "runner");
  EXPECT_EQ(identity_from(vars({{"GITHUB_ACTIONS", "true"}}), "runner").actor, "runner");
}

TEST(AccessIdentity, CurrentIdentityIsTheEffectiveUsersName) {
  setenv("MESHDEPLOY_ACTOR", "someone-else", 1);
  Identity id = current_identity();
  unsetenv("MESHDEPLOY_ACTOR");
  EXPECT_FALSE(id.actor.empty());
  EXPECT_NE(id.actor, "someone-else");
  EXPECT_EQ(id.label, "someone-else");
}

TEST(AccessIdentity, GuardedCommandsMapToTheirRule) {
  EXPECT_EQ(guarded_operation(Guarded::kResume), config::Operation::kDeploy);
  EXPECT_EQ(guarded_operation(Guarded::kRollback), config::Operation::kRollback);
  EXPECT_EQ(guarded_operation(Guarded::kAbort), config::Operation::kPromote);
  EXPECT_EQ(guarded_name(Guarded::kAbort), "abort");
}

class AccessAuthorize : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        std::string(sfs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + "/md-access-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    env_.name = "production";
    env_.base_dir = dir_;
    env_.state = (dir_ / "state.db").string();
    env_.access.deploy = config::AccessRule{{"alice", "team-*"}, "meshdeploy.yml:12"};
    env_.access.promote = config::AccessRule{{}, "meshdeploy.yml:14"};
  }
  void TearDown() override { sfs::remove_all(dir_); }
  std::vector<state::AuditEntry> audit() {
    auto s = state::open_store(state::store_url(env_));
    EXPECT_TRUE(s) << s.error().what();
    auto a = (*s)->audit("production", 100);
    EXPECT_TRUE(a);
    return a ? *a : std::vector<state::AuditEntry>{};
  }
  sfs::path dir_;
  config::Environment env_;
};

TEST_F(AccessAuthorize, RefusalIsPermissionDeniedAndAudited) {
  Identity bob{"bob", "os-user", "release-bot"};
  Status s = authorize(env_, Guarded::kDeploy, bob, "v42");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kPermissionDenied);
  EXPECT_EQ(s.error().what(),
            "user bob may not deploy to production (access.deploy in meshdeploy.yml:12 allows: "
            "alice, team-*)");
  auto a = audit();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].action, "access.denied");
  EXPECT_EQ(a[0].actor, "release-bot (bob)");
  EXPECT_EQ(a[0].target, "v42");
  auto d = nlohmann::json::parse(a[0].detail);
  EXPECT_EQ(d["command"], "deploy");
  EXPECT_EQ(d["identity"], "bob");
  EXPECT_EQ(d["rule"], "access.deploy");
  EXPECT_EQ(d["where"], "meshdeploy.yml:12");
  EXPECT_EQ(d["allow"], (nlohmann::json{"alice", "team-*"}));

  s = authorize(env_, Guarded::kAbort, Identity{"alice", "os-user", ""});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().what(),
            "user alice may not abort the deploy in production (access.promote in "
            "meshdeploy.yml:14 allows: "
            "nobody)");
  EXPECT_EQ(audit().size(), 2u);
}

TEST_F(AccessAuthorize, AllowedWritesNothingUnlessAskedForResume) {
  EXPECT_TRUE(authorize(env_, Guarded::kDeploy, Identity{"team-ops", "os-user", ""}, "v1"));
  EXPECT_TRUE(authorize(env_, Guarded::kRollback, Identity{"anyone", "os-user", ""}));
  EXPECT_TRUE(audit().empty());
  EXPECT_TRUE(authorize(env_, Guarded::kResume, Identity{"alice", "os-user", ""}, "", true));
  auto a = audit();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].action, "deploy.resume");
  EXPECT_EQ(a[0].actor, "alice");
}

TEST_F(AccessAuthorize, RefusalStandsWhenTheAuditLogCannotBeWritten) {
  env_.state = (dir_ / "no-such-dir-file" / "x").string();
  std::ofstream(dir_ / "no-such-dir-file") << "a file, not a directory";
  Status s = authorize(env_, Guarded::kDeploy, Identity{"bob", "os-user", ""});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kPermissionDenied);
  EXPECT_NE(s.error().what().find("could not be written to the audit log"), std::string::npos)
      << s.error().what();
}

}  // namespace
}  // namespace md::deploy
