#include "proxy/health.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <map>
#include <system_error>
#include <thread>

#include "core/guard.h"
#include "core/log.h"
#include "http/http.h"

namespace md::proxy {

namespace {

Status tcp_probe(const TargetState& t, Millis timeout) {
  int fd = ::socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    std::string why = std::string("socket: ") + std::strerror(e);
    if (http::local_resource_errno(e)) why = std::string(http::kLocalResourcesPrefix) + why;
    return fail(Errc::kUnavailable, why, true);
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.addr_len);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && err == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0) {
      ::close(fd);
      return fail(Errc::kTimeout, "connect timed out", true);
    }
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  ::close(fd);
  if (err != 0)
    return fail(Errc::kUnavailable, std::string("connect: ") + std::strerror(err), true);
  return ok();
}

}  // namespace

Status probe(const TargetState& t, const HealthCheck& hc, std::string_view host) {
  if (hc.path.empty()) return tcp_probe(t, hc.timeout);
  auto r =
      http::get(t.endpoint.host, t.endpoint.port, hc.path, hc.timeout, host, size_t{64} * 1024);
  if (!r) return fail(r.error());
  if (r->status < 200 || r->status >= 400)
    return fail(Errc::kUnavailable, "GET " + hc.path + " answered " + std::to_string(r->status),
                true);
  return ok();
}

Status wait_healthy(const std::vector<std::shared_ptr<TargetState>>& targets, const HealthCheck& hc,
                    std::string_view host, Millis spacing, Millis timeout) {
  std::vector<int> streak(targets.size(), 0);
  std::vector<std::string> last(targets.size());
  auto deadline = real_clock().mono() + timeout;
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (streak[i] >= hc.healthy_threshold) continue;
      Status s = probe(*targets[i], hc, host);
      if (s) {
        ++streak[i];
      } else if (http::is_local_resource_error(s.error())) {
        last[i] = s.error().what();  // says nothing about the target: streak kept
      } else {
        streak[i] = 0;
        last[i] = s.error().what();
        targets[i]->set_error(last[i]);
      }
      if (streak[i] < hc.healthy_threshold) all = false;
    }
    if (all) return ok();
    if (real_clock().mono() + spacing >= deadline) break;
    real_clock().sleep_for(spacing);
  }
  std::string msg;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (streak[i] >= hc.healthy_threshold) continue;
    if (!msg.empty()) msg += "; ";
    msg += targets[i]->endpoint.str() + ": " + (last[i].empty() ? "not yet healthy" : last[i]);
  }
  return fail(Errc::kTimeout, "targets not healthy within " + std::to_string(timeout.count()) +
                                  " ms (" + msg + ")");
}

HealthChecker::HealthChecker() : thread_([this] { run(); }) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::set_items(std::vector<Item> items) {
  std::lock_guard lock(mu_);
  std::map<TargetState*, Entry> old;
  for (auto& e : entries_) old[e.item.target.get()] = std::move(e);
  entries_.clear();
  for (auto& it : items) {
    auto o = old.find(it.target.get());
    Entry e;
    if (o != old.end()) {
      e = std::move(o->second);
      bool respec =
          !(e.item.check.path == it.check.path && e.item.check.interval == it.check.interval);
      if (respec) e.next_ms = 0;
    }
    e.item = std::move(it);
    entries_.push_back(std::move(e));
  }
  changed_ = true;
  cv_.notify_all();
}

void HealthChecker::run() {
  // No exception may end this thread (it would end the process).
  while (!guarded(log::Logger("proxy"), "health checker", [&] { run_rounds(); }))
    real_clock().sleep_for(Millis(100));
}

void HealthChecker::run_rounds() {
  log::Logger log("proxy");
  std::unique_lock lock(mu_);
  while (!stop_) {
    int64_t now = mono_ms();
    int64_t next = now + 1000;
    // Probe what is due, without the lock (probes block).
    std::vector<Entry*> due;
    for (auto& e : entries_) {
      if (e.next_ms <= now)
        due.push_back(&e);
      else
        next = std::min(next, e.next_ms);
    }
    if (!due.empty()) {
      std::vector<Item> items;
      items.reserve(due.size());
      for (Entry* e : due) items.push_back(e->item);
      changed_ = false;
      lock.unlock();
      // Probes run in parallel: one slow target must not delay the others.
      std::vector<std::future<Status>> pending;
      std::vector<Status> results;
      try {
        for (const Item& it : items)
          pending.push_back(std::async(std::launch::async,
                                       [&it] { return probe(*it.target, it.check, it.host); }));
      } catch (const std::system_error&) {
        // No thread to be had: the probes left run one after the other.
      }
      for (size_t i = 0; i < items.size(); ++i)
        results.push_back(i < pending.size()
                              ? pending[i].get()
                              : probe(*items[i].target, items[i].check, items[i].host));
      lock.lock();
      if (stop_) break;
      if (changed_) continue;  // entries were replaced meanwhile: probe again with the new list
      now = mono_ms();
      for (size_t i = 0; i < due.size(); ++i) {
        Entry& e = *due[i];
        const HealthCheck& hc = e.item.check;
        TargetState& t = *e.item.target;
        e.next_ms = now + hc.interval.count();
        if (!results[i] && http::is_local_resource_error(results[i].error())) {
          // Our shortage (a connection flood), not the target's failure.
          log.warn("health check inconclusive", {{"service", t.service},
                                                 {"target", t.endpoint.str()},
                                                 {"error", results[i].error().what()}});
          continue;
        }
        if (results[i]) {
          e.fail_streak = 0;
          if (++e.ok_streak >= hc.healthy_threshold && !t.healthy.load()) {
            t.healthy.store(true);
            t.set_error("");
            log.info("target healthy", {{"service", t.service}, {"target", t.endpoint.str()}});
          }
        } else {
          e.ok_streak = 0;
          t.set_error(results[i].error().what());
          if (++e.fail_streak >= hc.unhealthy_threshold && t.healthy.load()) {
            t.healthy.store(false);
            log.warn("target unhealthy", {{"service", t.service},
                                          {"target", t.endpoint.str()},
                                          {"error", results[i].error().what()}});
          }
        }
      }
      continue;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next - now)),
                 [&] { return stop_ || changed_; });
    changed_ = false;
  }
}

}  // namespace md::proxy
