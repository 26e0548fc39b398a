// What the analysis sees inside DO blocks and the functions a file calls,
// and the plan built from it (pure: no database).
#include "migrate/statement.h"

#include <gtest/gtest.h>

#include "migrate/files.h"
#include "migrate/planner.h"
#include "migrate/report.h"

// WHY: libpg_query 15-4.0.0 (Debian 12) does not free its 1-byte stderr
// buffer when a PL/pgSQL body fails to compile: a bounded leak in the library,
// not ours. LeakSanitizer reads this hook from the program it runs in.
extern "C" const char* __lsan_default_suppressions() { return "leak:pg_query_raw_parse\n"; }

namespace md::migrate {
namespace {

using V = std::vector<std::string>;

ParsedFile parse(std::string_view sql, const char* name = "3_t.sql") {
  AnalysisContext ctx;
  auto p = parse_file(FileRef{"3", "t", name, {}}, sql, ctx);
  EXPECT_TRUE(p) << (p ? "" : p.error().what());
  return p ? std::move(*p) : ParsedFile{};
}

// "MODE on target" for each lock of a statement.
V locks_of(const PlannedStatement& s) {
  V out;
  for (const Lock& l : s.locks)
    out.push_back(std::string(lock_mode_name(l.mode)) + " on " + l.target);
  return out;
}

// "line:rule" of each finding except missing-lock-timeout.
V findings_of(const ParsedFile& p) {
  V out;
  for (const Finding& f : p.planned.findings())
    if (f.rule != "missing-lock-timeout") out.push_back(std::to_string(f.line) + ":" + f.rule);
  return out;
}

// MeshHook's migration 3: a table copied and dropped with CASCADE inside DO blocks.
constexpr const char* kMeshHook3 =
    "set lock_timeout = '3s';\n"                                                        // 1
    "do $$\n"                                                                           // 2
    "begin\n"                                                                           // 3
    "  create table public.workflow_runs_new as select * from public.workflow_runs;\n"  // 4
    "  insert into public.workflow_runs_new select * from public.workflow_runs\n"       // 5
    "    where id > 100;\n"                                                             // 6
    "end\n"                                                                             // 7
    "$$;\n"                                                                             // 8
    "do $$\n"                                                                           // 9
    "begin\n"                                                                           // 10
    "  drop table public.workflow_runs cascade;\n"                                      // 11
    "  alter table public.workflow_runs_new rename to workflow_runs;\n"                 // 12
    "end\n"                                                                             // 13
    "$$;\n";                                                                            // 14

TEST(Bodies, DoBlocksThatCopyAndDropATableAreSeen) {
  ParsedFile p = parse(kMeshHook3);
  const auto& s = p.planned.statements;
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(locks_of(s[1]), (V{"ACCESS SHARE on public.workflow_runs",
                               "ROW EXCLUSIVE on public.workflow_runs_new"}));
  EXPECT_TRUE(s[1].locks[1].new_object);
  EXPECT_EQ(s[1].phase, Phase::kExpand);
  EXPECT_EQ(locks_of(s[2]), (V{"ACCESS EXCLUSIVE on public.workflow_runs",
                               "ACCESS EXCLUSIVE on public.workflow_runs_new"}));
  EXPECT_EQ(s[2].phase, Phase::kContract);
  EXPECT_EQ(p.planned.phase, Phase::kContract);
  EXPECT_EQ(findings_of(p), V{"11:ban-drop-table"});
  EXPECT_TRUE(s[2].blind_spots.empty());
}

TEST(Bodies, PlanNoLongerSaysNoLockForDoBlocks) {
  PlanInput in;
  in.files.push_back(LoadedFile{FileRef{"3", "copy", "3_copy.sql", {}}, kMeshHook3});
  auto plan = make_plan(in);
  ASSERT_TRUE(plan);
  std::string text = plan_text(*plan);
  EXPECT_NE(text.find("line 9: DO\n      transactional; ACCESS EXCLUSIVE on public.workflow_runs"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("3_copy.sql:11: error ban-drop-table: DROP TABLE public.workflow_runs"),
            std::string::npos)
      << text;
}

TEST(Bodies, AFunctionDefinedInTheFileIsAnalysedWhereItIsCalled) {
  ParsedFile p = parse(
      "create function archive_runs() returns void language plpgsql as $$\n"                 // 1
      "begin\n"                                                                              // 2
      "  delete from public.workflow_runs where started_at < now() - interval '90 days';\n"  // 3
      "  truncate public.webhooks;\n"                                                        // 4
      "end $$;\n"                                                                            // 5
      "select public.archive_runs();\n"                                                      // 6
      "do $$ begin perform archive_runs(); end $$;\n");                                      // 7
  const auto& s = p.planned.statements;
  ASSERT_EQ(s.size(), 3u);
  EXPECT_TRUE(s[0].locks.empty());  // defining it runs nothing
  EXPECT_EQ(s[0].phase, Phase::kExpand);
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(locks_of(s[i]),
              (V{"ROW EXCLUSIVE on public.workflow_runs", "ACCESS EXCLUSIVE on public.webhooks"}))
        << i;
    EXPECT_EQ(s[i].phase, Phase::kContract) << i;
  }
  ASSERT_EQ(findings_of(p), (V{"4:ban-truncate", "4:ban-truncate"}));
  EXPECT_NE(s[1].findings[0].message.find(
                "in public.archive_runs() called at 3_t.sql:6: TRUNCATE public.webhooks"),
            std::string::npos)
      << s[1].findings[0].message;
}

TEST(Bodies, SqlFunctionsAndRecursionAreFollowedOnce) {
  ParsedFile p = parse(
      "create function f() returns void language sql as $$ delete from workflows; $$;\n"
      "create function g() returns void language plpgsql as $$ begin perform f(); perform g(); end "
      "$$;\n"
      "select g();\n");
  EXPECT_EQ(locks_of(p.planned.statements[2]), V{"ROW EXCLUSIVE on public.workflows"});
  EXPECT_TRUE(p.planned.statements[2].blind_spots.empty());
}

TEST(Bodies, DynamicSqlIsAWarningAndNeverNoLock) {
  ParsedFile p = parse("do $$\nbegin\n  execute format('drop table %I', 'webhooks');\nend $$;\n");
  const PlannedStatement& s = p.planned.statements[0];
  ASSERT_EQ(s.blind_spots.size(), 1u);
  EXPECT_NE(s.blind_spots[0].find("line 3: EXECUTE of SQL built at run time"), std::string::npos);
  ASSERT_EQ(findings_of(p), V{"3:unanalysed-sql"});
  EXPECT_EQ(s.findings[0].severity, Severity::kWarning);
  PlanInput in;
  in.files.push_back(LoadedFile{FileRef{"1", "dyn", "1_dyn.sql", {}}, s.text + ";"});
  auto plan = make_plan(in);
  ASSERT_TRUE(plan);
  std::string text = plan_text(*plan);
  EXPECT_EQ(text.find("no lock on existing tables"), std::string::npos) << text;
  EXPECT_NE(text.find("locks UNKNOWN"), std::string::npos) << text;
  EXPECT_NE(plan_json(*plan, Scope::kPending).find("\"blind_spots\""), std::string::npos);
  // a constant string is read like written SQL
  EXPECT_EQ(findings_of(parse("do $$ begin execute 'drop table webhooks'; end $$;")),
            V{"1:ban-drop-table"});
}

TEST(Bodies, UnparsableSqlIsABlindSpotNotAnError) {
  ParsedFile p = parse("create tabel x (id int);");
  EXPECT_EQ(findings_of(p), V{"1:unanalysed-sql"});
  EXPECT_EQ(p.planned.statements[0].blind_spots.size(), 1u);
  ParsedFile b = parse("do $$ begin for r in select 1 loop null; end loop; end $$;");
  EXPECT_EQ(findings_of(b), V{"1:unanalysed-sql"});
}

TEST(Lint, InlineCheckOnAddColumnIsFlagged) {
  ParsedFile p = parse("alter table workflows add column retries int check (retries >= 0);");
  ASSERT_EQ(findings_of(p), V{"1:constraint-missing-not-valid"});
  EXPECT_NE(
      p.planned.findings()[0].message.find("inline CHECK on new column public.workflows.retries"),
      std::string::npos);
  EXPECT_EQ(findings_of(parse(
                "create table t (id bigint);\nalter table t add column n int check (n > 0);")),
            V{});
}

TEST(Phase, DropViewThenCreateViewInOneTransactionIsExpand) {
  EXPECT_EQ(parse("drop view public.run_stats;\ncreate view public.run_stats as select 1 as n;")
                .planned.phase,
            Phase::kExpand);
  EXPECT_EQ(
      parse("drop view if exists run_stats;\ncreate or replace view run_stats as select 1 as n;")
          .planned.phase,
      Phase::kExpand);
  EXPECT_EQ(parse("drop view run_stats;").planned.phase, Phase::kContract);
  EXPECT_EQ(parse("drop view run_stats;\ncreate view other as select 1;").planned.phase,
            Phase::kContract);
  // CASCADE drops the views that depend on it for good
  EXPECT_EQ(parse("drop view run_stats cascade;\ncreate view run_stats as select 1;").planned.phase,
            Phase::kContract);
  // outside a transaction the old release can see it missing
  EXPECT_EQ(parse("drop view run_stats;\ncreate view run_stats as select 1;\nvacuum workflows;")
                .planned.phase,
            Phase::kContract);
}

Observed applied_up_to(const char* version) {
  Observed o;
  o.server_version = 150000;
  o.supabase[version] = SupabaseRow{"init", {}};
  o.schemas = {"public"};
  o.available_extensions = {"pgcrypto"};
  return o;
}

TEST(Planner, PhaseOrderHintOffersTheDirectiveNotRenumbering) {
  PlanInput in;
  in.files.push_back(
      LoadedFile{FileRef{"1", "init", "1_init.sql", {}}, "create table workflows (id bigint);"});
  in.files.push_back(LoadedFile{FileRef{"2", "drop", "2_drop.sql", {}},
                                "-- meshdeploy:allow ban-drop-column unused since v3\n"
                                "alter table workflows drop column legacy;"});
  in.files.push_back(LoadedFile{FileRef{"3", "add", "3_add.sql", {}},
                                "alter table workflows add column note text;"});
  in.observed = applied_up_to("1");
  auto p = make_plan(in);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->problems.size(), 1u);
  const Problem& pr = p->problems[0];
  EXPECT_EQ(pr.code, "phase-order");
  EXPECT_EQ(pr.where(), "2_drop.sql:2: ");
  EXPECT_NE(pr.fix.find("'-- meshdeploy:phase expand'"), std::string::npos) << pr.fix;
  EXPECT_NE(pr.fix.find("do not renumber"), std::string::npos) << pr.fix;
  EXPECT_EQ(pr.fix.find("give it a version"), std::string::npos) << pr.fix;
}

TEST(Planner, BlockersListMissingExtensionsAndLintTogetherWithFileAndLine) {
  PlanInput in;
  in.files.push_back(LoadedFile{FileRef{"1", "init", "1_init.sql", {}},
                                "create table workflows (id bigint, n text);"});
  in.files.push_back(LoadedFile{FileRef{"2", "queue", "2_queue.sql", {}},
                                "set lock_timeout = '3s';\ncreate extension if not exists pgmq;\n"
                                "create index wf_n on workflows (n);\n"});
  in.observed = applied_up_to("1");
  auto p = make_plan(in);
  ASSERT_TRUE(p);
  V b = blockers(*p, Selection::kAll, true);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].rfind("missing-extension: 2_queue.sql:2: extension \"pgmq\" is not available", 0),
            0u)
      << b[0];
  EXPECT_EQ(b[1].rfind("lint: 2_queue.sql:3: require-concurrent-index-creation", 0), 0u) << b[1];
  EXPECT_EQ(blockers(*p, Selection::kAll, false).size(), 1u);
}

}  // namespace
}  // namespace md::migrate
