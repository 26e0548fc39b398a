#include "migrate/lint.h"

#include <gtest/gtest.h>

#include "migrate/files.h"

namespace md::migrate {
namespace {

// Rules flagged for `sql` (one file), in order; acknowledged ones get a '+'.
std::vector<std::string> rules_of(std::string_view sql, int server_version = 150000) {
  AnalysisContext ctx;
  ctx.server_version = server_version;
  auto parsed = parse_file(FileRef{"1", "t", "1_t.sql", {}}, sql, ctx);
  EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().what());
  std::vector<std::string> out;
  if (!parsed) return out;
  for (const Finding& f : parsed->planned.findings()) {
    if (f.rule == "missing-lock-timeout") continue;
    out.push_back(f.rule + (f.acknowledged ? "+" : ""));
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Lint, ColumnDefaultsDependOnVolatilityAndVersion) {
  EXPECT_EQ(rules_of("alter table workflows add column n int default 0"), V{});
  EXPECT_EQ(rules_of("alter table workflows add column n int default 0", 100000),
            V{"adding-field-with-default"});
  EXPECT_EQ(rules_of("alter table workflows add column k uuid default gen_random_uuid()"),
            V{"adding-field-with-default"});
  EXPECT_EQ(rules_of("alter table workflows add column at timestamptz default now()"), V{});
  EXPECT_EQ(rules_of("alter table workflows add column n int not null"),
            V{"adding-required-field"});
  EXPECT_EQ(rules_of("alter table workflows add column id2 bigserial"), V{"adding-serial-column"});
}

TEST(Lint, IndexesAndConstraints) {
  EXPECT_EQ(rules_of("create index wr_idx on workflow_runs (workflow_id)"),
            V{"require-concurrent-index-creation"});
  EXPECT_EQ(rules_of("create index concurrently wr_idx on workflow_runs (workflow_id)"), V{});
  // a table created in the same file is new: no one waits on it
  EXPECT_EQ(rules_of("create table webhooks (id bigint primary key, url text); create index on "
                     "webhooks (url)"),
            V{});
  EXPECT_EQ(rules_of("drop index wr_idx"), V{"require-concurrent-index-deletion"});
  EXPECT_EQ(rules_of("alter table workflow_runs add constraint fk foreign key (wid) references "
                     "workflows (id)"),
            V{"constraint-missing-not-valid"});
  EXPECT_EQ(rules_of("alter table workflow_runs add constraint fk foreign key (wid) references "
                     "workflows (id) not valid;"
                     "alter table workflow_runs validate constraint fk"),
            V{});
  EXPECT_EQ(rules_of("alter table workflows add constraint c check (n > 0)"),
            V{"constraint-missing-not-valid"});
  EXPECT_EQ(rules_of("alter table workflows add constraint u unique (name)"),
            V{"disallowed-unique-constraint"});
  EXPECT_EQ(rules_of("alter table workflows add constraint u unique using index u_idx"), V{});
  EXPECT_EQ(rules_of("alter table workflows add primary key (id)"),
            V{"adding-primary-key-constraint"});
}

TEST(Lint, NotNullNeedsAValidatedCheckOn12Plus) {
  EXPECT_EQ(rules_of("alter table workflows alter column name set not null"),
            V{"adding-not-nullable-field"});
  EXPECT_EQ(rules_of("alter table workflows add constraint nn check (name is not null) not valid;"
                     "alter table workflows validate constraint nn;"
                     "alter table workflows alter column name set not null"),
            V{});
  EXPECT_EQ(rules_of("alter table workflows add constraint nn check (name is not null) not valid;"
                     "alter table workflows validate constraint nn;"
                     "alter table workflows alter column name set not null",
                     110000),
            V{"adding-not-nullable-field"});
}

TEST(Lint, DestructiveAndRewritingStatements) {
  EXPECT_EQ(rules_of("alter table workflows rename column name to title"), V{"renaming-column"});
  EXPECT_EQ(rules_of("alter table workflows rename to flows"), V{"renaming-table"});
  EXPECT_EQ(rules_of("alter table workflows drop column legacy"), V{"ban-drop-column"});
  EXPECT_EQ(rules_of("drop table webhooks"), V{"ban-drop-table"});
  EXPECT_EQ(rules_of("alter table workflows alter column n type bigint"),
            V{"changing-column-type"});
  EXPECT_EQ(rules_of("vacuum full workflows"), V{"ban-vacuum-full"});
  EXPECT_EQ(rules_of("vacuum analyze workflows"), V{});
  EXPECT_EQ(rules_of("cluster workflows using wf_pkey"), V{"ban-cluster"});
  EXPECT_EQ(rules_of("refresh materialized view stats"), V{"require-concurrent-refresh"});
  EXPECT_EQ(rules_of("refresh materialized view concurrently stats"), V{});
  EXPECT_EQ(rules_of("begin; create table t (id bigint); commit"),
            (V{"transaction-nesting", "transaction-nesting"}));
  EXPECT_EQ(rules_of("alter table workflows add column x int; update workflows set x = 1"),
            V{"unbatched-backfill"});
}

TEST(Lint, AllowCommentsAcknowledgeWithAReason) {
  EXPECT_EQ(rules_of("-- meshdeploy:allow ban-drop-column the old release stopped using it in v41\n"
                     "alter table workflows drop column legacy;"),
            V{"ban-drop-column+"});
  // without a reason it does not count
  EXPECT_EQ(
      rules_of("-- meshdeploy:allow ban-drop-column\nalter table workflows drop column legacy;"),
      V{"ban-drop-column"});
  // trailing on the statement's own line
  EXPECT_EQ(
      rules_of(
          "alter table workflows drop column legacy; -- meshdeploy:allow ban-drop-column unused\n"
          "alter table workflows drop column other;"),
      (V{"ban-drop-column+", "ban-drop-column"}));
}

TEST(Lint, WarningsForTypeChoices) {
  AnalysisContext ctx;
  auto parsed = parse_file(
      FileRef{"1", "t", "1_t.sql", {}},
      "create table webhooks (id serial primary key, body json, at timestamp, code char(2))", ctx);
  ASSERT_TRUE(parsed);
  V got;
  for (const Finding& f : parsed->planned.findings()) {
    EXPECT_EQ(f.severity, Severity::kWarning) << f.rule;
    got.push_back(f.rule);
  }
  EXPECT_EQ(got, (V{"prefer-bigint", "prefer-jsonb", "prefer-timestamptz", "ban-char-field"}));
}

TEST(Analyze, LocksPhasesAndTransactionality) {
  AnalysisContext ctx;
  auto parsed =
      parse_file(FileRef{"1", "t", "1_t.sql", {}},
                 "alter table workflows add column n int;\n"
                 "create index concurrently i on public.workflow_runs (a);\n"
                 "create policy p on workflows for select to authenticated using (true);\n"
                 "alter table workflow_runs add constraint f foreign key (w) references workflows "
                 "(id) not valid;\n"
                 "drop table old_stuff;\n",
                 ctx);
  ASSERT_TRUE(parsed);
  const auto& s = parsed->planned.statements;
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].locks[0].mode, LockMode::kAccessExclusive);
  EXPECT_EQ(s[0].locks[0].target, "public.workflows");
  EXPECT_FALSE(s[1].transactional);
  EXPECT_EQ(s[1].locks[0].mode, LockMode::kShareUpdateExclusive);
  EXPECT_EQ(s[2].locks[0].mode, LockMode::kAccessExclusive);
  ASSERT_EQ(s[3].locks.size(), 2u);
  for (const Lock& l : s[3].locks) EXPECT_EQ(l.mode, LockMode::kShareRowExclusive) << l.target;
  EXPECT_EQ(s[3].locks[0].target, "public.workflows");  // the referenced table
  EXPECT_EQ(s[3].locks[1].target, "public.workflow_runs");
  EXPECT_EQ(s[4].phase, Phase::kContract);
  EXPECT_EQ(parsed->planned.phase, Phase::kContract);
  EXPECT_FALSE(parsed->planned.transactional);
  EXPECT_EQ(parsed->roles.size(), 1u);
}

