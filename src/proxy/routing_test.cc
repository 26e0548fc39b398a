// Pure parts of the proxy: route matching, stickiness, validation, the state
// file format, JSON forms, counters.
#include "proxy/routing.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "proxy/proxy.h"
#include "proxy/state_file.h"

namespace md::proxy {
namespace {

std::shared_ptr<const ServiceRoute> route(std::string name, std::string host, std::string prefix) {
  auto r = std::make_shared<ServiceRoute>();
  r->spec.name = std::move(name);
  r->spec.host = host;
  r->spec.path_prefix = std::move(prefix);
  if (host.rfind("*.", 0) == 0) {
    r->host_wildcard = true;
    host = host.substr(2);
  }
  r->host = host;
  return r;
}

TEST(Routing, MostSpecificServiceWins) {
  RouteTable t;
  t.services = {route("any", "", "/"), route("api", "", "/api"), route("ex", "example.com", "/"),
                route("exapi", "example.com", "/api/v2"), route("wild", "*.example.com", "/")};
  sort_for_matching(t.services);
  auto name = [&](std::string_view host, std::string_view path) {
    const ServiceRoute* s = t.match(host, path);
    return s ? s->spec.name : std::string("-");
  };
  EXPECT_EQ(name("example.com", "/"), "ex");
  EXPECT_EQ(name("EXAMPLE.com:8443", "/api/v2/users"), "exapi");
  EXPECT_EQ(name("example.com.", "/api/v3"), "ex");
  EXPECT_EQ(name("www.example.com", "/x"), "wild");
  EXPECT_EQ(name("example.org", "/api"), "api");
  EXPECT_EQ(name("example.org", "/api/x"), "api");
  EXPECT_EQ(name("example.org", "/apix"), "any");
  EXPECT_EQ(name("", "/"), "any");
  EXPECT_EQ(name("[::1]:80", "/"), "any");
}

TEST(Routing, NoCatchAllMeansNoMatch) {
  RouteTable t;
  t.services = {route("ex", "example.com", "/app")};
  EXPECT_EQ(t.match("other.com", "/app"), nullptr);
  EXPECT_EQ(t.match("example.com", "/"), nullptr);
  EXPECT_NE(t.match("example.com", "/app?x"), nullptr);
}

TEST(Routing, StickyBucketsAndCookies) {
  EXPECT_EQ(sticky_bucket("alice"), sticky_bucket("alice"));
  int hist[10] = {};
  for (int i = 0; i < 10000; ++i) hist[sticky_bucket("user-" + std::to_string(i)) / 10]++;
  for (int h : hist) EXPECT_GT(h, 800);  // roughly uniform
  EXPECT_EQ(find_cookie("a=1; mdc=42; b=2", "mdc"), "42");
  EXPECT_EQ(find_cookie("mdc=\"7\"", "mdc"), "7");
  EXPECT_EQ(find_cookie("xmdc=1", "mdc"), "");
  EXPECT_EQ(find_cookie("", "mdc"), "");
}

TEST(Spec, ValidationNamesTheField) {
  ServiceSpec s;
  s.name = "web";
  EXPECT_TRUE(validate(s));
  s.name = "Web!";
  EXPECT_NE(validate(s).error().what().find("service name"), std::string::npos);
  s.name = "web";
  s.path_prefix = "api";
  EXPECT_NE(validate(s).error().what().find("path_prefix"), std::string::npos);
  s.path_prefix = "/";
  s.host = "Example.com";
  EXPECT_NE(validate(s).error().what().find("host"), std::string::npos);
  s.host = "*.example.com";
  EXPECT_TRUE(validate(s));
  s.health.timeout = Millis(5000);
  EXPECT_NE(validate(s).error().what().find("health.timeout"), std::string::npos);
}

TEST(Endpoints, Parse) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:80")->port, 80);
  EXPECT_EQ(parse_endpoint("[::1]:8080")->host, "::1");
  EXPECT_EQ(parse_endpoint("[::1]:8080")->str(), "[::1]:8080");
  EXPECT_FALSE(parse_endpoint("::1:80"));
  EXPECT_FALSE(parse_endpoint("host"));
  EXPECT_FALSE(parse_endpoint("host:99999"));
  EXPECT_FALSE(parse_endpoint("host:8x"));
  EXPECT_FALSE(parse_endpoints("a:1,a:1"));
  EXPECT_FALSE(parse_endpoints("a:0"));
  EXPECT_EQ(parse_endpoints("a:1,b:2")->size(), 2u);
  auto r = parse_route("web=127.0.0.1:1,127.0.0.1:2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->spec.name, "web");
  EXPECT_EQ(r->targets.size(), 2u);
  EXPECT_FALSE(parse_route("web"));
  EXPECT_FALSE(parse_route("=a:1"));
}

TEST(Spec, JsonIsStrict) {
  ServiceSpec s;
  s.name = "web";
  s.sticky_cookie = "mdc";
  s.health.interval = Millis(1500);
  auto back = spec_from_json(to_json(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
  auto j = to_json(s);
  j["bogus"] = 1;
  EXPECT_NE(spec_from_json(j).error().what().find("unknown field 'bogus'"), std::string::npos);
  j = to_json(s);
  j["health"]["interval_ms"] = "fast";
  EXPECT_NE(spec_from_json(j).error().what().find("health.interval_ms"), std::string::npos);
}

TEST(StateFile, RoundTripAndChecksum) {
  StateRecord s;
  s.next_set_id = 5;
  ServiceRecord r;
  r.spec.name = "web";
  r.live = SetRecord{3, {{"127.0.0.1", 3001}}};
  r.canary = SetRecord{4, {{"::1", 3002}}};
  r.canary_weight = 25;
  r.maintenance = true;
  r.maintenance_page = "<p>x</p>";
  s.services.push_back(r);
  std::string text = encode_state(s);
  auto back = decode_state(text, "f");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->next_set_id, 5u);
  EXPECT_EQ(back->services[0].canary->targets[0].host, "::1");
  EXPECT_EQ(back->services[0].canary_weight, 25);
  EXPECT_EQ(back->services[0].maintenance_page, "<p>x</p>");

  std::string damaged = text;
  damaged.replace(damaged.find("25"), 2, "26");
  EXPECT_EQ(decode_state(damaged, "f").error().code(), Errc::kCorruption);
  std::string newer = text;
  newer.replace(newer.find("\"version\": 1"), 12, "\"version\": 9");
  EXPECT_EQ(decode_state(newer, "f").error().code(), Errc::kFailedPrecondition);
  EXPECT_EQ(decode_state("{", "f").error().code(), Errc::kCorruption);
  // Found by proxy_state_fuzzer: nlohmann throws out_of_range, not parse_error.
  EXPECT_EQ(decode_state("{\"n\": 5e5554}", "f").error().code(), Errc::kCorruption);
  EXPECT_EQ(decode_state("{\"format\": \"x\"}", "f").error().code(), Errc::kCorruption);
}

TEST(Counters, PercentilesAndDiff) {
  Counters a;
  EXPECT_EQ(a.percentile_ms(0.99), 0.0);
  a.latency[latency_bucket(120)] = 90;   // 120..121 us
  a.latency[latency_bucket(9000)] = 10;  // 8960..9088 us
  a.requests = 100;
  EXPECT_GE(a.percentile_ms(0.5), 0.120);
  EXPECT_LE(a.percentile_ms(0.5), 0.121);
  EXPECT_GE(a.percentile_ms(0.99), 8.96);
  EXPECT_LE(a.percentile_ms(0.99), 9.088);
  Counters b = a;
  b.requests = 150;
  b.latency[latency_bucket(120)] += 50;
  Counters d = b.minus(a);
  EXPECT_EQ(d.requests, 50u);
  EXPECT_LE(d.percentile_ms(0.99), 0.121);
}

TEST(Metrics, PrometheusText) {
  MetricsSnapshot m;
  m.instance = "i";
  ServiceMetrics s;
  s.service = "web";
  SetMetrics set;
  set.id = 7;
  set.role = "live";
  set.counters.by_class[1] = 3;
  set.counters.latency[latency_bucket(40)] = 2;    // le 50 us
  set.counters.latency[latency_bucket(1000)] = 1;  // [1000, 1008): le 1500 us
  s.sets.push_back(set);
  m.services.push_back(s);
  std::string t = to_prometheus(m);
  EXPECT_NE(t.find("meshdeploy_proxy_requests_total{service=\"web\",set=\"7\",role=\"live\",class="
                   "\"2xx\"} 3"),
            std::string::npos);
  EXPECT_NE(t.find("meshdeploy_proxy_request_duration_seconds_bucket{service=\"web\",set=\"7\","
                   "role=\"live\",le=\"+Inf\"} 3"),
            std::string::npos);
  EXPECT_NE(t.find("meshdeploy_proxy_request_duration_seconds_bucket{service=\"web\",set=\"7\","
                   "role=\"live\",le=\"5e-05\"} 2"),
            std::string::npos);
  EXPECT_NE(t.find("meshdeploy_proxy_request_duration_seconds_bucket{service=\"web\",set=\"7\","
                   "role=\"live\",le=\"0.001\"} 2"),
            std::string::npos);
  EXPECT_NE(t.find("meshdeploy_proxy_request_duration_seconds_bucket{service=\"web\",set=\"7\","
                   "role=\"live\",le=\"0.0015\"} 3"),
            std::string::npos);
  EXPECT_NE(t.find("# TYPE meshdeploy_proxy_request_duration_seconds histogram"),
            std::string::npos);
}

}  // namespace
}  // namespace md::proxy
