// `access:`: glob matching, the default (absent = everyone), the empty list
// (nobody), per-environment overrides, the refusal message with the rule's
// place, validation diagnostics and `config show`.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/test_util.h"

namespace md::config {
namespace {

using testing::load_errors;
using testing::load_ok;
using V = std::vector<std::string>;

Environment env_of(const std::string& yaml, const std::string& name) {
  Config c = load_ok(yaml);
  auto e = resolve(c, name);
  EXPECT_TRUE(e) << (e ? "" : e.error().what());
  return e ? *e : Environment{};
}

const char* kFile = R"(app: shop
defaults:
  services:
    web: {command: node server.js}
  access:
    deploy: [alice, "team-*", "github:*"]
    rollback: [alice, "oncall-?"]
environments:
  staging: {}
  production:
    access:
      deploy: [alice]
      promote: []
)";

TEST(AccessGlob, MatchesWholeTextWithStarAndQuestionMark) {
  EXPECT_TRUE(glob_match("alice", "alice"));
  EXPECT_FALSE(glob_match("alice", "alice2"));
  EXPECT_FALSE(glob_match("alice", "malice"));
  EXPECT_FALSE(glob_match("alice", "Alice")) << "case-sensitive";
  EXPECT_TRUE(glob_match("team-*", "team-"));
  EXPECT_TRUE(glob_match("team-*", "team-ops"));
  EXPECT_FALSE(glob_match("team-*", "team"));
  EXPECT_TRUE(glob_match("*", "anyone"));
  EXPECT_TRUE(glob_match("github:*", "github:octocat"));
  EXPECT_FALSE(glob_match("github:*", "octocat"));
  EXPECT_TRUE(glob_match("oncall-?", "oncall-1"));
  EXPECT_FALSE(glob_match("oncall-?", "oncall-12"));
  EXPECT_FALSE(glob_match("oncall-?", "oncall-"));
  EXPECT_TRUE(glob_match("*a*b", "xxaxxb"));
  EXPECT_FALSE(glob_match("*a*b", "xxaxxbx"));
  EXPECT_TRUE(glob_match("a**", "a"));
  EXPECT_FALSE(glob_match("", "a"));
}

TEST(AccessGlob, PathologicalPatternStaysFast) {
  std::string text(5000, 'a');
  std::string pattern;
  for (int i = 0; i < 50; ++i) pattern += "a*";
  pattern += "b";
  EXPECT_FALSE(glob_match(pattern, text));  // exponential backtracking would hang here
}

TEST(Access, AbsentSectionAllowsEveryone) {
  Environment e = env_of(
      "app: shop\ndefaults:\n  services:\n    web: {command: x}\nenvironments:\n  production: {}\n",
      "production");
  for (Operation op : {Operation::kDeploy, Operation::kRollback, Operation::kPromote}) {
    AccessDecision d = check_access(e, op, "anyone");
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule, "");
    EXPECT_EQ(d.message, "");
  }
}

TEST(Access, DefaultsApplyAndAbsentOperationAllowsEveryone) {
  Environment e = env_of(kFile, "staging");
  EXPECT_TRUE(check_access(e, Operation::kDeploy, "alice").allowed);
  EXPECT_TRUE(check_access(e, Operation::kDeploy, "team-ops").allowed);
  EXPECT_TRUE(check_access(e, Operation::kDeploy, "github:octocat").allowed);
  EXPECT_TRUE(check_access(e, Operation::kRollback, "oncall-7").allowed);
  EXPECT_TRUE(check_access(e, Operation::kPromote, "mallory").allowed)
      << "promote is not restricted";
  AccessDecision d = check_access(e, Operation::kDeploy, "bob");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "access.deploy");
  EXPECT_EQ(d.where, "meshdeploy.yml:6");
  EXPECT_EQ(
      d.message,
      "user bob may not deploy staging (access.deploy in meshdeploy.yml:6 allows: alice, team-*, "
      "github:*)");
}

