// The Standard Webhooks payload of an event.
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "notify/message.h"

namespace md::notify {

std::string webhook_type(EventType t) { return "deployment." + std::string(event_type_name(t)); }

std::string webhook_body(const Event& e, std::string_view event_id, std::string_view link) {
  using nlohmann::json;
  auto text_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json data = {
      {"event_id", event_id},
      {"event", event_type_name(e.type)},
      {"summary", summary(e)},
      {"app", text_or_null(e.app)},
      {"environment", e.environment},
      {"version", text_or_null(e.version)},
      {"previous_version", text_or_null(e.previous_version)},
      {"deployment_id", text_or_null(e.deployment_id)},
      {"actor", text_or_null(e.actor)},
      {"trigger", text_or_null(e.trigger)},
      {"strategy", text_or_null(e.strategy)},
      {"status", text_or_null(e.status)},
      {"duration_ms", e.duration ? json(e.duration->count()) : json(nullptr)},
      {"reason", text_or_null(e.reason)},
      {"canary_weight", e.canary_weight ? json(*e.canary_weight) : json(nullptr)},
      {"url", link.empty() ? json(nullptr) : json(link)},
  };
  if (!e.hosts.empty()) data["hosts"] = e.hosts;
  json body = {{"type", webhook_type(e.type)}, {"timestamp", format_time(e.at)}, {"data", data}};
  return to_json_text(body);
}

}  // namespace md::notify
