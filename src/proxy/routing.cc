#include "proxy/routing.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"

namespace md::proxy {

void StatsShard::finish(int status, int64_t latency_us) {
  bump(requests);
  if (status >= 100 && status < 600) {
    bump(by_class[status / 100 - 1]);
  } else {
    bump(aborted);
  }
  if (latency_us >= 0) {
    bump(latency[latency_bucket(static_cast<uint64_t>(latency_us))]);
    bump(latency_sum_us, static_cast<uint64_t>(latency_us));
  }
}

Counters Stats::read() const {
  Counters c;
  constexpr auto r = std::memory_order_relaxed;
  for (int w = 0; w < n_; ++w) {
    const StatsShard& s = shards_[w];
    c.requests += s.requests.load(r);
    for (int k = 0; k < 5; ++k) c.by_class[k] += s.by_class[k].load(r);
    c.aborted += s.aborted.load(r);
    c.upstream_errors += s.upstream_errors.load(r);
    c.retries += s.retries.load(r);
    for (size_t b = 0; b < kLatencyBuckets; ++b) c.latency[b] += s.latency[b].load(r);
    c.latency_sum_us += s.latency_sum_us.load(r);
    c.active += s.active.load(r);
  }
  return c;
}

int64_t Stats::active() const {
  int64_t a = 0;
  for (int w = 0; w < n_; ++w) a += shards_[w].active.load(std::memory_order_relaxed);
  return a;
}

TargetState::TargetState(std::string svc, Endpoint ep, int workers)
    : service(std::move(svc)), endpoint(std::move(ep)), pools(new PoolSlot[workers]) {
  for (int w = 0; w < workers; ++w) pools[w].idle.owner = nullptr;
}

TargetState::~TargetState() { delete[] pools; }

Status TargetState::resolve() {
  std::memset(&addr, 0, sizeof addr);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, endpoint.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(endpoint.port);
    addr_len = sizeof(sockaddr_in);
    return ok();
  }
  if (::inet_pton(AF_INET6, endpoint.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(endpoint.port);
    addr_len = sizeof(sockaddr_in6);
    return ok();
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(endpoint.host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    return fail(Errc::kUnavailable, "resolve " + endpoint.host + ": " + ::gai_strerror(rc), true);
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  addr_len = static_cast<socklen_t>(res->ai_addrlen);
  if (addr.ss_family == AF_INET)
    v4->sin_port = htons(endpoint.port);
  else
    v6->sin6_port = htons(endpoint.port);
  ::freeaddrinfo(res);
  return ok();
}

void TargetState::record_failure(const PassiveEjection& pe, int64_t now_ms, std::string_view why) {
  int streak = fail_streak.fetch_add(1, std::memory_order_relaxed) + 1;
  set_error(std::string(why));
  if (pe.consecutive_failures > 0 && streak >= pe.consecutive_failures &&
      ejected_until_ms.load(std::memory_order_relaxed) <= now_ms) {
    ejected_until_ms.store(now_ms + pe.duration.count(), std::memory_order_relaxed);
    fail_streak.store(0, std::memory_order_relaxed);
    log::Logger("proxy").warn("target ejected", {{"service", service},
                                                 {"target", endpoint.str()},
                                                 {"failures", std::to_string(streak)},
                                                 {"for_ms", std::to_string(pe.duration.count())},
                                                 {"last_error", std::string(why)}});
  }
}

void TargetState::set_error(std::string e) {
  std::lock_guard lock(err_mu_);
  last_error_ = std::move(e);
}

std::string TargetState::error() const {
  std::lock_guard lock(err_mu_);
  return last_error_;
}

std::vector<Endpoint> TargetSet::endpoints() const {
  std::vector<Endpoint> out;
  for (const auto& t : targets) out.push_back(t->endpoint);
  return out;
}

bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (prefix.empty() || prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  char next = path[prefix.size()];
  return next == '/' || next == '?';
}

namespace {

int host_rank(const ServiceRoute& s) {
  if (s.host.empty()) return 2;
  return s.host_wildcard ? 1 : 0;
}

// Lower-cased host of an authority, without port; into `buf` (<= 255 bytes).
std::string_view host_of(std::string_view authority, char* buf, size_t cap) {
  std::string_view h = authority;
  if (!h.empty() && h.front() == '[') {
    size_t e = h.find(']');
    h = e == std::string_view::npos ? h : h.substr(0, e + 1);
  } else {
    size_t colon = h.rfind(':');
    if (colon != std::string_view::npos) h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);  // "example.com." is example.com
  if (h.size() > cap) return {};
  for (size_t i = 0; i < h.size(); ++i) {
    char c = h[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
  }
  return std::string_view(buf, h.size());
}

}  // namespace

void sort_for_matching(std::vector<std::shared_ptr<const ServiceRoute>>& services) {
  std::stable_sort(services.begin(), services.end(), [](const auto& a, const auto& b) {
    int ra = host_rank(*a), rb = host_rank(*b);
    if (ra != rb) return ra < rb;
    if (a->host.size() != b->host.size()) return a->host.size() > b->host.size();
    return a->spec.path_prefix.size() > b->spec.path_prefix.size();
  });
}

const ServiceRoute* RouteTable::match(std::string_view authority, std::string_view path) const {
  char buf[256];
  std::string_view host = host_of(authority, buf, sizeof buf);
  for (const auto& sp : services) {
    const ServiceRoute& s = *sp;
    if (!s.host.empty()) {
      if (s.host_wildcard) {
        // "*.example.com": host ends with ".example.com" and has a label before it.
        if (host.size() <= s.host.size() + 1 ||
            host.substr(host.size() - s.host.size()) != s.host ||
            host[host.size() - s.host.size() - 1] != '.')
          continue;
      } else if (host != s.host) {
        continue;
      }
    }
    if (prefix_matches(s.spec.path_prefix, path)) return &s;
  }
  return nullptr;
}

int sticky_bucket(std::string_view key) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int>(h % 100);
}

std::string_view find_cookie(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view v = pair.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

std::string maintenance_response(std::string_view page, bool close) {
  std::string body(page);
  if (body.empty())
    body =
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Down for maintenance</title>"
        "</head>\n<body><h1>Down for maintenance</h1><p>We will be back "
        "shortly.</p></body></html>\n";
  std::string r =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\nRetry-After: 30\r\nCache-Control: no-store\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

}  // namespace md::proxy
