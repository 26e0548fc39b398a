// `meshdeploy secrets ...` as a user meets it: driven through md::cli::run
// with string streams, on a real vault file and a real (SQLite) state store.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "core/fs.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;

using testing::make_temp_dir;
using testing::Ran;
using testing::run_cli;

class SecretsCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("secrets-cli");
    config_ = (dir_ / "meshdeploy.yml").string();
    ASSERT_TRUE(fs::atomic_write(config_, R"(app: meshhook
defaults:
  services:
    web: {command: node build/index.js}
environments:
  staging: {}
  production: {}
)"));
    vault_ = dir_ / ".meshdeploy" / "secrets" / "production.vault";
    ::setenv("MESHDEPLOY_KEY_PRODUCTION", key_.reveal_text().c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
    sfs::remove_all(dir_);
  }

  // `secrets <verb> --env production -c <config> extra...`
  Ran secrets(const std::string& verb, std::vector<std::string> extra = {},
              const std::string& input = "") {
    std::vector<std::string> args = {"secrets", verb, "--env", "production", "-c", config_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, input);
  }
  std::vector<state::AuditEntry> audit() {
    auto store = state::open_store("sqlite:" + (dir_ / ".meshdeploy" / "state.db").string());
    EXPECT_TRUE(store) << store.error().what();
    auto a = (*store)->audit("production", 0);
    EXPECT_TRUE(a);
    return *a;
  }
  std::string vault_text() { return *fs::read_file(vault_); }

  sfs::path dir_, vault_;
  std::string config_;
  secrets::MasterKey key_ = secrets::MasterKey::generate();
};

TEST_F(SecretsCmdTest, KeygenPrintsExactlyWhatTheVariableAccepts) {
  Ran r = run_cli({"secrets", "keygen", "--env", "production"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(r.out.ends_with("\n"));
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1);  // one line, nothing else on stdout
  auto k = secrets::MasterKey::parse(r.out.substr(0, r.out.size() - 1));
  ASSERT_TRUE(k);
  EXPECT_NE(r.err.find("MESHDEPLOY_KEY_PRODUCTION"), std::string::npos);

  std::string out = (dir_ / "keys" / "production.key").string();
  Ran w = run_cli({"secrets", "keygen", "--out", out});
  ASSERT_EQ(w.code, 0) << w.err;
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*fs::read_file(out), w.out);
  Ran again = run_cli({"secrets", "keygen", "--out", out});
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("refusing to overwrite"), std::string::npos);
  EXPECT_EQ(*fs::read_file(out), w.out);
}

