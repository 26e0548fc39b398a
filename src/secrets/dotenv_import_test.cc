// `secrets import`'s logic, apart from the command: what a dotenv file would
// import, what is refused (names only, never values), all or nothing.
#include <gtest/gtest.h>

#include "secrets/import.h"

namespace md::secrets {
namespace {

TEST(DotenvImport, LaterLinesWinEmptyValuesAreSkippedAndUnset) {
  auto plan = plan_dotenv_import(
      "A_TOKEN=first-value\nEMPTY=\nA_TOKEN=second-value\n"
      "GONE=will-be-unset\nGONE=\n",
      ".env.production");
  ASSERT_TRUE(plan) << plan.error().what();
  EXPECT_TRUE(plan->problems.empty());
  ASSERT_EQ(plan->values.size(), 1u);
  EXPECT_EQ(plan->values.at("A_TOKEN").reveal(), "second-value");
  EXPECT_EQ(plan->skipped, (std::vector<std::string>{"EMPTY", "GONE"}));
}

TEST(DotenvImport, RefusedNamesAndValuesAreProblemsWithFileAndLineNeverTheValue) {
  auto plan =
      plan_dotenv_import("OK_NAME=good-value\nBAD-NAME=secret-value-1\nSHORT=abc\n", ".env");
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->problems.size(), 2u);
  EXPECT_EQ(plan->problems[0].rfind(".env:2: ", 0), 0u) << plan->problems[0];
  EXPECT_EQ(plan->problems[1].rfind(".env:3: ", 0), 0u) << plan->problems[1];
  for (const auto& p : plan->problems) {
    EXPECT_EQ(p.find("secret-value-1"), std::string::npos) << p;
    EXPECT_EQ(p.find("abc"), std::string::npos) << p;
  }
  Vault v = Vault::create("unused.vault", "production", MasterKey::generate());
  auto done = apply_import(v, std::move(*plan), SysTime{});
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), Errc::kFailedPrecondition);
  EXPECT_TRUE(v.secrets().empty()) << "all or nothing";
}

TEST(DotenvImport, SyntaxErrorsAreErrorsNamingTheLine) {
  auto plan = plan_dotenv_import("A=ok-value-1\nB=\"unterminated\n", ".env");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(plan.error().what().find(".env:2"), std::string::npos) << plan.error().what();
}

TEST(DotenvImport, ApplySaysWhatWasAddedChangedAndUnchanged) {
  Vault v = Vault::create("unused.vault", "production", MasterKey::generate());
  ASSERT_TRUE(v.set("KEEP", Secret("same-value"), SysTime{}));
  ASSERT_TRUE(v.set("EDIT", Secret("old-value"), SysTime{}));
  auto plan = plan_dotenv_import("KEEP=same-value\nEDIT=new-value\nNEW_ONE=fresh-value\n", ".env");
  ASSERT_TRUE(plan);
  auto done = apply_import(v, std::move(*plan), SysTime{});
  ASSERT_TRUE(done) << done.error().what();
  EXPECT_EQ(done->added, std::vector<std::string>{"NEW_ONE"});
  EXPECT_EQ(done->changed, std::vector<std::string>{"EDIT"});
  EXPECT_EQ(done->unchanged, std::vector<std::string>{"KEEP"});
  EXPECT_EQ(v.secrets().at("EDIT").reveal(), "new-value");
}

}  // namespace
}  // namespace md::secrets
