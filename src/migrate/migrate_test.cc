// The engine against the real Postgres of the ctest fixture; each test has
// its own database and migrations folder.
#include "migrate/migrate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "pg/pg.h"

namespace md::migrate {
namespace {

std::string admin_url() {
  const char* f = std::getenv("MESHDEPLOY_TEST_PG_URL_FILE");
  EXPECT_NE(f, nullptr) << "run through ctest (MESHDEPLOY_TEST_PG_URL_FILE)";
  std::ifstream in(f ? f : "");
  std::string url;
  std::getline(in, url);
  EXPECT_FALSE(url.empty());
  return url;
}

class MigrateDb : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    db_ = "md_migrate_" + std::to_string(getpid()) + "_" + std::to_string(rd() % 1000000);
    auto admin = pg::Connection::connect(admin_url());
    ASSERT_TRUE(admin) << admin.error().what();
    ASSERT_TRUE(admin->exec("CREATE DATABASE " + db_));
    std::string a = admin_url();
    url_ = a.substr(0, a.rfind('/') + 1) + db_;
    dir_ = std::filesystem::temp_directory_path() / db_;
    std::filesystem::create_directories(dir_);
    req_.dir = dir_;
    req_.database_url = secrets::Secret(url_);
    req_.actor = "tester";
    req_.jitter_seed = 7;
    req_.settings.lock_timeout = Millis(200);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    if (auto admin = pg::Connection::connect(admin_url()))
      (void)admin->exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  void write(const std::string& name, const std::string& sql) { std::ofstream(dir_ / name) << sql; }
  pg::Connection conn() {
    auto c = pg::Connection::connect(url_);
    EXPECT_TRUE(c) << c.error().what();
    return std::move(*c);
  }
  std::string one(const std::string& sql) {
    auto c = conn();
    auto r = c.exec(sql);
    EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().what());
    return r && !r->empty() ? r->rows[0][0].value_or("NULL") : "";
  }

  std::string db_, url_;
  std::filesystem::path dir_;
  Request req_;
};

const char* kInit = R"(-- MeshHook's first schema
create extension if not exists pgcrypto;
create table workflows (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  definition jsonb not null default '{}',
  created_at timestamptz not null default now()
);
create table workflow_runs (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references workflows (id),
  status text not null default 'queued'
);
create or replace function touch_created() returns trigger language plpgsql as $$
begin
  new.created_at := now(); -- semicolons; inside a body
  return new;
end;
$$;
alter table workflows enable row level security;
)";

TEST_F(MigrateDb, AppliesWithSupabaseCompatibleHistoryAndIsIdempotent) {
  write("20240101000000_init.sql", kInit);
  write("20240102000000_webhooks.sql",
        "create table webhooks (id bigint generated always as identity primary key, url text not "
        "null);\n"
        "do $$ begin perform 1; end $$;\n");
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_TRUE(r.ok()) << r.error->what();
  ASSERT_EQ(r.applied.size(), 2u);
  EXPECT_EQ(one("select count(*) from supabase_migrations.schema_migrations"), "2");
  EXPECT_EQ(one("select name from supabase_migrations.schema_migrations where version = "
                "'20240101000000'"),
            "init");
  EXPECT_EQ(one("select array_length(statements, 1) from supabase_migrations.schema_migrations "
                "where version = "
                "'20240101000000'"),
            "5");
  EXPECT_EQ(one("select statements[1] from supabase_migrations.schema_migrations where version = "
                "'20240101000000'"),
            "-- MeshHook's first schema\ncreate extension if not exists pgcrypto");
  EXPECT_EQ(
      one("select applied_by || ' ' || statements_done || ' ' || (applied_at is not null) from "
          "supabase_migrations.meshdeploy_history where version = '20240102000000'"),
      "tester 2 true");
  ApplyReport again = apply(req_, Selection::kAll);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.applied.empty());
  auto p = plan(req_);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->pending().empty());
  EXPECT_TRUE(p->verdict.ok) << p->verdict.reasons.front();
}

TEST_F(MigrateDb, FailingStatementRollsBackItsFileAndNamesFileLineAndServerText) {
  write("1_init.sql", kInit);
  write("2_bad.sql",
        "create table ok_part (id bigint);\n"
        "insert into workflows (name)\n  values (null);\n");
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.applied.size(), 1u);
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->file, "2_bad.sql");
  EXPECT_EQ(r.failure->line, 2);
  EXPECT_EQ(r.failure->sqlstate, "23502");
  EXPECT_NE(r.error->what().find("2_bad.sql:2:"), std::string::npos) << r.error->what();
  EXPECT_NE(r.error->what().find("detail: Failing row"), std::string::npos) << r.error->what();
  EXPECT_EQ(one("select to_regclass('ok_part') is null"), "t");  // its file rolled back
  EXPECT_EQ(one("select string_agg(version, ',') from supabase_migrations.schema_migrations"), "1");
  // the error position maps to a line inside the statement
  write("2_bad.sql", "select 1;\nselect\n  no_such_column\nfrom workflows;\n");
  ApplyReport r2 = apply(req_, Selection::kAll);
  ASSERT_TRUE(r2.failure);
  EXPECT_EQ(r2.failure->line, 3);
  write("2_bad.sql", "select 1;\n");
  ApplyReport r3 = apply(req_, Selection::kAll);
  ASSERT_TRUE(r3.ok()) << r3.error->what();
  EXPECT_EQ(r3.applied.size(), 1u);
}

