#include "core/wakeup.h"

namespace md {

bool Wakeup::wait_for(Millis d) {
  std::unique_lock lock(mu_);
  auto done = [this] { return pending_ || stopped_; };
  if (!done() && d > Millis(0)) {
    // WHY a cast and not a Clock method: waiting is the one thing a fake
    // must do differently (advance, never block), and only here.
    if (auto* fake = dynamic_cast<FakeClock*>(&clock_))
      fake->advance(d);
    else
      cv_.wait_for(lock, d, done);
  }
  pending_ = false;
  return !stopped_;
}

void Wakeup::notify() {
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  cv_.notify_all();
}

void Wakeup::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

}  // namespace md
