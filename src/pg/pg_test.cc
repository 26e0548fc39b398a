#include "pg/pg.h"

#include <gtest/gtest.h>

#include <fstream>

namespace md::pg {
namespace {

// The URL of the cluster the test command starts (ctest fixture "pg").
// A missing cluster is a failure, not a skip.
std::string test_url() {
  const char* f = std::getenv("MESHDEPLOY_TEST_PG_URL_FILE");
  EXPECT_NE(f, nullptr) << "MESHDEPLOY_TEST_PG_URL_FILE not set: run through ctest";
  std::ifstream in(f ? f : "");
  std::string url;
  std::getline(in, url);
  EXPECT_FALSE(url.empty()) << "no Postgres test cluster URL in " << (f ? f : "(unset)");
  return url;
}

TEST(PgArray, RoundTripsQuotedElements) {
  std::vector<std::string> items = {"create table a (x int);", "select 'a,b' \"q\"", "",
                                    "back\\slash"};
  auto parsed = parse_text_array(make_text_array(items));
  ASSERT_TRUE(parsed) << parsed.error().what();
  ASSERT_EQ(parsed->size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(*(*parsed)[i], items[i]);
  auto nulls = parse_text_array("{a,NULL,\"NULL\"}");
  ASSERT_TRUE(nulls);
  EXPECT_FALSE((*nulls)[1].has_value());
  EXPECT_EQ(*(*nulls)[2], "NULL");
  EXPECT_FALSE(parse_text_array("{\"open"));
  EXPECT_TRUE(parse_text_array("{}")->empty());
}

TEST(PgQuote, IdentifiersAndLiterals) {
  EXPECT_EQ(quote_ident("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(quote_literal("it's"), "'it''s'");
  EXPECT_EQ(quote_literal("a\\b"), "E'a\\\\b'");
}

TEST(PgRedact, HidesPasswords) {
  EXPECT_EQ(redact_url("postgres://app:s3cr3t@db:5432/x"), "postgres://app:***@db:5432/x");
  EXPECT_EQ(redact_url("host=db password=s3cr3t user=a"), "host=db password=*** user=a");
  EXPECT_EQ(redact_url("postgres://db/x?password=s3cr3t&sslmode=require"),
            "postgres://db/x?password=***&sslmode=require");
}

TEST(PgConnection, ExecWithParamsAndServerErrors) {
  auto c = Connection::connect(test_url());
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_GE(c->server_version(), 110000);
  auto r = c->exec("select $1::int + 1 as n, null::text as z", {"41"});
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r->at(0, "n"), "42");
  EXPECT_FALSE(r->at(0, "z").has_value());
  auto bad = c->exec("select * from no_such_table_xyz");
  ASSERT_FALSE(bad);
  EXPECT_EQ(c->last_server_error().sqlstate, "42P01");
  EXPECT_NE(bad.error().message().find("no_such_table_xyz"), std::string::npos);
  EXPECT_GT(c->last_server_error().position, 0);
  auto script = c->exec_script(
      "create temp table t (x int); insert into t values (1),(2); select count(*) from t");
  ASSERT_TRUE(script) << script.error().what();
  EXPECT_EQ(*script->rows[0][0], "2");
}

TEST(PgConnection, UnreachableServerIsRetryableAndRedacted) {
  auto c = Connection::connect("postgresql://u:topsecret@127.0.0.1:1/x", Millis(1000));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kUnavailable);
  EXPECT_TRUE(c.error().retryable());
  EXPECT_EQ(c.error().what().find("topsecret"), std::string::npos);
}

}  // namespace
}  // namespace md::pg