TEST_F(MigrateDb, DriftMissingFilesAndOutOfOrderStopUp) {
  write("1_a.sql", "create table a (id bigint);");
  write("3_c.sql", "create table c (id bigint);");
  ASSERT_TRUE(apply(req_, Selection::kAll).ok());
  write("1_a.sql", "create table a (id bigint, extra text);");
  auto p = plan(req_);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->files[0].state, FileState::kDrifted);
  EXPECT_FALSE(p->verdict.ok);
  write("2_b.sql", "create table b (id bigint);");
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error->what().find("drift"), std::string::npos);
  EXPECT_NE(r.error->what().find("out-of-order"), std::string::npos);
  EXPECT_EQ(one("select to_regclass('b') is null"), "t");
  req_.accept_drift = true;
  req_.settings.include_all = true;
  ApplyReport ok = apply(req_, Selection::kAll);
  ASSERT_TRUE(ok.ok()) << ok.error->what();
  EXPECT_EQ(ok.applied.size(), 1u);
  std::filesystem::remove(dir_ / "3_c.sql");
  ApplyReport missing = apply(req_, Selection::kAll);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error->what().find("version 3 is recorded as applied but no file"),
            std::string::npos);
}

TEST_F(MigrateDb, LockTimeoutIsRetriedWithBackoffThenFailsWithNothingApplied) {
  write("1_init.sql", "create table workflows (id bigint primary key, name text);");
  ASSERT_TRUE(apply(req_, Selection::kAll).ok());
  write("2_col.sql",
        "create table side (id bigint);\nalter table workflows add column paused boolean;\n");
  auto holder = conn();
  ASSERT_TRUE(holder.exec_script("BEGIN; LOCK TABLE workflows IN ACCESS SHARE MODE;"));
  FakeClock clock;
  req_.clock = &clock;
  req_.settings.lock_retries = 3;
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->code(), Errc::kTimeout);
  EXPECT_NE(
      r.error->what().find("reached 4 times waiting for ACCESS EXCLUSIVE on public.workflows"),
      std::string::npos)
      << r.error->what();
  EXPECT_NE(r.error->what().find("nothing of 2_col.sql was applied"), std::string::npos);
  EXPECT_GE(clock.mono().time_since_epoch(),
            Millis(125 + 250 + 500));  // backoff slept (fake clock)
  EXPECT_EQ(one("select to_regclass('side') is null"), "t");
  ASSERT_TRUE(holder.exec("COMMIT"));
  ApplyReport ok = apply(req_, Selection::kAll);
  ASSERT_TRUE(ok.ok()) << ok.error->what();
}

TEST_F(MigrateDb, NonTransactionalFileResumesAndReportsInvalidIndex) {
  write("1_init.sql",
        "create table workflow_runs (id bigint primary key, wid bigint);\n"
        "insert into workflow_runs select g, g % 3 from generate_series(1, 30) g;");
  write("2_idx.sql",
        "create index concurrently wr_id on workflow_runs (id);\n"
        "create unique index concurrently wr_wid on workflow_runs (wid);\n"
        "vacuum analyze workflow_runs;\n");
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(r.failure->line, 2);
  EXPECT_NE(r.error->what().find("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"wr_wid\""),
            std::string::npos)
      << r.error->what();
  EXPECT_EQ(
      one("select statements_done from supabase_migrations.meshdeploy_history where version = '2'"),
      "1");
  auto p = plan(req_);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->files[1].state, FileState::kPartial);
  EXPECT_EQ(p->files[1].resume_at, 1);
  bool reported = false;
  for (const Problem& pr : p->problems) reported |= pr.code == "invalid-index";
  EXPECT_TRUE(reported);
  // fix the data (not the file): the rerun drops the invalid index, rebuilds it, resumes
  auto c = conn();
  ASSERT_TRUE(c.exec("update workflow_runs set wid = id"));
  ApplyReport again = apply(req_, Selection::kAll);
  ASSERT_TRUE(again.ok()) << again.error->what();
  ASSERT_EQ(again.applied.size(), 1u);
  EXPECT_EQ(again.applied[0].resumed_from, 1);
  EXPECT_EQ(
      one("select bool_and(indisvalid) from pg_index where indrelid = 'workflow_runs'::regclass"),
      "t");
  EXPECT_EQ(one("select count(*) from supabase_migrations.schema_migrations"), "2");
}

