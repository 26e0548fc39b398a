#include "supervisor/exit_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace md::supervisor {
namespace {

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

constexpr Millis kPollFallback{20};

}  // namespace

ExitWatch::ExitWatch() : event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ExitWatch::~ExitWatch() {
  if (event_fd_ >= 0) ::close(event_fd_);
}

void ExitWatch::wake() {
  const uint64_t one = 1;
  if (event_fd_ >= 0) (void)!::write(event_fd_, &one, sizeof one);
}

void ExitWatch::wait(const std::vector<pid_t>& pids, Millis timeout) {
  std::vector<pollfd> fds;
  if (event_fd_ >= 0)
    fds.push_back({event_fd_, POLLIN, 0});
  else
    timeout = std::min(timeout, kPollFallback);
  bool gone = false;
  for (pid_t pid : pids) {
    int fd = open_pidfd(pid);
    if (fd >= 0)
      fds.push_back({fd, POLLIN, 0});
    else if (errno == ESRCH)
      gone = true;
    else
      timeout = std::min(timeout, kPollFallback);
  }
  if (!gone && timeout > Millis(0)) {
    int n;
    do {
      n = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
  }
  if (event_fd_ >= 0) {
    uint64_t drained;
    (void)!::read(event_fd_, &drained, sizeof drained);
  }
  for (size_t i = event_fd_ >= 0 ? 1 : 0; i < fds.size(); ++i) ::close(fds[i].fd);
}

}  // namespace md::supervisor
