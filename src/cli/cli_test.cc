// The command line as a user meets it: driven through md::cli::run with
// string streams.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "cli/test_util.h"
#include "core/clock.h"
#include "core/fs.h"
#include "secrets/secrets.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

// The source tree, set by CMake (WHY not __FILE__: ccache's base_dir makes it
// relative to the build directory, and the test then looked in the wrong place).
sfs::path source_dir() {
  if (const char* s = ::getenv("MESHDEPLOY_SRC")) return s;
  return MD_SOURCE_DIR;
}

using testing::make_temp_dir;
using testing::Ran;
using testing::run_cli;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("cli"); }
  void TearDown() override { sfs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    EXPECT_TRUE(fs::atomic_write(dir_ / name, text));
    return (dir_ / name).string();
  }
  // A real vault for `env` holding `names` (each value "value-of-<name>").
  void make_vault(const std::string& env, const std::vector<std::string>& names) {
    auto v = secrets::Vault::create(dir_ / ".meshdeploy/secrets" / (env + ".vault"), env,
                                    secrets::MasterKey::generate());
    for (const std::string& n : names)
      ASSERT_TRUE(
          v.set(n, secrets::Secret("value-of-" + n + "-must-not-show"), real_clock().now()));
    ASSERT_TRUE(v.save());
  }
  sfs::path dir_;
};

const char* kValid = R"(app: shop
defaults:
  services:
    web: {command: node server.js}
    worker: {command: node worker.js}
  secrets: [API_KEY]
  notifications:
    channels:
      ops: {kind: slack, url_secret: SLACK_URL}
environments:
  staging: {}
  production:
    strategy: {kind: canary}
)";

TEST_F(CliTest, Version) {
  Ran r = run_cli({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("meshdeploy ", 0), 0u);
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(r.out.at(11)))) << r.out;
}

TEST_F(CliTest, HelpListsEveryCommandAndTheExitCodes) {
  Ran r = run_cli({"help"});
  EXPECT_EQ(r.code, 0);
  for (const CommandSpec& c : command_table()) {
    EXPECT_NE(r.out.find("  " + std::string(c.path) + " "), std::string::npos) << c.path;
    EXPECT_NE(r.out.find(std::string(c.summary)), std::string::npos) << c.path;
  }
  EXPECT_NE(r.out.find("Exit codes:"), std::string::npos);
  Ran bare = run_cli({});
  EXPECT_EQ(bare.code, 2);  // no command is a usage error, but shows the same overview
  EXPECT_EQ(bare.out, r.out);
}

TEST_F(CliTest, HelpForOneCommandShowsItsOptions) {
  Ran r = run_cli({"help", "config", "show"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--env"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--config"), std::string::npos) << r.out;
  Ran flag = run_cli({"config", "show", "--help"});
  EXPECT_EQ(flag.code, 0);
  EXPECT_NE(flag.out.find("--json"), std::string::npos) << flag.out;
}

