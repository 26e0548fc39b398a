// JSON and Prometheus forms of the proxy's public types.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "proxy/proxy.h"

namespace md::proxy {

using nlohmann::json;

namespace {

const char* kClassNames[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// Reads optional fields of an object strictly: unknown keys and wrong types
// are errors naming the field.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status check_object(std::initializer_list<std::string_view> known) const {
    if (!j_.is_object()) return fail(Errc::kInvalidArgument, where_ + ": must be a JSON object");
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      bool found = false;
      for (auto k : known) found = found || it.key() == k;
      if (!found)
        return fail(Errc::kInvalidArgument, where_ + ": unknown field '" + it.key() + "'");
    }
    return ok();
  }
  Status str(const char* key, std::string* out) const {
    if (!j_.contains(key)) return ok();
    if (!j_[key].is_string()) return type_error(key, "a string");
    *out = j_[key].get<std::string>();
    return ok();
  }
  template <class T>
  Status num(const char* key, T* out, int64_t lo, int64_t hi) const {
    if (!j_.contains(key)) return ok();
    const json& v = j_[key];
    if (!v.is_number_integer()) return type_error(key, "an integer");
    int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      return fail(Errc::kInvalidArgument, where_ + "." + key + ": " + std::to_string(x) +
                                              " is out of range " + std::to_string(lo) + ".." +
                                              std::to_string(hi));
    *out = static_cast<T>(x);
    return ok();
  }
  Status ms(const char* key, Millis* out, int64_t hi = 86400000) const {
    int64_t v = out->count();
    MD_TRY_STATUS(num(key, &v, 0, hi));
    *out = Millis(v);
    return ok();
  }
  Status boolean(const char* key, bool* out) const {
    if (!j_.contains(key)) return ok();
    if (!j_[key].is_boolean()) return type_error(key, "true or false");
    *out = j_[key].get<bool>();
    return ok();
  }
  const json* sub(const char* key) const { return j_.contains(key) ? &j_[key] : nullptr; }
  std::string path(const char* key) const { return where_ + "." + key; }

 private:
  Status type_error(const char* key, const char* want) const {
    return fail(Errc::kInvalidArgument, where_ + "." + key + ": must be " + want);
  }
  const json& j_;
  std::string where_;
};

json counters_json(const Counters& c) {
  json st = json::object();
  for (int i = 0; i < 5; ++i) st[kClassNames[i]] = c.by_class[i];
  return {{"requests", c.requests},
          {"status", st},
          {"aborted", c.aborted},
          {"upstream_errors", c.upstream_errors},
          {"retries", c.retries},
          {"active", c.active},
          {"latency",
           {{"buckets", latency_to_json(c.latency)},
            {"sum_us", c.latency_sum_us},
            {"p50_ms", c.percentile_ms(0.50)},
            {"p90_ms", c.percentile_ms(0.90)},
            {"p99_ms", c.percentile_ms(0.99)}}}};
}

Result<Counters> counters_from_json(const json& j, const std::string& where) {
  Counters c;
  try {
    c.requests = j.at("requests").get<uint64_t>();
    for (int i = 0; i < 5; ++i) c.by_class[i] = j.at("status").at(kClassNames[i]).get<uint64_t>();
    c.aborted = j.at("aborted").get<uint64_t>();
    c.upstream_errors = j.at("upstream_errors").get<uint64_t>();
    c.retries = j.at("retries").get<uint64_t>();
    c.active = j.at("active").get<int64_t>();
    c.latency =
        MD_TRY(latency_from_json(j.at("latency").at("buckets"), where + ".latency.buckets"));
    c.latency_sum_us = j.at("latency").at("sum_us").get<uint64_t>();
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, where + ": " + e.what());
  }
  return c;
}

}  // namespace

json latency_to_json(const LatencyCounts& c) {
  json a = json::array();
  for (size_t i = 0; i < c.size(); ++i)
    if (c[i] != 0) a.push_back(json::array({bucket_lower_us(i), c[i]}));
  return a;
}

Result<LatencyCounts> latency_from_json(const json& j, const std::string& where) {
  LatencyCounts c{};
  if (!j.is_array())
    return fail(Errc::kInvalidArgument, where + ": must be an array of [lower_us, count]");
  size_t next = 0;  // the lowest bucket the next pair may name
  for (const json& p : j) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_number_unsigned() || !p[1].is_number_unsigned())
      return fail(Errc::kInvalidArgument, where + ": each entry must be [lower_us, count]");
    const uint64_t lower = p[0].get<uint64_t>();
    const size_t i = latency_bucket(lower);
    if (bucket_lower_us(i) != lower)
      return fail(Errc::kInvalidArgument,
                  where + ": " + std::to_string(lower) + " is not a bucket bound");
    if (i < next)
      return fail(Errc::kInvalidArgument,
                  where + ": bucket " + std::to_string(lower) + " out of order");
    c[i] = p[1].get<uint64_t>();
    next = i + 1;
  }
  return c;
}

