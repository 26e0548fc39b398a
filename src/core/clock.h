// Time as a seam: the real clock, and a fake that tests advance by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace md {

using Millis = std::chrono::milliseconds;
using SysTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;

// Owner: whoever creates it; shared by reference. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SysTime now() const = 0;       // wall clock, for records
  virtual MonoTime mono() const = 0;     // monotonic, for deadlines
  virtual void sleep_for(Millis d) = 0;  // blocks (the fake advances instead)
};

// The process's real clocks. Never null.
Clock& real_clock();

// A clock that moves only when told. Thread-safe (internal mutex).
class FakeClock : public Clock {
 public:
  explicit FakeClock(SysTime start = SysTime(std::chrono::seconds(1'700'000'000))) : sys_(start) {}
  SysTime now() const override;
  MonoTime mono() const override;
  void sleep_for(Millis d) override { advance(d); }
  void advance(Millis d);

 private:
  mutable std::mutex mu_;
  SysTime sys_;
  MonoTime mono_{};
};

// RFC 3339 UTC with milliseconds: "2026-11-22T09:00:00.123Z".
std::string format_time(SysTime t);
// Milliseconds since the Unix epoch.
int64_t to_unix_ms(SysTime t);
SysTime from_unix_ms(int64_t ms);

}  // namespace md
