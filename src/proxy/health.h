// Active health checks: one thread probes every target the routing table
// names, on each service's interval, and flips TargetState::healthy after
// the thresholds. Also the blocking pre-switch probe used by deploy.
// Internal to src/proxy.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "proxy/routing.h"

namespace md::proxy {

// One probe of `t` as `hc` says (GET hc.path, or a TCP connect when the path
// is empty). `host` is the Host header ("" = the target's address). OK for a
// 2xx/3xx answer; the error says what failed. Blocks up to hc.timeout.
Status probe(const TargetState& t, const HealthCheck& hc, std::string_view host);

// Probes every target until each passed hc.healthy_threshold probes in a
// row, spaced by `spacing`, or `timeout` passed (kTimeout naming the targets
// that are not healthy and their last error). Blocks.
Status wait_healthy(const std::vector<std::shared_ptr<TargetState>>& targets, const HealthCheck& hc,
                    std::string_view host, Millis spacing, Millis timeout);

class HealthChecker {
 public:
  struct Item {
    std::shared_ptr<TargetState> target;
    HealthCheck check;
    std::string host;
  };
  HealthChecker();
  ~HealthChecker();  // stops and joins
  // Replaces the set of targets to check. Targets already checked keep their
  // streaks and schedule; new ones are probed at once.
  void set_items(std::vector<Item> items);
  void stop();

 private:
  struct Entry {
    Item item;
    int64_t next_ms = 0;
    int ok_streak = 0;
    int fail_streak = 0;
  };
  void run();
  void run_rounds();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool changed_ = false;
  std::vector<Entry> entries_;
  std::thread thread_;
};

}  // namespace md::proxy
