// The Dispatcher: reads pending outbox rows, delivers the head of each
// channel in order, records the outcome, and runs on its own thread.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/guard.h"
#include "core/host.h"
#include "core/log.h"
#include "notify/delivery.h"
#include "notify/notify.h"

namespace md::notify {
namespace {

const log::Logger kLog("notify");
constexpr size_t kMaxErrorLength = 500;
constexpr Millis kMinAttemptTimeout{200};
constexpr Millis kMinWait{1000};
constexpr Millis kLeaseRecheck{250};

std::string default_holder() {
  const std::string host = host_name();
  const char* user = std::getenv("USER");
  return std::string("notify ") + (user && *user ? user : "unknown") + "@" + host + " pid " +
         std::to_string(getpid());
}

std::string lease_name(const std::string& environment) { return "notify:" + environment; }

const config::Channel* find_channel(const config::Notifications& n, const std::string& name) {
  for (const config::Channel& c : n.channels)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

std::string_view outcome_name(Delivery::Outcome o) {
  switch (o) {
    case Delivery::Outcome::kDelivered:
      return "delivered";
    case Delivery::Outcome::kRetrying:
      return "retrying";
    case Delivery::Outcome::kFailed:
      return "failed";
  }
  return "unknown";
}

struct Dispatcher::Impl {
  struct Env {
    Target target;
    std::unique_ptr<secrets::Redactor> redactor;
    bool leased = false;
    MonoTime leased_at{};
  };

  // What one pass saw, for the thread's sleep and for drain().
  struct Scan {
    int pending = 0;                  // rows of our environments still pending
    std::optional<SysTime> next_due;  // earliest next attempt of a head we may send
    bool held_elsewhere = false;      // a due head waits for another process's lease
  };

  Impl(state::Store& s, Transport& t, DispatcherOptions o, Clock& c)
      : store(s),
        transport(t),
        options(std::move(o)),
        clock(c),
        rng(options.seed ? options.seed : std::random_device{}()) {
    if (options.holder.empty()) options.holder = default_holder();
  }

  state::Store& store;
  Transport& transport;
  DispatcherOptions options;
  Clock& clock;
  std::map<std::string, Env> envs;

  std::mutex pass_mu;  // one pass at a time; guards envs' lease fields and rng
  std::mt19937_64 rng;

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  bool stopping = false;
  bool woken = false;
  std::thread thread;
  std::vector<Delivery> deliveries;
  std::function<void(const Delivery&)> observer;
  std::string store_error;
  std::optional<MonoTime> deadline;  // set by drain(): attempts must end by then

  // The first pass of a drain attempts every due head even when the
  // deadline has passed (its attempts are still capped by it).
  bool first_drain_pass = false;

  bool should_stop() {
    std::lock_guard<std::mutex> lock(mu);
    return stopping || (deadline && !first_drain_pass && clock.mono() >= *deadline);
  }

  void note_store_error(const Error& e) {
    std::string what = e.what();
    kLog.warn("notification outbox: {}", what);
    std::lock_guard<std::mutex> lock(mu);
    store_error = std::move(what);
  }

  // Takes or renews the environment's dispatch lease. False when another
  // process holds it (or the store failed).
  bool hold_lease(Env& env) {
    if (env.leased && clock.mono() - env.leased_at < options.lease_ttl / 3) return true;
    auto lock = store.acquire_lock(lease_name(env.target.environment), options.holder, "",
                                   options.lease_ttl);
    if (!lock) {
      if (lock.error().code() != Errc::kConflict) note_store_error(lock.error());
      env.leased = false;
      return false;
    }
    env.leased = true;
    env.leased_at = clock.mono();
    return true;
  }

  void release_leases() {
    std::lock_guard<std::mutex> lock(pass_mu);
    release_leases_locked();
  }
  void release_leases_locked() {
    for (auto& [name, env] : envs) {
      if (!env.leased) continue;
      auto st = store.release_lock(lease_name(name), options.holder);
      if (!st) note_store_error(st.error());
      env.leased = false;
    }
  }

  Millis attempt_timeout(const config::Channel& c) {
    std::lock_guard<std::mutex> lock(mu);
    if (!deadline) return c.timeout;
    auto left = std::chrono::duration_cast<Millis>(*deadline - clock.mono());
    return std::max(kMinAttemptTimeout, std::min(c.timeout, left));
  }

  void record(const Delivery& d) {
    switch (d.outcome) {
      case Delivery::Outcome::kDelivered:
        kLog.info("delivered {} event {} to channel {} ({})", d.event_type, d.event_id, d.channel,
                  d.detail);
        break;
      case Delivery::Outcome::kRetrying:
        kLog.warn("{} event {} to channel {}: attempt {} failed, retry at {}: {}", d.event_type,
                  d.event_id, d.channel, d.attempts, format_time(d.next_attempt), d.detail);
        break;
      case Delivery::Outcome::kFailed:
        kLog.error("{} event {} to channel {} failed for good after {} attempt(s): {}",
                   d.event_type, d.event_id, d.channel, d.attempts, d.detail);
        break;
    }
    std::function<void(const Delivery&)> fn;
    {
      std::lock_guard<std::mutex> lock(mu);
      deliveries.push_back(d);
      fn = observer;
    }
    if (fn) fn(d);
  }

  // Attempts one row and records the outcome. Returns true when the row
  // left the pending state (delivered or failed), so the next row of its
  // channel may go.
  bool deliver(Env& env, const state::OutboxEvent& row) {
    SysTime now = clock.now();
    Delivery d;
    d.id = row.id;
    d.event_id = row.event_id;
    d.environment = row.environment;
    d.channel = row.channel;
    d.event_type = row.event_type;
    d.attempts = row.attempts + 1;

    Attempt a;
    const config::Channel* channel = find_channel(env.target.notifications, row.channel);
    Millis horizon = channel ? channel->retry_horizon : Millis(0);
    if (!channel) {
      a = {Verdict::kPermanent,
           "channel '" + row.channel + "' is no longer configured for environment '" +
               row.environment + "'",
           {}};
    } else {
      a = attempt_delivery(transport, env.target, *channel, row, *env.redactor, now,
                           attempt_timeout(*channel));
    }
    now = clock.now();
    std::string error = snippet(env.redactor->redact(a.detail), kMaxErrorLength);
    Status st;
    if (a.verdict == Verdict::kDelivered) {
      d.outcome = Delivery::Outcome::kDelivered;
      st = store.mark_delivered(row.id);
    } else {
      if (a.verdict == Verdict::kRetry) {
        Millis delay = backoff_delay(d.attempts, options.initial_backoff, options.max_backoff,
                                     std::uniform_real_distribution<double>(0, 1)(rng));
        if (a.retry_after) delay = std::max(delay, *a.retry_after);
        d.next_attempt = now + delay;
        if (d.next_attempt > row.created_at + horizon) {
          a.verdict = Verdict::kPermanent;
          error = snippet(error + " (gave up: the next attempt would fall past the channel's " +
                              "retry horizon of " + std::to_string(horizon.count() / 1000) + " s)",
                          kMaxErrorLength + 100);
        }
      }
      bool permanent = a.verdict == Verdict::kPermanent;
      d.outcome = permanent ? Delivery::Outcome::kFailed : Delivery::Outcome::kRetrying;
      if (permanent) d.next_attempt = SysTime{};
      st = store.mark_attempt_failed(row.id, error, permanent ? now : d.next_attempt, permanent);
    }
    d.detail = error;
    // WHY carry on after a store error: the attempt happened; if the store
    // did not record it the row stays pending and is sent again later with
    // the same id, which receivers deduplicate.
    if (!st) note_store_error(st.error());
    record(d);
    return st && d.outcome != Delivery::Outcome::kRetrying;
  }

  // The pending rows of our environments, oldest first.
  Result<std::vector<state::OutboxEvent>> pending_rows() {
    auto rows = store.events(state::OutboxStatus::kPending, options.scan_limit);
    if (!rows) {
      note_store_error(rows.error());
      return fail(rows.error());
    }
    std::erase_if(*rows, [&](const state::OutboxEvent& r) { return !envs.count(r.environment); });
    std::sort(rows->begin(), rows->end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return rows;
  }

  // One pass. WHY the lease comes before the rows are read, and goes at the
  // end of the pass: the agent and a controller may both dispatch an
  // environment; rows read before holding the lease may already have been
  // delivered by the other (a duplicate), and a lease kept between passes
  // would stop the other from sending while this one sleeps.
  Result<Scan> pass() {
    std::lock_guard<std::mutex> lock(pass_mu);
    auto rows = MD_TRY(pending_rows());
    std::set<std::string> due, elsewhere;  // environments with a due head; held elsewhere
    {
      std::set<std::pair<std::string, std::string>> heads;
      for (const auto& r : rows)
        if (heads.insert({r.environment, r.channel}).second && r.next_attempt_at <= clock.now())
          due.insert(r.environment);
    }
    for (const std::string& name : due)
      if (!hold_lease(envs.at(name))) elsewhere.insert(name);
    if (due.size() > elsewhere.size()) rows = MD_TRY(pending_rows());  // as of the lease
    // Rows per (environment, channel), oldest first.
    std::map<std::pair<std::string, std::string>, std::vector<const state::OutboxEvent*>> queues;
    for (const auto& r : rows) queues[{r.environment, r.channel}].push_back(&r);
    for (auto& [key, queue] : queues) {
      if (!due.count(key.first) || elsewhere.count(key.first)) continue;
      Env& env = envs.at(key.first);
      for (const state::OutboxEvent* row : queue) {
        if (row->next_attempt_at > clock.now() || should_stop()) break;
        if (!hold_lease(env)) {  // renews it on a long pass; lost = someone took it over
          elsewhere.insert(key.first);
          break;
        }
        // Still pending after the attempt: it heads its channel until its next attempt.
        if (!deliver(env, *row)) break;
      }
    }
    release_leases_locked();
    // Look again: delivered rows are gone, retried ones are due later.
    Scan scan;
    scan.held_elsewhere = !elsewhere.empty();
    auto after = MD_TRY(pending_rows());
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& r : after) {
      ++scan.pending;
      if (elsewhere.count(r.environment) || !seen.insert({r.environment, r.channel}).second)
        continue;
      if (!scan.next_due || r.next_attempt_at < *scan.next_due) scan.next_due = r.next_attempt_at;
    }
    return scan;
  }

  // How long to wait for the next due head, at most `cap`. A head that is
  // already due after a pass is one the store failed to record: wait
  // kMinWait rather than send it again in a tight loop.
  Millis wait_for(const Scan& scan, Millis cap) {
    if (!scan.next_due) return cap;
    auto until = std::chrono::duration_cast<Millis>(*scan.next_due - clock.now());
    return std::min(until > Millis(0) ? until : kMinWait, cap);
  }

  void loop() {
    for (;;) {
      // WHY guarded: an exception here (a transport, an allocation) would
      // end the process that runs the dispatcher; the next pass retries.
      Result<Scan> scan = fail(Errc::kInternal, "the pass threw");
      guarded(kLog, "notification dispatcher", [&] { scan = pass(); });
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      Millis wait = options.poll_interval;
      if (scan) {
        // Nothing due and nobody else holding a lease: sleep until a wake()
        // (a new hand-off) or the idle interval.
        const bool idle = !scan->next_due && !scan->held_elsewhere;
        const Millis cap = idle && options.idle_interval > Millis(0) ? options.idle_interval
                                                                     : options.poll_interval;
        wait = wait_for(*scan, cap);
      }
      cv.wait_for(lock, wait, [&] { return stopping || woken; });
      woken = false;
      if (stopping) return;
    }
  }

  void join() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};

Dispatcher::Dispatcher(state::Store& store, Transport& transport, std::vector<Target> targets,
                       DispatcherOptions options, Clock& clock)
    : impl_(std::make_unique<Impl>(store, transport, std::move(options), clock)) {
  for (Target& t : targets) {
    std::string name = t.environment;
    Impl::Env env;
    env.redactor = std::make_unique<secrets::Redactor>(t.secrets);
    env.target = std::move(t);
    impl_->envs[name] = std::move(env);
  }
}

Dispatcher::~Dispatcher() { stop(); }

Result<std::vector<Delivery>> Dispatcher::run_once() {
  size_t before;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    before = impl_->deliveries.size();
  }
  auto scan = impl_->pass();
  if (!scan) return fail(scan.error());
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::vector<Delivery>(impl_->deliveries.begin() + static_cast<std::ptrdiff_t>(before),
                               impl_->deliveries.end());
}

void Dispatcher::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->thread.joinable() || impl_->stopping) return;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void Dispatcher::wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

Dispatcher::DrainReport Dispatcher::drain(Millis max_wait) {
  MonoTime deadline = impl_->clock.mono() + max_wait;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->deadline = deadline;
  }
  // The background thread stops after its current attempt (the deadline
  // bounds it); the rest of the drain runs here.
  impl_->join();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = false;
  }
  DrainReport report;
  for (bool first = true;; first = false) {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->first_drain_pass = first;
    }
    auto scan = impl_->pass();
    if (scan) report.pending = scan->pending;
    if (!scan || impl_->clock.mono() >= deadline) break;
    if (!scan->next_due && !scan->held_elsewhere) break;
    // Sleep until the next head is due, if that is before the deadline; while
    // another process (the agent) holds the lease, look again soon: it sends
    // them, or lets go.
    auto left = std::chrono::duration_cast<Millis>(deadline - impl_->clock.mono());
    Millis wait = impl_->wait_for(*scan, left + Millis(1));
    if (scan->held_elsewhere) wait = std::min(wait, kLeaseRecheck);
    if (wait > left) break;
    impl_->clock.sleep_for(wait);
  }
  impl_->release_leases();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stopping = true;
  impl_->deadline.reset();
  report.deliveries = impl_->deliveries;
  for (const Delivery& d : report.deliveries)
    if (d.outcome == Delivery::Outcome::kFailed) ++report.failed;
  report.store_error = impl_->store_error;
  return report;
}

void Dispatcher::stop() {
  impl_->join();
  impl_->release_leases();
}

void Dispatcher::on_delivery(std::function<void(const Delivery&)> fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->observer = std::move(fn);
}

}  // namespace md::notify
