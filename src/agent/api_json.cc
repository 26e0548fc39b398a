// JSON forms of the control API's types (api.h).
#include <limits>
#include <map>
#include <type_traits>
#include <vector>

#include "agent/api.h"

namespace md::agent {
namespace {
using json = nlohmann::json;

template <class T>
struct IsMap : std::false_type {};
template <class V, class C, class A>
struct IsMap<std::map<std::string, V, C, A>> : std::true_type {};
template <class T>
struct IsVector : std::false_type {};
template <class V, class A>
struct IsVector<std::vector<V, A>> : std::true_type {};

// Where T holds integers, `v` holds whole numbers that fit T: nlohmann's get
// would turn 100.5 into 100 and 4294967396 into 100 without a word. Other
// mismatches are left to get<T>() (a type error).
template <class T>
bool exact_integers(const json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!v.is_number()) return true;
    if (v.is_number_float()) return false;
    if (v.is_number_unsigned())
      return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    int64_t x = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>)
      return x >= 0 && static_cast<uint64_t>(x) <= std::numeric_limits<T>::max();
    else
      return x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max();
  } else if constexpr (IsMap<T>::value) {
    if (v.is_object())
      for (const auto& [k, e] : v.items())
        if (!exact_integers<typename T::mapped_type>(e)) return false;
    return true;
  } else if constexpr (IsVector<T>::value) {
    if (v.is_array())
      for (const auto& e : v)
        if (!exact_integers<typename T::value_type>(e)) return false;
    return true;
  } else {
    return true;
  }
}

// Reads fields of one JSON object, remembering the first problem.
class Reader {
 public:
  Reader(const json& j, std::string what) : j_(j), what_(std::move(what)) {
    if (!j_.is_object()) err_ = what_ + ": must be a JSON object";
  }
  template <class T>
  Reader& req(const char* key, T& out) {
    if (!err_.empty()) return *this;
    if (!j_.contains(key)) {
      err_ = what_ + ": field '" + key + "' is required";
      return *this;
    }
    return get(key, out);
  }
  template <class T>
  Reader& opt(const char* key, T& out) {
    if (err_.empty() && j_.contains(key) && !j_.at(key).is_null()) get(key, out);
    return *this;
  }
  Reader& opt_ms(const char* key, Millis& out) {
    int64_t ms = out.count();
    opt(key, ms);
    if (err_.empty() && ms < 0) err_ = what_ + ": field '" + key + "' must not be negative";
    out = Millis(ms);
    return *this;
  }
  // A nested value decoded by `fn` (Result<T>(const json&)).
  template <class T, class Fn>
  Reader& nested(const char* key, T& out, Fn fn, bool required = false) {
    if (!err_.empty()) return *this;
    if (!j_.contains(key)) {
      if (required) err_ = what_ + ": field '" + key + "' is required";
      return *this;
    }
    auto r = fn(j_.at(key));
    if (!r)
      err_ = what_ + ": " + key + ": " + r.error().message();
    else
      out = std::move(*r);
    return *this;
  }
  void fail_with(std::string msg) {
    if (err_.empty()) err_ = what_ + ": " + std::move(msg);
  }
  Status done() const {
    if (err_.empty()) return ok();
    return fail(Errc::kInvalidArgument, err_);
  }

 private:
  template <class T>
  Reader& get(const char* key, T& out) {
    if (!exact_integers<T>(j_.at(key))) {
      err_ = what_ + ": field '" + key + "' must hold whole numbers within range";
      return *this;
    }
    try {
      out = j_.at(key).get<T>();
    } catch (const json::exception&) {
      // WHY not e.what(): keep values (possibly secrets) out of messages.
      err_ = what_ + ": field '" + key + "' has the wrong type";
    }
    return *this;
  }
  const json& j_;
  std::string what_;
  std::string err_;
};

