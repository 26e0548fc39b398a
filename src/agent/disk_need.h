// What an artifact will take on disk once unpacked, read from the archive's
// own headers, and what the filesystem under a directory has free. The
// deploy's preflight compares the two before anything is shipped; the agent
// reports a disk that fills anyway (ENOSPC, EDQUOT) with the same figures.
// WHY not the compressed size: a 200 KB artifact may expand to 200 MB.
// libarchive reads the headers here (as in release_store.cc); nothing is written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace md::agent {

// Slack counted for every entry (file, directory, link) on top of the
// declared file sizes: the partly used last block of a file, a directory's
// block, the inode. 4 KiB, the usual block size.
constexpr uint64_t kEntryOverheadBytes = 4096;

struct DiskNeed {
  uint64_t file_bytes = 0;  // sum of the declared sizes of the regular files
  uint64_t entries = 0;     // every entry of the archive
  uint64_t bytes = 0;       // file_bytes + entries * kEntryOverheadBytes
  uint64_t inodes = 0;      // entries + 1 (the release directory)
};

// Reads every header of the .tar.gz/.tar.zst `artifact` (its data is
// skipped, nothing is written) and sums what unpacking it needs. A FIFO or
// device is refused, never waited on. kCorruption: not a readable tar.gz or
// tar.zst; kNotFound / kIo: cannot open it. Blocks on reading the file.
Result<DiskNeed> declared_need(const std::filesystem::path& artifact);

struct DiskFree {
  uint64_t bytes = 0;   // available to an unprivileged writer (statvfs f_bavail)
  uint64_t inodes = 0;  // f_favail; 0 with inodes_known false when the fs has no fixed count
  bool inodes_known = false;
};

// Free space of the filesystem holding `dir`. kIo naming the directory.
Result<DiskFree> disk_free(const std::filesystem::path& dir);

// "" when `need` (bytes, inodes) fits in `free`, otherwise what is missing:
// "needs 200.0 MiB, has 19.6 MiB" or "needs 2501 inodes, has 1999".
std::string shortfall(const DiskNeed& need, const DiskFree& free);

// Sizes for people: "812 B", "4.0 KiB", "19.6 MiB", "1.5 GiB".
std::string human_bytes(uint64_t n);

// ENOSPC or EDQUOT.
bool is_disk_full_errno(int err);

// kIo: "disk full on host HOST (needs N, has M)", N and M in human units.
// WHY kIo and a fixed text rather than a code of its own: callers stop on
// it like on any I/O failure; the text is for the operator.
Error disk_full(std::string_view host, uint64_t need_bytes, uint64_t free_bytes);

// disk_full() for an unpack of `artifact` into the filesystem of `dir` that
// failed with ENOSPC/EDQUOT, measured after its partial release was removed:
// needs = declared_need(artifact).bytes, has = disk_free(dir).bytes.
Error unpack_disk_full(const std::filesystem::path& artifact, const std::filesystem::path& dir);

}  // namespace md::agent
