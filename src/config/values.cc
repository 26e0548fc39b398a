// Small pure helpers of the contract: durations, enum names, event names,
// channel filters, secret references.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "config/config.h"

namespace md::config {
namespace {

constexpr std::string_view kEvents[] = {"started",     "succeeded",   "failed",
                                        "rolled_back", "canary_step", "approval_needed"};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::span<const std::string_view> event_names() { return kEvents; }

bool Channel::wants(std::string_view event, std::string_view environment) const {
  return (events.empty() || contains(events, event)) &&
         (environments.empty() || contains(environments, environment));
}

std::string_view service_kind_name(ServiceKind k) {
  return k == ServiceKind::kWeb ? "web" : "worker";
}
std::string_view strategy_kind_name(StrategyKind k) {
  return k == StrategyKind::kBlueGreen ? "blue_green" : "canary";
}
std::string_view channel_kind_name(ChannelKind k) {
  switch (k) {
    case ChannelKind::kSlack:
      return "slack";
    case ChannelKind::kWebhook:
      return "webhook";
    case ChannelKind::kEmail:
      return "email";
  }
  return "webhook";
}
std::string_view inconclusive_name(Inconclusive i) {
  return i == Inconclusive::kWait ? "wait" : "fail";
}

Result<Millis> parse_duration(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::kInvalidArgument,
                "'" + std::string(text.substr(0, 40)) + "' is not a duration: " + why);
  };
  if (text == "0") return Millis(0);
  if (text.empty()) return bad("it is empty");
  constexpr double kMax = 100.0 * 365 * 24 * 3600 * 1000;  // 100 years in ms
  double total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t n = 0;
    while (n < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '.'))
      ++n;
    if (n == 0) {
      if (rest[0] == '-') return bad("it is negative");
      return bad("expected a number at '" + std::string(rest.substr(0, 10)) + "'");
    }
    double v = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + n, v);
    if (ec != std::errc() || end != rest.data() + n) return bad("malformed number");
    rest.remove_prefix(n);
    size_t u = 0;
    while (u < rest.size() && std::isalpha(static_cast<unsigned char>(rest[u]))) ++u;
    std::string_view unit = rest.substr(0, u);
    rest.remove_prefix(u);
    double scale = unit == "ms"  ? 1
                   : unit == "s" ? 1e3
                   : unit == "m" ? 60e3
                   : unit == "h" ? 3600e3
                   : unit == "d" ? 86400e3
                                 : 0;
    if (unit.empty()) return bad("missing unit (ms, s, m, h or d)");
    if (scale == 0) return bad("unknown unit '" + std::string(unit) + "' (use ms, s, m, h or d)");
    total += v * scale;
    if (!(total <= kMax)) return bad("longer than 100 years");
  }
  double rounded = std::round(total);
  // WHY a tolerance: 1.1 * 1000 is 1100.0000000000002 in binary floating point.
  if (std::fabs(rounded - total) > 1e-6) return bad("finer than a millisecond");
  return Millis(static_cast<int64_t>(rounded));
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0";
  if (ms < 0) return std::to_string(ms) + "ms";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::vector<SecretRef> secret_references(const Environment& env) {
  std::vector<SecretRef> refs;
  for (const std::string& s : env.secrets) refs.push_back({s, "secrets"});
  if (env.migrations.enabled && !env.migrations.database_url_secret.empty())
    refs.push_back({env.migrations.database_url_secret, "migrations.database_url_secret"});
  for (const Channel& c : env.notifications.channels) {
    std::string base = "notifications.channels." + c.name + ".";
    if (!c.url_secret.empty()) refs.push_back({c.url_secret, base + "url_secret"});
    for (const std::string& s : c.signing_secrets) refs.push_back({s, base + "signing_secrets"});
    if (!c.smtp_password_secret.empty())
      refs.push_back({c.smtp_password_secret, base + "smtp_password_secret"});
  }
  const bool any_ssh = std::any_of(env.hosts.begin(), env.hosts.end(),
                                   [](const Host& h) { return h.address != "local"; });
  if (any_ssh && !env.ssh.key_secret.empty())
    refs.push_back({env.ssh.key_secret, "ssh.key_secret"});
  if (any_ssh && !env.ssh.known_hosts_secret.empty())
    refs.push_back({env.ssh.known_hosts_secret, "ssh.known_hosts_secret"});
  std::sort(refs.begin(), refs.end(), [](const SecretRef& a, const SecretRef& b) {
    return a.name != b.name ? a.name < b.name : a.used_by < b.used_by;
  });
  return refs;
}

}  // namespace md::config
