// SIGINT/SIGTERM for a controller: a flag to poll between steps and a file
// descriptor that becomes readable when a signal arrives, so a call blocked
// on I/O (an agent that never answers) can be cut at once (http/ clients
// watch it). Process-wide; only the controller commands install it.
#pragma once

#include <atomic>

namespace md::interrupt {

// While a Watch lives, SIGINT and SIGTERM do not end the process: they set
// flag(), and pending() and fd() until take(). The previous handlers come
// back when it is destroyed. One at a time; not nestable.
class Watch {
 public:
  Watch();
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
};

// True once a signal arrived under the current Watch (false without one).
const std::atomic<bool>& flag();
// A signal arrived that nobody has taken yet.
bool pending();
// Readable while a signal is pending; -1 without a Watch. Never read it:
// take() drains it. Stays valid for the life of the process.
int fd();
// The caller handles the pending signal (e.g. starts an abort whose own
// calls must not be cut): pending() is false and fd() unreadable until the
// next signal. flag() stays true.
void take();

}  // namespace md::interrupt