namespace {

json endpoints_json(const std::vector<Endpoint>& eps) {
  json a = json::array();
  for (const auto& e : eps) a.push_back(e.str());
  return a;
}

Result<std::vector<Endpoint>> endpoints_from_json(const json& j, const std::string& where) {
  if (!j.is_array())
    return fail(Errc::kInvalidArgument, where + ": must be an array of \"HOST:PORT\"");
  std::vector<Endpoint> out;
  for (const auto& e : j) {
    if (!e.is_string())
      return fail(Errc::kInvalidArgument, where + ": must be an array of \"HOST:PORT\"");
    out.push_back(MD_TRY_CTX(parse_endpoint(e.get<std::string>()), where));
  }
  return out;
}

json set_status_json(const SetStatus& s) {
  json t = json::array();
  for (const auto& x : s.targets)
    t.push_back({{"address", x.endpoint.str()},
                 {"healthy", x.healthy},
                 {"ejected", x.ejected},
                 {"last_error", x.last_error}});
  return {{"id", s.id}, {"role", s.role}, {"targets", t}, {"active", s.active}};
}

Result<SetStatus> set_status_from_json(const json& j, const std::string& where) {
  SetStatus s;
  try {
    s.id = j.at("id").get<uint64_t>();
    s.role = j.at("role").get<std::string>();
    s.active = j.at("active").get<int64_t>();
    for (const auto& t : j.at("targets")) {
      TargetStatus ts;
      ts.endpoint = MD_TRY_CTX(parse_endpoint(t.at("address").get<std::string>()), where);
      ts.healthy = t.at("healthy").get<bool>();
      ts.ejected = t.at("ejected").get<bool>();
      ts.last_error = t.value("last_error", "");
      s.targets.push_back(std::move(ts));
    }
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, where + ": " + e.what());
  }
  return s;
}

std::string prom_escape(std::string_view v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

json to_json(const ServiceSpec& s) {
  return {{"name", s.name},
          {"host", s.host},
          {"path_prefix", s.path_prefix},
          {"health",
           {{"path", s.health.path},
            {"interval_ms", s.health.interval.count()},
            {"timeout_ms", s.health.timeout.count()},
            {"healthy_threshold", s.health.healthy_threshold},
            {"unhealthy_threshold", s.health.unhealthy_threshold}}},
          {"ejection",
           {{"consecutive_failures", s.ejection.consecutive_failures},
            {"duration_ms", s.ejection.duration.count()}}},
          {"sticky_cookie", s.sticky_cookie},
          {"sticky_header", s.sticky_header},
          {"drain_deadline_ms", s.drain_deadline.count()}};
}

Result<ServiceSpec> spec_from_json(const json& j) {
  ServiceSpec s;
  Reader r(j, "service");
  MD_TRY_STATUS(r.check_object({"name", "host", "path_prefix", "health", "ejection",
                                "sticky_cookie", "sticky_header", "drain_deadline_ms"}));
  MD_TRY_STATUS(r.str("name", &s.name));
  MD_TRY_STATUS(r.str("host", &s.host));
  MD_TRY_STATUS(r.str("path_prefix", &s.path_prefix));
  MD_TRY_STATUS(r.str("sticky_cookie", &s.sticky_cookie));
  MD_TRY_STATUS(r.str("sticky_header", &s.sticky_header));
  MD_TRY_STATUS(r.ms("drain_deadline_ms", &s.drain_deadline));
  if (const json* h = r.sub("health")) {
    Reader hr(*h, r.path("health"));
    MD_TRY_STATUS(hr.check_object(
        {"path", "interval_ms", "timeout_ms", "healthy_threshold", "unhealthy_threshold"}));
    MD_TRY_STATUS(hr.str("path", &s.health.path));
    MD_TRY_STATUS(hr.ms("interval_ms", &s.health.interval));
    MD_TRY_STATUS(hr.ms("timeout_ms", &s.health.timeout));
    MD_TRY_STATUS(hr.num("healthy_threshold", &s.health.healthy_threshold, 1, 100));
    MD_TRY_STATUS(hr.num("unhealthy_threshold", &s.health.unhealthy_threshold, 1, 100));
  }
  if (const json* e = r.sub("ejection")) {
    Reader er(*e, r.path("ejection"));
    MD_TRY_STATUS(er.check_object({"consecutive_failures", "duration_ms"}));
    MD_TRY_STATUS(er.num("consecutive_failures", &s.ejection.consecutive_failures, 0, 1000));
    MD_TRY_STATUS(er.ms("duration_ms", &s.ejection.duration));
  }
  MD_TRY_STATUS(validate(s));
  return s;
}

json to_json(const ServiceStatus& s) {
  json draining = json::array();
  for (const auto& d : s.draining) draining.push_back(set_status_json(d));
  return {{"spec", to_json(s.spec)},
          {"live", s.live ? set_status_json(*s.live) : json(nullptr)},
          {"canary", s.canary ? set_status_json(*s.canary) : json(nullptr)},
          {"canary_weight", s.canary_weight},
          {"draining", draining},
          {"maintenance", s.maintenance},
          {"paused", s.paused},
          {"pause", {{"max_held", s.pause.max_held}, {"max_wait_ms", s.pause.max_wait.count()}}},
          {"held", s.held}};
}

Result<ServiceStatus> status_from_json(const json& j) {
  ServiceStatus s;
  try {
    s.spec = MD_TRY(spec_from_json(j.at("spec")));
    if (!j.at("live").is_null()) s.live = MD_TRY(set_status_from_json(j["live"], "live"));
    if (!j.at("canary").is_null()) s.canary = MD_TRY(set_status_from_json(j["canary"], "canary"));
    s.canary_weight = j.at("canary_weight").get<int>();
    for (const auto& d : j.at("draining"))
      s.draining.push_back(MD_TRY(set_status_from_json(d, "draining")));
    s.maintenance = j.at("maintenance").get<bool>();
    s.paused = j.at("paused").get<bool>();
    s.pause.max_held = j.at("pause").at("max_held").get<int64_t>();
    s.pause.max_wait = Millis(j.at("pause").at("max_wait_ms").get<int64_t>());
    s.held = j.at("held").get<int64_t>();
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("service status: ") + e.what());
  }
  return s;
}