TEST_F(MigrateDb, PreflightNamesMissingExtensionsSchemasAndRolesBeforeApplying) {
  write("1_a.sql", "create table a (id bigint);");
  write("2_b.sql",
        "create extension if not exists no_such_ext_xyz;\ngrant select on a to ghost_role;\n"
        "create table reporting.daily (id bigint);\n");
  auto p = plan(req_);
  ASSERT_TRUE(p);
  std::string all;
  for (const auto& r : p->verdict.reasons) all += r + "\n";
  EXPECT_NE(all.find("extension \"no_such_ext_xyz\" is not available"), std::string::npos) << all;
  EXPECT_NE(all.find("role \"ghost_role\" does not exist"), std::string::npos) << all;
  EXPECT_NE(all.find("schema \"reporting\" does not exist"), std::string::npos) << all;
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.applied.empty());
  EXPECT_EQ(one("select to_regclass('a') is null"), "t");
}

TEST_F(MigrateDb, ExpandAndContractPhasesAndTheirOrder) {
  write("1_init.sql", "create table workflows (id bigint primary key, legacy text);");
  ASSERT_TRUE(apply(req_, Selection::kAll).ok());
  write("2_add.sql", "alter table workflows add column title text;");
  write("3_drop.sql",
        "-- meshdeploy:allow ban-drop-column v2 no longer reads it\nalter table workflows drop "
        "column legacy;");
  auto p = plan(req_);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->verdict.ok) << p->verdict.reasons.front();
  ASSERT_EQ(p->expand().size(), 1u);
  ASSERT_EQ(p->contract().size(), 1u);
  ApplyReport c0 = apply(req_, Selection::kContract);
  EXPECT_FALSE(c0.ok());  // expand still pending
  ApplyReport e = apply(req_, Selection::kExpand);
  ASSERT_TRUE(e.ok()) << e.error->what();
  ASSERT_EQ(e.applied.size(), 1u);
  EXPECT_EQ(one("select count(*) from information_schema.columns where table_name = 'workflows'"),
            "3");
  ApplyReport c = apply(req_, Selection::kContract);
  ASSERT_TRUE(c.ok()) << c.error->what();
  EXPECT_EQ(one("select count(*) from information_schema.columns where table_name = 'workflows'"),
            "2");
  // a contract file before an expand file is refused for a deploy
  write("4_drop2.sql", "-- meshdeploy:phase contract\ndrop function if exists nothing();");
  write("5_add2.sql", "alter table workflows add column note text;");
  auto p2 = plan(req_);
  ASSERT_TRUE(p2);
  EXPECT_FALSE(p2->verdict.ok);
  EXPECT_NE(
      p2->verdict.reasons[0].find("contract file 4_drop2.sql precedes expand file 5_add2.sql"),
      std::string::npos);
  EXPECT_FALSE(apply(req_, Selection::kExpand).ok());
  EXPECT_EQ(one("select count(*) from supabase_migrations.schema_migrations"), "3");
  EXPECT_TRUE(apply(req_, Selection::kAll).ok());
}

TEST_F(MigrateDb, LintFindingsRefuseTheVerdictUnlessAcknowledged) {
  write("1_init.sql", "create table workflows (id bigint primary key, name text);");
  ASSERT_TRUE(apply(req_, Selection::kAll).ok());
  write("2_idx.sql", "create index wf_name on workflows (name);");
  auto p = plan(req_);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->verdict.ok);
  EXPECT_NE(p->verdict.reasons[0].find("2_idx.sql:1: require-concurrent-index-creation"),
            std::string::npos);
  write("2_idx.sql",
        "-- meshdeploy:allow require-concurrent-index-creation table has 10 rows\n"
        "create index wf_name on workflows (name);");
  auto p2 = plan(req_);
  ASSERT_TRUE(p2);
  EXPECT_TRUE(p2->verdict.ok);
}

TEST_F(MigrateDb, TenConcurrentRunnersApplyEachMigrationOnce) {
  write("1_init.sql", "create table counter (n int); insert into counter values (0);");
  for (int i = 2; i <= 6; ++i)
    write(std::to_string(i) + "_bump.sql", "update counter set n = n + 1;\nselect pg_sleep(0.02);");
  write("7_idx.sql", "create index concurrently counter_n on counter (n);");
  std::atomic<int> ok{0}, applied{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 10; ++i)
    ts.emplace_back([&] {
      ApplyReport r = apply(req_, Selection::kAll);
      if (r.ok()) ++ok;
      applied += static_cast<int>(r.applied.size());
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(applied.load(), 7);
  EXPECT_EQ(one("select n from counter"), "5");
  EXPECT_EQ(one("select count(*) from supabase_migrations.schema_migrations"), "7");
}

TEST_F(MigrateDb, BaselineRecordsWithoutRunning) {
  write("1_a.sql", "create table a (id bigint);");
  write("2_b.sql", "create table b (id bigint);");
  auto added = baseline(req_, "1");
  ASSERT_TRUE(added) << added.error().what();
  EXPECT_EQ(*added, std::vector<std::string>{"1"});
  EXPECT_EQ(one("select to_regclass('a') is null"), "t");
  ApplyReport r = apply(req_, Selection::kAll);
  ASSERT_TRUE(r.ok()) << r.error->what();
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(r.applied[0].version, "2");
}

}  // namespace
}  // namespace md::migrate
