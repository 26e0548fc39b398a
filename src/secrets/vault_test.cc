// Keys and the vault file: round trip, wrong key, tampering of every kind,
// values moved between names or vaults, rotation, atomic writes.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "config/config.h"
#include "core/fs.h"
#include "secrets/crypto.h"
#include "secrets/secrets.h"

namespace md::secrets {
namespace {

namespace stdfs = std::filesystem;

class VaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (stdfs::temp_directory_path() / "md-vault-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    path_ = dir_ / ".meshdeploy" / "secrets" / "production.vault";
    ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
  }
  void TearDown() override {
    stdfs::remove_all(dir_);
    ::unsetenv("MESHDEPLOY_KEY_PRODUCTION");
  }
  std::string read() { return *fs::read_file(path_); }
  void write(const std::string& text) { ASSERT_TRUE(fs::atomic_write(path_, text)); }
  // Rewrites the file with a valid checksum, as someone holding the key could.
  void write_remac(std::string text) {
    size_t mac = text.rfind("mac ");
    text.resize(mac);
    text += "mac " + internal::vault_mac(text, key_) + "\n";
    write(text);
  }
  Vault saved_vault() {
    Vault v = Vault::create(path_, "production", key_);
    EXPECT_TRUE(v.set("DATABASE_URL", Secret("postgres://app:pw@db/app"), t0_));
    EXPECT_TRUE(v.set("API_TOKEN", Secret("tok-abcdef-123456"), t0_ + Millis(5)));
    EXPECT_TRUE(
        v.set("TLS_KEY", Secret("-----BEGIN KEY-----\nMIIE\x01\x02\n-----END KEY-----\n"), t0_));
    EXPECT_TRUE(v.save());
    return v;
  }
  void expect_refused(Errc code, const std::string& needle) {
    std::string before = read();
    auto v = Vault::open(path_, "production", key_);
    ASSERT_FALSE(v) << "opened despite: " << needle;
    EXPECT_EQ(v.error().code(), code) << v.error().what();
    EXPECT_NE(v.error().what().find(path_.string()), std::string::npos) << v.error().what();
    EXPECT_NE(v.error().what().find(needle), std::string::npos) << v.error().what();
    EXPECT_EQ(read(), before);  // never touched
  }

  stdfs::path dir_, path_;
  MasterKey key_ = MasterKey::generate();
  SysTime t0_ = from_unix_ms(1'763'802'000'123);
};

TEST(MasterKey, TextFormRoundTripsAndIsWhatTheVariableTakes) {
  MasterKey k = MasterKey::generate();
  std::string text = k.reveal_text();
  EXPECT_TRUE(text.starts_with("mdk1_"));
  EXPECT_EQ(text.size(), 5u + 43u);
  auto back = MasterKey::parse("  " + text + "\n");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->bytes(), k.bytes());
  EXPECT_EQ(back->id(), k.id());
  EXPECT_EQ(k.id().size(), 16u);
  EXPECT_NE(MasterKey::generate().id(), k.id());
  for (std::string bad :
       {std::string(""), std::string("mdk1_"), text.substr(5), "mdk2_" + text.substr(5),
        text.substr(0, 40), text + "AA", text.substr(0, 47) + "*"}) {
    auto r = MasterKey::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    if (bad.size() > 8) {
      EXPECT_EQ(r.error().what().find(bad.substr(5, 8)), std::string::npos);
    }
  }
}

TEST(MasterKey, EnvironmentVariableName) {
  EXPECT_EQ(key_env_var("production"), "MESHDEPLOY_KEY_PRODUCTION");
  EXPECT_EQ(key_env_var("staging-eu"), "MESHDEPLOY_KEY_STAGING_EU");
}

