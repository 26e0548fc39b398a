#include "agent/object_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/hash.h"

namespace md::agent {
namespace {
namespace stdfs = std::filesystem;

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-object-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = stdfs::canonical(tmpl);
    store_.emplace(*ObjectStore::open(dir_ / "objects"));
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  // Every file under the store: objects and temp files alike.
  std::vector<stdfs::path> files() const {
    std::vector<stdfs::path> out;
    for (const auto& e : stdfs::recursive_directory_iterator(store_->dir()))
      if (e.is_regular_file()) out.push_back(e.path());
    return out;
  }
  ObjectKey put(std::string_view content, bool* created) {
    ObjectStore::Writer w(*store_);
    EXPECT_TRUE(w.write(content.data(), content.size()));
    auto key = w.commit(false, std::nullopt, created);
    EXPECT_TRUE(key) << key.error().what();
    return *key;
  }

  stdfs::path dir_;
  std::optional<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, SameContentIsOneObjectWrittenOnce) {
  bool created = false;
  ObjectKey a = put("same bytes", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(a.sha256, sha256_hex("same bytes"));
  ObjectKey b = put("same bytes", &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(a, b);
  ASSERT_EQ(files().size(), 1u);
  EXPECT_EQ(*fs::read_file(store_->path_of(a)), "same bytes");
  struct stat st;
  ASSERT_EQ(::stat(store_->path_of(a).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
}

TEST_F(ObjectStoreTest, AnAbandonedWriteLeavesNothingUnderAnyName) {
  {
    ObjectStore::Writer w(*store_);
    std::string big(ObjectStore::Writer::kMemoryBytes + 1, 'b');  // spills to a temp file
    ASSERT_TRUE(w.write(big.data(), big.size()));
    EXPECT_EQ(files().size(), 1u);  // the temp file, not an object
    EXPECT_FALSE(ObjectKey::parse(files()[0].filename().string()));
  }
  EXPECT_TRUE(files().empty());
}

TEST_F(ObjectStoreTest, ACrashMidWriteLeavesOnlyATempFileThatOpenRemoves) {
  // What a crash between the write and the rename leaves: a temp file. No
  // object is visible under its hash until it is complete (rename).
  ASSERT_TRUE(fs::atomic_write(store_->dir() / ".tmp-99-1", "half an obj", 0400));
  ObjectKey would_be{sha256_hex("half an object"), false};
  EXPECT_FALSE(store_->has(would_be, 14));
  store_.emplace(*ObjectStore::open(dir_ / "objects"));
  EXPECT_TRUE(files().empty());
}

TEST_F(ObjectStoreTest, GcRemovesOnlyObjectsNothingLinks) {
  bool created = false;
  ObjectKey kept = put("kept", &created);
  ObjectKey dropped = put("dropped", &created);
  ASSERT_TRUE(store_->link_into(kept, dir_ / "release-file"));
  auto n = store_->gc();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(store_->has(kept, 4));
  EXPECT_FALSE(store_->has(dropped, 7));
  EXPECT_EQ(*fs::read_file(dir_ / "release-file"), "kept");
  auto again = store_->link_into(kept, dir_ / "release-file");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);
}

}  // namespace
}  // namespace md::agent
