// In-memory fakes of deploy's seams for unit tests (../shared/STYLE.md
// point 3): a host that simulates releases, health, routing and traffic, a
// migration engine and a hook runner. Each records the calls it gets and can
// inject failures. Not thread-safe: one thread at a time (a fleet calls each host from its own).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "deploy/seams.h"

namespace md::deploy::testing {

class FakeHost : public Host {
 public:
  struct Behaviour {
    int views_to_healthy = 1;  // view() calls after start before web passes health
    bool never_healthy = false;
    bool crash = false;      // web processes crash-loop (state failed)
    double error_rate = 0;   // share of its requests answered 5xx
    double latency_ms = 10;  // latency of every request (a bucket's lower bound)
    int restarts = 0;        // restarts of each web process so far
  };
  std::map<std::string, Behaviour> behaviour;  // by version
  int web_per_release = 2;
  int workers_per_release = 1;
  uint64_t requests_per_metrics = 200;  // traffic generated per metrics() call
  std::vector<std::string> calls;       // "ship v2", "start v2 web", "route v2=25,v1=75", ...
  std::map<std::string, Error>
      fail_next;  // "ship" | "start" | "route" | "drain" | "stop" | "keep_warm" | "view": once
  bool unreachable = false;
  std::function<void(int)> on_metrics;  // called with the metrics() call count
  std::function<void()> on_route;       // called after each successful route()
  uint64_t disk_free = 10ull << 30;
  uint64_t disk_free_inodes = 0;                      // 0: not counted (as on btrfs)
  std::vector<std::string> listen{"127.0.0.1:8080"};  // the proxy.listen default
  Millis route_probe{0};                              // what route() says the health probe took

  struct Rel {
    std::string sha;
    bool web = false, workers = false;
    int views = 0;
  };
  std::map<std::string, Rel> rel;
  std::vector<std::string> order;  // shipped, oldest first
  std::map<std::string, int> weights;
  std::map<std::string, SetMetrics> counters;
  int metrics_calls = 0;

  std::string host_name = "fake";
  std::function<void()> before_route;  // called as each route() begins

  std::string name() const override { return host_name; }

  Result<HostView> view() override {
    if (unreachable) return fail(Errc::kUnavailable, "agent unreachable", true);
    if (auto e = take("view")) return tl::unexpected(*e);
    HostView hv;
    hv.agent_version = "fake";
    hv.disk_free_bytes = disk_free;
    hv.disk_free_inodes = disk_free_inodes;
    hv.weights = weights;
    hv.listen = listen;
    for (const std::string& v : order) {
      Rel& r = rel[v];
      const Behaviour b = behaviour[v];
      ReleaseView rv;
      rv.version = v;
      rv.sha256 = r.sha;
      if (r.web) {
        ++r.views;
        for (int i = 1; i <= web_per_release; ++i) {
          ProcessView p;
          p.service = "web";
          p.index = i;
          p.web = true;
          const bool healthy = !b.never_healthy && !b.crash && r.views >= b.views_to_healthy;
          p.state = b.crash ? "failed" : healthy ? "running" : "starting";
          p.healthy = healthy;
          p.restarts = b.restarts;
          if (b.crash) p.last_exit = "exit 1";
          rv.processes.push_back(p);
        }
      }
      if (r.workers) {
        for (int i = 1; i <= workers_per_release; ++i) {
          ProcessView p;
          p.service = "worker";
          p.index = i;
          p.web = false;
          p.state = "running";
          p.healthy = true;
          rv.processes.push_back(p);
        }
      }
      hv.releases.push_back(rv);
    }
    return hv;
  }

  Status ship(const std::string& version, const std::filesystem::path&,
              const std::string& sha256) override {
    calls.push_back("ship " + version);
    if (auto e = take("ship")) return tl::unexpected(*e);
    if (rel.count(version) && rel[version].sha != sha256)
      return fail(Errc::kAlreadyExists, version + " exists with another sha256");
    if (!rel.count(version)) order.push_back(version);
    rel[version].sha = sha256;
    return ok();
  }

