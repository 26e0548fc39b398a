// `meshdeploy migrate ...` argument handling, exit codes and output, without
// a database (the engine's Postgres behaviour is tested in migrate/).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace md::cli {
namespace {

struct Ran {
  int code;
  std::string out, err;
};

Ran run_args(std::vector<std::string> args) {
  args.insert(args.begin(), "meshdeploy");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  int code = run(static_cast<int>(argv.size()), argv.data(), io);
  return Ran{code, out.str(), err.str()};
}

class MigrateCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("md_migrate_cmd_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    unsetenv("MESHDEPLOY_DATABASE_URL");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& sql) { std::ofstream(dir_ / name) << sql; }
  std::filesystem::path dir_;
};

TEST_F(MigrateCmd, LintGatesOnUnacknowledgedErrorsOnly) {
  write("1_init.sql", "create table workflows (id bigint primary key, name text);\n"
                      "create index on workflows (name);\n");  // new table: fine
  write("2_idx.sql", "create index wf_name on workflows (name);\n");
  Ran r = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("2_idx.sql:1: error require-concurrent-index-creation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fix: CREATE INDEX CONCURRENTLY"), std::string::npos);
  write("2_idx.sql", "-- meshdeploy:allow require-concurrent-index-creation tiny table\n"
                     "create index wf_name on workflows (name);\n");
  Ran ok = run_args({"migrate", "lint", "--dir", dir_.string()});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("allowed: tiny table"), std::string::npos);
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

}  // namespace
}  // namespace md::cli
