// Test doubles for notify's seams: an in-memory outbox Store and a scripted
// Transport that records every request. For unit tests only; header-only so
// the library never links them.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "notify/notify.h"

namespace md::notify::testing {

// The outbox and lease parts of state::Store, in memory, with the SQLite
// store's semantics (ids in commit order, (channel, event_id) deduplicated,
// events() newest first). Everything else fails with kInternal.
// Fault injection: fail_reads / fail_writes make the next N calls fail with
// kUnavailable.
class FakeStore : public state::Store {
 public:
  explicit FakeStore(Clock& clock) : clock_(clock) {}

  int fail_reads = 0;
  int fail_writes = 0;

  Status commit(const state::Batch& b) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_writes > 0) return --fail_writes, unavailable();
    for (state::OutboxEvent e : b.outbox) {
      bool dup = false;
      for (const auto& r : rows_) dup |= r.channel == e.channel && r.event_id == e.event_id;
      if (dup) continue;
      e.id = ++next_id_;
      e.status = state::OutboxStatus::kPending;
      e.attempts = 0;
      e.last_error.clear();
      if (e.created_at == SysTime{}) e.created_at = clock_.now();
      if (e.next_attempt_at == SysTime{}) e.next_attempt_at = clock_.now();
      rows_.push_back(e);
    }
    return ok();
  }

  Result<std::vector<state::OutboxEvent>> due_events(SysTime now, int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_reads > 0) return --fail_reads, unavailable();
    std::vector<state::OutboxEvent> out;
    for (const auto& r : rows_)
      if (r.status == state::OutboxStatus::kPending && r.next_attempt_at <= now) out.push_back(r);
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.next_attempt_at < b.next_attempt_at;
    });
    if (limit > 0 && out.size() > static_cast<size_t>(limit)) out.resize(limit);
    return out;
  }

  Result<std::vector<state::OutboxEvent>> events(std::optional<state::OutboxStatus> status,
                                                 int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_reads > 0) return --fail_reads, unavailable();
    std::vector<state::OutboxEvent> out;
    for (auto it = rows_.rbegin(); it != rows_.rend(); ++it)
      if (!status || it->status == *status) out.push_back(*it);
    if (limit > 0 && out.size() > static_cast<size_t>(limit)) out.resize(limit);
    return out;
  }

  Status mark_delivered(int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_writes > 0) return --fail_writes, unavailable();
    auto* r = find(id);
    if (!r) return fail(Errc::kNotFound, "no outbox event " + std::to_string(id));
    r->status = state::OutboxStatus::kDelivered;
    ++r->attempts;
    return ok();
  }

  Status mark_attempt_failed(int64_t id, const std::string& error, SysTime next,
                             bool permanent) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_writes > 0) return --fail_writes, unavailable();
    auto* r = find(id);
    if (!r) return fail(Errc::kNotFound, "no outbox event " + std::to_string(id));
    ++r->attempts;
    r->last_error = error;
    r->next_attempt_at = next;
    if (permanent) r->status = state::OutboxStatus::kFailed;
    return ok();
  }

  Status retry_event(int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* r = find(id);
    if (!r) return fail(Errc::kNotFound, "no outbox event " + std::to_string(id));
    r->status = state::OutboxStatus::kPending;
    r->next_attempt_at = clock_.now();
    return ok();
  }

  Result<state::LockInfo> acquire_lock(const std::string& env, const std::string& holder,
                                       const std::string& deployment_id, Millis ttl) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lease_calls;
    auto it = locks_.find(env);
    SysTime now = clock_.now();
    if (it != locks_.end() && it->second.holder != holder && it->second.expires_at > now)
      return fail(Errc::kConflict, "environment " + env + " is locked by " + it->second.holder);
    state::LockInfo info{env, holder, deployment_id, now, now + ttl};
    if (it != locks_.end() && it->second.holder == holder)
      info.acquired_at = it->second.acquired_at;
    locks_[env] = info;
    return info;
  }
  Status renew_lock(const std::string& env, const std::string& holder, Millis ttl) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = locks_.find(env);
    if (it == locks_.end() || it->second.holder != holder) return fail(Errc::kConflict, "lost");
    it->second.expires_at = clock_.now() + ttl;
    return ok();
  }
  Status release_lock(const std::string& env, const std::string& holder) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = locks_.find(env);
    if (it != locks_.end() && it->second.holder == holder) locks_.erase(it);
    return ok();
  }
  Result<std::optional<state::LockInfo>> lock_info(const std::string& env) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = locks_.find(env);
    if (it == locks_.end() || it->second.expires_at <= clock_.now())
      return std::optional<state::LockInfo>();
    return std::optional<state::LockInfo>(it->second);
  }

  // Unused by notify.
  Result<state::Deployment> deployment(const std::string&) override { return unsupported(); }
  Result<std::vector<state::Deployment>> deployments(const std::string&, int) override {
    return unsupported();
  }
  Result<std::optional<state::Deployment>> running(const std::string&) override {
    return unsupported();
  }
  Result<std::vector<state::JournalEntry>> journal(const std::string&) override {
    return unsupported();
  }
  Result<std::vector<state::Release>> releases(const std::string&) override {
    return unsupported();
  }
  Result<std::vector<state::AuditEntry>> audit(const std::string&, int) override {
    return unsupported();
  }
  int schema_version() const override { return 1; }
  std::string describe() const override { return "fake store"; }

  // Test access.
  std::vector<state::OutboxEvent> rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_;
  }
  int lease_calls = 0;

 private:
  static tl::unexpected<Error> unavailable() {
    return fail(Errc::kUnavailable, "fake store: database is locked", true);
  }
  static tl::unexpected<Error> unsupported() { return fail(Errc::kInternal, "not in the fake"); }
  state::OutboxEvent* find(int64_t id) {
    for (auto& r : rows_)
      if (r.id == id) return &r;
    return nullptr;
  }

  Clock& clock_;
  mutable std::mutex mu_;
  std::vector<state::OutboxEvent> rows_;
  std::map<std::string, state::LockInfo> locks_;
  int64_t next_id_ = 0;
};

