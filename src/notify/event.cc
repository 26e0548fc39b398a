// Events: names, ids, channel filters, the pure fan-out and the payload JSON.
#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "core/json.h"
#include "notify/notify.h"

namespace md::notify {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 7> kTypeNames = {
    "started", "succeeded", "failed", "rolled_back", "canary_step", "approval_needed", "test"};

bool contains(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

std::string_view event_type_name(EventType t) { return kTypeNames.at(static_cast<size_t>(t)); }

std::optional<EventType> parse_event_type(std::string_view name) {
  for (size_t i = 0; i < kTypeNames.size(); ++i)
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  return std::nullopt;
}

const std::vector<EventType>& all_event_types() {
  static const std::vector<EventType> all = [] {
    std::vector<EventType> v;
    for (size_t i = 0; i < kTypeNames.size(); ++i) v.push_back(static_cast<EventType>(i));
    return v;
  }();
  return all;
}

std::string event_id(const Event& e, std::string_view channel) {
  // WHY separators: ("a", "bc") and ("ab", "c") must give different ids;
  // the weight is spelled out so that 0 and "no weight" differ too.
  std::string material = e.deployment_id;
  material += '\n';
  material += event_type_name(e.type);
  material += '\n';
  material += e.canary_weight ? std::to_string(*e.canary_weight) : "-";
  material += '\n';
  material += e.key;
  material += '\n';
  material += channel;
  return "evt_" + sha256_hex(material).substr(0, 24);
}

bool wants(const config::Channel& channel, EventType t, std::string_view environment) {
  if (!channel.environments.empty() && !contains(channel.environments, environment)) return false;
  if (t == EventType::kTest) return true;
  return channel.events.empty() || contains(channel.events, event_type_name(t));
}

std::vector<state::OutboxEvent> fan_out(const config::Notifications& n, const Event& e) {
  std::vector<state::OutboxEvent> rows;
  std::string payload;
  for (const config::Channel& c : n.channels) {
    if (!wants(c, e.type, e.environment)) continue;
    if (payload.empty()) payload = event_json(e);
    state::OutboxEvent row;
    row.event_id = event_id(e, c.name);
    row.channel = c.name;
    row.environment = e.environment;
    row.event_type = std::string(event_type_name(e.type));
    row.payload = payload;
    row.status = state::OutboxStatus::kPending;
    row.created_at = e.at;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string event_json(const Event& e) {
  json j = {
      {"type", event_type_name(e.type)},
      {"environment", e.environment},
      {"app", e.app},
      {"version", e.version},
      {"previous_version", e.previous_version},
      {"deployment_id", e.deployment_id},
      {"actor", e.actor},
      {"trigger", e.trigger},
      {"strategy", e.strategy},
      {"duration_ms", e.duration ? json(e.duration->count()) : json(nullptr)},
      {"status", e.status},
      {"reason", e.reason},
      {"canary_weight", e.canary_weight ? json(*e.canary_weight) : json(nullptr)},
      {"at_ms", to_unix_ms(e.at)},
      {"key", e.key},
  };
  if (!e.hosts.empty()) j["hosts"] = e.hosts;
  // WHY replace: a non-UTF-8 byte in a version or reason must not make the
  // whole event unstorable; it becomes U+FFFD.
  return to_json_text(j);
}

Result<Event> parse_event_json(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail(Errc::kInvalidArgument, "event payload is not a JSON object");
  Event e;
  auto text = [&](const char* name, std::string& out) -> Status {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_string())
      return fail(Errc::kInvalidArgument,
                  std::string("event payload: '") + name + "' is not a string");
    out = it->get<std::string>();
    return ok();
  };
  auto integer = [&](const char* name) -> Result<std::optional<int64_t>> {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::optional<int64_t>();
    if (!it->is_number_integer())
      return fail(Errc::kInvalidArgument,
                  std::string("event payload: '") + name + "' is not an integer");
    return std::optional<int64_t>(it->get<int64_t>());
  };
  std::string type;
  MD_TRY_STATUS(text("type", type));
  auto t = parse_event_type(type);
  if (!t) return fail(Errc::kInvalidArgument, "event payload: unknown type '" + type + "'");
  e.type = *t;
  MD_TRY_STATUS(text("environment", e.environment));
  MD_TRY_STATUS(text("app", e.app));
  MD_TRY_STATUS(text("version", e.version));
  MD_TRY_STATUS(text("previous_version", e.previous_version));
  MD_TRY_STATUS(text("deployment_id", e.deployment_id));
  MD_TRY_STATUS(text("actor", e.actor));
  MD_TRY_STATUS(text("trigger", e.trigger));
  MD_TRY_STATUS(text("strategy", e.strategy));
  MD_TRY_STATUS(text("status", e.status));
  MD_TRY_STATUS(text("reason", e.reason));
  MD_TRY_STATUS(text("key", e.key));
  if (auto d = MD_TRY(integer("duration_ms"))) e.duration = Millis(*d);
  if (auto w = MD_TRY(integer("canary_weight"))) {
    if (*w < 0 || *w > 100)
      return fail(Errc::kInvalidArgument, "event payload: 'canary_weight' is not 0..100");
    e.canary_weight = static_cast<int>(*w);
  }
  if (auto at = MD_TRY(integer("at_ms"))) e.at = from_unix_ms(*at);
  if (auto it = j.find("hosts"); it != j.end() && !it->is_null()) {
    if (!it->is_array())
      return fail(Errc::kInvalidArgument, "event payload: 'hosts' is not an array");
    for (const json& h : *it) {
      if (!h.is_string())
        return fail(Errc::kInvalidArgument, "event payload: 'hosts' holds a non-string");
      e.hosts.push_back(h.get<std::string>());
    }
  }
  return e;
}

}  // namespace md::notify
