// The SQLite store's file, before SQLite sees it: an existing store never
// silently becomes a new one (a zero-length, foreign or half-deleted store is
// refused with a recovery hint), and a new store appears at its path only
// complete (built under a temp name, mode 0600, then linked into place).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "state/store_impl.h"

namespace md::state::internal {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

Error io_error(std::string_view what, const std::string& path, int err) {
  Errc code = (err == EACCES || err == EPERM) ? Errc::kPermissionDenied : Errc::kIo;
  return Error(code, "state store " + path + ": " + std::string(what) + ": " + errno_text(err));
}

// Size of `path`, or -1 when it does not exist.
long long size_or_missing(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

void fsync_dir_of(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

Result<bool> check_store_file(const std::string& path) {
  // WHY the log before the store: a store another process is creating
  // appears at its path before its write-ahead log does, so a log seen first
  // and a store missing after is a deleted store, never one being created
  // (in the other order a concurrent first open was refused as deleted).
  const long long wal = size_or_missing(path + "-wal");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return fail(io_error("stat", path, errno));
    // WHY refuse: SQLite would pair a new store with the old store's
    // write-ahead log and replay it into the new file.
    if (wal > 0)
      return fail(Errc::kCorruption,
                  "state store " + path + " is missing but its write-ahead log " + path +
                      "-wal is still there: the store was deleted while in use. Restore " + path +
                      " from a backup (or the .recovered-* copy a meshdeploy that noticed the "
                      "deletion saved beside it); to start a new, empty store instead, remove " +
                      path + "-wal and " + path + "-shm");
    return false;
  }
  if (!S_ISREG(st.st_mode))
    return fail(Errc::kCorruption,
                "state store " + path + " is not a regular file; point `state:` at a file");
  if (st.st_size == 0)
    return fail(Errc::kCorruption,
                "state store " + path +
                    " is empty (0 bytes), but meshdeploy never leaves a store empty: it was "
                    "truncated or replaced, and the history, audit log and locks it held are "
                    "gone. Refusing to start a new store over it. Restore " +
                    path + " from a backup; only if no deploy ever ran with it, remove it (rm " +
                    path + ") and run again");
  // The store holds the audit log and the deploy journal: owner only. Only
  // files of ours are tightened (another user's store is theirs to mode).
  if ((st.st_mode & 077) != 0 && st.st_uid == ::geteuid()) {
    for (const std::string& p : {path, path + "-wal", path + "-shm"}) {
      struct stat s {};
      if (::stat(p.c_str(), &s) == 0 && s.st_uid == ::geteuid())
        (void)::chmod(p.c_str(), s.st_mode & 0700);
    }
  }
  return true;
}

Status create_store_file(const std::string& path,
                         const std::function<Status(const std::string&)>& init) {
  std::filesystem::path p(path);
  std::random_device rd;
  const std::string tmp =
      (p.parent_path() / ("." + p.filename().string() + ".new." + std::to_string(::getpid()) + "." +
                          std::to_string(rd())))
          .string();
  // WHY create it first: SQLite creates files 0644 and gives the -wal and
  // -shm files the mode of the database file.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(io_error("create " + tmp, path, errno));
  ::close(fd);
  auto drop_tmp = [&] {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((tmp + suffix).c_str());
  };
  if (Status st = init(tmp); !st) {
    drop_tmp();
    return st;
  }
  // link(2), not rename(2): a store another process created meanwhile wins
  // and is never replaced.
  if (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    int err = errno;
    drop_tmp();
    return fail(io_error("link the new store into place", path, err));
  }
  drop_tmp();
  fsync_dir_of(path);
  return ok();
}

}  // namespace md::state::internal