template <class T>
Result<std::vector<T>> decode_list(const json& j) {
  if (!j.is_array()) return fail(Errc::kInvalidArgument, "must be an array");
  std::vector<T> out;
  for (size_t i = 0; i < j.size(); ++i) {
    auto r = decode<T>(j[i]);
    if (!r)
      return fail(Errc::kInvalidArgument, "[" + std::to_string(i) + "]: " + r.error().message());
    out.push_back(std::move(*r));
  }
  return out;
}
template <class T>
json encode_list(const std::vector<T>& v) {
  json a = json::array();
  for (const T& x : v) a.push_back(to_json(x));
  return a;
}

Result<Role> parse_role(const json& j) {
  if (!j.is_string()) return fail(Errc::kInvalidArgument, "must be a string");
  std::string s = j.get<std::string>();
  if (s == "all") return Role::kAll;
  if (s == "web") return Role::kWeb;
  if (s == "workers") return Role::kWorkers;
  return fail(Errc::kInvalidArgument, "must be all, web or workers");
}

json health_json(const config::HealthCheck& h) {
  return {{"path", h.path},
          {"interval_ms", h.interval.count()},
          {"timeout_ms", h.timeout.count()},
          {"healthy_threshold", h.healthy_threshold},
          {"unhealthy_threshold", h.unhealthy_threshold},
          {"start_timeout_ms", h.start_timeout.count()}};
}
Result<config::HealthCheck> health_from(const json& j) {
  config::HealthCheck h;
  Reader r(j, "health");
  r.opt("path", h.path)
      .opt_ms("interval_ms", h.interval)
      .opt_ms("timeout_ms", h.timeout)
      .opt("healthy_threshold", h.healthy_threshold)
      .opt("unhealthy_threshold", h.unhealthy_threshold)
      .opt_ms("start_timeout_ms", h.start_timeout);
  MD_TRY_STATUS(r.done());
  return h;
}

json process_json(const ProcessInfo& p) {
  return {{"name", p.name},
          {"service", p.service},
          {"index", p.index},
          {"web", p.web},
          {"state", p.state},
          {"healthy", p.healthy},
          {"port", p.port},
          {"pid", p.pid},
          {"log_pid", p.log_pid},
          {"restarts", p.restarts},
          {"last_exit", p.last_exit},
          {"error", p.error},
          {"started_at", p.started_at},
          {"adopted", p.adopted}};
}
Result<ProcessInfo> process_from(const json& j) {
  ProcessInfo p;
  Reader r(j, "process");
  r.req("name", p.name).req("service", p.service).opt("index", p.index).opt("web", p.web);
  r.req("state", p.state).opt("healthy", p.healthy).opt("port", p.port).opt("pid", p.pid);
  r.opt("log_pid", p.log_pid).opt("restarts", p.restarts).opt("last_exit", p.last_exit);
  r.opt("error", p.error).opt("started_at", p.started_at).opt("adopted", p.adopted);
  MD_TRY_STATUS(r.done());
  return p;
}

json route_json(const RouteInfo& x) {
  return {{"service", x.service},         {"host", x.host},
          {"path_prefix", x.path_prefix}, {"live", x.live},
          {"canary", x.canary},           {"canary_weight", x.canary_weight},
          {"live_set", x.live_set},       {"canary_set", x.canary_set},
          {"maintenance", x.maintenance}};
}
Result<RouteInfo> route_from(const json& j) {
  RouteInfo x;
  Reader r(j, "route");
  r.req("service", x.service).opt("host", x.host).opt("path_prefix", x.path_prefix);
  r.opt("live", x.live).opt("canary", x.canary).opt("canary_weight", x.canary_weight);
  r.opt("live_set", x.live_set).opt("canary_set", x.canary_set).opt("maintenance", x.maintenance);
  MD_TRY_STATUS(r.done());
  return x;
}

template <class T, class Fn>
Result<std::vector<T>> list_of(const json& j, Fn fn) {
  if (!j.is_array()) return fail(Errc::kInvalidArgument, "must be an array");
  std::vector<T> out;
  for (const auto& e : j) out.push_back(MD_TRY(fn(e)));
  return out;
}

}  // namespace

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kAll:
      return "all";
    case Role::kWeb:
      return "web";
    case Role::kWorkers:
      return "workers";
  }
  return "all";
}