  Status start(const std::string& version, Role role, const LaunchSpec&) override {
    calls.push_back(fmt::format("start {} {}", version, role_name(role)));
    if (auto e = take("start")) return tl::unexpected(*e);
    if (!rel.count(version)) return fail(Errc::kNotFound, version + " not on host");
    Rel& r = rel[version];
    if (role != Role::kWorkers && !r.web) {
      r.web = true;
      r.views = 0;
    }
    if (role != Role::kWeb) r.workers = true;
    return ok();
  }

  Result<Millis> route(const std::map<std::string, int>& w) override {
    std::string desc;
    int sum = 0;
    for (auto it = w.rbegin(); it != w.rend(); ++it) {
      desc += (desc.empty() ? "" : ",") + fmt::format("{}={}", it->first, it->second);
      sum += it->second;
    }
    calls.push_back("route " + desc);
    if (before_route) before_route();
    if (unreachable) return fail(Errc::kUnavailable, "agent unreachable", true);
    if (auto e = take("route")) return tl::unexpected(*e);
    if (sum != 100) return fail(Errc::kInvalidArgument, "weights do not sum to 100");
    for (const auto& [v, pct] : w)
      if (pct > 0 && (!rel.count(v) || !rel[v].web))
        return fail(Errc::kFailedPrecondition, v + " not running");
    weights.clear();
    for (const auto& [v, pct] : w)
      if (pct > 0) weights[v] = pct;
    if (on_route) on_route();
    return route_probe;
  }

  Result<std::map<std::string, SetMetrics>> metrics() override {
    ++metrics_calls;
    if (on_metrics) on_metrics(metrics_calls);
    for (const auto& [v, pct] : weights) {
      const Behaviour b = behaviour[v];
      SetMetrics& m = counters[v];
      const uint64_t n = requests_per_metrics * static_cast<uint64_t>(pct) / 100;
      m.requests += n;
      m.errors += static_cast<uint64_t>(std::llround(static_cast<double>(n) * b.error_rate));
      // Every request in the 1 % wide bucket starting at latency_ms.
      auto it = std::find_if(m.latency.begin(), m.latency.end(),
                             [&](const LatencyBucket& x) { return x.lo_ms == b.latency_ms; });
      if (it == m.latency.end()) {
        m.latency.push_back({b.latency_ms, b.latency_ms * 1.01, 0});
        std::sort(m.latency.begin(), m.latency.end(),
                  [](const LatencyBucket& x, const LatencyBucket& y) { return x.lo_ms < y.lo_ms; });
        it = std::find_if(m.latency.begin(), m.latency.end(),
                          [&](const LatencyBucket& x) { return x.lo_ms == b.latency_ms; });
      }
      it->count += n;
    }
    return counters;
  }

  Status drain(const std::string& version, Millis) override {
    calls.push_back("drain " + version);
    if (auto e = take("drain")) return tl::unexpected(*e);
    return ok();
  }

