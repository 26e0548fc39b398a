// Waiting for process exits without polling: the agent's supervisor loop
// sleeps here until a process leader ends (its pidfd turns readable), wake()
// is called (an eventfd), or its next deadline comes. Internal to the agent's
// loop; real time only (the Clock seam's fake has no processes to wait for).
#pragma once

#include <sys/types.h>

#include <vector>

#include "core/clock.h"

namespace md::supervisor {

// Owner: the agent (one per supervisor loop). wake() is thread-safe; wait()
// is called from one thread.
class ExitWatch {
 public:
  ExitWatch();
  ~ExitWatch();
  ExitWatch(const ExitWatch&) = delete;
  ExitWatch& operator=(const ExitWatch&) = delete;

  // Blocks until one of `pids` ends (a pid already gone ends it at once),
  // wake() was called since the last wait, or `timeout` passed. A pid that
  // cannot be watched (no pidfd support: Linux < 5.3, or out of descriptors)
  // caps the wait at 20 ms, i.e. polling as before. Never fails.
  void wait(const std::vector<pid_t>& pids, Millis timeout);
  void wake();

 private:
  int event_fd_ = -1;
};

}  // namespace md::supervisor