// ---- config::Service ------------------------------------------------------------

json to_json(const config::Service& s) {
  return {{"name", s.name},
          {"kind", s.kind == config::ServiceKind::kWeb ? "web" : "worker"},
          {"command", s.command},
          {"count", s.count},
          {"health", health_json(s.health)},
          {"host", s.host},
          {"path_prefix", s.path_prefix},
          {"stop_grace_ms", s.stop_grace.count()},
          {"env", s.env}};
}
template <>
Result<config::Service> decode<config::Service>(const json& j) {
  config::Service s;
  std::string kind = "web";
  Reader r(j, "service");
  r.req("name", s.name).opt("kind", kind).req("command", s.command).opt("count", s.count);
  r.nested("health", s.health, health_from).opt("host", s.host).opt("path_prefix", s.path_prefix);
  r.opt_ms("stop_grace_ms", s.stop_grace).opt("env", s.env);
  if (kind == "web")
    s.kind = config::ServiceKind::kWeb;
  else if (kind == "worker")
    s.kind = config::ServiceKind::kWorker;
  else
    r.fail_with("kind must be web or worker");
  if (s.count < 0 || s.count > 256) r.fail_with("count must be 0..256");
  if (s.name.empty()) r.fail_with("name must not be empty");
  MD_TRY_STATUS(r.done());
  return s;
}

// ---- requests -----------------------------------------------------------------

json to_json(const RegisterArtifact& v) {
  return {{"version", v.version}, {"sha256", v.sha256}, {"path", v.path.string()}};
}
template <>
Result<RegisterArtifact> decode<RegisterArtifact>(const json& j) {
  RegisterArtifact v;
  std::string path;
  Reader r(j, "register artifact");
  r.req("version", v.version).req("sha256", v.sha256).req("path", path);
  MD_TRY_STATUS(r.done());
  v.path = path;
  return v;
}

json to_json(const Unpack& v) {
  return {{"version", v.version}, {"shared_dirs", v.shared_dirs}, {"shared_files", v.shared_files}};
}
template <>
Result<Unpack> decode<Unpack>(const json& j) {
  Unpack v;
  Reader r(j, "unpack");
  r.req("version", v.version).opt("shared_dirs", v.shared_dirs).opt("shared_files", v.shared_files);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Start& v) {
  json secrets = json::object();
  for (const auto& [name, value] : v.secrets) secrets[name] = value.reveal();
  return {{"version", v.version},
          {"role", role_name(v.role)},
          {"environment", v.environment},
          {"deployment_id", v.deployment_id},
          {"services", encode_list(v.services)},
          {"env", v.env},
          {"secrets", secrets},
          {"sticky_cookie", v.sticky_cookie},
          {"sticky_header", v.sticky_header},
          {"drain_deadline_ms", v.drain_deadline.count()}};
}
template <>
Result<Start> decode<Start>(const json& j) {
  Start v;
  std::map<std::string, std::string> secrets;
  Reader r(j, "start");
  r.req("version", v.version).nested("role", v.role, parse_role).opt("environment", v.environment);
  r.opt("deployment_id", v.deployment_id)
      .nested("services", v.services, decode_list<config::Service>, true)
      .opt("env", v.env)
      .opt("secrets", secrets)
      .opt("sticky_cookie", v.sticky_cookie)
      .opt("sticky_header", v.sticky_header)
      .opt_ms("drain_deadline_ms", v.drain_deadline);
  MD_TRY_STATUS(r.done());
  for (auto& [name, value] : secrets) v.secrets.emplace(name, secrets::Secret(std::move(value)));
  return v;
}

