#include "agent/disk_need.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

namespace md::agent {
namespace {

namespace stdfs = std::filesystem;

class DiskNeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-disk-need-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  // A .tar.gz (or .tar.zst) with a directory, `files` regular files of
  // `size` zero bytes each, a symlink and a hardlink to the first file.
  stdfs::path make(int files, uint64_t size, bool zstd = false) {
    stdfs::path p = dir_ / (zstd ? "a.tar.zst" : "a.tar.gz");
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (zstd)
      archive_write_add_filter_zstd(a);
    else
      archive_write_add_filter_gzip(a);
    EXPECT_EQ(archive_write_open_filename(a, p.c_str()), ARCHIVE_OK) << archive_error_string(a);
    auto header = [&](const std::string& name, mode_t type, uint64_t bytes,
                      const char* link = nullptr, const char* hard = nullptr) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, name.c_str());
      archive_entry_set_filetype(e, type);
      archive_entry_set_perm(e, 0644);
      if (link) archive_entry_set_symlink(e, link);
      if (hard) archive_entry_set_hardlink(e, hard);
      if (type == AE_IFREG && !hard) archive_entry_set_size(e, static_cast<la_int64_t>(bytes));
      EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
      archive_entry_free(e);
    };
    header("d", AE_IFDIR, 0);
    const std::string block(1 << 20, '\0');
    for (int i = 0; i < files; ++i) {
      header("d/f" + std::to_string(i), AE_IFREG, size);
      for (uint64_t left = size; left > 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
        archive_write_data(a, block.data(), n);
        left -= n;
      }
    }
    header("d/link", AE_IFLNK, 0, "f0");
    header("d/hard", AE_IFREG, 0, nullptr, "d/f0");
    archive_write_close(a);
    archive_write_free(a);
    return p;
  }

  stdfs::path dir_;
};

// Regression: the need came from the compressed size; a 200 MiB expansion
// of a few hundred KB is what a host must have room for.
TEST_F(DiskNeedTest, SumsTheDeclaredSizesNotTheCompressedOne) {
  stdfs::path p = make(1, 200ull << 20);
  ASSERT_LT(stdfs::file_size(p), 1u << 20);
  auto need = declared_need(p);
  ASSERT_TRUE(need) << need.error().what();
  EXPECT_EQ(need->file_bytes, 200ull << 20);
  EXPECT_EQ(need->entries, 4u);  // d, d/f0, d/link, d/hard
  EXPECT_EQ(need->bytes, (200ull << 20) + 4 * kEntryOverheadBytes);
  EXPECT_EQ(need->inodes, 5u);
}

TEST_F(DiskNeedTest, CountsEveryEntryAndSkipsHardlinkSizes) {
  auto need = declared_need(make(10, 1000, /*zstd=*/true));
  ASSERT_TRUE(need) << need.error().what();
  EXPECT_EQ(need->file_bytes, 10'000u);
  EXPECT_EQ(need->entries, 13u);
  EXPECT_EQ(need->inodes, 14u);
}

TEST_F(DiskNeedTest, RefusesWhatIsNoArchive) {
  std::ofstream(dir_ / "x.tar.gz") << "plain text";
  auto need = declared_need(dir_ / "x.tar.gz");
  ASSERT_FALSE(need);
  EXPECT_EQ(need.error().code(), Errc::kCorruption);
  EXPECT_NE(need.error().what().find("x.tar.gz"), std::string::npos) << need.error().what();
  EXPECT_FALSE(declared_need(dir_ / "missing.tar.gz"));
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  EXPECT_FALSE(declared_need(dir_ / "fifo"));  // refused, never waited on
}

TEST(DiskShortfall, BytesThenInodes) {
  DiskNeed need;
  need.bytes = 200ull << 20;
  need.inodes = 2501;
  EXPECT_EQ(shortfall(need, DiskFree{20ull << 20, 1'000'000, true}),
            "needs 200.0 MiB, has 20.0 MiB");
  EXPECT_EQ(shortfall(need, DiskFree{1ull << 30, 1999, true}), "needs 2501 inodes, has 1999");
  EXPECT_EQ(shortfall(need, DiskFree{1ull << 30, 0, false}), "");  // inodes not counted
  EXPECT_EQ(shortfall(need, DiskFree{200ull << 20, 2501, true}), "");
}

TEST(DiskShortfall, HumanUnits) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(4096), "4.0 KiB");
  EXPECT_EQ(human_bytes((19ull << 20) + (600ull << 10)), "19.6 MiB");
  EXPECT_EQ(human_bytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(disk_full("web-1", 200ull << 20, 3ull << 20).message(),
            "disk full on host web-1 (needs 200.0 MiB, has 3.0 MiB)");
  EXPECT_TRUE(is_disk_full_errno(ENOSPC));
  EXPECT_TRUE(is_disk_full_errno(EDQUOT));
  EXPECT_FALSE(is_disk_full_errno(EIO));
}

TEST(DiskFreeTest, ReportsTheFilesystemOfADirectory) {
  auto free = disk_free("/");
  ASSERT_TRUE(free) << free.error().what();
  EXPECT_GT(free->bytes, 0u);
  EXPECT_FALSE(disk_free("/nonexistent/md-disk-need"));
}

}  // namespace
}  // namespace md::agent