TEST(Access, EnvironmentOverridesReplaceTheListAndEmptyMeansNobody) {
  Environment e = env_of(kFile, "production");
  EXPECT_TRUE(check_access(e, Operation::kDeploy, "alice").allowed);
  AccessDecision d = check_access(e, Operation::kDeploy, "team-ops", "deploy to production");
  EXPECT_FALSE(d.allowed) << "the overlay's list replaces the default's";
  EXPECT_EQ(d.message,
            "user team-ops may not deploy to production (access.deploy in meshdeploy.yml:12 "
            "allows: alice)");
  EXPECT_TRUE(check_access(e, Operation::kRollback, "oncall-1").allowed)
      << "inherited from defaults";
  AccessDecision p =
      check_access(e, Operation::kPromote, "alice", "promote the deploy in production");
  EXPECT_FALSE(p.allowed) << "an empty list admits nobody";
  EXPECT_EQ(p.message,
            "user alice may not promote the deploy in production (access.promote in "
            "meshdeploy.yml:13 allows: "
            "nobody)");
}

TEST(Access, NullInAnOverlayLiftsAnInheritedRule) {
  Environment e = env_of(R"(app: shop
defaults:
  services:
    web: {command: x}
  access:
    deploy: [alice]
environments:
  development:
    access:
      deploy: ~
)",
                         "development");
  EXPECT_FALSE(e.access.deploy.has_value());
  EXPECT_TRUE(check_access(e, Operation::kDeploy, "bob").allowed);
}

TEST(Access, EmptyActorIsRefusedByEveryRule) {
  Environment e = env_of(kFile, "staging");
  e.access.deploy->allow = {"*"};
  AccessDecision d = check_access(e, Operation::kDeploy, "");
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.message.find("user (unknown) may not"), std::string::npos) << d.message;
}

TEST(AccessConfig, UnknownOperationGetsDidYouMean) {
  EXPECT_EQ(load_errors(R"(app: shop
defaults:
  services:
    web: {command: x}
  access:
    deplyo: [alice]
    rolback: [bob]
environments:
  production: {}
)"),
            (V{"meshdeploy.yml:6:5: defaults.access.deplyo: unknown key 'deplyo' (did you mean "
               "'deploy'?)",
               "meshdeploy.yml:7:5: defaults.access.rolback: unknown key 'rolback' (did you mean "
               "'rollback'?)"}));
}

TEST(AccessConfig, BadPatternsAndShapesAreReportedWithTheirPlace) {
  EXPECT_EQ(
      load_errors(R"(app: shop
defaults:
  services:
    web: {command: x}
environments:
  production:
    access:
      deploy: [alice, "", "bob smith"]
      rollback: alice
      promote: [{name: x}]
)"),
      (V{"meshdeploy.yml:8:23: environments.production.access.deploy[1]: an actor pattern must not "
         "be "
         "empty (e.g. alice, \"team-*\" or \"github:*\")",
         "meshdeploy.yml:8:27: environments.production.access.deploy[2]: actor pattern 'bob smith' "
         "contains white space or a control character (actors are user names like alice or "
         "github:octocat; `*` and `?` are the wildcards)",
         "meshdeploy.yml:9:17: environments.production.access.rollback: expected a list of "
         "strings, got "
         "a scalar (write a list: [alice])",
         "meshdeploy.yml:10:17: environments.production.access.promote[0]: expected a string, got "
         "a map"}));
}

TEST(AccessConfig, ConfigShowPrintsTheResolvedAccess) {
  Environment e = env_of(kFile, "production");
  std::string y = render_yaml(e);
  EXPECT_NE(
      y.find("access:\n  deploy: [alice]\n  rollback: [alice, \"oncall-?\"]\n  promote: []\n"),
      std::string::npos)
      << y;
  std::string j = render_json(env_of(kFile, "staging"));
  EXPECT_NE(j.find("\"promote\": null"), std::string::npos) << j;
}

TEST(AccessConfig, SchemaListsTheOperations) {
  V keys;
  for (const KeyInfo& k : schema_keys())
    if (k.path.rfind("access", 0) == 0) keys.push_back(k.path + " " + k.type);
  EXPECT_EQ(keys, (V{"access map", "access.deploy list of strings",
                     "access.rollback list of strings", "access.promote list of strings"}));
}

}  // namespace
}  // namespace md::config
