// `meshdeploy migrate ...` argument handling, exit codes and output, without
// a database (the engine's Postgres behaviour is tested in migrate/).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "core/clock.h"
#include "secrets/secrets.h"

namespace md::cli {
namespace {

using testing::Ran;
Ran run_args(const std::vector<std::string>& args) { return testing::run_cli(args); }

class MigrateCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("migrate-cmd");
    unsetenv("MESHDEPLOY_DATABASE_URL");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& sql) { std::ofstream(dir_ / name) << sql; }
  std::filesystem::path dir_;
};

TEST_F(MigrateCmd, LintGatesOnUnacknowledgedErrorsOnly) {
  write("1_init.sql",
        "create table workflows (id bigint primary key, name text);\n"
        "create index on workflows (name);\n");  // new table: fine
  write("2_idx.sql", "create index wf_name on workflows (name);\n");
  Ran r = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("2_idx.sql:1: error require-concurrent-index-creation"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("fix: CREATE INDEX CONCURRENTLY"), std::string::npos);
  write("2_idx.sql",
        "-- meshdeploy:allow require-concurrent-index-creation tiny table\n"
        "create index wf_name on workflows (name);\n");
  Ran ok = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("allowed: tiny table"), std::string::npos);
}

// Regression: without --env or a URL, lint said nothing on stderr although
// docs/migrations.md says it does.
TEST_F(MigrateCmd, LintWithoutADatabaseSaysSoOnStderr) {
  write("1_init.sql", "create table workflows (id bigint primary key);\n");
  Ran r = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("meshdeploy: linting every file without a database"), std::string::npos)
      << r.err;
  Ran j = run_args({"migrate", "lint", "--json", "--dir", dir_.string()});
  EXPECT_NE(j.err.find("linting every file without a database"), std::string::npos) << j.err;
  EXPECT_EQ(j.out.find("linting"), std::string::npos) << "stdout stays JSON: " << j.out;
}

// Regression: a Latin-1 identifier made the JSON report throw type_error 316
// and the process abort (exit 134). Invalid bytes (here in the identifier
// and in the file name the report quotes) come out as U+FFFD.
TEST_F(MigrateCmd, LintJsonWithLatin1BytesIsValidJson) {
  write("1_caf\xe9.sql",
        "alter table caf\xe9 rename column nom to name;\n"
        "alter table t rename column a to b;\n");
  Ran r = run_args({"migrate", "lint", "--json", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 1) << r.err;                // the rename blocks; nothing crashed
  const auto j = nlohmann::json::parse(r.out);  // throws (fails the test) on invalid UTF-8
  bool rename = false;
  for (const auto& f : j["findings"]) rename = rename || f["rule"] == "renaming-column";
  EXPECT_TRUE(rename) << r.out;
  EXPECT_NE(r.out.find("1_caf\xef\xbf\xbd.sql"), std::string::npos) << r.out;
}

TEST_F(MigrateCmd, LintJsonHasEveryField) {
  write("1_a.sql", "alter table workflows rename column name to title;\n");
  Ran r = run_args({"migrate", "lint", "--json", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 1);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["findings"].size(), 2u);  // renaming-column + missing-lock-timeout (warning)
  EXPECT_EQ(j["findings"][0]["rule"], "renaming-column");
  EXPECT_EQ(j["findings"][0]["line"], 1);
  EXPECT_EQ(j["findings"][0]["severity"], "error");
  EXPECT_FALSE(j["findings"][0]["why"].get<std::string>().empty());
  EXPECT_FALSE(j["findings"][0]["recipe"].get<std::string>().empty());
  EXPECT_EQ(j["blocking"], 1);
}

TEST_F(MigrateCmd, BadFilesAreUsageErrorsWithFileAndLine) {
  write("1_a.sql", "select 1;\ncreate function f() returns int language sql as $$ select 1;\n");
  Ran r = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("1_a.sql:2: unterminated dollar-quoted string"), std::string::npos) << r.err;
}

TEST_F(MigrateCmd, NeedsADatabaseAndNeverPrintsThePassword) {
  Ran none = run_args({"migrate", "status", "--dir", dir_.string()});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("no database"), std::string::npos);
  Ran down = run_args({"migrate", "status", "--dir", dir_.string(), "--database-url",
                       "postgresql://app:hunter2secret@127.0.0.1:1/db?connect_timeout=1"});
  EXPECT_EQ(down.code, 1);
  EXPECT_EQ(down.err.find("hunter2secret"), std::string::npos) << down.err;
  EXPECT_NE(down.err.find("app:***@"), std::string::npos) << down.err;
}

TEST_F(MigrateCmd, RestoreNeedsAFile) {
  Ran r = run_args({"migrate", "restore", "--database-url", "postgresql://x@127.0.0.1:1/x"});
  EXPECT_EQ(r.code, 2);
  Ran missing = run_args({"migrate", "restore", "--database-url", "postgresql://x@127.0.0.1:1/x",
                          (dir_ / "nope.dump").string()});
  EXPECT_EQ(missing.code, 5) << missing.err;
}

