#include <gtest/gtest.h>

#include "config/config.h"

namespace md::config {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs parse(std::string_view text) {
  auto r = parse_dotenv(text, ".env.test");
  EXPECT_TRUE(r) << r.error().what();
  Pairs out;
  if (r)
    for (const DotenvEntry& e : *r) out.emplace_back(e.key, e.value);
  return out;
}

std::string parse_error(std::string_view text) {
  auto r = parse_dotenv(text, ".env.test");
  EXPECT_FALSE(r);
  if (r) return "";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  return r.error().what();
}

TEST(Dotenv, PlainValuesCommentsExportAndEmpty) {
  EXPECT_EQ(parse("# a comment\n"
                  "\n"
                  "BASIC=basic\n"
                  "export EXPORTED=yes\n"
                  "  SPACED  =  padded value  \n"
                  "EMPTY=\n"
                  "INLINE=value # a comment\n"
                  "HASH=pa#ss\n"
                  "URL=postgres://u:p@db:5432/app?sslmode=require\n"
                  "EQUALS=a=b=c\n"
                  "dotted.key-name=1\n"),
            (Pairs{{"BASIC", "basic"},
                   {"EXPORTED", "yes"},
                   {"SPACED", "padded value"},
                   {"EMPTY", ""},
                   {"INLINE", "value"},
                   {"HASH", "pa#ss"},
                   {"URL", "postgres://u:p@db:5432/app?sslmode=require"},
                   {"EQUALS", "a=b=c"},
                   {"dotted.key-name", "1"}}));
}

TEST(Dotenv, Quotes) {
  EXPECT_EQ(parse("SINGLE='raw \\n $HOME # not a comment'\n"
                  "DOUBLE=\"line1\\nline2\\t\\\"q\\\" \\\\ \\$x\"\n"
                  "BACKTICK=`it's \"both\"`\n"
                  "TRAILING=\"v\"   # comment after quotes\n"
                  "ESCAPED_SINGLE='it\\'s'\n"
                  "UNKNOWN_ESCAPE=\"a\\qb\"\n"),
            (Pairs{{"SINGLE", "raw \\n $HOME # not a comment"},
                   {"DOUBLE", "line1\nline2\t\"q\" \\ $x"},
                   {"BACKTICK", "it's \"both\""},
                   {"TRAILING", "v"},
                   {"ESCAPED_SINGLE", "it's"},
                   {"UNKNOWN_ESCAPE", "a\\qb"}}));
}

TEST(Dotenv, MultiLineQuotedValuesAndLineNumbers) {
  auto r = parse_dotenv(
      "KEY1=one\n"
      "PRIVATE_KEY=\"-----BEGIN KEY-----\n"
      "abc\n"
      "-----END KEY-----\"\n"
      "SINGLE_ML='a\n"
      "b'\n"
      "AFTER=after\n",
      ".env");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[1].value, "-----BEGIN KEY-----\nabc\n-----END KEY-----");
  EXPECT_EQ((*r)[1].line, 2);
  EXPECT_EQ((*r)[2].value, "a\nb");
  EXPECT_EQ((*r)[2].line, 5);
  EXPECT_EQ((*r)[3].key, "AFTER");
  EXPECT_EQ((*r)[3].line, 7);
}

TEST(Dotenv, CrlfAndBomAndRepeatedKeys) {
  EXPECT_EQ(parse("\xEF\xBB\xBF"
                  "A=1\r\nB=\"x\r\ny\"\r\nA=2\r\n"),
            (Pairs{{"A", "1"}, {"B", "x\ny"}, {"A", "2"}}));
}

TEST(Dotenv, MalformedInputNamesSourceAndLineButNoValue) {
  EXPECT_EQ(parse_error("A=1\nthis line is a pasted s3cr3t\n"),
            ".env.test:2: expected '=' after the key this");
  EXPECT_EQ(parse_error("A=1\n=novalue\n"),
            ".env.test:2: expected KEY=VALUE (a key is letters, digits, '_', '.' and '-')");
  EXPECT_EQ(parse_error("A=1\nB=\"unterminated s3cr3t\nC=3\n"),
            ".env.test:2: unterminated double-quoted value (opened here)");
  EXPECT_EQ(parse_error("A='x' trailing-s3cr3t\n"),
            ".env.test:1: unexpected text after the closing single-quoted");
  for (const char* bad : {"A=1\nthis line is a pasted s3cr3t\n", "B=\"unterminated s3cr3t\n",
                          "A='x' trailing-s3cr3t\n"}) {
    auto r = parse_dotenv(bad, "f");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what().find("s3cr3t"), std::string::npos) << r.error().what();
  }
}

TEST(Dotenv, EmptyInput) {
  EXPECT_EQ(parse(""), Pairs{});
  EXPECT_EQ(parse("\n\n# only comments\n   \n"), Pairs{});
}

}  // namespace
}  // namespace md::config