json to_json(const MetricsSnapshot& m) {
  json services = json::array();
  for (const auto& s : m.services) {
    json sets = json::array();
    for (const auto& set : s.sets)
      sets.push_back({{"id", set.id},
                      {"role", set.role},
                      {"targets", endpoints_json(set.targets)},
                      {"counters", counters_json(set.counters)}});
    services.push_back({{"service", s.service}, {"local", counters_json(s.local)}, {"sets", sets}});
  }
  return {{"instance", m.instance},
          {"started_at", format_time(m.started_at)},
          {"started_at_unix_ms", to_unix_ms(m.started_at)},
          {"taken_at", format_time(m.taken_at)},
          {"taken_at_unix_ms", to_unix_ms(m.taken_at)},
          {"client_connections", m.client_connections},
          {"services", services}};
}

Result<MetricsSnapshot> metrics_from_json(const json& j) {
  MetricsSnapshot m;
  try {
    m.instance = j.at("instance").get<std::string>();
    m.started_at = from_unix_ms(j.at("started_at_unix_ms").get<int64_t>());
    m.taken_at = from_unix_ms(j.at("taken_at_unix_ms").get<int64_t>());
    m.client_connections = j.at("client_connections").get<int64_t>();
    for (const auto& s : j.at("services")) {
      ServiceMetrics sm;
      sm.service = s.at("service").get<std::string>();
      sm.local = MD_TRY(counters_from_json(s.at("local"), sm.service + ".local"));
      for (const auto& set : s.at("sets")) {
        SetMetrics x;
        x.id = set.at("id").get<uint64_t>();
        x.role = set.at("role").get<std::string>();
        x.targets = MD_TRY(endpoints_from_json(set.at("targets"), sm.service + ".targets"));
        x.counters = MD_TRY(counters_from_json(set.at("counters"), sm.service + ".counters"));
        sm.sets.push_back(std::move(x));
      }
      m.services.push_back(std::move(sm));
    }
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("metrics: ") + e.what());
  }
  return m;
}

json to_json(const SwitchResult& r) {
  return {{"set_id", r.set_id},
          {"previous_set_id", r.previous_set_id},
          {"drained", r.drained},
          {"closed_streams", r.closed_streams},
          {"health_wait_ms", r.health_wait.count()},
          {"drain_wait_ms", r.drain_wait.count()}};
}

