#include "migrate/lexer.h"

#include <gtest/gtest.h>

namespace md::migrate {
namespace {

std::vector<std::string> stmts(std::string_view sql) {
  SplitResult s = split(sql);
  EXPECT_EQ(s.lex.error, "") << sql;
  std::vector<std::string> out;
  for (const Piece& p : s.pieces)
    if (p.has_code) out.emplace_back(sql.substr(p.code_begin, p.code_end - p.code_begin));
  return out;
}

std::vector<int> lines(std::string_view sql) {
  std::vector<int> out;
  for (const Piece& p : split(sql).pieces)
    if (p.has_code) out.push_back(p.line);
  return out;
}

TEST(Splitter, DollarQuotedFunctionBodiesAndDoBlocks) {
  const char* sql = R"(-- workflows
create table workflows (id uuid primary key default gen_random_uuid(), name text);
create or replace function touch() returns trigger language plpgsql as $$
begin
  new.updated_at := now(); -- keep ; inside
  return new;
end;
$$;
do $body$ begin
  if not exists (select 1 from pg_roles where rolname = 'worker') then
    create role worker; end if;
end $body$;
select 1;)";
  auto s = stmts(sql);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].substr(0, 19), "create table workfl");
  EXPECT_EQ(s[1].substr(s[1].size() - 2), "$$");
  EXPECT_EQ(s[2].substr(0, 10), "do $body$ ");
  EXPECT_EQ(s[3], "select 1");
  EXPECT_EQ(lines(sql), (std::vector<int>{2, 3, 9, 13}));
}

TEST(Splitter, QuotesIdentifiersAndEscapeStrings) {
  auto s = stmts(
      "insert into \"we;ird\"\"t\" values ('a;b', E'it\\'s;', 'x''y;');"
      "select $1 ; select U&'d\\0061t;a'");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], "insert into \"we;ird\"\"t\" values ('a;b', E'it\\'s;', 'x''y;')");
  EXPECT_EQ(s[1], "select $1");
}

TEST(Splitter, StandardConformingStringsOff) {
  // With standard_conforming_strings off, \' escapes the quote in '' strings too.
  SplitResult off = split("select 'a\\';b'; select 2", false);
  int with_code = 0;
  for (const Piece& p : off.pieces) with_code += p.has_code;
  EXPECT_EQ(with_code, 2);
  SplitResult on = split("select 'a\\';b'; select 2", true);
  EXPECT_NE(on.lex.error, "");  // 'a\' then b'; select 2 is an open literal
}

TEST(Splitter, NestedBlockCommentsAndLineComments) {
  auto s = stmts("/* outer /* inner; */ still; */ select 1; -- trailing; comment\nselect 2");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], "select 1");
  EXPECT_EQ(s[1], "select 2");
}

TEST(Splitter, BeginAtomicBodies) {
  auto s = stmts(
      "create function add(a int, b int) returns int language sql begin atomic\n"
      "  select a + b;\n  select case when a > 0 then 1 else 2 end;\nend;\n"
      "create procedure p() language sql begin atomic insert into t values (1); end;\n"
      "begin; commit;");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].substr(s[0].size() - 3), "end");
  EXPECT_EQ(s[2], "begin");
}

TEST(Splitter, ParenthesesHoldSemicolons) {
  auto s = stmts(
      "create rule r as on insert to t do also (insert into a values (1); insert into b values "
      "(2)); select 1");
  EXPECT_EQ(s.size(), 2u);
}

TEST(Splitter, UnicodeQuotedIdentifierEndsAtItsOwnQuote) {
  // Found by migrate_splitter_fuzzer: the code of a statement ending in
  // U&"..." ran past its ';' into the next statement.
  EXPECT_EQ(stmts("select U&\"a\"\"b\"; select 2"),
            (std::vector<std::string>{"select U&\"a\"\"b\"", "select 2"}));
  EXPECT_EQ(stmts("select u&\"\"\"\"; select \"x\""),
            (std::vector<std::string>{"select u&\"\"\"\"", "select \"x\""}));
}

TEST(Splitter, PiecesCoverTheInputExactly) {
  std::string sql = "  -- c\nselect 1;;\n\nselect $$a;$$ ; /* x */";
  SplitResult s = split(sql);
  std::string joined;
  size_t at = 0;
  for (const Piece& p : s.pieces) {
    EXPECT_EQ(p.begin, at);
    joined += sql.substr(p.begin, p.end - p.begin);
    at = p.end;
  }
  EXPECT_EQ(joined, sql);
}

TEST(Splitter, UnterminatedConstructsAreReported) {
  EXPECT_NE(split("select $$ never closed").lex.error, "");
  EXPECT_NE(split("select 'open").lex.error, "");
  EXPECT_NE(split("/* open /* nested */").lex.error, "");
  EXPECT_EQ(split("select 1").lex.error, "");
  EXPECT_EQ(split("select $1::text, a$b from t").lex.error, "");
}

TEST(Splitter, SupabaseStatementsMatchTheCli) {
  std::string sql = "-- head\ncreate table a (x int);\n\ninsert into a values (1);;\n-- tail\n";
  SplitResult s = split(sql);
  auto sb = supabase_statements(sql, s);
  ASSERT_EQ(sb.size(), 3u);
  EXPECT_EQ(sb[0], "-- head\ncreate table a (x int)");
  EXPECT_EQ(sb[1], "insert into a values (1)");
  EXPECT_EQ(sb[2], "-- tail");
}

}  // namespace
}  // namespace md::migrate
