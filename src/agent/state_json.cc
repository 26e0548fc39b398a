// JSON forms of the state store's types (state_api.h). Every field travels;
// decode is strict (a missing or mistyped field is kInvalidArgument naming it).
#include <chrono>

#include "agent/state_api.h"

namespace md::agent {
namespace {
using json = nlohmann::json;
using std::chrono::nanoseconds;

int64_t ns(SysTime t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}
SysTime from_ns(int64_t v) {
  return SysTime(std::chrono::duration_cast<SysTime::duration>(nanoseconds(v)));
}

// Reads fields of one object; the first problem wins and is reported by done().
class Fields {
 public:
  Fields(const json& j, const char* what) : j_(j), what_(what) {
    if (!j_.is_object()) err_ = std::string(what_) + ": must be a JSON object";
  }
  template <class T>
  Fields& get(const char* key, T& out) {
    if (!err_.empty()) return *this;
    auto it = j_.find(key);
    if (it == j_.end()) {
      err_ = std::string(what_) + ": field '" + key + "' is required";
      return *this;
    }
    const char* want = nullptr;  // set when the value has the wrong type
    if constexpr (std::is_same_v<T, std::string>)
      want = it->is_string() ? nullptr : "a string";
    else if constexpr (std::is_same_v<T, bool>)
      want = it->is_boolean() ? nullptr : "true or false";
    else
      want = it->is_number_integer() ? nullptr : "a whole number";
    if (want) {
      err_ = std::string(what_) + ": field '" + key + "' must be " + want;
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      out = static_cast<T>(it->template get<int64_t>());
    } else {
      out = it->template get<T>();
    }
    return *this;
  }
  Fields& time(const char* key, SysTime& out) {
    int64_t v = 0;
    get(key, v);
    if (err_.empty()) out = from_ns(v);
    return *this;
  }
  // `key` absent or null leaves `out` empty.
  Fields& opt_time(const char* key, std::optional<SysTime>& out) {
    if (err_.empty() && j_.contains(key) && !j_.at(key).is_null()) {
      SysTime t{};
      time(key, t);
      out = t;
    }
    return *this;
  }
  void bad(std::string why) {
    if (err_.empty()) err_ = std::string(what_) + ": " + std::move(why);
  }
  Status done() const {
    if (err_.empty()) return ok();
    return fail(Errc::kInvalidArgument, err_);
  }