TEST_F(VaultTest, KeyFromVariableThenFileRefusingLooseModes) {
  auto none = load_key("production", {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::kNotFound);
  EXPECT_NE(none.error().message().find("set MESHDEPLOY_KEY_PRODUCTION"), std::string::npos);

  stdfs::path file = dir_ / "production.key";
  ASSERT_TRUE(fs::atomic_write(file, key_.reveal_text() + "\n", 0644));
  auto loose = load_key("production", file);
  ASSERT_FALSE(loose);
  EXPECT_EQ(loose.error().code(), Errc::kPermissionDenied);
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
  ::chmod(file.c_str(), 0620);
  EXPECT_EQ(load_key("production", file).error().code(), Errc::kPermissionDenied);
  ::chmod(file.c_str(), 0600);
  auto from_file = load_key("production", file);
  ASSERT_TRUE(from_file) << from_file.error().what();
  EXPECT_EQ(from_file->key.id(), key_.id());
  EXPECT_EQ(from_file->source, file.string());

  MasterKey other = MasterKey::generate();
  ::setenv("MESHDEPLOY_KEY_PRODUCTION", other.reveal_text().c_str(), 1);
  auto from_env = load_key("production", file);
  ASSERT_TRUE(from_env);
  EXPECT_EQ(from_env->key.id(), other.id());
  EXPECT_EQ(from_env->source, "MESHDEPLOY_KEY_PRODUCTION");

  ::setenv("MESHDEPLOY_KEY_PRODUCTION", "hunter2-not-a-key", 1);
  auto bad = load_key("production", file);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what().find("hunter2"), std::string::npos);
  EXPECT_NE(bad.error().what().find("MESHDEPLOY_KEY_PRODUCTION: not a meshdeploy key"),
            std::string::npos);
}

TEST_F(VaultTest, RoundTripKeepsValuesTimesAndReadableNames) {
  saved_vault();
  auto v = Vault::open(path_, "production", key_);
  ASSERT_TRUE(v) << v.error().what();
  EXPECT_EQ(v->get("DATABASE_URL")->reveal(), "postgres://app:pw@db/app");
  EXPECT_EQ(v->get("TLS_KEY")->reveal(), "-----BEGIN KEY-----\nMIIE\x01\x02\n-----END KEY-----\n");
  auto list = v->list();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].name, "API_TOKEN");
  EXPECT_EQ(list[0].updated_at, t0_ + Millis(5));
  EXPECT_EQ(list[2].name, "TLS_KEY");
  EXPECT_EQ(v->get("NOPE").error().code(), Errc::kNotFound);

  std::string text = read();
  EXPECT_NE(text.find("secret DATABASE_URL "), std::string::npos);
  EXPECT_NE(text.find("environment production\n"), std::string::npos);
  EXPECT_EQ(text.find("postgres://"), std::string::npos);
  EXPECT_EQ(text.find("tok-abcdef"), std::string::npos);
  auto peek = Vault::peek(path_);
  ASSERT_TRUE(peek);
  EXPECT_EQ(peek->size(), 3u);

  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  for (const auto& e : stdfs::directory_iterator(path_.parent_path()))
    EXPECT_EQ(e.path().filename(), "production.vault") << "left behind: " << e.path();
}

TEST_F(VaultTest, SetChecksNamesAndValuesAndReportsChanges) {
  Vault v = Vault::create(path_, "production", key_);
  EXPECT_EQ(v.set("9LIVES", Secret("value1"), t0_).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(v.set("A-B", Secret("value1"), t0_).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(v.set("", Secret("value1"), t0_).error().code(), Errc::kInvalidArgument);
  auto short_value = v.set("PIN", Secret("123"), t0_);
  ASSERT_FALSE(short_value);
  EXPECT_NE(short_value.error().message().find("at least 4 bytes"), std::string::npos);
  EXPECT_EQ(v.set("EMPTY", Secret(""), t0_).error().code(), Errc::kInvalidArgument);
  EXPECT_TRUE(*v.set("_OK_1", Secret("value1"), t0_));
  EXPECT_FALSE(*v.set("_OK_1", Secret("value1"), t0_ + Millis(1)));
  EXPECT_TRUE(*v.set("_OK_1", Secret("value2"), t0_ + Millis(2)));
  EXPECT_EQ(v.list()[0].updated_at, t0_ + Millis(2));
  EXPECT_TRUE(v.remove("_OK_1"));
  EXPECT_EQ(v.remove("_OK_1").error().code(), Errc::kNotFound);
}

TEST_F(VaultTest, WrongKeyIsPermissionDeniedAndLeavesTheFile) {
  saved_vault();
  std::string before = read();
  auto v = Vault::open(path_, "production", MasterKey::generate());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), Errc::kPermissionDenied);
  EXPECT_NE(v.error().what().find("wrong key for vault " + path_.string()), std::string::npos);
  EXPECT_EQ(read(), before);
}

