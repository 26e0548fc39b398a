#include "agent/disk_need.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/files.h"
#include "core/host.h"

namespace md::agent {
namespace {

struct ReadCloser {
  void operator()(archive* a) const {
    if (a) archive_read_free(a);
  }
};

}  // namespace

Result<DiskNeed> declared_need(const std::filesystem::path& artifact) {
  const std::string ctx = "size of " + artifact.filename().string();
  std::unique_ptr<archive, ReadCloser> in(archive_read_new());
  if (!in) return fail(Errc::kInternal, "libarchive: out of memory");
  archive_read_support_filter_gzip(in.get());
  archive_read_support_filter_zstd(in.get());
  archive_read_support_format_tar(in.get());
  const int fd = MD_TRY_CTX(fs::open_regular(artifact), ctx);
  // WHY a guard: archive_read_open_fd does not take ownership of the fd.
  const std::unique_ptr<const int, void (*)(const int*)> close_fd(
      &fd, [](const int* f) { ::close(*f); });
  auto corrupt = [&](std::string_view what) {
    return fail(Error(Errc::kCorruption, std::string(what) + ": " + archive_error_string(in.get()))
                    .with_context(ctx));
  };
  if (archive_read_open_fd(in.get(), fd, 1 << 16) != ARCHIVE_OK) return corrupt("open archive");
  DiskNeed need;
  for (;;) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return corrupt("read archive");
    ++need.entries;
    const bool hardlink = archive_entry_hardlink(e) != nullptr;
    if (archive_entry_filetype(e) == AE_IFREG && !hardlink && archive_entry_size(e) > 0)
      need.file_bytes += static_cast<uint64_t>(archive_entry_size(e));
  }
  if (need.entries == 0) return fail(Error(Errc::kCorruption, "empty archive").with_context(ctx));
  need.bytes = need.file_bytes + need.entries * kEntryOverheadBytes;
  need.inodes = need.entries + 1;
  return need;
}

Result<DiskFree> disk_free(const std::filesystem::path& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0)
    return fail(Errc::kIo, "statvfs " + dir.string() + ": " + std::strerror(errno));
  DiskFree f;
  f.bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
  // WHY f_files: filesystems without a fixed inode table (btrfs) report 0.
  f.inodes_known = vfs.f_files > 0;
  f.inodes = f.inodes_known ? uint64_t(vfs.f_favail) : 0;
  return f;
}

std::string shortfall(const DiskNeed& need, const DiskFree& free) {
  if (need.bytes > free.bytes)
    return fmt::format("needs {}, has {}", human_bytes(need.bytes), human_bytes(free.bytes));
  if (free.inodes_known && need.inodes > free.inodes)
    return fmt::format("needs {} inodes, has {}", need.inodes, free.inodes);
  return "";
}

std::string human_bytes(uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n) / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

bool is_disk_full_errno(int err) { return err == ENOSPC || err == EDQUOT; }

Error disk_full(std::string_view host, uint64_t need_bytes, uint64_t free_bytes) {
  return Error(Errc::kIo, fmt::format("disk full on host {} (needs {}, has {})", host,
                                      human_bytes(need_bytes), human_bytes(free_bytes)));
}

Error unpack_disk_full(const std::filesystem::path& artifact, const std::filesystem::path& dir) {
  const auto need = declared_need(artifact);
  const auto free = disk_free(dir);
  return disk_full(host_name(), need ? need->bytes : 0, free ? free->bytes : 0);
}

}  // namespace md::agent
