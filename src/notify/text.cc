// Text shared by every channel: the summary line, durations, links and
// Slack-safe truncation.
#include <cstdio>

#include "notify/message.h"

namespace md::notify {
namespace {

// "meshhook v42" or "v42".
std::string app_version(const Event& e, const std::string& version) {
  return e.app.empty() ? version : e.app + " " + version;
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// Length of the UTF-8 sequence that starts with `c` (1 for a stray byte).
size_t utf8_len(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

}  // namespace

std::string summary(const Event& e) {
  const std::string& env = e.environment;
  std::string weight = e.canary_weight ? std::to_string(*e.canary_weight) + "%" : "?%";
  switch (e.type) {
    case EventType::kStarted:
      return "Deploying " + app_version(e, e.version) + " to " + env;
    case EventType::kSucceeded:
      return "Deployed " + app_version(e, e.version) + " to " + env;
    case EventType::kFailed:
      return "Deploy of " + app_version(e, e.version) + " to " + env + " failed";
    case EventType::kRolledBack:
      return env + " rolled back from " + e.version +
             (e.previous_version.empty() ? std::string() : " to " + e.previous_version);
    case EventType::kCanaryStep:
      return "Canary " + app_version(e, e.version) + " at " + weight + " in " + env;
    case EventType::kApprovalNeeded:
      return "Canary " + app_version(e, e.version) + " in " + env + " waits for approval at " +
             weight;
    case EventType::kTest:
      return "Test notification from meshdeploy for " + env;
  }
  return "meshdeploy event in " + env;
}

std::string format_duration(Millis d) {
  long long ms = d.count();
  if (ms < 0) ms = 0;
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lld ms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", ms / 60'000, ms / 1000 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", ms / 3'600'000, ms / 60'000 % 60);
  }
  return buf;
}

std::string dashboard_link(std::string_view dashboard_url, const Event& e) {
  std::string link(dashboard_url);
  replace_all(link, "{environment}", url_encode(e.environment));
  replace_all(link, "{deployment}", url_encode(e.deployment_id));
  replace_all(link, "{version}", url_encode(e.version));
  return link;
}

std::string truncate_utf16(std::string_view text, size_t max_units) {
  size_t units = 0;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(text[i]));
    units += n == 4 ? 2 : 1;
    i += n;
  }
  if (units <= max_units) return std::string(text);
  if (max_units == 0) return "";
  // Keep max_units - 1 units, then the ellipsis (one unit).
  std::string out;
  units = 0;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(text[i]));
    size_t u = n == 4 ? 2 : 1;
    if (units + u > max_units - 1 || i + n > text.size()) break;
    out.append(text.substr(i, n));
    units += u;
    i += n;
  }
  return out + "\xE2\x80\xA6";
}

}  // namespace md::notify
