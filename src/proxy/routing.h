// The routing table the workers read: immutable snapshots of services and
// their target sets, plus the shared, atomically updated state of each
// target (health) and set (counters). Internal to src/proxy.
//
// Ownership and concurrency:
// - RouteTable and ServiceRoute are immutable once published; workers hold
//   them by shared_ptr while a request uses them.
// - TargetState: health flags are atomics written by the health checker and
//   by workers (passive ejection); `pools[w]` is touched only by worker w.
// - TargetSet: `shards[w]` is written only by worker w (relaxed atomics, no
//   lock prefix) and summed by readers.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/loop.h"
#include "proxy/proxy.h"

namespace md::proxy {

inline constexpr int kMaxWorkers = 64;

// Counters of one worker for one set (or one service's local answers).
struct alignas(64) StatsShard {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> by_class[5] = {};
  std::atomic<uint64_t> aborted{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> latency[kLatencyBuckets] = {};
  std::atomic<uint64_t> latency_sum_us{0};
  std::atomic<int64_t> active{0};
  uint64_t rr = 0;  // round-robin position of this worker (owner only)

  // Single-writer increments: a load and a store, no locked instruction.
  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void bump(std::atomic<int64_t>& c, int64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Records a finished request: status 0 means aborted without a response.
  void finish(int status, int64_t latency_us);
};

// Per-worker shards for one set or service.
class Stats {
 public:
  explicit Stats(int workers) : n_(workers), shards_(new StatsShard[workers]) {}
  StatsShard& shard(int w) { return shards_[w]; }
  Counters read() const;
  int64_t active() const;

 private:
  int n_;
  std::unique_ptr<StatsShard[]> shards_;
};

// Per worker idle connections to one target (worker-owned).
struct alignas(64) PoolSlot {
  Link idle;  // UpstreamConn::pool_link
  int count = 0;
};

// One target of one service: its address and health, shared by every set
// and snapshot that names it.
struct TargetState {
  TargetState(std::string service, Endpoint ep, int workers);
  ~TargetState();

  std::string service;
  Endpoint endpoint;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  Status resolve();  // fills addr (blocking DNS for names); kUnavailable

  std::atomic<bool> healthy{true};
  std::atomic<int> fail_streak{0};           // passive: consecutive request failures
  std::atomic<int64_t> ejected_until_ms{0};  // passive ejection (mono ms)
  std::atomic<bool> in_use{true};            // named by the current routing table
  std::atomic<int64_t> connections{0};       // open upstream connections (busy + pooled)

  bool usable(int64_t now_ms) const {
    return healthy.load(std::memory_order_relaxed) &&
           ejected_until_ms.load(std::memory_order_relaxed) <= now_ms;
  }
  // Passive outcome of one request (thread-safe).
  void record_failure(const PassiveEjection& pe, int64_t now_ms, std::string_view why);
  void record_success() {
    if (fail_streak.load(std::memory_order_relaxed) != 0)
      fail_streak.store(0, std::memory_order_relaxed);
  }

  void set_error(std::string e);
  std::string error() const;

  PoolSlot* pools;  // [workers]

 private:
  mutable std::mutex err_mu_;
  std::string last_error_;
};

// A set of targets traffic is routed to as a unit (live or canary).
struct TargetSet {
  TargetSet(uint64_t id, std::vector<std::shared_ptr<TargetState>> targets, int workers)
      : id(id), targets(std::move(targets)), stats(workers) {}
  uint64_t id;
  std::vector<std::shared_ptr<TargetState>> targets;
  Stats stats;
  std::atomic<bool> retired{false};      // replaced: its streams get the drain deadline
  std::atomic<int64_t> drain_closed{0};  // streams closed at the drain deadline (any worker)
  std::vector<Endpoint> endpoints() const;
};

// Per-service state that outlives snapshots.
struct ServiceShared {
  explicit ServiceShared(int workers) : local(workers) {}
  Stats local;                   // answers made by the proxy itself
  std::atomic<int64_t> held{0};  // requests held by a pause now (all workers)
};

// One service in one snapshot. Immutable.
struct ServiceRoute {
  ServiceSpec spec;
  std::string host;  // lower case; without "*." for wildcards
  bool host_wildcard = false;
  std::shared_ptr<TargetSet> live;
  std::shared_ptr<TargetSet> canary;
  int canary_weight = 0;
  bool maintenance = false;
  std::string maintenance_response;        // full 503 response bytes, keep-alive
  std::string maintenance_response_close;  // the same with Connection: close
  bool paused = false;
  PauseOptions pause;
  std::shared_ptr<ServiceShared> shared;
};

// An immutable routing table.
struct RouteTable {
  uint64_t generation = 0;
  // Most specific first: exact hosts, then wildcards, then any host; within
  // each, longer prefixes first.
  std::vector<std::shared_ptr<const ServiceRoute>> services;

  // The service for a request, or nullptr. `authority` is the Host field
  // (port and case ignored), `path` the request path.
  const ServiceRoute* match(std::string_view authority, std::string_view path) const;
};

// Sorts `services` into match order (pure).
void sort_for_matching(std::vector<std::shared_ptr<const ServiceRoute>>& services);

// True when `path` is under `prefix` at a segment boundary.
bool prefix_matches(std::string_view prefix, std::string_view path);

// The canary bucket (0..99) of a sticky key.
int sticky_bucket(std::string_view key);

// The value of cookie `name` in a Cookie header value, or "" (not found).
std::string_view find_cookie(std::string_view cookie_header, std::string_view name);

// The full 503 maintenance response for `page` ("" = default page).
std::string maintenance_response(std::string_view page, bool close);

}  // namespace md::proxy