json to_json(const WaitReady& v) {
  return {{"version", v.version}, {"role", role_name(v.role)}, {"timeout_ms", v.timeout.count()}};
}
template <>
Result<WaitReady> decode<WaitReady>(const json& j) {
  WaitReady v;
  Reader r(j, "wait ready");
  r.req("version", v.version).nested("role", v.role, parse_role).opt_ms("timeout_ms", v.timeout);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Route& v) {
  return {{"weights", v.weights}, {"health_timeout_ms", v.health_timeout.count()}};
}
template <>
Result<Route> decode<Route>(const json& j) {
  Route v;
  Reader r(j, "route");
  r.req("weights", v.weights).opt_ms("health_timeout_ms", v.health_timeout);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Drain& v) { return {{"version", v.version}, {"timeout_ms", v.timeout.count()}}; }
template <>
Result<Drain> decode<Drain>(const json& j) {
  Drain v;
  Reader r(j, "drain");
  r.req("version", v.version).opt_ms("timeout_ms", v.timeout);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const KeepWarm& v) {
  return {{"version", v.version}, {"window_ms", v.window.count()}};
}
template <>
Result<KeepWarm> decode<KeepWarm>(const json& j) {
  KeepWarm v;
  Reader r(j, "keep-warm");
  r.req("version", v.version).opt_ms("window_ms", v.window);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Stop& v) {
  return {{"version", v.version},
          {"role", role_name(v.role)},
          {"grace_ms", v.grace.count()},
          {"force", v.force},
          {"wait", v.wait}};
}
template <>
Result<Stop> decode<Stop>(const json& j) {
  Stop v;
  Reader r(j, "stop");
  r.req("version", v.version).nested("role", v.role, parse_role).opt_ms("grace_ms", v.grace);
  r.opt("force", v.force).opt("wait", v.wait);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Maintenance& v) {
  return {{"on", v.on}, {"service", v.service}, {"page", v.page}};
}
template <>
Result<Maintenance> decode<Maintenance>(const json& j) {
  Maintenance v;
  Reader r(j, "maintenance");
  r.req("on", v.on).opt("service", v.service).opt("page", v.page);
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Logs& v) {
  return {{"version", v.version}, {"process", v.process}, {"tail", v.tail}, {"cursor", v.cursor}};
}
template <>
Result<Logs> decode<Logs>(const json& j) {
  Logs v;
  Reader r(j, "logs");
  r.req("version", v.version).opt("process", v.process).opt("tail", v.tail).opt("cursor", v.cursor);
  if (v.tail < 0 || v.tail > 100000) r.fail_with("tail must be 0..100000");
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const Prune& v) { return {{"keep", v.keep}, {"protect", v.protect}}; }
template <>
Result<Prune> decode<Prune>(const json& j) {
  Prune v;
  Reader r(j, "prune");
  r.req("keep", v.keep).opt("protect", v.protect);
  if (v.keep < 1) r.fail_with("keep must be at least 1");
  MD_TRY_STATUS(r.done());
  return v;
}

// ---- answers --------------------------------------------------------------------

