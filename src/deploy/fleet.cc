// Several hosts driven as one Host: every call goes to all of them at once
// (one thread per host), and succeeds only when it succeeded on each. The
// executor's all-or-none rules follow from that: a step that failed on one
// host failed, and the failure path's calls go to every host again (each
// call is idempotent, so hosts that already did it are not disturbed).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "deploy/adapters.h"

namespace md::deploy {
namespace {

using Steady = std::chrono::steady_clock;

std::string seconds_text(Steady::duration d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

// Sums two cumulative counters of one target set (histograms bucket by bucket).
void add_into(SetMetrics& into, const SetMetrics& m) {
  into.requests += m.requests;
  into.errors += m.errors;
  std::vector<LatencyBucket> merged;
  size_t i = 0, j = 0;
  while (i < into.latency.size() || j < m.latency.size()) {
    if (j == m.latency.size() ||
        (i < into.latency.size() && into.latency[i].lo_ms < m.latency[j].lo_ms)) {
      merged.push_back(into.latency[i++]);
    } else if (i == into.latency.size() || m.latency[j].lo_ms < into.latency[i].lo_ms) {
      merged.push_back(m.latency[j++]);
    } else {
      LatencyBucket b = into.latency[i++];
      b.count += m.latency[j++].count;
      merged.push_back(b);
    }
  }
  into.latency = std::move(merged);
}

class Fleet : public Host {
 public:
  explicit Fleet(std::vector<std::unique_ptr<Host>> hosts) : hosts_(std::move(hosts)) {}

  std::string name() const override {
    std::vector<std::string> n = host_names();
    std::string out;
    for (const std::string& h : n) out += (out.empty() ? "" : ", ") + h;
    return fmt::format("{} hosts ({})", hosts_.size(), out);
  }

  std::vector<std::string> host_names() const override {
    std::vector<std::string> out;
    for (const auto& h : hosts_) out.push_back(h->name());
    return out;
  }

  Result<HostView> view() override {
    std::vector<Result<HostView>> views =
        each<HostView>("status", [](Host& h) { return h.view(); });
    MD_TRY_STATUS(all_ok(views));
    return merge(views);
  }

  std::vector<std::pair<std::string, Result<HostView>>> host_views() override {
    std::vector<Result<HostView>> views =
        each<HostView>("status", [](Host& h) { return h.view(); });
    std::vector<std::pair<std::string, Result<HostView>>> out;
    for (size_t i = 0; i < hosts_.size(); ++i)
      out.emplace_back(hosts_[i]->name(), std::move(views[i]));
    return out;
  }

  Status ship(const std::string& v, const std::filesystem::path& a, const std::string& s) override {
    return all_ok(each<bool>("ship", [&](Host& h) -> Result<bool> {
      MD_TRY_STATUS(h.ship(v, a, s));
      return true;
    }));
  }

  Status start(const std::string& v, Role r, const LaunchSpec& spec) override {
    return all_ok(each<bool>("start", [&](Host& h) -> Result<bool> {
      MD_TRY_STATUS(h.start(v, r, spec));
      return true;
    }));
  }

  Result<Millis> route(const std::map<std::string, int>& w) override {
    std::vector<Steady::time_point> done(hosts_.size());
    std::vector<Result<Millis>> probes = each<Millis>("route", [&](Host& h) -> Result<Millis> {
      Result<Millis> p = h.route(w);
      done[index_of(h)] = Steady::now();
      return p;
    });
    std::vector<std::string> moved;
    Millis probe{0};
    Steady::time_point first = Steady::time_point::max(), last = Steady::time_point::min();
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (!probes[i]) continue;
      moved.push_back(hosts_[i]->name());
      probe = std::max(probe, *probes[i]);
      first = std::min(first, done[i]);
      last = std::max(last, done[i]);
    }
    if (!moved.empty()) spread_ = std::chrono::duration_cast<Millis>(last - first);
    if (Status st = all_ok(probes); !st) {
      Error e = st.error();
      if (!moved.empty())
        e.context(fmt::format("the split moved on {} only", fmt::join(moved, ", ")));
      return tl::unexpected(e);
    }
    return probe;
  }

  Result<std::map<std::string, SetMetrics>> metrics() override {
    std::vector<Result<std::map<std::string, SetMetrics>>> per =
        each<std::map<std::string, SetMetrics>>("metrics", [](Host& h) { return h.metrics(); });
    MD_TRY_STATUS(all_ok(per));
    std::map<std::string, SetMetrics> sum;
    by_host_.clear();
    for (size_t i = 0; i < hosts_.size(); ++i) {
      // WHY all or nothing: a host whose agent restarted answers with empty
      // sets (its counters start over); the sum would go backwards on some
      // sets only. Empty sets make the analysis take a new baseline.
      if (per[i]->empty()) return std::map<std::string, SetMetrics>{};
      by_host_[hosts_[i]->name()] = *per[i];
      for (const auto& [version, m] : *per[i]) add_into(sum[version], m);
    }
    return sum;
  }

  std::map<std::string, std::map<std::string, SetMetrics>> host_metrics() const override {
    return by_host_;
  }

  Status drain(const std::string& v, Millis t) override {
    return all_ok(each<bool>("drain", [&](Host& h) -> Result<bool> {
      MD_TRY_STATUS(h.drain(v, t));
      return true;
    }));
  }

  Status stop(const std::string& v, Role r) override {
    return all_ok(each<bool>("stop", [&](Host& h) -> Result<bool> {
      MD_TRY_STATUS(h.stop(v, r));
      return true;
    }));
  }

  Result<SysTime> keep_warm(const std::string& v, Millis window) override {
    std::vector<Result<SysTime>> r =
        each<SysTime>("keep-warm", [&](Host& h) { return h.keep_warm(v, window); });
    MD_TRY_STATUS(all_ok(r));
    SysTime latest{};
    for (const auto& t : r) latest = std::max(latest, *t);
    return latest;
  }

  Result<std::vector<std::string>> prune(int keep, const std::vector<std::string>& p) override {
    std::vector<Result<std::vector<std::string>>> r =
        each<std::vector<std::string>>("prune", [&](Host& h) { return h.prune(keep, p); });
    MD_TRY_STATUS(all_ok(r));
    std::vector<std::string> out;
    for (const auto& removed : r)
      for (const std::string& v : *removed)
        if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return out;
  }

  Millis route_spread() const override { return spread_; }

  std::map<std::string, std::string> take_host_log() override {
    std::lock_guard<std::mutex> g(log_mu_);
    return std::exchange(log_, {});
  }

 private:
  size_t index_of(const Host& h) const {
    for (size_t i = 0; i < hosts_.size(); ++i)
      if (hosts_[i].get() == &h) return i;
    MD_CHECK_MSG(false, "not a host of this fleet");
    return 0;
  }

  // Runs `f` on every host at once; results in host order. Mutating calls
  // are logged per host for the journal.
  template <class T, class F>
  std::vector<Result<T>> each(const char* what, F f) {
    std::vector<std::optional<Result<T>>> out(hosts_.size());
    std::vector<std::thread> threads;
    threads.reserve(hosts_.size());
    const bool logged = std::string_view(what) != "status" && std::string_view(what) != "metrics";
    for (size_t i = 0; i < hosts_.size(); ++i)
      threads.emplace_back([&, i] {
        const Steady::time_point t = Steady::now();
        out[i].emplace(f(*hosts_[i]));
        if (!logged) return;
        std::string line = fmt::format("{} {} {}", what, seconds_text(Steady::now() - t),
                                       *out[i] ? "ok" : "failed: " + out[i]->error().what());
        std::lock_guard<std::mutex> g(log_mu_);
        std::string& l = log_[hosts_[i]->name()];
        l += (l.empty() ? "" : "; ") + line;
      });
    for (std::thread& t : threads) t.join();
    std::vector<Result<T>> r;
    r.reserve(out.size());
    for (auto& o : out) r.push_back(std::move(*o));
    return r;
  }

  // ok when every host succeeded; else the first failure's code with every
  // failed host named ("host h2: ...; host h3: ...").
  template <class T>
  Status all_ok(const std::vector<Result<T>>& r) const {
    std::optional<Errc> code;
    std::string msg;
    bool retryable_all = true;
    for (size_t i = 0; i < r.size(); ++i) {
      if (r[i]) continue;
      if (!code) code = r[i].error().code();
      retryable_all = retryable_all && r[i].error().retryable();
      msg += fmt::format("{}host {}: {}", msg.empty() ? "" : "; ", hosts_[i]->name(),
                         r[i].error().what());
    }
    if (!code) return ok();
    return fail(*code, msg);
  }

  HostView merge(const std::vector<Result<HostView>>& views) const {
    HostView m;
    m.hosts = static_cast<int>(views.size());
    m.disk_free_bytes = UINT64_MAX;
    std::vector<std::string> versions;
    for (size_t i = 0; i < views.size(); ++i) {
      const HostView& v = *views[i];
      if (std::find(versions.begin(), versions.end(), v.agent_version) == versions.end())
        versions.push_back(v.agent_version);
      m.disk_free_bytes = std::min(m.disk_free_bytes, v.disk_free_bytes);
      if (v.disk_free_inodes > 0 &&
          (m.disk_free_inodes == 0 || v.disk_free_inodes < m.disk_free_inodes))
        m.disk_free_inodes = v.disk_free_inodes;
      for (const ReleaseView& r : v.releases) {
        auto it = std::find_if(m.releases.begin(), m.releases.end(),
                               [&](const ReleaseView& x) { return x.version == r.version; });
        if (it == m.releases.end()) {
          m.releases.push_back(r);
          continue;
        }
        it->on_hosts += 1;
        it->processes.insert(it->processes.end(), r.processes.begin(), r.processes.end());
        if (it->sha256 != r.sha256) it->sha256 = "";  // hosts disagree: preflight names which
        it->warm_until = std::max(it->warm_until, r.warm_until);
      }
    }
    m.agent_version =
        versions.size() == 1 ? versions.front() : fmt::format("{}", fmt::join(versions, " / "));
    // The mean split, rounded by largest remainder so that it sums to 100.
    std::map<std::string, double> mean;
    for (const auto& v : views)
      for (const auto& [version, w] : v->weights)
        mean[version] += static_cast<double>(w) / static_cast<double>(views.size());
    int total = 0;
    std::vector<std::pair<double, std::string>> rest;
    for (const auto& [version, w] : mean) {
      m.weights[version] = static_cast<int>(w);
      total += static_cast<int>(w);
      rest.emplace_back(w - static_cast<int>(w), version);
    }
    std::sort(rest.begin(), rest.end(), std::greater<>());
    for (size_t i = 0; total > 0 && total < 100 && i < rest.size(); ++i, ++total)
      m.weights[rest[i].second] += 1;
    for (auto it = m.weights.begin(); it != m.weights.end();)
      it = it->second == 0 ? m.weights.erase(it) : std::next(it);
    if (m.disk_free_bytes == UINT64_MAX) m.disk_free_bytes = 0;
    return m;
  }

  std::vector<std::unique_ptr<Host>> hosts_;
  Millis spread_{0};
  std::map<std::string, std::map<std::string, SetMetrics>> by_host_;
  std::mutex log_mu_;
  std::map<std::string, std::string> log_;
};

}  // namespace

std::unique_ptr<Host> make_fleet(std::vector<std::unique_ptr<Host>> hosts) {
  MD_CHECK(!hosts.empty());
  if (hosts.size() == 1) return std::move(hosts.front());
  return std::make_unique<Fleet>(std::move(hosts));
}

}  // namespace md::deploy
