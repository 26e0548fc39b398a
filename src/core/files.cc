#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace md::fs {
namespace {

Error open_error(const std::filesystem::path& p, int err) {
  Errc code = err == ENOENT                     ? Errc::kNotFound
              : (err == EACCES || err == EPERM) ? Errc::kPermissionDenied
                                                : Errc::kIo;
  return Error(code, "open " + p.string() + ": " + std::strerror(err));
}

}  // namespace

Result<int> open_regular(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(open_error(path, errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(open_error(path, err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* what = S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                                              : "not a regular file";
    return fail(Errc::kInvalidArgument,
                path.string() + " is " + what + ", not a regular file; give the file itself");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

bool is_system_dir(const std::filesystem::path& path) {
  static const char* const kSystem[] = {
      "/",
      "/bin",
      "/boot",
      "/dev",
      "/etc",
      "/home",
      "/lib",
      "/lib32",
      "/lib64",
      "/libx32",
      "/media",
      "/mnt",
      "/opt",
      "/proc",
      "/root",
      "/run",
      "/sbin",
      "/srv",
      "/sys",
      "/tmp",
      "/usr",
      "/usr/bin",
      "/usr/lib",
      "/usr/lib64",
      "/usr/libexec",
      "/usr/local",
      "/usr/local/bin",
      "/usr/local/lib",
      "/usr/local/sbin",
      "/usr/sbin",
      "/usr/share",
      "/usr/include",
      "/usr/src",
      "/var",
      "/var/lib",
      "/var/log",
      "/var/tmp",
      "/var/run",
      "/var/cache",
      "/var/spool",
      "/var/local",
      "/var/opt",
      "/var/mail",
      "/var/backups",
      "/dev/shm",
      "/run/user",
      "/etc/systemd",
  };
  std::string p = path.lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  for (const char* s : kSystem)
    if (p == s) return true;
  return false;
}

}  // namespace md::fs