// Regression: `help deploy` printed "Usage: meshdeploy  deploy" (two spaces).
TEST_F(CliTest, HelpUsageLineNamesTheCommandOnce) {
  Ran top = run_cli({"help", "deploy"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("Usage: meshdeploy deploy [OPTIONS]"), std::string::npos) << top.out;
  Ran sub = run_cli({"help", "secrets", "set"});
  EXPECT_NE(sub.out.find("Usage: meshdeploy secrets set [OPTIONS]"), std::string::npos) << sub.out;
  for (const Ran& r : {top, sub}) EXPECT_EQ(r.out.find("meshdeploy  "), std::string::npos) << r.out;
}

TEST_F(CliTest, HelpForAGroupListsItsCommands) {
  Ran r = run_cli({"help", "secrets"});
  EXPECT_EQ(r.code, 0);
  for (const CommandSpec& c : command_table()) {
    bool in_group = c.path.rfind("secrets ", 0) == 0;
    EXPECT_EQ(r.out.find(std::string(c.path)) != std::string::npos, in_group) << c.path;
  }
  Ran bare_group = run_cli({"secrets"});
  EXPECT_EQ(bare_group.code, 2);
  EXPECT_NE(bare_group.err.find("needs a subcommand"), std::string::npos) << bare_group.err;
}

// The man page and the completions come from the same table: every command
// and its options appear without anyone editing them.
TEST_F(CliTest, ManPageAndCompletionsCoverEveryCommand) {
  Ran man = run_cli({"help", "--man"});
  ASSERT_EQ(man.code, 0) << man.err;
  EXPECT_EQ(man.out.rfind(".\\\" Generated", 0), 0u) << man.out.substr(0, 80);
  EXPECT_NE(man.out.find(".TH MESHDEPLOY 1"), std::string::npos);
  EXPECT_NE(man.out.find("\\fB\\-\\-root\\fR \\fITEXT\\fR"),
            std::string::npos);  // agent run --root
  EXPECT_NE(man.out.find(".SH EXIT STATUS"), std::string::npos);
  Ran bash = run_cli({"help", "--completion", "bash"});
  ASSERT_EQ(bash.code, 0) << bash.err;
  Ran zsh = run_cli({"help", "--completion", "zsh"});
  ASSERT_EQ(zsh.code, 0) << zsh.err;
  EXPECT_EQ(zsh.out.rfind("#compdef meshdeploy\n", 0), 0u);
  for (const CommandSpec& c : command_table()) {
    const std::string path(c.path);
    std::string roff_path;  // '-' is \- in roff
    for (char ch : path) roff_path += ch == '-' ? std::string("\\-") : std::string(1, ch);
    EXPECT_NE(man.out.find(".SS \"meshdeploy " + roff_path + "\""), std::string::npos) << path;
    EXPECT_NE(bash.out.find("\"" + path + "\") echo"), std::string::npos) << path;
    EXPECT_NE(zsh.out.find("\"" + path + "\") reply=("), std::string::npos) << path;
  }
  Ran fish = run_cli({"help", "--completion", "fish"});
  EXPECT_EQ(fish.code, 2);
  EXPECT_NE(fish.err.find("'fish' is not bash or zsh"), std::string::npos) << fish.err;
}

TEST_F(CliTest, UnknownCommandIsAUsageError) {
  Ran r = run_cli({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
  Ran h = run_cli({"help", "frobnicate"});
  EXPECT_EQ(h.code, 2);
  EXPECT_EQ(h.err, "meshdeploy: no command 'frobnicate'; run 'meshdeploy help' for the list\n");
  Ran opt = run_cli({"config", "validate", "--bogus"});
  EXPECT_EQ(opt.code, 2);
}

TEST_F(CliTest, ConfigValidateOk) {
  std::string f = write("meshdeploy.yml", kValid);
  Ran r = run_cli({"config", "validate", "-c", f});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, f + ": ok (2 environments: staging, production)\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, ConfigValidateReportsEveryProblemAndExits2) {
  std::string f = write("bad.yml", R"(app: shop
defaults:
  services:
    web:
      comand: node server.js
  keep_releases: lots
environments:
  production: {}
)");
  Ran r = run_cli({"config", "validate", "--config", f});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(
      r.err,
      f +
          ":4:5: defaults.services.web.command: missing required key 'command' for service "
          "'web' (the shell command that starts one process, run in the release directory)\n" +
          f +
          ":5:7: defaults.services.web.comand: unknown key 'comand' (did you mean "
          "'command'?)\n" +
          f +
          ":6:18: defaults.keep_releases: 'lots' is not a whole number (use a whole "
          "number from 1 to 1000)\n"
          "meshdeploy: " +
          f + ": 3 problems\n");
}

TEST_F(CliTest, ConfigValidateChecksSecretNamesAgainstExistingVaults) {
  std::string f = write("meshdeploy.yml", kValid);
  make_vault("production", {"API_KEY", "SLACK_URL"});  // no DATABASE_URL
  make_vault("staging", {"API_KEY", "SLACK_URL", "DATABASE_URL"});
  Ran r = run_cli({"config", "validate", "-c", f});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(
      r.err,
      f +
          ": environments.production.migrations.database_url_secret: secret 'DATABASE_URL' is "
          "not in the production vault (store it with: meshdeploy secrets set DATABASE_URL "
          "--env production)\n"
          "meshdeploy: " +
          f + ": 1 problem\n");
  make_vault("production", {"API_KEY", "SLACK_URL", "DATABASE_URL"});
  EXPECT_EQ(run_cli({"config", "validate", "-c", f}).code, 0);
}

TEST_F(CliTest, ConfigValidateMissingFile) {
  Ran r = run_cli({"config", "validate", "-c", (dir_ / "nope.yml").string()});
  EXPECT_EQ(r.code, 5);
  EXPECT_EQ(r.err,
            "meshdeploy: no such configuration file: " + (dir_ / "nope.yml").string() + "\n");
}

TEST_F(CliTest, ConfigShowRedactsSecretsAndNeverReadsTheVault) {
  std::string f = write("meshdeploy.yml", kValid);
  make_vault("production", {"API_KEY", "VAULT_ONLY"});
  // No MESHDEPLOY_KEY_PRODUCTION: show needs no key.
  ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
  Ran r = run_cli({"config", "show", "--env", "production", "-c", f});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("environment: production"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("API_KEY: \"[REDACTED]\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VAULT_ONLY: \"[REDACTED]\""), std::string::npos)
      << r.out;  // from the vault
  EXPECT_NE(r.out.find("SLACK_URL: \"[REDACTED]\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DATABASE_URL: \"[REDACTED]\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kind: canary"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("must-not-show"), std::string::npos);

  Ran j = run_cli({"config", "show", "-e", "staging", "--json", "-c", f});
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["environment"], "staging");
  EXPECT_EQ(doc["strategy"]["kind"], "blue_green");
  EXPECT_EQ(doc["secret_values"]["API_KEY"], "[REDACTED]");
  EXPECT_EQ(doc["services"]["worker"]["kind"], "worker");
}

TEST_F(CliTest, ConfigShowNeedsAKnownEnvironment) {
  std::string f = write("meshdeploy.yml", kValid);
  Ran missing = run_cli({"config", "show", "-c", f});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--env"), std::string::npos) << missing.err;
  Ran unknown = run_cli({"config", "show", "--env", "prod", "-c", f});
  EXPECT_EQ(unknown.code, 5);
  EXPECT_EQ(unknown.err, "meshdeploy: no environment 'prod' in " + f +
                             " (defined: staging, production); did you mean 'production'?\n");
}

TEST_F(CliTest, ConfigShowOnABadFileShowsTheProblemsNotTheEnvironment) {
  std::string f = write("meshdeploy.yml", "app: shop\nenvironments: [production]\n");
  Ran r = run_cli({"config", "show", "--env", "production", "-c", f});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(f + ":2:15: environments: expected a map of environment names, got a list"),
            std::string::npos)
      << r.err;
}

TEST_F(CliTest, BadGlobalLogFlag) {
  Ran r = run_cli({"--log-level", "loud", "help"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "meshdeploy: unknown log level 'loud' (valid: debug, info, warn, error)\n");
}

// No exception ever leaves a command: it becomes a message and exit 70.
TEST(CliGuard, AnExceptionBecomesAnInternalErrorNotAnAbort) {
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  Exit e = guarded(io, []() -> Exit { throw std::runtime_error("boom"); });
  EXPECT_EQ(static_cast<int>(e), 70);
  EXPECT_EQ(
      err.str(),
      "meshdeploy: internal error: boom (this is a bug; please report it with the command line)\n");
  e = guarded(io, []() -> Exit { throw 42; });
  EXPECT_EQ(static_cast<int>(e), 70);
  EXPECT_EQ(guarded(io, [] { return Exit::kConflict; }), Exit::kConflict);
}

// docs/cli.md documents every command of the table and every exit code.
TEST(CliDocs, EveryCommandAndExitCodeIsDocumented) {
  auto doc = fs::read_file(source_dir() / "docs/cli.md");
  ASSERT_TRUE(doc) << "docs/cli.md: " << doc.error().what();
  for (const CommandSpec& c : command_table())
    EXPECT_NE(doc->find("## `meshdeploy " + std::string(c.path)), std::string::npos)
        << "docs/cli.md has no section for 'meshdeploy " << c.path << "'";
  for (int code : {0, 1, 2, 3, 4, 5, 6, 70, 130})
    EXPECT_NE(doc->find("| " + std::to_string(code) + " |"), std::string::npos)
        << "exit code " << code;
}

}  // namespace
}  // namespace md::cli
