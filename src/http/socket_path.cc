#include "http/socket_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace md::http {
namespace {

constexpr size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1;

sockaddr_un make_addr(const std::filesystem::path& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.native().size());
  return a;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

Status check_socket_path(const std::filesystem::path& path) {
  if (path.empty()) return fail(Errc::kInvalidArgument, "unix socket path is empty");
  if (path.native().size() > kMaxPath)
    return fail(Errc::kInvalidArgument, "unix socket path " + path.string() + " is " +
                                            std::to_string(path.native().size()) +
                                            " bytes; the limit is " + std::to_string(kMaxPath) +
                                            " (use a shorter directory)");
  return ok();
}

Result<int> listen_unix(const std::filesystem::path& path, unsigned mode) {
  MD_TRY_STATUS(check_socket_path(path));
  const std::string p = path.string();
  sockaddr_un addr = make_addr(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return fail(Errc::kAlreadyExists, p + " exists and is not a socket; not replacing it");
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return fail(Errc::kIo, "socket: " + errno_text(errno));
    int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(probe);
    if (rc == 0) return fail(Errc::kAlreadyExists, "another process is listening on " + p);
    if (err != ECONNREFUSED)
      return fail(Errc::kIo, "check existing socket " + p + ": " + errno_text(err));
    // Stale: its server died without removing it.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return fail(Errc::kIo, "remove stale socket " + p + ": " + errno_text(errno));
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Errc::kIo, "socket: " + errno_text(errno));
  // WHY fchmod before bind: Linux creates the socket file with the socket
  // inode's mode, so no client can connect through wider permissions even
  // for an instant. The chmod after bind covers kernels that do not.
  ::fchmod(fd, mode);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    Errc code = err == EACCES       ? Errc::kPermissionDenied
                : err == ENOENT     ? Errc::kNotFound
                : err == EADDRINUSE ? Errc::kAlreadyExists
                                    : Errc::kIo;
    return fail(code, "bind " + p + ": " + errno_text(err));
  }
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return fail(Errc::kIo, "listen on " + p + ": " + errno_text(err));
  }
  return fd;
}

}  // namespace md::http