TEST_F(SecretsCmdTest, SetGetListRmRoundTripWithAudit) {
  Ran set = secrets("set", {"DATABASE_URL"}, "postgres://app:s3cr3t@db/app\n");
  ASSERT_EQ(set.code, 0) << set.err;
  EXPECT_EQ(set.out, "DATABASE_URL added in " + vault_.string() + "\n");
  EXPECT_EQ(set.out.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(vault_text().find("s3cr3t"), std::string::npos);

  Ran get = secrets("get", {"DATABASE_URL"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, "postgres://app:s3cr3t@db/app\n");  // one trailing newline stripped, one added

  EXPECT_EQ(secrets("set", {"DATABASE_URL"}, "postgres://app:s3cr3t@db/app\n").out,
            "DATABASE_URL unchanged in " + vault_.string() + "\n");
  ASSERT_EQ(secrets("set", {"API_TOKEN"}, "tok_live_123456").code, 0);
  ASSERT_EQ(secrets("set", {"API_TOKEN"}, "tok_live_654321\r\n").code, 0);
  EXPECT_EQ(secrets("get", {"API_TOKEN"}).out, "tok_live_654321\n");

  Ran list = secrets("list");
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_TRUE(list.out.starts_with("API_TOKEN     20")) << list.out;
  EXPECT_NE(list.out.find("\nDATABASE_URL  20"), std::string::npos) << list.out;

  Ran rm = secrets("rm", {"API_TOKEN"});
  ASSERT_EQ(rm.code, 0) << rm.err;
  Ran gone = secrets("get", {"API_TOKEN"});
  EXPECT_EQ(gone.code, 5);
  EXPECT_NE(gone.err.find("no secret API_TOKEN in vault"), std::string::npos);
  EXPECT_EQ(secrets("rm", {"API_TOKEN"}).code, 5);

  auto trail = audit();
  ASSERT_EQ(trail.size(), 4u);  // newest first; the unchanged set left no entry
  EXPECT_EQ(trail[0].action, "secrets.rm");
  EXPECT_EQ(trail[0].target, "API_TOKEN");
  EXPECT_EQ(trail[1].detail, R"({"change":"changed"})");
  EXPECT_EQ(trail[3].action, "secrets.set");
  EXPECT_EQ(trail[3].target, "DATABASE_URL");
  EXPECT_NE(trail[3].actor.find('@'), std::string::npos);
  for (const auto& e : trail) {
    EXPECT_EQ(e.detail.find("s3cr3t"), std::string::npos);
    EXPECT_EQ(e.detail.find("tok_live"), std::string::npos);
  }
}

TEST_F(SecretsCmdTest, SetRefusesEmptyShortAndArgvValues) {
  Ran empty = secrets("set", {"TOKEN"}, "\n");
  EXPECT_EQ(empty.code, 2);
  EXPECT_NE(empty.err.find("secret TOKEN is empty"), std::string::npos) << empty.err;
  Ran shrt = secrets("set", {"PIN"}, "123\n");
  EXPECT_EQ(shrt.code, 2);
  EXPECT_NE(shrt.err.find("at least 4 bytes"), std::string::npos) << shrt.err;
  Ran argv = secrets("set", {"TOKEN", "value-on-the-command-line"});
  EXPECT_EQ(argv.code, 2);
  Ran name = secrets("set", {"not-a-name"}, "value1234");
  EXPECT_EQ(name.code, 2);
  EXPECT_FALSE(sfs::exists(vault_));
}

TEST_F(SecretsCmdTest, WrongKeyTamperingAndNoKey) {
  ASSERT_EQ(secrets("set", {"API_TOKEN"}, "tok_live_123456").code, 0);
  std::string before = vault_text();

  ::setenv("MESHDEPLOY_KEY_PRODUCTION", secrets::MasterKey::generate().reveal_text().c_str(), 1);
  Ran wrong = secrets("set", {"OTHER"}, "other-value");
  EXPECT_EQ(wrong.code, 6);
  EXPECT_NE(wrong.err.find("wrong key for vault " + vault_.string()), std::string::npos);
  EXPECT_EQ(vault_text(), before);

  ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
  Ran nokey = secrets("get", {"API_TOKEN"});
  EXPECT_EQ(nokey.code, 5);
  EXPECT_NE(nokey.err.find("set MESHDEPLOY_KEY_PRODUCTION"), std::string::npos);
  Ran names = secrets("list");  // names are readable without the key
  EXPECT_EQ(names.code, 0);
  EXPECT_TRUE(names.out.starts_with("API_TOKEN  ")) << names.out;
  EXPECT_NE(names.err.find("without verifying"), std::string::npos);

  ::setenv("MESHDEPLOY_KEY_PRODUCTION", key_.reveal_text().c_str(), 1);
  std::string tampered = before;
  tampered[tampered.find("secret API_TOKEN") + 7] = 'B';
  ASSERT_TRUE(fs::atomic_write(vault_, tampered));
  Ran bad = secrets("get", {"BPI_TOKEN"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("checksum mismatch"), std::string::npos) << bad.err;
  EXPECT_EQ(vault_text(), tampered);
}

TEST_F(SecretsCmdTest, ImportDotenvReportsNamesNeverValuesAllOrNothing) {
  std::string env_file = (dir_ / ".env.production").string();
  ASSERT_TRUE(fs::atomic_write(env_file,
                               "# MeshHook production\n"
                               "export DATABASE_URL=postgres://app:pw-123@db/app\n"
                               "SUPABASE_SERVICE_ROLE_KEY='eyJhbGciOiJIUzI1NiJ9.e30.sig'\n"
                               "PRIVATE_KEY=\"-----BEGIN KEY-----\nMIIEabcd\n-----END KEY-----\"\n"
                               "OPTIONAL=\n"));
  Ran r = secrets("import", {env_file});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("added (3): DATABASE_URL PRIVATE_KEY SUPABASE_SERVICE_ROLE_KEY"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("skipped, empty (1): OPTIONAL"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("pw-123"), std::string::npos);
  EXPECT_EQ(secrets("get", {"PRIVATE_KEY"}).out,
            "-----BEGIN KEY-----\nMIIEabcd\n-----END KEY-----\n");

  ASSERT_TRUE(fs::atomic_write(env_file,
                               "DATABASE_URL=postgres://app:pw-456@db/app\n"
                               "SUPABASE_SERVICE_ROLE_KEY='eyJhbGciOiJIUzI1NiJ9.e30.sig'\n"));
  Ran again = secrets("import", {env_file});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("changed (1): DATABASE_URL"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("unchanged (1): SUPABASE_SERVICE_ROLE_KEY"), std::string::npos);
  EXPECT_EQ(audit().size(), 4u);

  std::string before = vault_text();
  ASSERT_TRUE(fs::atomic_write(env_file,
                               "GOOD=a-good-value\n"
                               "PIN=12\n"
                               "bad-name=whatever-value\n"));
  Ran bad = secrets("import", {env_file});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find(".env.production:2: secret PIN is 2 bytes long"), std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find(".env.production:3: secret name 'bad-name'"), std::string::npos);
  EXPECT_NE(bad.err.find("nothing was imported"), std::string::npos);
  EXPECT_EQ(vault_text(), before);
  EXPECT_EQ(secrets("get", {"GOOD"}).code, 5);
}

TEST_F(SecretsCmdTest, RotateKeyFromStdinOrPrivateFile) {
  ASSERT_EQ(secrets("set", {"API_TOKEN"}, "tok_live_123456").code, 0);
  secrets::MasterKey next = secrets::MasterKey::generate();
  Ran same = secrets("rotate-key", {}, key_.reveal_text());
  EXPECT_EQ(same.code, 2);
  Ran r = secrets("rotate-key", {}, next.reveal_text() + "\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("re-encrypted 1 secret(s) of production under key id " + next.id()),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("mdk1_"), std::string::npos);
  EXPECT_EQ(secrets("get", {"API_TOKEN"}).code, 6);  // the old key no longer opens it
  ::setenv("MESHDEPLOY_KEY_PRODUCTION", next.reveal_text().c_str(), 1);
  EXPECT_EQ(secrets("get", {"API_TOKEN"}).out, "tok_live_123456\n");

  std::string file = (dir_ / "next.key").string();
  secrets::MasterKey third = secrets::MasterKey::generate();
  ASSERT_TRUE(fs::atomic_write(file, third.reveal_text(), 0644));
  Ran loose = secrets("rotate-key", {"--new-key-file", file});
  EXPECT_EQ(loose.code, 6);
  ::chmod(file.c_str(), 0600);
  ASSERT_EQ(secrets("rotate-key", {"--new-key-file", file}).code, 0);
  ::setenv("MESHDEPLOY_KEY_PRODUCTION", third.reveal_text().c_str(), 1);
  EXPECT_EQ(secrets("get", {"API_TOKEN"}).out, "tok_live_123456\n");
  auto trail = audit();
  ASSERT_FALSE(trail.empty());
  EXPECT_EQ(trail[0].action, "secrets.rotate_key");
  EXPECT_NE(trail[0].detail.find(third.id()), std::string::npos);
  EXPECT_EQ(trail[0].detail.find("mdk1_"), std::string::npos);
}

}  // namespace
}  // namespace md::cli
