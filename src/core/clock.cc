#include "core/clock.h"

#include <ctime>
#include <thread>

namespace md {
namespace {
class RealClock : public Clock {
 public:
  SysTime now() const override { return std::chrono::system_clock::now(); }
  MonoTime mono() const override { return std::chrono::steady_clock::now(); }
  void sleep_for(Millis d) override { std::this_thread::sleep_for(d); }
};
}  // namespace

Clock& real_clock() {
  static RealClock clock;
  return clock;
}

SysTime FakeClock::now() const {
  std::lock_guard lock(mu_);
  return sys_;
}
MonoTime FakeClock::mono() const {
  std::lock_guard lock(mu_);
  return mono_;
}
void FakeClock::advance(Millis d) {
  std::lock_guard lock(mu_);
  sys_ += d;
  mono_ += d;
}

int64_t to_unix_ms(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
SysTime from_unix_ms(int64_t ms) { return SysTime(std::chrono::milliseconds(ms)); }

std::string format_time(SysTime t) {
  int64_t ms = to_unix_ms(t);
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace md
