// Test backends for the typed store suites: each test gets its own SQLite
// file (a temp dir) or its own Postgres schema on the ctest fixture's cluster.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "pg/pg.h"
#include "state/store_impl.h"

namespace md::state::testing {

inline std::filesystem::path make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/md-state-XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  MD_CHECK(made != nullptr);
  return made;
}

class SqliteBackend {
 public:
  static constexpr const char* kName = "sqlite";
  void set_up() {
    dir_ = make_temp_dir();
    path_ = (dir_ / "nested" / "state.db").string();
  }
  void tear_down() { std::filesystem::remove_all(dir_); }
  std::string url() const { return "sqlite:" + path_; }
  // A second store nobody has opened yet.
  std::string fresh_url() const { return "sqlite:" + (dir_ / "fresh" / "state.db").string(); }
  Result<std::unique_ptr<Store>> open(Clock& clock, std::span<const internal::SchemaStep> steps) {
    return internal::open_sqlite(path_, clock, steps);
  }
  std::span<const internal::SchemaStep> schema() const { return internal::sqlite_schema(); }
  // Runs SQL on a separate connection, as another program would.
  Status raw(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    if (rc != SQLITE_OK) return fail(Errc::kInvalidArgument, msg);
    return ok();
  }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

// The URL of the cluster the test command starts (ctest fixture "pg"). A
// missing cluster is a failure, not a skip.
inline std::string pg_test_url() {
  const char* f = std::getenv("MESHDEPLOY_TEST_PG_URL_FILE");
  EXPECT_NE(f, nullptr) << "MESHDEPLOY_TEST_PG_URL_FILE not set: run through ctest";
  std::ifstream in(f ? f : "");
  std::string url;
  std::getline(in, url);
  EXPECT_FALSE(url.empty()) << "no Postgres test cluster URL in " << (f ? f : "(unset)");
  return url;
}

class PostgresBackend {
 public:
  static constexpr const char* kName = "postgres";
  void set_up() {
    base_ = pg_test_url();
    // Without a cluster the test has already failed; point at a closed port so
    // the store cannot fall back to a file named "?schema=..." in the cwd.
    if (base_.empty()) base_ = "postgresql://127.0.0.1:1/no-test-cluster";
    std::random_device rd;
    schema_ = "st_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
  }
  void tear_down() {
    if (base_.empty()) return;
    auto c = pg::Connection::connect(base_);
    if (c) (void)c->exec("DROP SCHEMA IF EXISTS " + schema_ + ", " + schema_ + "_fresh CASCADE");
  }
  std::string url() const {
    return base_ + (base_.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema_;
  }
  std::string fresh_url() const { return url() + "_fresh"; }
  Result<std::unique_ptr<Store>> open(Clock& clock, std::span<const internal::SchemaStep> steps) {
    return internal::open_postgres(url(), clock, steps);
  }
  std::span<const internal::SchemaStep> schema() const { return internal::postgres_schema(); }
  Status raw(const std::string& sql) {
    auto c = MD_TRY(pg::Connection::connect(base_));
    MD_TRY(c.exec("SET search_path TO " + schema_));
    MD_TRY(c.exec_script(sql));
    return ok();
  }

 private:
  std::string base_;
  std::string schema_;
};

// Both backends, named in test output as StoreTest/sqlite, .../postgres.
using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

}  // namespace md::state::testing
