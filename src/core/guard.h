// The top-level handler of a thread's work. An exception that leaves a
// thread calls std::terminate and ends the whole process (an agent serving
// every service's traffic); a thread's loop runs each round through
// guarded() instead, which logs and lets the thread degrade or go on.
#pragma once

#include <exception>
#include <string_view>
#include <utility>

#include "core/log.h"

namespace md {

// Runs fn(). An exception is logged as an error on `log` ("<what>: uncaught
// exception (continuing): <e.what()>") and swallowed: returns false. Never
// throws, whatever fn or the logging does.
template <class Fn>
bool guarded(const log::Logger& log, std::string_view what, Fn&& fn) noexcept {
  try {
    std::forward<Fn>(fn)();
    return true;
  } catch (const std::exception& e) {
    // WHY nested: logging may allocate; a failure there must not terminate either.
    try {
      log.error("{}: uncaught exception (continuing): {}", what, e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      log.error("{}: uncaught exception (continuing)", what);
    } catch (...) {
    }
  }
  return false;
}

}  // namespace md
