// The SQLite store's file: an existing store never silently becomes a new
// one, a store deleted or replaced while open refuses to commit (and saves
// what it held), and the files are private to their owner.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "state/state.h"
#include "state/state_test_util.h"

namespace md::state {
namespace {

namespace stdfs = std::filesystem;

class SqliteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir();
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  std::unique_ptr<Store> open() {
    auto s = open_store(path_, clock_);
    EXPECT_TRUE(s) << s.error().what();
    return s ? std::move(*s) : nullptr;
  }
  Batch record(const std::string& id) {
    Deployment d;
    d.id = id;
    d.environment = "production";
    d.version = "v1";
    AuditEntry a;
    a.actor = "ana";
    a.action = "deploy.start";
    a.environment = "production";
    return {.upsert_deployment = d, .audit = {a}};
  }
  static unsigned mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  stdfs::path dir_;
  std::string path_;
  FakeClock clock_;
};

TEST_F(SqliteFileTest, ZeroLengthStoreIsRefusedNotTakenForANewOne) {
  std::ofstream(path_).close();
  auto s = open_store(path_, clock_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kCorruption);
  const std::string msg = s.error().what();
  EXPECT_NE(msg.find(path_ + " is empty (0 bytes)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Restore"), std::string::npos) << msg;
  EXPECT_EQ(stdfs::file_size(path_), 0u) << "the file must be left as it was";
}

TEST_F(SqliteFileTest, ForeignSqliteDatabaseIsRefusedUntouched) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE photos (id INTEGER)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open_store(path_, clock_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kCorruption);
  EXPECT_NE(std::string(s.error().what()).find("not a meshdeploy state store"), std::string::npos)
      << s.error().what();
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 1) << "no table may be added to a foreign database";
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST_F(SqliteFileTest, FileThatIsNotSqliteIsRefused) {
  std::ofstream(path_) << "these are my notes, not a database\n";
  auto s = open_store(path_, clock_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kCorruption);
  EXPECT_NE(std::string(s.error().what()).find("not a meshdeploy state store"), std::string::npos)
      << s.error().what();
}

TEST_F(SqliteFileTest, DirectoryAtTheStorePathIsRefused) {
  stdfs::create_directories(path_);
  auto s = open_store(path_, clock_);
  ASSERT_FALSE(s);
  EXPECT_NE(std::string(s.error().what()).find("not a regular file"), std::string::npos);
}

TEST_F(SqliteFileTest, NewStoreAndItsWalAndShmAreOwnerOnly) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->commit(record("d-1")));
  EXPECT_EQ(mode_of(path_), 0600u);
  EXPECT_EQ(mode_of(path_ + "-wal"), 0600u);
  EXPECT_EQ(mode_of(path_ + "-shm"), 0600u);
  // Nothing of the temp the store was built in is left.
  for (const auto& e : stdfs::directory_iterator(dir_))
    EXPECT_TRUE(e.path().filename().string().starts_with("state.db")) << e.path();
}

TEST_F(SqliteFileTest, ExistingWorldReadableStoreIsTightened) {
  open().reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(mode_of(path_), 0600u);
}

TEST_F(SqliteFileTest, ReopenedStoreKeepsItsRecords) {
  auto store = open();
  ASSERT_TRUE(store->commit(record("d-1")));
  store.reset();
  store = open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->deployment("d-1"));
}

TEST_F(SqliteFileTest, StoreDeletedWhileOpenRefusesToCommitAndSavesItsRecords) {
  auto store = open();
  ASSERT_TRUE(store->commit(record("d-1")));
  ASSERT_TRUE(store->acquire_lock("production", "ana", "d-1", Millis(60000)));
  stdfs::remove(path_);
  Status st = store->commit(record("d-2"));
  ASSERT_FALSE(st) << "a commit to a deleted store must not report success";
  EXPECT_EQ(st.error().code(), Errc::kFailedPrecondition);
  const std::string msg = st.error().what();
  EXPECT_NE(msg.find("was deleted or replaced"), std::string::npos) << msg;
  const size_t at = msg.find(path_ + ".recovered-");
  ASSERT_NE(at, std::string::npos) << msg;
  std::string saved = msg.substr(at, msg.find(';', at) - at);
  EXPECT_EQ(mode_of(saved), 0600u);
  EXPECT_FALSE(store->renew_lock("production", "ana", Millis(60000)));
  EXPECT_FALSE(store->release_lock("production", "ana"));
  store.reset();

  // The saved copy is a complete store: put back, it has every record
  // committed before the deletion (and nothing after it).
  stdfs::rename(saved, path_);
  store = open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->deployment("d-1"));
  EXPECT_FALSE(store->deployment("d-2"));
  auto audit = store->audit("production", 10);
  ASSERT_TRUE(audit);
  EXPECT_EQ(audit->size(), 1u);
  auto lock = store->lock_info("production");
  ASSERT_TRUE(lock);
  EXPECT_TRUE(*lock) << "the lock row was in the store too";
}

TEST_F(SqliteFileTest, StoreReplacedWhileOpenRefusesToCommit) {
  auto store = open();
  ASSERT_TRUE(store->commit(record("d-1")));
  // Someone puts another store in its place (e.g. restores an old backup).
  const std::string other = (dir_ / "other.db").string();
  ASSERT_TRUE(open_store(other, clock_));
  stdfs::rename(other, path_);
  Status st = store->commit(record("d-2"));
  ASSERT_FALSE(st);
  EXPECT_NE(std::string(st.error().what()).find("was deleted or replaced"), std::string::npos);
}

TEST_F(SqliteFileTest, MissingStoreWithALeftoverWalIsRefused) {
  std::ofstream(path_ + "-wal") << "frames of a store that was deleted";
  auto s = open_store(path_, clock_);
  ASSERT_FALSE(s);
  EXPECT_NE(std::string(s.error().what()).find("-wal is still there"), std::string::npos)
      << s.error().what();
  EXPECT_FALSE(stdfs::exists(path_));
}

}  // namespace
}  // namespace md::state
