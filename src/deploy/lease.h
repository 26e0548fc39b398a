// The environment's deploy lock, held as a lease in the state store and
// renewed on a background thread while a deploy runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "state/state.h"

namespace md::deploy {

// "user@host pid N" for this process.
std::string default_holder();

// Parses "user@host pid N" into host and pid; false when it is not that shape.
bool parse_holder(const std::string& holder, std::string* host, long* pid);

// Owns the lease from acquire() until release() or destruction.
// Concurrency: the renewal thread and the owner share only atomics and the
// store (thread-safe by contract).
class Lease {
 public:
  // Takes the lock of `environment`. When another holder has it:
  // - if that holder is a process of this host that no longer runs (a
  //   controller killed with -9), waits for its lease to expire (at most its
  //   remaining ttl, calling `on_wait` once with a message), then takes it;
  // - otherwise kConflict naming the holder, the deployment and since when.
  // Starts renewing every ttl/3 on a thread that uses real time.
  static Result<std::unique_ptr<Lease>> acquire(
      state::Store& store, const std::string& environment, const std::string& holder,
      const std::string& deployment_id, Millis ttl, Clock& clock,
      const std::function<void(const std::string&)>& on_wait);
  ~Lease();  // release()
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // True once a renewal found the lease taken by someone else: the owner
  // must stop changing anything at once.
  bool lost() const { return lost_.load(); }
  // Stops renewing and frees the lock. Idempotent; errors are ignored (the
  // lease expires on its own).
  void release();

 private:
  Lease(state::Store& store, std::string environment, std::string holder, Millis ttl);
  void renew_loop();

  state::Store& store_;
  std::string environment_;
  std::string holder_;
  Millis ttl_;
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace md::deploy