TEST_F(VaultTest, TamperingOfAnyKindIsCorruption) {
  saved_vault();
  const std::string good = read();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  // A flipped character inside a sealed value.
  size_t value_at = good.find("secret API_TOKEN ") + 50;
  std::string flipped = good;
  flipped[value_at] = flipped[value_at] == 'A' ? 'B' : 'A';
  write(flipped);
  expect_refused(Errc::kCorruption, "checksum mismatch");
  // A renamed secret, a deleted line, an added comment, a changed time.
  write(replace("secret API_TOKEN", "secret API_TOKEM"));
  expect_refused(Errc::kCorruption, "checksum mismatch");
  size_t line = good.find("secret DATABASE_URL");
  write(std::string(good).erase(line, good.find('\n', line) + 1 - line));
  expect_refused(Errc::kCorruption, "checksum mismatch");
  write(replace("meshdeploy-vault 1\n", "meshdeploy-vault 1\n# hello\n"));
  expect_refused(Errc::kCorruption, "checksum mismatch");
  // Structure: truncated, no mac, text after mac, garbage, empty.
  write(good.substr(0, good.size() - 10));
  expect_refused(Errc::kCorruption, "no newline");
  write(good.substr(0, good.rfind("mac ")));
  expect_refused(Errc::kCorruption, "no mac line");
  write(good + "secret X 2026-01-01T00:00:00.000Z AAAA\n");
  expect_refused(Errc::kCorruption, "after the mac line");
  write("<<<<<<< HEAD\n" + good);
  expect_refused(Errc::kCorruption, ":1: not a meshdeploy vault");
  write("");
  expect_refused(Errc::kCorruption, "empty file");
  write(replace("environment production", "environment staging"));
  expect_refused(Errc::kCorruption, "belongs to environment staging, not production");
  write(replace("meshdeploy-vault 1", "meshdeploy-vault 2"));
  expect_refused(Errc::kFailedPrecondition, "format version 2; this meshdeploy reads version 1");
}

TEST_F(VaultTest, ValueCannotMoveToAnotherNameOrVault) {
  saved_vault();
  const std::string good = read();
  auto field = [&](const std::string& text, const std::string& name) {
    size_t at = text.find("secret " + name + " ");
    size_t sp = text.rfind(' ', text.find('\n', at));
    return std::pair{sp + 1, text.find('\n', at) - sp - 1};
  };
  // Swap the sealed values of two names; the checksum is made valid again
  // (an insider with the key), so only the per-value binding stands guard.
  auto [a, alen] = field(good, "API_TOKEN");
  auto [d, dlen] = field(good, "DATABASE_URL");
  std::string api = good.substr(a, alen), db = good.substr(d, dlen);
  std::string swapped = good;
  swapped.replace(d, dlen, api);
  swapped.replace(a, alen, db);  // API_TOKEN comes first in the file
  write_remac(swapped);
  expect_refused(Errc::kCorruption, "secret API_TOKEN does not decrypt");

  // A line from the staging vault (same key) pasted into production.
  stdfs::path staging = dir_ / "staging.vault";
  Vault s = Vault::create(staging, "staging", key_);
  ASSERT_TRUE(s.set("API_TOKEN", Secret("staging-token-1"), t0_));
  ASSERT_TRUE(s.save());
  std::string st = *fs::read_file(staging);
  auto [sa, salen] = field(st, "API_TOKEN");
  std::string pasted = good;
  pasted.replace(a, alen, st.substr(sa, salen));
  write_remac(pasted);
  expect_refused(Errc::kCorruption, "sealed under another name or vault");
}

TEST_F(VaultTest, RotationReencryptsEverythingUnderTheNewKey) {
  Vault v = saved_vault();
  std::string before = read();
  MasterKey next = MasterKey::generate();
  v.rekey(next);
  ASSERT_TRUE(v.save());
  std::string after = read();
  EXPECT_EQ(Vault::open(path_, "production", key_).error().code(), Errc::kPermissionDenied);
  auto reopened = Vault::open(path_, "production", next);
  ASSERT_TRUE(reopened) << reopened.error().what();
  EXPECT_EQ(reopened->secrets(), v.secrets());
  // No sealed value survives: every line but the names changed.
  for (const char* name : {"API_TOKEN", "DATABASE_URL", "TLS_KEY"}) {
    auto line = [&](const std::string& t) {
      size_t at = t.find(std::string("secret ") + name);
      return t.substr(at, t.find('\n', at) - at);
    };
    EXPECT_NE(line(before), line(after)) << name;
  }
}

TEST_F(VaultTest, OpenOrCreateAndMissingFiles) {
  EXPECT_EQ(Vault::open(path_, "production", key_).error().code(), Errc::kNotFound);
  EXPECT_EQ(Vault::peek(path_).error().code(), Errc::kNotFound);
  auto v = Vault::open_or_create(path_, "production", key_);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->list().empty());
  ASSERT_TRUE(v->save());  // an empty vault is a valid file
  auto again = Vault::open(path_, "production", key_);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_TRUE(again->secrets().empty());
}