TEST(Analyze, RolesAndSchemasCreatedInDoBlocks) {
  AnalysisContext ctx;
  auto p = parse_file(
      FileRef{"1", "t", "1_t.sql", {}},
      "do $do$ begin if not exists (select 1 from pg_roles where rolname = 'authenticated') then "
      "create role authenticated nologin; end if; create schema if not exists private; end $do$;",
      ctx);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->created_roles, std::vector<std::string>{"authenticated"});
  EXPECT_EQ(p->created_schemas, std::vector<std::string>{"private"});
}

TEST(Analyze, DeclaredPhaseWinsAndBadDirectivesFail) {
  AnalysisContext ctx;
  auto p = parse_file(FileRef{"1", "t", "1_t.sql", {}},
                      "-- meshdeploy:phase expand\ndrop function if exists f();", ctx);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->planned.phase, Phase::kExpand);
  auto bad =
      parse_file(FileRef{"1", "t", "1_t.sql", {}}, "-- meshdeploy:phase later\nselect 1;", ctx);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("1_t.sql:1"), std::string::npos);
  auto psql = parse_file(FileRef{"1", "t", "1_t.sql", {}}, "select 1;\n\\i other.sql\n", ctx);
  ASSERT_FALSE(psql);
  EXPECT_NE(psql.error().message().find("1_t.sql:2: psql"), std::string::npos);
}

TEST(Analyze, NonTransactionalStatements) {
  for (const char* sql :
       {"vacuum workflows", "alter system set work_mem = '8MB'", "create database x",
        "reindex index concurrently i", "drop index concurrently i"}) {
    AnalysisContext ctx;
    auto p = parse_file(FileRef{"1", "t", "1_t.sql", {}}, sql, ctx);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->planned.transactional) << sql;
  }
  AnalysisContext old;
  old.server_version = 110000;
  auto e =
      parse_file(FileRef{"1", "t", "1_t.sql", {}}, "alter type status add value 'paused'", old);
  EXPECT_FALSE(e->planned.transactional);
  AnalysisContext cur;
  auto e2 =
      parse_file(FileRef{"1", "t", "1_t.sql", {}}, "alter type status add value 'paused'", cur);
  EXPECT_TRUE(e2->planned.transactional);
}

}  // namespace
}  // namespace md::migrate
