// The Slack incoming-webhook message (Block Kit), within Slack's limits.
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "notify/message.h"

namespace md::notify {
namespace {

using nlohmann::json;

std::string escape_mrkdwn(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// `raw` escaped for mrkdwn, at most `limit` units. Truncates the raw text so
// that an entity is never cut in half.
std::string fit_mrkdwn(std::string_view raw, size_t limit) {
  std::string escaped = escape_mrkdwn(raw);
  std::string fitted = truncate_utf16(escaped, limit);
  if (fitted == escaped) return escaped;
  size_t growth = escaped.size() - raw.size();  // bytes >= units: an upper bound
  return escape_mrkdwn(truncate_utf16(raw, limit > growth ? limit - growth : 0));
}

json plain(std::string_view text, size_t limit) {
  return {{"type", "plain_text"}, {"text", truncate_utf16(text, limit)}, {"emoji", true}};
}

const char* emoji(EventType t) {
  switch (t) {
    case EventType::kStarted:
      return ":rocket:";
    case EventType::kSucceeded:
      return ":white_check_mark:";
    case EventType::kFailed:
      return ":x:";
    case EventType::kRolledBack:
      return ":rewind:";
    case EventType::kCanaryStep:
      return ":hatching_chick:";
    case EventType::kApprovalNeeded:
      return ":raised_hand:";
    case EventType::kTest:
      return ":bell:";
  }
  return ":bell:";
}

}  // namespace

std::string slack_message(const Event& e, std::string_view event_id, std::string_view link) {
  using L = SlackLimits;
  std::string headline = summary(e);
  json blocks = json::array();
  blocks.push_back({{"type", "header"},
                    {"text", plain(std::string(emoji(e.type)) + " " + headline, L::kHeaderText)}});

  json fields = json::array();
  auto field = [&](std::string_view label, std::string_view value, bool code = false) {
    if (value.empty() || fields.size() >= L::kFields) return;
    std::string prefix = "*" + std::string(label) + "*\n" + (code ? "`" : "");
    std::string suffix = code ? "`" : "";
    size_t room = L::kFieldText - prefix.size() - suffix.size();
    fields.push_back({{"type", "mrkdwn"}, {"text", prefix + fit_mrkdwn(value, room) + suffix}});
  };
  field("Environment", e.environment);
  field("Status", e.status);
  field("Version", e.version, true);
  field("Previous version", e.previous_version, true);
  std::string who = e.actor;
  if (!e.trigger.empty()) who += who.empty() ? e.trigger : " (" + e.trigger + ")";
  field("Triggered by", who);
  if (e.duration) field("Duration", format_duration(*e.duration));
  field("Strategy", e.strategy);
  if (!e.hosts.empty()) {
    std::string hosts;
    for (const std::string& h : e.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
    field("Hosts", hosts);
  }
  if (e.canary_weight) field("Canary weight", std::to_string(*e.canary_weight) + "%");
  if (!fields.empty()) blocks.push_back({{"type", "section"}, {"fields", fields}});

  if (!e.reason.empty()) {
    std::string prefix = "*Reason*\n```", suffix = "```";
    std::string text =
        prefix + fit_mrkdwn(e.reason, L::kSectionText - prefix.size() - suffix.size()) + suffix;
    blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", text}}}});
  }
  if (e.type == EventType::kApprovalNeeded) {
    std::string text = "Promote with `meshdeploy promote --env " + e.environment +
                       "` or abort with `meshdeploy abort --env " + e.environment + "`.";
    blocks.push_back({{"type", "section"},
                      {"text", {{"type", "mrkdwn"}, {"text", fit_mrkdwn(text, L::kSectionText)}}}});
  }
  // WHY skip an over-long link: a truncated URL points somewhere else.
  if (!link.empty() && link.size() <= L::kUrl) {
    blocks.push_back(
        {{"type", "actions"},
         {"elements", json::array({{{"type", "button"},
                                    {"text", plain("Open in dashboard", L::kButtonText)},
                                    {"url", link}}})}});
  }
  std::string context = "Deployment " + e.deployment_id + " · event " + std::string(event_id) +
                        " · " + format_time(e.at);
  if (e.deployment_id.empty())
    context = "Event " + std::string(event_id) + " · " + format_time(e.at);
  blocks.push_back({{"type", "context"},
                    {"elements", json::array({{{"type", "mrkdwn"},
                                               {"text", fit_mrkdwn(context, L::kContextText)}}})}});

  std::string fallback = headline;
  if (!e.reason.empty()) fallback += ": " + e.reason;
  json msg = {{"text", fit_mrkdwn(fallback, L::kFallbackText)}, {"blocks", blocks}};
  return to_json_text(msg);
}

}  // namespace md::notify
