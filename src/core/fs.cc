#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace md::fs {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

Error io_error(std::string_view what, const std::filesystem::path& p, int err) {
  Errc code = err == ENOENT                     ? Errc::kNotFound
              : (err == EACCES || err == EPERM) ? Errc::kPermissionDenied
                                                : Errc::kIo;
  return Error(code, std::string(what) + " " + p.string() + ": " + errno_text(err));
}

Status write_all(int fd, std::string_view data, const std::filesystem::path& p) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(io_error("write", p, errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Status fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(io_error("open directory", dir, errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return fail(io_error("fsync directory", dir, err));
  return ok();
}

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(io_error("open", path, errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return fail(io_error("read", path, err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status atomic_write(const std::filesystem::path& path, std::string_view data, unsigned mode) {
  std::filesystem::path dir = path.parent_path();
  std::random_device rd;
  std::filesystem::path tmp = dir / ("." + path.filename().string() + ".tmp." +
                                     std::to_string(::getpid()) + "." + std::to_string(rd()));
  // WHY 0600 until the end: a process killed mid-write leaves the temp
  // behind; it must not be readable by others meanwhile, whatever `mode` is.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(io_error("create", tmp, errno));
  auto cleanup = [&](Error e) -> Status {
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail(std::move(e));
  };
  if (::fchmod(fd, 0600) != 0) return cleanup(io_error("chmod", tmp, errno));
  if (auto st = write_all(fd, data, tmp); !st) return cleanup(st.error());
  if (::fchmod(fd, mode) != 0) return cleanup(io_error("chmod", tmp, errno));
  if (::fsync(fd) != 0) return cleanup(io_error("fsync", tmp, errno));
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(io_error("close", tmp, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(io_error("rename onto", path, err));
  }
  return fsync_dir(dir);
}

// WHY check first: an existing directory keeps its mode. meshdeploy never
// changes the mode of a directory it did not create (`agent run --root
// /var/lib` used to chmod /var/lib 0700).
Status ensure_dir(const std::filesystem::path& dir, unsigned mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return ok();
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec)
      return fail(Errc::kIo,
                  "create directory " + dir.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), mode) != 0) {
    if (errno == EEXIST && std::filesystem::is_directory(dir, ec)) return ok();  // a racing creator
    return fail(io_error("create directory", dir, errno));
  }
  // Ours: exactly `mode`, whatever the umask.
  ::chmod(dir.c_str(), mode);
  return ok();
}

Status check_private(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(io_error("stat", path, errno));
  if ((st.st_mode & 077) != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Errc::kPermissionDenied,
                path.string() + " has mode " + buf +
                    ", readable or writable by group or others; run: chmod 600 " + path.string());
  }
  return ok();
}

}  // namespace md::fs
