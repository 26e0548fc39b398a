// An event-driven sleep on the Clock seam, for loops that have work only now
// and then (the agent's supervisor, health, reconcile and retire loops): an
// idle loop sleeps until told, instead of waking every few milliseconds to
// look.
#pragma once

#include <condition_variable>
#include <mutex>

#include "core/clock.h"

namespace md {

// wait_for(d) returns at notify(), at stop(), or after d on the clock,
// whichever comes first. A notify() while nobody waits is kept for the next
// wait_for. On a FakeClock it never blocks: it advances the clock by d unless
// a notify() is pending. Thread-safe; owned by the loop's owner, shared by
// reference with those who notify.
class Wakeup {
 public:
  explicit Wakeup(Clock& clock) : clock_(clock) {}
  // False once stop() was called (then at once).
  bool wait_for(Millis d);
  void notify();
  void stop();

 private:
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stopped_ = false;
};

}  // namespace md