  std::map<std::string, SysTime> warm_until;  // keep_warm deadlines (the fake never acts on them)
  Result<SysTime> keep_warm(const std::string& version, Millis window) override {
    calls.push_back(fmt::format("keep_warm {} {}ms", version, window.count()));
    if (auto e = take("keep_warm")) return tl::unexpected(*e);
    if (weights.count(version)) return fail(Errc::kFailedPrecondition, version + " takes traffic");
    const SysTime until = SysTime(std::chrono::seconds(1'700'000'000)) + window;
    warm_until[version] = until;
    return until;
  }

  Status stop(const std::string& version, Role role) override {
    calls.push_back(fmt::format("stop {} {}", version, role_name(role)));
    if (auto e = take("stop")) return tl::unexpected(*e);
    if (!rel.count(version)) return ok();
    Rel& r = rel[version];
    if (role != Role::kWorkers) r.web = false;
    if (role != Role::kWeb) r.workers = false;
    return ok();
  }

  Result<std::vector<std::string>> prune(int keep,
                                         const std::vector<std::string>& protect) override {
    calls.push_back(fmt::format("prune {}", keep));
    std::vector<std::string> gone;
    while (static_cast<int>(order.size()) > keep) {
      auto it = std::find_if(order.begin(), order.end(), [&](const std::string& v) {
        return std::find(protect.begin(), protect.end(), v) == protect.end() && !rel[v].web &&
               !rel[v].workers;
      });
      if (it == order.end()) break;
      gone.push_back(*it);
      rel.erase(*it);
      order.erase(it);
    }
    return gone;
  }

  // Versions with any process running.
  std::vector<std::string> running() const {
    std::vector<std::string> out;
    for (const auto& [v, r] : rel)
      if (r.web || r.workers) out.push_back(v);
    return out;
  }

 private:
  static const char* role_name(Role r) {
    return r == Role::kWeb ? "web" : r == Role::kWorkers ? "workers" : "all";
  }
  std::optional<Error> take(const std::string& what) {
    auto it = fail_next.find(what);
    if (it == fail_next.end()) return std::nullopt;
    Error e = it->second;
    fail_next.erase(it);
    return e;
  }
};

class FakeMigrator : public Migrator {
 public:
  std::vector<std::string> expand, contract;  // pending file versions
  std::vector<std::string> refuse;            // verdict reasons (non-empty: not ok)
  std::string fail_apply;                     // "expand" | "contract": that apply fails
  std::vector<std::string> calls;

  Result<migrate::Plan> plan() override {
    calls.push_back("plan");
    migrate::Plan p;
    for (const auto& [list, phase] : {std::pair{&expand, migrate::Phase::kExpand},
                                      std::pair{&contract, migrate::Phase::kContract}})
      for (const std::string& v : *list) {
        migrate::PlannedFile f;
        f.version = v;
        f.name = "m";
        f.file = v + "_m.sql";
        f.state = migrate::FileState::kPending;
        f.phase = phase;
        p.files.push_back(f);
      }
    p.verdict.ok = refuse.empty();
    p.verdict.reasons = refuse;
    return p;
  }

  migrate::ApplyReport apply(migrate::Selection sel, const std::string&) override {
    const bool ex = sel == migrate::Selection::kExpand;
    calls.push_back(ex ? "apply expand" : "apply contract");
    migrate::ApplyReport r;
    if (fail_apply == (ex ? "expand" : "contract")) {
      r.error = Error(Errc::kFailedPrecondition, "relation \"runs\" does not exist");
      return r;
    }
    for (const std::string& v : ex ? expand : contract) {
      migrate::AppliedFile f;
      f.version = v;
      f.name = "m";
      r.applied.push_back(f);
    }
    (ex ? expand : contract).clear();
    return r;
  }
};

class FakeHooks : public HookRunner {
 public:
  struct Call {
    std::string command;
    std::map<std::string, std::string> vars;
  };
  std::vector<Call> calls;
  std::map<std::string, int> exit_codes;  // command -> exit code (default 0)

  Result<HookResult> run(const std::string& command, const std::map<std::string, std::string>& vars,
                         Millis) override {
    calls.push_back({command, vars});
    HookResult r;
    r.exit_code = exit_codes.count(command) ? exit_codes[command] : 0;
    r.describe = fmt::format("exit {}", r.exit_code);
    if (r.exit_code != 0) r.output = "hook says no\n";
    return r;
  }
  std::vector<std::string> commands() const {
    std::vector<std::string> out;
    for (const Call& c : calls) out.push_back(c.command);
    return out;
  }
};

// Collects progress events.
class RecordingObserver : public Observer {
 public:
  std::vector<Progress> events;
  void on_progress(const Progress& p) override { events.push_back(p); }
};

}  // namespace md::deploy::testing