 private:
  const json& j_;
  const char* what_;
  std::string err_;
};

template <class T>
Result<std::vector<T>> decode_list(const json& j, const char* field) {
  std::vector<T> out;
  if (!j.contains(field)) return out;
  if (!j.at(field).is_array())
    return fail(Errc::kInvalidArgument, std::string("batch: field '") + field + "' must be a list");
  for (const json& e : j.at(field)) out.push_back(MD_TRY(decode<T>(e)));
  return out;
}

}  // namespace

json to_json(const state::Deployment& d) {
  json j = {{"id", d.id},
            {"environment", d.environment},
            {"kind", d.kind},
            {"version", d.version},
            {"previous_version", d.previous_version},
            {"strategy", d.strategy},
            {"actor", d.actor},
            {"trigger", d.trigger},
            {"status", state::status_name(d.status)},
            {"reason", d.reason},
            {"started_at", ns(d.started_at)},
            {"finished_at", nullptr}};
  if (d.finished_at) j["finished_at"] = ns(*d.finished_at);
  return j;
}

template <>
Result<state::Deployment> decode<state::Deployment>(const json& j) {
  state::Deployment d;
  std::string status;
  Fields f(j, "deployment");
  f.get("id", d.id)
      .get("environment", d.environment)
      .get("kind", d.kind)
      .get("version", d.version)
      .get("previous_version", d.previous_version)
      .get("strategy", d.strategy)
      .get("actor", d.actor)
      .get("trigger", d.trigger)
      .get("status", status)
      .get("reason", d.reason)
      .time("started_at", d.started_at)
      .opt_time("finished_at", d.finished_at);
  MD_TRY_STATUS(f.done());
  auto s = state::parse_status(status);
  if (!s) return fail(Errc::kInvalidArgument, "deployment: unknown status '" + status + "'");
  d.status = *s;
  return d;
}

json to_json(const state::JournalEntry& e) {
  return {{"seq", e.seq},         {"deployment_id", e.deployment_id},
          {"step", e.step},       {"phase", e.phase},
          {"outcome", e.outcome}, {"detail", e.detail},
          {"at", ns(e.at)}};
}

template <>
Result<state::JournalEntry> decode<state::JournalEntry>(const json& j) {
  state::JournalEntry e;
  Fields f(j, "journal entry");
  f.get("seq", e.seq)
      .get("deployment_id", e.deployment_id)
      .get("step", e.step)
      .get("phase", e.phase)
      .get("outcome", e.outcome)
      .get("detail", e.detail)
      .time("at", e.at);
  MD_TRY_STATUS(f.done());
  return e;
}

json to_json(const state::Release& r) {
  return {{"environment", r.environment},         {"version", r.version},
          {"artifact_sha256", r.artifact_sha256}, {"state", r.state},
          {"created_at", ns(r.created_at)},       {"updated_at", ns(r.updated_at)}};
}

template <>
Result<state::Release> decode<state::Release>(const json& j) {
  state::Release r;
  Fields f(j, "release");
  f.get("environment", r.environment)
      .get("version", r.version)
      .get("artifact_sha256", r.artifact_sha256)
      .get("state", r.state)
      .time("created_at", r.created_at)
      .time("updated_at", r.updated_at);
  MD_TRY_STATUS(f.done());
  return r;
}

json to_json(const state::AuditEntry& a) {
  return {{"id", a.id},
          {"at", ns(a.at)},
          {"actor", a.actor},
          {"action", a.action},
          {"environment", a.environment},
          {"target", a.target},
          {"detail", a.detail}};
}

template <>
Result<state::AuditEntry> decode<state::AuditEntry>(const json& j) {
  state::AuditEntry a;
  Fields f(j, "audit entry");
  f.get("id", a.id)
      .time("at", a.at)
      .get("actor", a.actor)
      .get("action", a.action)
      .get("environment", a.environment)
      .get("target", a.target)
      .get("detail", a.detail);
  MD_TRY_STATUS(f.done());
  return a;
}

json to_json(const state::LockInfo& l) {
  return {{"environment", l.environment},
          {"holder", l.holder},
          {"deployment_id", l.deployment_id},
          {"acquired_at", ns(l.acquired_at)},
          {"expires_at", ns(l.expires_at)}};
}

template <>
Result<state::LockInfo> decode<state::LockInfo>(const json& j) {
  state::LockInfo l;
  Fields f(j, "lock");
  f.get("environment", l.environment)
      .get("holder", l.holder)
      .get("deployment_id", l.deployment_id)
      .time("acquired_at", l.acquired_at)
      .time("expires_at", l.expires_at);
  MD_TRY_STATUS(f.done());
  return l;
}

json to_json(const state::OutboxEvent& e) {
  return {{"id", e.id},
          {"event_id", e.event_id},
          {"channel", e.channel},
          {"environment", e.environment},
          {"event_type", e.event_type},
          {"payload", e.payload},
          {"status", state::outbox_status_name(e.status)},
          {"attempts", e.attempts},
          {"created_at", ns(e.created_at)},
          {"next_attempt_at", ns(e.next_attempt_at)},
          {"last_error", e.last_error}};
}

template <>
Result<state::OutboxEvent> decode<state::OutboxEvent>(const json& j) {
  state::OutboxEvent e;
  std::string status;
  Fields f(j, "outbox event");
  f.get("id", e.id)
      .get("event_id", e.event_id)
      .get("channel", e.channel)
      .get("environment", e.environment)
      .get("event_type", e.event_type)
      .get("payload", e.payload)
      .get("status", status)
      .get("attempts", e.attempts)
      .time("created_at", e.created_at)
      .time("next_attempt_at", e.next_attempt_at)
      .get("last_error", e.last_error);
  MD_TRY_STATUS(f.done());
  auto s = state::parse_outbox_status(status);
  if (!s) return fail(Errc::kInvalidArgument, "outbox event: unknown status '" + status + "'");
  e.status = *s;
  return e;
}

json to_json(const state::Batch& b) {
  json j = json::object();
  j["deployment"] = b.upsert_deployment ? to_json(*b.upsert_deployment) : json(nullptr);
  auto list = [](const auto& v) {
    json a = json::array();
    for (const auto& e : v) a.push_back(to_json(e));
    return a;
  };
  j["journal"] = list(b.journal);
  j["releases"] = list(b.upsert_releases);
  j["audit"] = list(b.audit);
  j["outbox"] = list(b.outbox);
  return j;
}

template <>
Result<state::Batch> decode<state::Batch>(const json& j) {
  if (!j.is_object()) return fail(Errc::kInvalidArgument, "batch: must be a JSON object");
  state::Batch b;
  if (j.contains("deployment") && !j.at("deployment").is_null())
    b.upsert_deployment = MD_TRY(decode<state::Deployment>(j.at("deployment")));
  b.journal = MD_TRY(decode_list<state::JournalEntry>(j, "journal"));
  b.upsert_releases = MD_TRY(decode_list<state::Release>(j, "releases"));
  b.audit = MD_TRY(decode_list<state::AuditEntry>(j, "audit"));
  b.outbox = MD_TRY(decode_list<state::OutboxEvent>(j, "outbox"));
  return b;
}

}  // namespace md::agent