// --env: the URL comes from the environment's vault unless a flag or the
// variable names one. No server is needed to tell which URL was used: the
// connect error names it (password masked), so each source points at a
// closed port with its own database name.
class MigrateEnvCmd : public MigrateCmd {
 protected:
  void SetUp() override {
    MigrateCmd::SetUp();
    ::setenv("MESHDEPLOY_KEY_STAGING", key_.reveal_text().c_str(), 1);
    write_config("");
  }
  void TearDown() override {
    ::unsetenv("MESHDEPLOY_KEY_STAGING");
    MigrateCmd::TearDown();
  }
  void write_config(const std::string& migrations) {
    write("meshdeploy.yml",
          "app: meshhook\n"
          "defaults:\n"
          "  services:\n"
          "    web: {command: node build/index.js}\n" +
              migrations +
              "environments:\n"
              "  staging: {}\n");
  }
  void vault_with(const std::string& name, const std::string& value) {
    auto v = secrets::Vault::create(vault_path(), "staging",
                                    secrets::MasterKey::parse(key_.reveal_text()).value());
    ASSERT_TRUE(v.set(name, secrets::Secret(value), SysTime{}));
    ASSERT_TRUE(v.save());
  }
  std::filesystem::path vault_path() { return dir_ / ".meshdeploy" / "secrets" / "staging.vault"; }
  Ran migrate(const std::string& verb, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"migrate", verb, "--env",
                                     "staging", "-c", (dir_ / "meshdeploy.yml").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_args(args);
  }
  static std::string url(const std::string& password, const std::string& db) {
    return "postgresql://app:" + password + "@127.0.0.1:1/" + db + "?connect_timeout=1";
  }
  secrets::MasterKey key_ = secrets::MasterKey::generate();
};

TEST_F(MigrateEnvCmd, ReadsTheDatabaseUrlFromTheVault) {
  vault_with("DATABASE_URL", url("vault-pass-4f9e2", "vaultdb"));
  Ran r = migrate("status");
  EXPECT_EQ(r.code, 1) << r.err;  // the server is down: reached the connect step
  EXPECT_NE(r.err.find("app:***@127.0.0.1:1/vaultdb"), std::string::npos) << r.err;
  EXPECT_EQ((r.out + r.err).find("vault-pass-4f9e2"), std::string::npos) << r.err;
}

TEST_F(MigrateEnvCmd, FlagBeatsVariableBeatsVault) {
  vault_with("DATABASE_URL", url("vault-pass-4f9e2", "vaultdb"));
  ::setenv("MESHDEPLOY_DATABASE_URL", url("env-pass-77a1c", "envdb").c_str(), 1);
  Ran env = migrate("status");
  EXPECT_NE(env.err.find("/envdb"), std::string::npos) << env.err;
  Ran flag = migrate("status", {"--database-url", url("flag-pass-0b3d8", "flagdb")});
  EXPECT_NE(flag.err.find("/flagdb"), std::string::npos) << flag.err;
  ::unsetenv("MESHDEPLOY_DATABASE_URL");
  for (const Ran& r : {env, flag}) {
    EXPECT_EQ(r.code, 1);
    for (const char* pw : {"vault-pass-4f9e2", "env-pass-77a1c", "flag-pass-0b3d8"})
      EXPECT_EQ((r.out + r.err).find(pw), std::string::npos) << r.err;
  }
}

TEST_F(MigrateEnvCmd, SecretNamedByTheConfigIsUsed) {
  write_config("  migrations: {database_url_secret: APP_PG_URL}\n");
  vault_with("APP_PG_URL", url("vault-pass-4f9e2", "appdb"));
  Ran r = migrate("plan");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("/appdb"), std::string::npos) << r.err;
}

TEST_F(MigrateEnvCmd, MissingSecretNamesTheSecretAndTheVault) {
  vault_with("OTHER_SECRET", "some-other-value-123");
  for (const char* verb : {"status", "plan", "up", "baseline"}) {
    Ran r = migrate(verb);
    EXPECT_EQ(r.code, 5) << verb << ": " << r.err;
    EXPECT_NE(
        r.err.find("no secret DATABASE_URL (migrations.database_url_secret) in the staging vault " +
                   vault_path().string()),
        std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("meshdeploy secrets set --env staging DATABASE_URL"), std::string::npos)
        << r.err;
  }
  Ran restore = migrate("restore", {(dir_ / "some.dump").string()});
  EXPECT_EQ(restore.code, 5) << restore.err;
  EXPECT_NE(restore.err.find("no secret DATABASE_URL"), std::string::npos) << restore.err;
}

TEST_F(MigrateEnvCmd, NoVaultFileIsAMissingSecret) {
  Ran r = migrate("status");
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_NE(r.err.find("no secret DATABASE_URL"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(vault_path().string()), std::string::npos) << r.err;
}

TEST_F(MigrateEnvCmd, NoKeySaysWhichVariable) {
  vault_with("DATABASE_URL", url("vault-pass-4f9e2", "vaultdb"));
  ::unsetenv("MESHDEPLOY_KEY_STAGING");
  Ran r = migrate("status");
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_NE(r.err.find("MESHDEPLOY_KEY_STAGING"), std::string::npos) << r.err;
}

TEST_F(MigrateEnvCmd, UnknownEnvironmentAndBadConfigAreReported) {
  Ran unknown =
      run_args({"migrate", "status", "--env", "prod", "-c", (dir_ / "meshdeploy.yml").string()});
  EXPECT_EQ(unknown.code, 5) << unknown.err;
  EXPECT_NE(unknown.err.find("prod"), std::string::npos) << unknown.err;
  write("meshdeploy.yml", "app: [\n");
  Ran bad = migrate("status");
  EXPECT_EQ(bad.code, 2) << bad.err;
  EXPECT_NE(bad.err.find("meshdeploy.yml:"), std::string::npos) << bad.err;
}

TEST_F(MigrateEnvCmd, LintWithoutTheKeyLintsEveryFileAndSaysSo) {
  std::filesystem::create_directories(dir_ / "supabase" / "migrations");
  write("supabase/migrations/1_init.sql", "create table t (id bigint primary key);\n");
  ::unsetenv("MESHDEPLOY_KEY_STAGING");
  Ran r = migrate("lint");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("linting every file without a database"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace md::cli
