// What both backends share: names, batch checks, lease decisions, schema
// planning, URL dispatch.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "config/config.h"
#include "state/store_impl.h"

namespace md::state {

std::string_view status_name(DeployStatus s) {
  switch (s) {
    case DeployStatus::kRunning:
      return "running";
    case DeployStatus::kSucceeded:
      return "succeeded";
    case DeployStatus::kFailed:
      return "failed";
    case DeployStatus::kRolledBack:
      return "rolled_back";
  }
  return "unknown";
}

std::optional<DeployStatus> parse_status(std::string_view name) {
  for (DeployStatus s : {DeployStatus::kRunning, DeployStatus::kSucceeded, DeployStatus::kFailed,
                         DeployStatus::kRolledBack})
    if (status_name(s) == name) return s;
  return std::nullopt;
}

std::string_view outbox_status_name(OutboxStatus s) {
  switch (s) {
    case OutboxStatus::kPending:
      return "pending";
    case OutboxStatus::kDelivered:
      return "delivered";
    case OutboxStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

std::optional<OutboxStatus> parse_outbox_status(std::string_view name) {
  for (OutboxStatus s : {OutboxStatus::kPending, OutboxStatus::kDelivered, OutboxStatus::kFailed})
    if (outbox_status_name(s) == name) return s;
  return std::nullopt;
}

int latest_schema_version() {
  int v = internal::sqlite_schema().back().version;
  MD_CHECK_MSG(v == internal::postgres_schema().back().version,
               "SQLite and Postgres schemas must have the same versions");
  return v;
}

Result<std::unique_ptr<Store>> open_store(const std::string& url, Clock& clock) {
  if (url.empty()) return fail(Errc::kInvalidArgument, "empty state store URL");
  if (url.starts_with("postgres://") || url.starts_with("postgresql://"))
    return internal::open_postgres(url, clock, internal::postgres_schema());
  if (url.starts_with("agent:"))
    return fail(Errc::kInvalidArgument,
                "state store '" + url +
                    "' is served by a host's agent: it is opened with the environment "
                    "(deploy::open_state), not by URL");
  std::string path = url.starts_with("sqlite:") ? url.substr(7) : url;
  if (path.starts_with("//")) path = path.substr(2);  // sqlite:///abs/path
  if (path.empty())
    return fail(Errc::kInvalidArgument, "state store URL '" + url + "' has no path");
  if (url.find("://") != std::string::npos && !url.starts_with("sqlite:"))
    return fail(Errc::kInvalidArgument,
                "state store URL '" + url +
                    "': unknown scheme (use postgres://, postgresql://, sqlite:PATH or a path)");
  return internal::open_sqlite(path, clock, internal::sqlite_schema());
}

std::string store_url(const config::Environment& env) {
  std::string url = env.state.empty() ? ".meshdeploy/state.db" : env.state;
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) return url;
  if (url.starts_with("agent:")) return url;
  std::string path = url.starts_with("sqlite:") ? url.substr(7) : url;
  if (path.starts_with("//")) path = path.substr(2);
  std::filesystem::path p(path);
  if (p.is_relative()) p = env.base_dir / p;
  return "sqlite:" + p.string();
}

namespace internal {
namespace {

Status check_json_object(std::string& text, const std::string& what) {
  if (text.empty()) {
    text = "{}";
    return ok();
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::kInvalidArgument, what + " is not a JSON object");
  return ok();
}

std::string new_event_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "evt_%08x%08x%08x", rd(), rd(), rd());
  return buf;
}

SysTime or_now(SysTime t, SysTime now) { return t == SysTime{} ? now : t; }

Error held_by(const std::string& environment, const LockRow& row) {
  return Error(Errc::kConflict, "environment " + environment + " is locked by " + row.holder +
                                    " (deployment " + row.deployment_id + ") since " +
                                    format_time(row.acquired_at));
}

}  // namespace

Result<Batch> prepare_batch(const Batch& in, SysTime now) {
  Batch b = in;
  if (b.upsert_deployment) {
    Deployment& d = *b.upsert_deployment;
    if (d.id.empty()) return fail(Errc::kInvalidArgument, "deployment without an id");
    if (d.environment.empty())
      return fail(Errc::kInvalidArgument, "deployment " + d.id + " has no environment");
    d.started_at = or_now(d.started_at, now);
  }
  for (JournalEntry& j : b.journal) {
    std::string where = "journal entry " + j.deployment_id + "/" + j.step;
    if (j.deployment_id.empty() || j.step.empty())
      return fail(Errc::kInvalidArgument, where + ": deployment id and step are required");
    if (j.phase == "intent") {
      if (!j.outcome.empty())
        return fail(Errc::kInvalidArgument, where + ": an intent has no outcome");
    } else if (j.phase == "outcome") {
      if (j.outcome != "ok" && j.outcome != "failed" && j.outcome != "skipped")
        return fail(Errc::kInvalidArgument,
                    where + ": outcome '" + j.outcome + "' is not ok, failed or skipped");
    } else {
      return fail(Errc::kInvalidArgument,
                  where + ": phase '" + j.phase + "' is not intent or outcome");
    }
    MD_TRY_STATUS(check_json_object(j.detail, where + " detail"));
    j.at = or_now(j.at, now);
  }
  for (Release& r : b.upsert_releases) {
    if (r.environment.empty() || r.version.empty())
      return fail(Errc::kInvalidArgument, "release without environment or version");
    r.created_at = or_now(r.created_at, now);
    r.updated_at = or_now(r.updated_at, now);
  }
  for (AuditEntry& a : b.audit) {
    if (a.action.empty()) return fail(Errc::kInvalidArgument, "audit entry without an action");
    MD_TRY_STATUS(check_json_object(a.detail, "audit entry " + a.action + " detail"));
    a.at = or_now(a.at, now);
  }
  for (OutboxEvent& e : b.outbox) {
    if (e.channel.empty() || e.event_type.empty())
      return fail(Errc::kInvalidArgument, "outbox event without channel or event type");
    if (e.event_id.empty()) e.event_id = new_event_id();
    MD_TRY_STATUS(check_json_object(e.payload, "outbox event " + e.event_id + " payload"));
    e.status = OutboxStatus::kPending;
    e.attempts = 0;
    e.last_error.clear();
    e.created_at = or_now(e.created_at, now);
    e.next_attempt_at = or_now(e.next_attempt_at, now);
  }
  return b;
}

Result<LockRow> decide_acquire(const std::string& environment, const std::optional<LockRow>& cur,
                               const std::string& holder, const std::string& deployment_id,
                               SysTime now, Millis ttl) {
  if (holder.empty()) return fail(Errc::kInvalidArgument, "lock holder must not be empty");
  if (ttl <= Millis(0)) return fail(Errc::kInvalidArgument, "lock ttl must be positive");
  bool live = cur && !cur->holder.empty() && cur->expires_at > now;
  if (live && cur->holder != holder) return fail(held_by(environment, *cur));
  LockRow row{holder, deployment_id, now, now + ttl};
  if (live) row.acquired_at = cur->acquired_at;  // our own lease: a renewal
  return row;
}

Result<LockRow> decide_renew(const std::string& environment, const std::optional<LockRow>& cur,
                             const std::string& holder, SysTime now, Millis ttl) {
  if (ttl <= Millis(0)) return fail(Errc::kInvalidArgument, "lock ttl must be positive");
  if (!cur || cur->holder.empty())
    return fail(Errc::kConflict, "environment " + environment + " lock is no longer held by " +
                                     holder + " (it was released)");
  if (cur->holder != holder) return fail(held_by(environment, *cur));
  LockRow row = *cur;
  row.expires_at = now + ttl;
  return row;
}

std::optional<LockInfo> live_lock(const std::string& environment, const std::optional<LockRow>& cur,
                                  SysTime now) {
  if (!cur || cur->holder.empty() || cur->expires_at <= now) return std::nullopt;
  return LockInfo{environment, cur->holder, cur->deployment_id, cur->acquired_at, cur->expires_at};
}

Result<std::span<const SchemaStep>> steps_after(std::span<const SchemaStep> steps, int current,
                                                const std::string& where) {
  int latest = steps.empty() ? 0 : steps.back().version;
  if (current > latest)
    return fail(Errc::kFailedPrecondition,
                "state store " + where + " has schema version " + std::to_string(current) +
                    ", newer than this meshdeploy knows (" + std::to_string(latest) +
                    "); upgrade meshdeploy to use it");
  size_t i = 0;
  while (i < steps.size() && steps[i].version <= current) ++i;
  return steps.subspan(i);
}

Result<PgTarget> parse_pg_url(const std::string& url) {
  PgTarget t{url, "meshdeploy"};
  size_t q = url.find('?');
  if (q == std::string::npos) return t;
  std::string base = url.substr(0, q), kept;
  std::string query = url.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string item = query.substr(pos, amp - pos);
    if (item.starts_with("schema=")) {
      t.schema = item.substr(7);
    } else if (!item.empty()) {
      kept += (kept.empty() ? "" : "&") + item;
    }
    pos = amp + 1;
  }
  bool valid =
      !t.schema.empty() && t.schema.size() <= 63 && !(t.schema[0] >= '0' && t.schema[0] <= '9');
  for (char c : t.schema)
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!valid)
    return fail(Errc::kInvalidArgument,
                "state store URL: schema '" + t.schema +
                    "' must be lower-case letters, digits and '_' (at most 63, not starting "
                    "with a digit)");
  t.url = kept.empty() ? base : base + "?" + kept;
  return t;
}

}  // namespace internal
}  // namespace md::state