// A Transport that answers from a script and records what it was sent.
// Each call pops the front of `script` (a function from the request to the
// answer); an empty script answers 200 / accepts the mail.
class FakeTransport : public Transport {
 public:
  using HttpAnswer = std::function<Result<HttpResponse>(const HttpRequest&)>;
  using MailAnswer = std::function<Status(const MailRequest&)>;

  void push(HttpAnswer a) {
    std::lock_guard<std::mutex> lock(mu_);
    http_script_.push_back(std::move(a));
  }
  void push_status(int status, std::string body = "", std::string retry_after = "") {
    push([=](const HttpRequest&) {
      return Result<HttpResponse>(HttpResponse{status, body, retry_after});
    });
  }
  void push_error(Errc code, std::string message, bool retryable) {
    push(
        [=](const HttpRequest&) -> Result<HttpResponse> { return fail(code, message, retryable); });
  }
  void push_mail(MailAnswer a) {
    std::lock_guard<std::mutex> lock(mu_);
    mail_script_.push_back(std::move(a));
  }

  Result<HttpResponse> post(const HttpRequest& req) override {
    HttpAnswer a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      posts.push_back(req);
      if (!http_script_.empty()) {
        a = std::move(http_script_.front());
        http_script_.pop_front();
      }
    }
    if (a) return a(req);
    return HttpResponse{200, "ok", ""};
  }
  Status send_mail(const MailRequest& req) override {
    MailAnswer a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mails.push_back(req);
      if (!mail_script_.empty()) {
        a = std::move(mail_script_.front());
        mail_script_.pop_front();
      }
    }
    if (a) return a(req);
    return ok();
  }

  // For tests that read while a dispatcher thread sends.
  size_t post_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return posts.size();
  }
  size_t mail_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return mails.size();
  }

  std::vector<HttpRequest> posts;  // guarded by the test's own sequencing
  std::vector<MailRequest> mails;

 private:
  std::mutex mu_;
  std::deque<HttpAnswer> http_script_;
  std::deque<MailAnswer> mail_script_;
};

}  // namespace md::notify::testing
