// One suite, both backends: every behaviour of the Store contract.
#include "state/state.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "state/state_test_util.h"
#include "state/store_contract_test.h"

namespace md::state {
namespace contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Store, StoreTest, testing::Backends, testing::BackendNames);
}  // namespace contract

namespace {

using testing::PostgresBackend;
using testing::SqliteBackend;

// ---- pure parts ----------------------------------------------------------

TEST(StateUrl, PostgresSchemaParameterIsOurs) {
  auto t = internal::parse_pg_url("postgres://u@h/db?sslmode=require&schema=md_ci&x=1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->url, "postgres://u@h/db?sslmode=require&x=1");
  EXPECT_EQ(t->schema, "md_ci");
  auto d = internal::parse_pg_url("postgresql://h/db");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->schema, "meshdeploy");
  EXPECT_EQ(d->url, "postgresql://h/db");
  auto only = internal::parse_pg_url("postgresql://h/db?schema=s1");
  ASSERT_TRUE(only);
  EXPECT_EQ(only->url, "postgresql://h/db");
  for (const char* bad : {"postgres://h/db?schema=", "postgres://h/db?schema=A",
                          "postgres://h/db?schema=1a", "postgres://h/db?schema=a;drop"}) {
    auto r = internal::parse_pg_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  }
}

TEST(StateUrl, EnvironmentStoreIsRelativeToTheConfigFile) {
  config::Environment env;
  env.base_dir = "/srv/app";
  EXPECT_EQ(store_url(env), "sqlite:/srv/app/.meshdeploy/state.db");
  env.state = "sqlite:var/state.db";
  EXPECT_EQ(store_url(env), "sqlite:/srv/app/var/state.db");
  env.state = "/abs/state.db";
  EXPECT_EQ(store_url(env), "sqlite:/abs/state.db");
  env.state = "postgresql://u@db/x?schema=md";
  EXPECT_EQ(store_url(env), "postgresql://u@db/x?schema=md");
}

TEST(StateUrl, UnknownSchemeIsRefused) {
  auto r = open_store("mysql://h/db");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(open_store("").error().code(), Errc::kInvalidArgument);
}

TEST(StatePostgres, UnreachableServerIsRetryableAndHidesThePassword) {
  auto r = open_store("postgresql://u:topsecret@127.0.0.1:1/x?schema=s");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
  EXPECT_TRUE(r.error().retryable());
  EXPECT_EQ(r.error().what().find("topsecret"), std::string::npos) << r.error().what();
  EXPECT_NE(r.error().what().find("state store postgresql://u:***@127.0.0.1:1/x"),
            std::string::npos)
      << r.error().what();
}

TEST(StatePostgres, AuditTruncateIsRefused) {
  PostgresBackend pg;
  pg.set_up();
  FakeClock clock;
  auto s = pg.open(clock, internal::postgres_schema());
  ASSERT_TRUE(s) << s.error().what();
  ASSERT_TRUE((*s)->commit({.audit = {{0, {}, "ana", "secrets.set", "production", "K", ""}}}));
  auto t = pg.raw("TRUNCATE audit_log");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("audit_log is append-only: TRUNCATE refused"),
            std::string::npos)
      << t.error().message();
  EXPECT_EQ((*s)->audit("", 0)->size(), 1u);
  s->reset();
  pg.tear_down();
}

TEST(StateSqlite, NotADatabaseIsCorruption) {
  auto dir = testing::make_temp_dir();
  auto path = dir / "state.db";
  {
    std::ofstream out(path);
    out << "this is not a sqlite database, it is a text file of some length...........";
  }
  auto r = open_store(path.string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
  EXPECT_NE(r.error().what().find(path.string()), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(StateNames, StatusNamesRoundTrip) {
  for (auto s : {DeployStatus::kRunning, DeployStatus::kSucceeded, DeployStatus::kFailed,
                 DeployStatus::kRolledBack})
    EXPECT_EQ(parse_status(status_name(s)), s);
  EXPECT_FALSE(parse_status("paused"));
  for (auto s : {OutboxStatus::kPending, OutboxStatus::kDelivered, OutboxStatus::kFailed})
    EXPECT_EQ(parse_outbox_status(outbox_status_name(s)), s);
}

}  // namespace
}  // namespace md::state
