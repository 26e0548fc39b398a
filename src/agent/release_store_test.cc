#include "agent/release_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

#include "core/fs.h"
#include "core/hash.h"

namespace md::agent {
namespace {
namespace stdfs = std::filesystem;

// ---- pure path rules -------------------------------------------------------

TEST(EntryPath, NormalisesHarmlessForms) {
  EXPECT_EQ(*normalize_entry_path("a/b"), "a/b");
  EXPECT_EQ(*normalize_entry_path("./a//b/"), "a/b");
  EXPECT_EQ(*normalize_entry_path("./"), "");
  EXPECT_EQ(*normalize_entry_path("a/./b"), "a/b");
}

TEST(EntryPath, RefusesEscapes) {
  for (const char* p : {"/etc/passwd", "..", "../x", "a/../../x", "a/..", ""})
    EXPECT_EQ(normalize_entry_path(p).error().code(), Errc::kInvalidArgument) << p;
  EXPECT_FALSE(normalize_entry_path(std::string_view("a\0b", 3)));
}

TEST(SymlinkTarget, InsideTheReleaseIsFine) {
  EXPECT_TRUE(check_symlink_target("l", "target"));
  EXPECT_TRUE(check_symlink_target("a/b/l", "../../x/y"));
  EXPECT_TRUE(check_symlink_target("a/l", "."));
  EXPECT_TRUE(check_symlink_target("a/l", "../b/./c"));
}

TEST(SymlinkTarget, RefusesWhatCouldLeave) {
  EXPECT_FALSE(check_symlink_target("l", "/etc"));
  EXPECT_FALSE(check_symlink_target("l", ".."));
  EXPECT_FALSE(check_symlink_target("a/l", "../.."));
  EXPECT_FALSE(check_symlink_target("l", ""));
  // "a -> ." then "b -> a/.." would reach the parent of the release: refused
  // because ".." follows a name.
  EXPECT_FALSE(check_symlink_target("b", "a/.."));
  EXPECT_FALSE(check_symlink_target("x/l", "y/../../z"));
}

TEST(Version, Rules) {
  EXPECT_TRUE(check_version("v1.2.3-rc_1"));
  EXPECT_TRUE(check_version("0a1b2c3d"));
  for (const char* v : {"", ".hidden", "-x", "a/b", "..", "a b", "v1\n"})
    EXPECT_FALSE(check_version(v)) << v;
  EXPECT_FALSE(check_version(std::string(129, 'a')));
}

// ---- archives built here with libarchive's writer ----------------------------

struct Entry {
  Entry(std::string p, mode_t t = AE_IFREG, std::string d = "", mode_t m = 0644,
        std::string sym = "", std::string hard = "")
      : path(std::move(p)),
        type(t),
        data(std::move(d)),
        perm(m),
        symlink(std::move(sym)),
        hardlink(std::move(hard)) {}
  std::string path;
  mode_t type;
  std::string data;
  mode_t perm;
  std::string symlink;   // for AE_IFLNK
  std::string hardlink;  // makes it a hardlink entry
};

enum class Compress { kGzip, kZstd, kNone };

void write_archive(const stdfs::path& file, const std::vector<Entry>& entries,
                   Compress c = Compress::kGzip) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compress::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compress::kZstd) archive_write_add_filter_zstd(a);
  ASSERT_EQ(archive_write_open_filename(a, file.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const Entry& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    if (!e.symlink.empty()) archive_entry_set_symlink(ae, e.symlink.c_str());
    if (!e.hardlink.empty()) archive_entry_set_hardlink(ae, e.hardlink.c_str());
    if (e.type == AE_IFREG && e.hardlink.empty())
      archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    if (e.type == AE_IFCHR) archive_entry_set_rdev(ae, makedev(1, 3));
    ASSERT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << archive_error_string(a);
    if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

class ReleaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-release-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = stdfs::canonical(tmpl);
    store_.emplace(*ReleaseStore::open(dir_ / "root"));
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  // Writes an archive and returns its path and sha256.
  std::pair<stdfs::path, std::string> make(const std::string& name, const std::vector<Entry>& e,
                                           Compress c = Compress::kGzip) {
    stdfs::path p = dir_ / name;
    write_archive(p, e, c);
    return {p, *sha256_file_hex(p)};
  }
  Result<StoredRelease> unpack(const std::string& v, const std::vector<Entry>& e,
                               const SharedPaths& shared = {}, const UnpackLimits& limits = {}) {
    auto [p, sha] = make(v + ".tar.gz", e);
    return store_->unpack(v, p, sha, shared, limits);
  }
  // Nothing of a refused unpack may remain.
  void expect_nothing_left(const std::string& v) {
    EXPECT_FALSE(stdfs::exists(store_->release_dir(v)));
    for (const auto& e : stdfs::directory_iterator(store_->releases_dir()))
      EXPECT_EQ(e.path().filename(), ".meta") << e.path();
    EXPECT_TRUE(stdfs::is_empty(store_->releases_dir() / ".meta"));
  }
  void expect_refused(const std::vector<Entry>& e, const std::string& needle) {
    auto r = unpack("bad", e);
    ASSERT_FALSE(r) << needle;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error().what();
    EXPECT_NE(r.error().what().find(needle), std::string::npos) << r.error().what();
    expect_nothing_left("bad");
  }

  stdfs::path dir_;
  std::optional<ReleaseStore> store_;
};

TEST_F(ReleaseStoreTest, UnpacksFilesDirsAndLinksKeepingModes) {
  auto r = unpack("v1", {{"./", AE_IFDIR, "", 0755},
                         {"bin/", AE_IFDIR, "", 0755},
                         {"bin/start", AE_IFREG, "#!/bin/sh\necho hi\n", 0755},
                         {"app/index.js", AE_IFREG, "console.log(1)\n", 0644},
                         {"app/current", AE_IFLNK, "", 0777, "index.js"},
                         {"bin/up", AE_IFLNK, "", 0777, "../app/index.js"},
                         {"copy.js", AE_IFREG, "", 0644, "", "app/index.js"}});
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->version, "v1");
  stdfs::path d = store_->release_dir("v1");
  EXPECT_EQ(*fs::read_file(d / "bin/start"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(stdfs::status(d / "bin/start").permissions() & stdfs::perms::owner_exec,
            stdfs::perms::owner_exec);
  EXPECT_EQ(*fs::read_file(d / "app/current"), "console.log(1)\n");
  EXPECT_EQ(*fs::read_file(d / "bin/up"), "console.log(1)\n");
  EXPECT_EQ(*fs::read_file(d / "copy.js"), "console.log(1)\n");
  // Both names and the store object are one inode.
  EXPECT_EQ(stdfs::hard_link_count(d / "copy.js"), 3u);
  EXPECT_TRUE(stdfs::equivalent(d / "copy.js", d / "app/index.js"));
  auto got = store_->get("v1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sha256, r->sha256);
}

TEST_F(ReleaseStoreTest, UnpacksZstd) {
  auto [p, sha] = make("v2.tar.zst", {{"a.txt", AE_IFREG, "zstd"}}, Compress::kZstd);
  auto r = store_->unpack("v2", p, sha, {});
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*fs::read_file(store_->release_dir("v2") / "a.txt"), "zstd");
}

TEST_F(ReleaseStoreTest, ChecksumMismatchIsCorruptionAndLeavesNothing) {
  auto [p, sha] = make("v1.tar.gz", {{"a", AE_IFREG, "x"}});
  std::string wrong(64, 'a');
  auto r = store_->unpack("v1", p, wrong, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
  EXPECT_NE(r.error().what().find("unpack v1"), std::string::npos);
  expect_nothing_left("v1");
}

TEST_F(ReleaseStoreTest, RefusesUncompressedAndGarbage) {
  auto [p, sha] = make("plain.tar", {{"a", AE_IFREG, "x"}}, Compress::kNone);
  auto r = store_->unpack("v1", p, sha, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("not a .tar.gz or .tar.zst"), std::string::npos)
      << r.error().what();
  stdfs::path junk = dir_ / "junk.tar.gz";
  ASSERT_TRUE(fs::atomic_write(junk, "this is not an archive at all"));
  auto r2 = store_->unpack("v1", junk, *sha256_file_hex(junk), {});
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code(), Errc::kCorruption);
  expect_nothing_left("v1");
}

TEST_F(ReleaseStoreTest, RefusesAbsolutePath) {
  expect_refused({{"/etc/evil", AE_IFREG, "x"}}, "'/etc/evil'");
}
TEST_F(ReleaseStoreTest, RefusesDotDot) {
  expect_refused({{"ok", AE_IFREG, "x"}, {"a/../../evil", AE_IFREG, "x"}}, "'..' in path");
}
TEST_F(ReleaseStoreTest, RefusesEscapingSymlink) {
  expect_refused({{"etc", AE_IFLNK, "", 0777, "../../../../etc"}}, "leaves the release");
  expect_refused({{"etc", AE_IFLNK, "", 0777, "/etc"}}, "absolute");
}
TEST_F(ReleaseStoreTest, RefusesSymlinkChainEscape) {
  expect_refused({{"a", AE_IFLNK, "", 0777, "."}, {"b", AE_IFLNK, "", 0777, "a/.."}}, "'b'");
}
TEST_F(ReleaseStoreTest, RefusesWritingThroughASymlink) {
  expect_refused(
      {{"sub/", AE_IFDIR, "", 0755}, {"l", AE_IFLNK, "", 0777, "sub"}, {"l/file", AE_IFREG, "x"}},
      "goes through a symlink");
}
TEST_F(ReleaseStoreTest, RefusesHardlinkEscapes) {
  expect_refused({{"pw", AE_IFREG, "", 0644, "", "/etc/passwd"}}, "hardlink target");
  expect_refused({{"pw", AE_IFREG, "", 0644, "", "../x"}}, "hardlink target");
  expect_refused({{"pw", AE_IFREG, "", 0644, "", "missing"}}, "not a regular file");
  // A hardlink to a symlink would re-anchor the symlink's relative target.
  expect_refused({{"a/b/", AE_IFDIR, "", 0755},
                  {"a/b/l", AE_IFLNK, "", 0777, "../x"},
                  {"top", AE_IFREG, "", 0644, "", "a/b/l"}},
                 "not a regular file");
}
TEST_F(ReleaseStoreTest, RefusesDevicesAndFifos) {
  expect_refused({{"null", AE_IFCHR, ""}}, "device files");
  expect_refused({{"fifo", AE_IFIFO, ""}}, "device files");
}
TEST_F(ReleaseStoreTest, RefusesSetuidAndSetgid) {
  expect_refused({{"su", AE_IFREG, "x", 04755}}, "setuid/setgid");
  expect_refused({{"d/", AE_IFDIR, "", 02755}}, "setuid/setgid");
}
TEST_F(ReleaseStoreTest, EnforcesLimits) {
  auto r = unpack("big",
                  {{"a", AE_IFREG, std::string(100, 'x')}, {"b", AE_IFREG, std::string(100, 'x')}},
                  {}, UnpackLimits{150, 10});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("exceeds 150 bytes"), std::string::npos);
  auto r2 = unpack("many", {{"a", AE_IFREG, "1"}, {"b", AE_IFREG, "2"}, {"c", AE_IFREG, "3"}}, {},
                   UnpackLimits{1000, 2});
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().what().find("more than 2 entries"), std::string::npos);
  expect_nothing_left("big");
}

TEST_F(ReleaseStoreTest, SameArtifactAgainIsANoOpOtherArtifactIsRefused) {
  auto [p, sha] = make("v1.tar.gz", {{"a", AE_IFREG, "1"}});
  auto first = store_->unpack("v1", p, sha, {});
  ASSERT_TRUE(first);
  auto again = store_->unpack("v1", p, sha, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->unpacked_at_ms, first->unpacked_at_ms);
  auto [p2, sha2] = make("v1b.tar.gz", {{"a", AE_IFREG, "2"}});
  auto other = store_->unpack("v1", p2, sha2, {});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(*fs::read_file(store_->release_dir("v1") / "a"), "1");
}

TEST_F(ReleaseStoreTest, LinksSharedPathsReplacingArchiveContent) {
  ASSERT_TRUE(fs::atomic_write(store_->shared_dir() / ".env", "A=1\n"));
  auto r = unpack("v1",
                  {{"public/uploads/", AE_IFDIR, "", 0755},
                   {"public/uploads/stale.txt", AE_IFREG, "old"},
                   {".env", AE_IFREG, "from-archive"}},
                  SharedPaths{{"public/uploads", "tmp/cache"}, {".env"}});
  ASSERT_TRUE(r) << r.error().what();
  stdfs::path d = store_->release_dir("v1");
  EXPECT_TRUE(stdfs::is_symlink(d / "public/uploads"));
  EXPECT_EQ(stdfs::read_symlink(d / "public/uploads"), store_->shared_dir() / "public/uploads");
  EXPECT_TRUE(stdfs::is_directory(store_->shared_dir() / "tmp/cache"));
  EXPECT_EQ(*fs::read_file(d / ".env"), "A=1\n");
  // Writes through the link land in shared/, so the next release sees them.
  ASSERT_TRUE(fs::atomic_write(d / "public/uploads/u.png", "png"));
  EXPECT_TRUE(stdfs::exists(store_->shared_dir() / "public/uploads/u.png"));
}

TEST_F(ReleaseStoreTest, SharedFileMustExistAndPathsMustStayInside) {
  auto r = unpack("v1", {{"a", AE_IFREG, "1"}}, SharedPaths{{}, {".env"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  expect_nothing_left("v1");
  auto r2 = unpack("v2", {{"a", AE_IFREG, "1"}}, SharedPaths{{"../outside"}, {}});
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code(), Errc::kInvalidArgument);
  auto r3 = unpack("v3", {{"sub/", AE_IFDIR, "", 0755}, {"l", AE_IFLNK, "", 0777, "sub"}},
                   SharedPaths{{"l/uploads"}, {}});
  ASSERT_FALSE(r3);
  EXPECT_NE(r3.error().what().find("not a directory"), std::string::npos) << r3.error().what();
}

TEST_F(ReleaseStoreTest, PruneKeepsNewestAndProtected) {
  for (const char* v : {"v1", "v2", "v3", "v4", "v5"}) {
    ASSERT_TRUE(unpack(v, {{"a", AE_IFREG, v}}));
    ::usleep(2000);  // distinct unpack times
  }
  auto removed = store_->prune(2, {"v1"});
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, (std::vector<std::string>{"v2", "v3"}));
  auto left = store_->list();
  ASSERT_TRUE(left);
  std::vector<std::string> names;
  for (const auto& r : *left) names.push_back(r.version);
  EXPECT_EQ(names, (std::vector<std::string>{"v1", "v4", "v5"}));
}

TEST_F(ReleaseStoreTest, OpenRemovesInterruptedUnpacks) {
  stdfs::create_directories(store_->releases_dir() / ".tmp-v9-1-0/half");
  ASSERT_TRUE(fs::atomic_write(store_->releases_dir() / ".meta/v9.json", "{}"));
  auto reopened = ReleaseStore::open(dir_ / "root");
  ASSERT_TRUE(reopened);
  expect_nothing_left("v9");
}

// ---- the content-addressed store of files ----------------------------------

// Regular files (not dirs) under objects/.
std::vector<stdfs::path> objects_in(const stdfs::path& dir) {
  std::vector<stdfs::path> out;
  for (const auto& e : stdfs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  return out;
}

TEST_F(ReleaseStoreTest, ASecondReleaseWritesOnlyTheFilesThatChanged) {
  std::string big(300000, 'n');
  ASSERT_TRUE(unpack("v1", {{"node_modules/x/index.js", AE_IFREG, big},
                            {"node_modules/x/package.json", AE_IFREG, "{}"},
                            {"build/index.js", AE_IFREG, "v1", 0755}}));
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 3u);
  ASSERT_TRUE(unpack("v2", {{"node_modules/x/index.js", AE_IFREG, big},
                            {"node_modules/x/package.json", AE_IFREG, "{}"},
                            {"build/index.js", AE_IFREG, "v2", 0755}}));
  stdfs::path d1 = store_->release_dir("v1"), d2 = store_->release_dir("v2");
  // Unchanged files are the same inode; the changed one is not.
  EXPECT_TRUE(stdfs::equivalent(d1 / "node_modules/x/index.js", d2 / "node_modules/x/index.js"));
  EXPECT_EQ(stdfs::hard_link_count(d2 / "node_modules/x/index.js"), 3u);
  EXPECT_FALSE(stdfs::equivalent(d1 / "build/index.js", d2 / "build/index.js"));
  EXPECT_EQ(*fs::read_file(d1 / "build/index.js"), "v1");
  EXPECT_EQ(*fs::read_file(d2 / "build/index.js"), "v2");
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 4u);
}

TEST_F(ReleaseStoreTest, ReleaseFilesAreReadOnlyAndKeepTheirExecBit) {
  ASSERT_TRUE(unpack("v1", {{"run.sh", AE_IFREG, "#!/bin/sh\n", 0700},
                            {"data.txt", AE_IFREG, "d", 0666},
                            {"same.txt", AE_IFREG, "#!/bin/sh\n", 0644}}));
  stdfs::path d = store_->release_dir("v1");
  struct stat st;
  ASSERT_EQ(::stat((d / "run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_EQ(::stat((d / "data.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  // Same content, other mode: another object (one inode has one mode).
  EXPECT_FALSE(stdfs::equivalent(d / "run.sh", d / "same.txt"));
  // The directory stays writable: a process may replace its files (rename,
  // unlink) without touching the shared object.
  ASSERT_TRUE(fs::atomic_write(d / "data.txt", "mine"));
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 3u);
  ASSERT_TRUE(unpack("v2", {{"data.txt", AE_IFREG, "d", 0666}}));
  EXPECT_EQ(*fs::read_file(store_->release_dir("v2") / "data.txt"), "d");
}

TEST_F(ReleaseStoreTest, AnObjectChangedInPlaceIsNotReused) {
  ASSERT_TRUE(unpack("v1", {{"a.js", AE_IFREG, "original"}}));
  stdfs::path f = store_->release_dir("v1") / "a.js";
  // What a process running as root could do to its release's files.
  ::chmod(f.c_str(), 0644);
  { std::ofstream(f, std::ios::app) << " and more"; }
  ASSERT_TRUE(unpack("v2", {{"a.js", AE_IFREG, "original"}}));
  EXPECT_EQ(*fs::read_file(store_->release_dir("v2") / "a.js"), "original");
  EXPECT_FALSE(stdfs::equivalent(f, store_->release_dir("v2") / "a.js"));
}

TEST_F(ReleaseStoreTest, PruneRemovesObjectsNoReleaseLinks) {
  for (const char* v : {"v1", "v2", "v3"}) {
    ASSERT_TRUE(unpack(v, {{"shared.js", AE_IFREG, "same in all"}, {"own.js", AE_IFREG, v}}));
    ::usleep(2000);
  }
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 4u);
  ASSERT_TRUE(store_->prune(1, {}));
  auto left = objects_in(store_->objects().dir());
  ASSERT_EQ(left.size(), 2u);
  for (const auto& o : left) EXPECT_EQ(stdfs::hard_link_count(o), 2u) << o;
  EXPECT_EQ(*fs::read_file(store_->release_dir("v3") / "shared.js"), "same in all");
}

TEST_F(ReleaseStoreTest, ARefusedArtifactLeavesNoObjects) {
  auto [p, sha] = make("v1.tar.gz", {{"a", AE_IFREG, "content of a"}});
  ASSERT_FALSE(store_->unpack("v1", p, std::string(64, 'a'), {}));
  EXPECT_TRUE(objects_in(store_->objects().dir()).empty());
  expect_refused({{"ok.js", AE_IFREG, "fine"}, {"null", AE_IFCHR, ""}}, "device files");
  EXPECT_TRUE(objects_in(store_->objects().dir()).empty());
  // An object an earlier release holds stays.
  ASSERT_TRUE(unpack("v2", {{"ok.js", AE_IFREG, "fine"}}));
  EXPECT_FALSE(unpack("bad2", {{"ok.js", AE_IFREG, "fine"}, {"null", AE_IFCHR, ""}}));
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 1u);
}

TEST_F(ReleaseStoreTest, AFifoIsRefusedNotWaitedOn) {
  stdfs::path fifo = dir_ / "v1.tar.gz";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = store_->unpack("v1", fifo, std::string(64, 'a'), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().what().find("not a regular file"), std::string::npos) << r.error().what();
}

TEST_F(ReleaseStoreTest, ReopeningRemovesObjectsOfAnInterruptedUnpack) {
  ASSERT_TRUE(unpack("v1", {{"kept.js", AE_IFREG, "kept"}}));
  // A crash after objects were written, before the release was renamed in.
  stdfs::path orphan = store_->objects().dir() / "ab" / (std::string(64, 'b') + ".0444");
  stdfs::create_directories(orphan.parent_path());
  ASSERT_TRUE(fs::atomic_write(orphan, "x", 0444));
  ASSERT_TRUE(fs::atomic_write(store_->objects().dir() / ".tmp-1-2", "half"));
  ASSERT_TRUE(ReleaseStore::open(dir_ / "root"));
  EXPECT_FALSE(stdfs::exists(orphan));
  EXPECT_FALSE(stdfs::exists(store_->objects().dir() / ".tmp-1-2"));
  EXPECT_EQ(objects_in(store_->objects().dir()).size(), 1u);
}

TEST(ObjectKey, NameRoundTripsAndRefusesOthers) {
  ObjectKey k{std::string(64, 'c'), true};
  EXPECT_EQ(k.name(), std::string(64, 'c') + ".0555");
  EXPECT_EQ(*ObjectKey::parse(k.name()), k);
  for (const std::string& bad : {std::string(64, 'c') + ".0644", std::string(64, 'C') + ".0444",
                                 std::string("../x"), std::string(63, 'c') + ".0444"})
    EXPECT_FALSE(ObjectKey::parse(bad)) << bad;
}

}  // namespace
}  // namespace md::agent