json to_json(const ReleaseInfo& v) {
  json procs = json::array();
  for (const auto& p : v.processes) procs.push_back(process_json(p));
  return {
      {"version", v.version},   {"sha256", v.sha256},        {"unpacked_at_ms", v.unpacked_at_ms},
      {"unpacked", v.unpacked}, {"traffic", v.traffic},      {"weight", v.weight},
      {"processes", procs},     {"warm_until", v.warm_until}};
}
template <>
Result<ReleaseInfo> decode<ReleaseInfo>(const json& j) {
  ReleaseInfo v;
  Reader r(j, "release");
  r.req("version", v.version).opt("sha256", v.sha256).opt("unpacked_at_ms", v.unpacked_at_ms);
  r.opt("unpacked", v.unpacked).opt("traffic", v.traffic).opt("weight", v.weight);
  r.opt("warm_until", v.warm_until);
  r.nested("processes", v.processes,
           [](const json& a) { return list_of<ProcessInfo>(a, process_from); });
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const AgentStatus& v) {
  json routes = json::array();
  for (const auto& x : v.routes) routes.push_back(route_json(x));
  return {{"api_version", v.api_version},
          {"agent_version", v.agent_version},
          {"pid", v.pid},
          {"root", v.root},
          {"listen", v.listen},
          {"started_at", v.started_at},
          {"disk_free_bytes", v.disk_free_bytes},
          {"disk_free_inodes", v.disk_free_inodes},
          {"adopted", v.adopted},
          {"containment", v.containment},
          {"releases", encode_list(v.releases)},
          {"routes", routes},
          {"weights", v.weights},
          {"tls_cert", v.tls_cert},
          {"tls_key", v.tls_key},
          {"tls_cert_sha256", v.tls_cert_sha256},
          {"probe_ms", v.probe_ms}};
}
template <>
Result<AgentStatus> decode<AgentStatus>(const json& j) {
  AgentStatus v;
  Reader r(j, "status");
  r.req("api_version", v.api_version).opt("agent_version", v.agent_version).opt("pid", v.pid);
  r.opt("root", v.root).opt("listen", v.listen).opt("started_at", v.started_at);
  r.opt("disk_free_bytes", v.disk_free_bytes).opt("adopted", v.adopted).opt("weights", v.weights);
  r.opt("disk_free_inodes", v.disk_free_inodes);
  r.opt("tls_cert", v.tls_cert).opt("tls_key", v.tls_key).opt("tls_cert_sha256", v.tls_cert_sha256);
  r.opt("probe_ms", v.probe_ms).opt("containment", v.containment);
  r.nested("releases", v.releases, decode_list<ReleaseInfo>);
  r.nested("routes", v.routes, [](const json& a) { return list_of<RouteInfo>(a, route_from); });
  MD_TRY_STATUS(r.done());
  return v;
}

json to_json(const VersionMetrics& v) {
  json by = json::object();
  for (const auto& [version, c] : v.by_version)
    by[version] = {{"requests", c.requests},
                   {"by_class", c.by_class},
                   {"aborted", c.aborted},
                   {"upstream_errors", c.upstream_errors},
                   {"retries", c.retries},
                   {"latency", proxy::latency_to_json(c.latency)},
                   {"latency_sum_us", c.latency_sum_us},
                   {"active", c.active}};
  return {{"instance", v.instance}, {"by_version", by}};
}
template <>
Result<VersionMetrics> decode<VersionMetrics>(const json& j) {
  VersionMetrics v;
  json by = json::object();
  Reader r(j, "metrics");
  r.req("instance", v.instance).opt("by_version", by);
  MD_TRY_STATUS(r.done());
  if (!by.is_object()) return fail(Errc::kInvalidArgument, "metrics: by_version must be an object");
  for (const auto& [version, cj] : by.items()) {
    proxy::Counters c;
    Reader cr(cj, "metrics of " + version);
    cr.req("requests", c.requests).opt("by_class", c.by_class).opt("aborted", c.aborted);
    cr.opt("upstream_errors", c.upstream_errors).opt("retries", c.retries);
    cr.nested("latency", c.latency,
              [](const json& l) { return proxy::latency_from_json(l, "latency"); });
    cr.opt("latency_sum_us", c.latency_sum_us).opt("active", c.active);
    MD_TRY_STATUS(cr.done());
    v.by_version[version] = c;
  }
  return v;
}

json to_json(const LogsResult& v) {
  json lines = json::array();
  for (const auto& l : v.lines)
    lines.push_back({{"process", l.process}, {"time", l.time}, {"text", l.text}});
  return {{"lines", lines}, {"cursor", v.cursor}};
}
template <>
Result<LogsResult> decode<LogsResult>(const json& j) {
  LogsResult v;
  json lines = json::array();
  Reader r(j, "logs");
  r.opt("lines", lines).opt("cursor", v.cursor);
  MD_TRY_STATUS(r.done());
  if (!lines.is_array()) return fail(Errc::kInvalidArgument, "logs: lines must be an array");
  for (const auto& l : lines) {
    LogLine x;
    Reader lr(l, "log line");
    lr.req("process", x.process).opt("time", x.time).req("text", x.text);
    MD_TRY_STATUS(lr.done());
    v.lines.push_back(std::move(x));
  }
  return v;
}

}  // namespace md::agent