TEST_F(VaultTest, LockSerialisesWritersAcrossProcesses) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = VaultLock::acquire(path_);
    char c = lock ? 'L' : 'E';
    (void)!::write(to_parent[1], &c, 1);
    (void)!::read(to_child[0], &c, 1);  // hold until told
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(to_parent[0], &c, 1), 1);
  ASSERT_EQ(c, 'L');
  auto busy = VaultLock::acquire(path_, Millis(100));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::kConflict);
  EXPECT_NE(busy.error().message().find("being changed by another meshdeploy process"),
            std::string::npos);
  ASSERT_EQ(::write(to_child[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  auto mine = VaultLock::acquire(path_, Millis(5000));
  EXPECT_TRUE(mine) << mine.error().what();
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
  // No lock file is left beside the vault (only the .gitignore for temps).
  for (const auto& e : stdfs::directory_iterator(path_.parent_path()))
    if (e.path().filename() != ".gitignore") ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(VaultTest, EnvironmentLocationAndLoading) {
  config::Environment env;
  env.name = "production";
  env.base_dir = dir_;
  VaultLocation loc = vault_location(env);
  EXPECT_EQ(loc.vault, path_);
  EXPECT_TRUE(loc.key_file.empty());
  env.vault = "vaults/prod.vault";
  env.key_file = "keys/prod.key";
  loc = vault_location(env);
  EXPECT_EQ(loc.vault, dir_ / "vaults/prod.vault");
  EXPECT_EQ(loc.key_file, dir_ / "keys/prod.key");

  env.vault.clear();
  env.key_file.clear();
  auto empty = load_secrets(env);  // no vault: no secrets, no key needed
  ASSERT_TRUE(empty) << empty.error().what();
  EXPECT_TRUE(empty->empty());
  saved_vault();
  EXPECT_EQ(load_secrets(env).error().code(), Errc::kNotFound);  // now a key is needed
  ::setenv("MESHDEPLOY_KEY_PRODUCTION", key_.reveal_text().c_str(), 1);
  auto loaded = load_secrets(env);
  ASSERT_TRUE(loaded) << loaded.error().what();
  EXPECT_EQ(loaded->at("API_TOKEN").reveal(), "tok-abcdef-123456");
}

// A `secrets set` killed mid-write (here by SIGXFSZ, as abruptly as kill -9)
// leaves its temp beside the vault: it must be private, ignored by git, and
// gone once the next writer holds the vault lock.
TEST_F(VaultTest, TempOfAKilledWriteIsPrivateIgnoredAndCleanedByTheNextWriter) {
  Vault v = saved_vault();
  ASSERT_TRUE(v.set("EXTRA", Secret("another-value-1234"), t0_));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit lim = {16, 16};  // the temp gets 16 bytes, then the kernel kills us
    ::setrlimit(RLIMIT_FSIZE, &lim);
    (void)v.save();
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer was not killed mid-write";
  std::vector<stdfs::path> temps;
  for (const auto& e : stdfs::directory_iterator(path_.parent_path()))
    if (e.path().filename().string().rfind(".production.vault.tmp.", 0) == 0)
      temps.push_back(e.path());
  ASSERT_EQ(temps.size(), 1u);
  struct stat st {};
  ASSERT_EQ(::stat(temps[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(Vault::open(path_, "production", key_));  // the old vault is intact

  auto lock = VaultLock::acquire(path_);
  ASSERT_TRUE(lock) << lock.error().what();
  EXPECT_FALSE(stdfs::exists(temps[0]));
  auto ignore = fs::read_file(path_.parent_path() / ".gitignore");
  ASSERT_TRUE(ignore);
  EXPECT_NE(ignore->find("\n/.*.tmp.*\n"), std::string::npos) << *ignore;
}

TEST_F(VaultTest, GitignoreLineIsAppendedOnceToTheUsersOwnFile) {
  stdfs::create_directories(path_.parent_path());
  stdfs::path gi = path_.parent_path() / ".gitignore";
  ASSERT_TRUE(fs::atomic_write(gi, "*.bak"));  // no final newline
  ASSERT_TRUE(VaultLock::acquire(path_));
  ASSERT_TRUE(VaultLock::acquire(path_));
  EXPECT_EQ(*fs::read_file(gi), "*.bak\n/.*.tmp.*\n");
}

}  // namespace
}  // namespace md::secrets
