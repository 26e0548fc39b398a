// Value types of proxy.h: endpoints, specs and their validation, counters.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "proxy/proxy.h"

namespace md::proxy {

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  std::string t(text);
  auto bad = [&](std::string why) {
    return fail(Errc::kInvalidArgument, "address '" + t + "': " + why + " (want HOST:PORT)");
  };
  if (text.empty()) return bad("empty");
  Endpoint ep;
  std::string_view port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("IPv6 address needs [ADDR]:PORT");
    ep.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    ep.host = std::string(text.substr(0, colon));
    if (ep.host.find(':') != std::string::npos) return bad("IPv6 address needs brackets");
    port = text.substr(colon + 1);
  }
  if (ep.host.empty()) return bad("missing host");
  for (char c : ep.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_' || c == '%'))
      return bad("invalid character in host");
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || v > 65535)
    return bad("port must be a number from 0 to 65535");
  ep.port = static_cast<uint16_t>(v);
  return ep;
}

Result<std::vector<Endpoint>> parse_endpoints(std::string_view text) {
  std::vector<Endpoint> out;
  while (true) {
    size_t comma = text.find(',');
    std::string_view one = text.substr(0, comma);
    Endpoint ep = MD_TRY(parse_endpoint(one));
    if (ep.port == 0)
      return fail(Errc::kInvalidArgument,
                  "target '" + std::string(one) + "': port 0 is not a target");
    if (std::find(out.begin(), out.end(), ep) != out.end())
      return fail(Errc::kInvalidArgument, "target " + ep.str() + " is listed twice");
    out.push_back(std::move(ep));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

namespace {

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(n[0])) return false;
  return std::all_of(n.begin(), n.end(),
                     [&](char c) { return ok_first(c) || c == '.' || c == '_' || c == '-'; });
}

bool valid_token(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

Status validate(const ServiceSpec& s) {
  auto bad = [&](std::string field, std::string why) {
    return fail(Errc::kInvalidArgument, "service '" + s.name + "': " + field + ": " + why);
  };
  if (!valid_name(s.name))
    return fail(Errc::kInvalidArgument,
                "service name '" + s.name +
                    "': use 1-63 characters a-z 0-9 . _ -, starting with a letter or digit");
  std::string_view h = s.host;
  if (h.substr(0, 2) == "*.") h.remove_prefix(2);
  if (h.size() > 253) return bad("host", "longer than 253 characters");
  for (char c : h)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
      return bad("host", "'" + s.host + "' must be a lower-case DNS name without port (or *.name)");
  if (s.path_prefix.empty() || s.path_prefix[0] != '/')
    return bad("path_prefix", "'" + s.path_prefix + "' must start with '/'");
  for (char c : s.path_prefix)
    if (c <= ' ' || c == '?' || c == '#' || c == 0x7f)
      return bad("path_prefix", "'" + s.path_prefix + "' has a space, control character, ? or #");
  const HealthCheck& hc = s.health;
  if (!hc.path.empty() && hc.path[0] != '/')
    return bad("health.path", "must start with '/' (or be empty for TCP checks)");
  for (char c : hc.path)
    if (c <= ' ' || c == 0x7f) return bad("health.path", "has a space or control character");
  if (hc.interval.count() < 100 || hc.interval.count() > 3600000)
    return bad("health.interval", "must be between 100 ms and 1 h");
  if (hc.timeout.count() < 10 || hc.timeout > hc.interval)
    return bad("health.timeout", "must be at least 10 ms and at most the interval");
  if (hc.healthy_threshold < 1 || hc.healthy_threshold > 100)
    return bad("health.healthy_threshold", "must be 1..100");
  if (hc.unhealthy_threshold < 1 || hc.unhealthy_threshold > 100)
    return bad("health.unhealthy_threshold", "must be 1..100");
  if (s.ejection.consecutive_failures < 0 || s.ejection.consecutive_failures > 1000)
    return bad("ejection.consecutive_failures", "must be 0..1000");
  if (s.ejection.duration.count() < 0 || s.ejection.duration.count() > 3600000)
    return bad("ejection.duration", "must be between 0 and 1 h");
  if (!s.sticky_cookie.empty() && !valid_token(s.sticky_cookie))
    return bad("sticky_cookie", "must be 1-64 characters A-Z a-z 0-9 - _ .");
  if (!s.sticky_header.empty() && !valid_token(s.sticky_header))
    return bad("sticky_header", "must be 1-64 characters A-Z a-z 0-9 - _ .");
  if (s.drain_deadline.count() < 0 || s.drain_deadline.count() > 86400000)
    return bad("drain_deadline", "must be between 0 and 24 h");
  return ok();
}

Result<StaticRoute> parse_route(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return fail(Errc::kInvalidArgument,
                "route '" + std::string(text) + "': want SERVICE=HOST:PORT[,HOST:PORT...]");
  StaticRoute r;
  r.spec.name = std::string(text.substr(0, eq));
  MD_TRY_STATUS(validate(r.spec));
  r.targets = MD_TRY_CTX(parse_endpoints(text.substr(eq + 1)), "route " + r.spec.name);
  return r;
}

double Counters::percentile_ms(double q) const {
  uint64_t total = 0;
  for (uint64_t v : latency) total += v;
  if (total == 0) return 0;
  double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t b = 0; b < kLatencyBuckets; ++b) {
    if (latency[b] == 0) continue;
    if (static_cast<double>(seen + latency[b]) >= rank) {
      double lo = static_cast<double>(bucket_lower_us(b));
      double hi = static_cast<double>(bucket_upper_us(b));
      double frac = (rank - static_cast<double>(seen)) / static_cast<double>(latency[b]);
      if (frac < 0) frac = 0;
      return (lo + (hi - lo) * frac) / 1000.0;
    }
    seen += latency[b];
  }
  return static_cast<double>(bucket_upper_us(kLatencyBuckets - 1)) / 1000.0;
}

Counters Counters::minus(const Counters& e) const {
  Counters d = *this;
  auto sub = [](uint64_t a, uint64_t b) { return a >= b ? a - b : 0; };
  d.requests = sub(requests, e.requests);
  for (size_t i = 0; i < by_class.size(); ++i) d.by_class[i] = sub(by_class[i], e.by_class[i]);
  d.aborted = sub(aborted, e.aborted);
  d.upstream_errors = sub(upstream_errors, e.upstream_errors);
  d.retries = sub(retries, e.retries);
  for (size_t i = 0; i < latency.size(); ++i) d.latency[i] = sub(latency[i], e.latency[i]);
  d.latency_sum_us = sub(latency_sum_us, e.latency_sum_us);
  return d;
}

}  // namespace md::proxy
