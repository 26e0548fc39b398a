#include "deploy/lease.h"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include "core/guard.h"
#include "core/host.h"
#include "core/process.h"

namespace md::deploy {

std::string default_holder() {
  const std::string host = host_name();
  const char* user = getenv("USER");
  std::string u = user && *user ? user : "";
  if (u.empty()) {
    if (const passwd* pw = getpwuid(geteuid())) u = pw->pw_name;
  }
  if (u.empty()) u = "uid" + std::to_string(geteuid());
  return fmt::format("{}@{} pid {}", u, host, static_cast<long>(getpid()));
}

bool parse_holder(const std::string& holder, std::string* host, long* pid) {
  const size_t at = holder.find('@');
  const size_t sp = holder.rfind(" pid ");
  if (at == std::string::npos || sp == std::string::npos || sp < at) return false;
  const std::string digits = holder.substr(sp + 5);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *host = holder.substr(at + 1, sp - at - 1);
  *pid = std::stol(digits);
  return true;
}

namespace {

bool holder_is_dead_local(const std::string& holder) {
  std::string host;
  long pid = 0;
  if (!parse_holder(holder, &host, &pid)) return false;
  return host == host_name() && pid > 0 && !proc::alive(static_cast<pid_t>(pid));
}

}  // namespace

Result<std::unique_ptr<Lease>> Lease::acquire(
    state::Store& store, const std::string& environment, const std::string& holder,
    const std::string& deployment_id, Millis ttl, Clock& clock,
    const std::function<void(const std::string&)>& on_wait) {
  bool waited = false;
  for (;;) {
    auto got = store.acquire_lock(environment, holder, deployment_id, ttl);
    if (got) break;
    if (got.error().code() != Errc::kConflict) return tl::unexpected(got.error());
    auto info = store.lock_info(environment);
    if (!info) return tl::unexpected(info.error());
    if (!*info) continue;  // expired between the two calls: try again
    const state::LockInfo& li = **info;
    if (!holder_is_dead_local(li.holder)) return tl::unexpected(got.error());
    const auto left = std::chrono::duration_cast<Millis>(li.expires_at - clock.now());
    if (!waited && on_wait) {
      on_wait(fmt::format(
          "the lock of {} is held by {}, which is no longer running: waiting {:.1f}s "
          "for its lease to expire",
          environment, li.holder, std::max(0.0, static_cast<double>(left.count()) / 1000.0)));
    }
    waited = true;
    clock.sleep_for(std::clamp(left + Millis(20), Millis(20), Millis(1000)));
  }
  std::unique_ptr<Lease> lease(new Lease(store, environment, holder, ttl));
  lease->thread_ = std::thread([l = lease.get()] { l->renew_loop(); });
  return lease;
}

Lease::Lease(state::Store& store, std::string environment, std::string holder, Millis ttl)
    : store_(store), environment_(std::move(environment)), holder_(std::move(holder)), ttl_(ttl) {}

Lease::~Lease() { release(); }

void Lease::renew_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    if (cv_.wait_for(lk, ttl_ / 3, [this] { return stopping_; })) return;
    lk.unlock();
    // WHY guarded: an exception out of this thread ends the controller
    // mid-deploy; a renewal that threw is retried at the next round (the
    // lease lasts ttl, renewed every ttl/3).
    Status s = fail(Errc::kInternal, "the renewal threw");
    guarded(log::Logger("deploy"), "lock lease renewal",
            [&] { s = store_.renew_lock(environment_, holder_, ttl_); });
    if (!s && s.error().code() == Errc::kConflict) lost_ = true;
    lk.lock();
    if (lost_) return;
  }
}

void Lease::release() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!lost_) (void)store_.release_lock(environment_, holder_);
}

}  // namespace md::deploy