Result<SwitchResult> switch_result_from_json(const json& j) {
  SwitchResult r;
  try {
    r.set_id = j.at("set_id").get<uint64_t>();
    r.previous_set_id = j.at("previous_set_id").get<uint64_t>();
    r.drained = j.at("drained").get<bool>();
    r.closed_streams = j.at("closed_streams").get<int64_t>();
    r.health_wait = Millis(j.at("health_wait_ms").get<int64_t>());
    r.drain_wait = Millis(j.at("drain_wait_ms").get<int64_t>());
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("switch result: ") + e.what());
  }
  return r;
}

std::string to_prometheus(const MetricsSnapshot& m) {
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  struct Row {
    std::string labels;
    const Counters* c;
  };
  std::vector<Row> sets, locals;
  for (const auto& s : m.services) {
    std::string svc = prom_escape(s.service);
    locals.push_back({fmt::format("service=\"{}\"", svc), &s.local});
    for (const auto& set : s.sets)
      sets.push_back({fmt::format("service=\"{}\",set=\"{}\",role=\"{}\"", svc, set.id, set.role),
                      &set.counters});
  }
  head("meshdeploy_proxy_requests_total", "counter",
       "Finished requests per service and target set, by response status class.");
  for (const auto& r : sets) {
    for (int i = 0; i < 5; ++i)
      o += fmt::format("meshdeploy_proxy_requests_total{{{},class=\"{}\"}} {}\n", r.labels,
                       kClassNames[i], r.c->by_class[i]);
    o += fmt::format("meshdeploy_proxy_requests_total{{{},class=\"aborted\"}} {}\n", r.labels,
                     r.c->aborted);
  }
  head("meshdeploy_proxy_request_duration_seconds", "histogram",
       "Time from the request head to the last response byte.");
  for (const auto& r : sets) {
    // A fine bucket counts below `le` when all of it is at most le (µs), so
    // each cumulative count is exact to within one fine bucket (1.6 %).
    uint64_t cum = 0;
    size_t fine = 0;
    for (size_t b = 0; b <= kLatencyBoundsUs.size(); ++b) {
      const bool inf = b == kLatencyBoundsUs.size();
      for (; fine < kLatencyBuckets && (inf || bucket_upper_us(fine) <= kLatencyBoundsUs[b] + 1);
           ++fine)
        cum += r.c->latency[fine];
      std::string le =
          inf ? "+Inf" : fmt::format("{}", static_cast<double>(kLatencyBoundsUs[b]) / 1e6);
      o += fmt::format("meshdeploy_proxy_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n",
                       r.labels, le, cum);
    }
    o += fmt::format("meshdeploy_proxy_request_duration_seconds_sum{{{}}} {}\n", r.labels,
                     static_cast<double>(r.c->latency_sum_us) / 1e6);
    o += fmt::format("meshdeploy_proxy_request_duration_seconds_count{{{}}} {}\n", r.labels, cum);
  }
  head("meshdeploy_proxy_upstream_errors_total", "counter",
       "Connect failures, resets, timeouts and malformed responses of targets.");
  for (const auto& r : sets)
    o += fmt::format("meshdeploy_proxy_upstream_errors_total{{{}}} {}\n", r.labels,
                     r.c->upstream_errors);
  head("meshdeploy_proxy_retries_total", "counter", "Requests sent again to another target.");
  for (const auto& r : sets)
    o += fmt::format("meshdeploy_proxy_retries_total{{{}}} {}\n", r.labels, r.c->retries);
  head("meshdeploy_proxy_active_requests", "gauge", "Requests and streams in flight.");
  for (const auto& r : sets)
    o += fmt::format("meshdeploy_proxy_active_requests{{{}}} {}\n", r.labels, r.c->active);
  head("meshdeploy_proxy_local_responses_total", "counter",
       "Responses made by the proxy itself (maintenance, pause timeout, no healthy target).");
  for (const auto& r : locals)
    for (int i = 0; i < 5; ++i)
      o += fmt::format("meshdeploy_proxy_local_responses_total{{{},class=\"{}\"}} {}\n", r.labels,
                       kClassNames[i], r.c->by_class[i]);
  head("meshdeploy_proxy_client_connections", "gauge", "Open client connections.");
  o += fmt::format("meshdeploy_proxy_client_connections {}\n", m.client_connections);
  head("meshdeploy_proxy_start_time_seconds", "gauge", "When this proxy process started.");
  o += fmt::format("meshdeploy_proxy_start_time_seconds {}\n",
                   static_cast<double>(to_unix_ms(m.started_at)) / 1000.0);
  return o;
}

}  // namespace md::proxy
