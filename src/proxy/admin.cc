// The admin API (HTTP/JSON, docs/proxy.md) over a Proxy, and its client.
#include <nlohmann/json.hpp>

#include "http/http.h"
#include "proxy/proxy.h"

namespace md::proxy {

using nlohmann::json;

namespace {

// Strict reading of a request body: unknown fields are errors.
Status only_fields(const json& j, std::initializer_list<std::string_view> known,
                   std::string_view what) {
  if (!j.is_object())
    return fail(Errc::kInvalidArgument, std::string(what) + ": body must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool found = false;
    for (auto k : known) found = found || it.key() == k;
    if (!found)
      return fail(Errc::kInvalidArgument, std::string(what) + ": unknown field '" + it.key() + "'");
  }
  return ok();
}

Result<std::vector<Endpoint>> targets_of(const json& j, bool required) {
  if (!j.contains("targets")) {
    if (required)
      return fail(Errc::kInvalidArgument, "field 'targets' is required: [\"HOST:PORT\", ...]");
    return std::vector<Endpoint>();
  }
  const json& t = j["targets"];
  if (!t.is_array())
    return fail(Errc::kInvalidArgument, "field 'targets' must be an array of \"HOST:PORT\"");
  std::vector<Endpoint> out;
  for (const auto& e : t) {
    if (!e.is_string())
      return fail(Errc::kInvalidArgument, "field 'targets' must be an array of \"HOST:PORT\"");
    Endpoint ep = MD_TRY_CTX(parse_endpoint(e.get<std::string>()), "targets");
    if (ep.port == 0)
      return fail(Errc::kInvalidArgument, "targets: " + ep.str() + ": port 0 is not a target");
    out.push_back(std::move(ep));
  }
  if (required && out.empty())
    return fail(Errc::kInvalidArgument, "field 'targets' must not be empty");
  return out;
}

template <class T>
Status get_int(const json& j, const char* key, T* out, int64_t lo, int64_t hi) {
  if (!j.contains(key)) return ok();
  if (!j[key].is_number_integer())
    return fail(Errc::kInvalidArgument, std::string("field '") + key + "' must be an integer");
  int64_t v = j[key].get<int64_t>();
  if (v < lo || v > hi)
    return fail(Errc::kInvalidArgument, std::string("field '") + key + "' must be " +
                                            std::to_string(lo) + ".." + std::to_string(hi));
  *out = static_cast<T>(v);
  return ok();
}

Result<DeployOptions> deploy_options(const json& j) {
  DeployOptions o;
  int64_t v = o.health_timeout.count();
  MD_TRY_STATUS(get_int(j, "health_timeout_ms", &v, 0, 3600000));
  o.health_timeout = Millis(v);
  v = o.probe_interval.count();
  MD_TRY_STATUS(get_int(j, "probe_interval_ms", &v, 10, 60000));
  o.probe_interval = Millis(v);
  if (j.contains("wait_for_drain")) {
    if (!j["wait_for_drain"].is_boolean())
      return fail(Errc::kInvalidArgument, "field 'wait_for_drain' must be true or false");
    o.wait_for_drain = j["wait_for_drain"].get<bool>();
  }
  return o;
}

json options_json(const DeployOptions& o) {
  return {{"health_timeout_ms", o.health_timeout.count()},
          {"probe_interval_ms", o.probe_interval.count()},
          {"wait_for_drain", o.wait_for_drain}};
}

http::Response answer(const Status& s, json body = {{"ok", true}}) {
  if (!s) return http::Response::from_error(s.error());
  return http::Response::json(200, body);
}

template <class T, class F>
http::Response answer_with(const Result<T>& r, F&& to) {
  if (!r) return http::Response::from_error(r.error());
  return http::Response::json(200, to(*r));
}

// Parses the body and checks it against `known` fields.
Result<json> body_of(const http::Request& req, std::initializer_list<std::string_view> known,
                     std::string_view what) {
  json j = MD_TRY(req.json());
  MD_TRY_STATUS(only_fields(j, known, what));
  return j;
}

}  // namespace

void add_admin_routes(http::Router& r, Proxy& p) {
  using http::Request;
  using http::Response;
  r.add("GET", "/v1/status", [&p](const Request&) {
    json a = json::array();
    for (const auto& s : p.status()) a.push_back(to_json(s));
    return Response::json(200, {{"services", a}});
  });
  r.add("GET", "/v1/services/{name}", [&p](const Request& q) {
    return answer_with(p.status(q.params.at("name")),
                       [](const ServiceStatus& s) { return to_json(s); });
  });
  r.add("PUT", "/v1/services/{name}", [&p](const Request& q) {
    auto j = q.json();
    if (!j) return Response::from_error(j.error());
    if (j->is_object() && !j->contains("name")) (*j)["name"] = q.params.at("name");
    auto spec = spec_from_json(*j);
    if (!spec) return Response::from_error(spec.error());
    if (spec->name != q.params.at("name"))
      return Response::error(400, Errc::kInvalidArgument,
                             "body name '" + spec->name + "' differs from the name in the path");
    return answer(p.upsert_service(*spec));
  });
  r.add("DELETE", "/v1/services/{name}",
        [&p](const Request& q) { return answer(p.remove_service(q.params.at("name"))); });
  r.add("POST", "/v1/services/{name}/deploy", [&p](const Request& q) {
    auto j =
        body_of(q, {"targets", "health_timeout_ms", "probe_interval_ms", "wait_for_drain", "spec"},
                "deploy");
    if (!j) return Response::from_error(j.error());
    auto targets = targets_of(*j, true);
    if (!targets) return Response::from_error(targets.error());
    auto opts = deploy_options(*j);
    if (!opts) return Response::from_error(opts.error());
    const std::string& name = q.params.at("name");
    if (j->contains("spec")) {
      json sj = (*j)["spec"];
      if (sj.is_object() && !sj.contains("name")) sj["name"] = name;
      auto spec = spec_from_json(sj);
      if (!spec) return Response::from_error(spec.error());
      if (spec->name != name)
        return Response::error(400, Errc::kInvalidArgument,
                               "spec name differs from the name in the path");
      Status s = p.upsert_service(*spec);
      if (!s) return Response::from_error(s.error());
    }
    return answer_with(p.deploy(name, *targets, *opts),
                       [](const SwitchResult& r) { return to_json(r); });
  });
  r.add("POST", "/v1/services/{name}/canary", [&p](const Request& q) {
    auto j = body_of(
        q, {"targets", "weight", "health_timeout_ms", "probe_interval_ms", "wait_for_drain"},
        "canary");
    if (!j) return Response::from_error(j.error());
    if (!j->contains("weight"))
      return Response::error(400, Errc::kInvalidArgument, "field 'weight' is required");
    int weight = 0;
    Status s = get_int(*j, "weight", &weight, 0, 100);
    if (!s) return Response::from_error(s.error());
    auto targets = targets_of(*j, false);
    if (!targets) return Response::from_error(targets.error());
    auto opts = deploy_options(*j);
    if (!opts) return Response::from_error(opts.error());
    return answer_with(p.set_canary(q.params.at("name"), *targets, weight, *opts),
                       [](const SwitchResult& r) { return to_json(r); });
  });
  r.add("POST", "/v1/services/{name}/promote", [&p](const Request& q) {
    auto j = body_of(q, {"wait_for_drain"}, "promote");
    if (!j) return Response::from_error(j.error());
    auto opts = deploy_options(*j);
    if (!opts) return Response::from_error(opts.error());
    return answer_with(p.promote(q.params.at("name"), *opts),
                       [](const SwitchResult& r) { return to_json(r); });
  });
  r.add("POST", "/v1/services/{name}/abort", [&p](const Request& q) {
    auto j = body_of(q, {"wait_for_drain"}, "abort");
    if (!j) return Response::from_error(j.error());
    auto opts = deploy_options(*j);
    if (!opts) return Response::from_error(opts.error());
    return answer_with(p.abort_canary(q.params.at("name"), *opts),
                       [](const SwitchResult& r) { return to_json(r); });
  });
  r.add("POST", "/v1/services/{name}/maintenance", [&p](const Request& q) {
    auto j = body_of(q, {"on", "page"}, "maintenance");
    if (!j) return Response::from_error(j.error());
    bool on = true;
    if (j->contains("on")) {
      if (!(*j)["on"].is_boolean())
        return Response::error(400, Errc::kInvalidArgument, "field 'on' must be true or false");
      on = (*j)["on"].get<bool>();
    }
    std::string page;
    if (j->contains("page")) {
      if (!(*j)["page"].is_string())
        return Response::error(400, Errc::kInvalidArgument, "field 'page' must be a string");
      page = (*j)["page"].get<std::string>();
    }
    return answer(p.set_maintenance(q.params.at("name"), on, std::move(page)));
  });
  r.add("POST", "/v1/services/{name}/pause", [&p](const Request& q) {
    auto j = body_of(q, {"max_held", "max_wait_ms"}, "pause");
    if (!j) return Response::from_error(j.error());
    PauseOptions o;
    Status s = get_int(*j, "max_held", &o.max_held, 0, 10'000'000);
    int64_t wait = o.max_wait.count();
    if (s) s = get_int(*j, "max_wait_ms", &wait, 1, 3'600'000);
    if (!s) return Response::from_error(s.error());
    o.max_wait = Millis(wait);
    return answer(p.pause(q.params.at("name"), o));
  });
  r.add("POST", "/v1/services/{name}/resume",
        [&p](const Request& q) { return answer(p.resume(q.params.at("name"))); });
  r.add("GET", "/v1/metrics", [&p](const Request& q) {
    MetricsSnapshot m = p.metrics();
    if (auto svc = q.query_param("service")) {
      std::erase_if(m.services, [&](const ServiceMetrics& s) { return s.service != *svc; });
      if (m.services.empty())
        return Response::error(404, Errc::kNotFound, "no service named '" + *svc + "'");
    }
    return Response::json(200, to_json(m));
  });
  r.add("GET", "/metrics", [&p](const Request&) {
    return Response::text(200, to_prometheus(p.metrics()),
                          "text/plain; version=0.0.4; charset=utf-8");
  });
}

// ---------------------------------------------------------------- client

namespace {
std::string svc_path(std::string_view name, std::string_view tail = {}) {
  return "/v1/services/" + http::percent_encode(name) + std::string(tail);
}
json targets_json(const std::vector<Endpoint>& t) {
  json a = json::array();
  for (const auto& e : t) a.push_back(e.str());
  return a;
}
}  // namespace

AdminClient::AdminClient(std::filesystem::path socket, Millis timeout)
    : socket_(std::move(socket)), timeout_(timeout) {}

Status AdminClient::upsert_service(const ServiceSpec& spec) {
  json body = to_json(spec);
  return http::UnixClient(socket_, timeout_).call("PUT", svc_path(spec.name), &body).map([](json) {
  });
}

Status AdminClient::remove_service(std::string_view name) {
  return http::UnixClient(socket_, timeout_).call("DELETE", svc_path(name)).map([](json) {});
}

Result<SwitchResult> AdminClient::deploy(std::string_view service,
                                         const std::vector<Endpoint>& targets,
                                         const DeployOptions& o,
                                         const std::optional<ServiceSpec>& spec) {
  json body = options_json(o);
  body["targets"] = targets_json(targets);
  if (spec) body["spec"] = to_json(*spec);
  json r =
      MD_TRY(http::UnixClient(socket_, timeout_).call("POST", svc_path(service, "/deploy"), &body));
  return switch_result_from_json(r);
}

Result<SwitchResult> AdminClient::set_canary(std::string_view service,
                                             const std::vector<Endpoint>& targets, int weight,
                                             const DeployOptions& o) {
  json body = options_json(o);
  body["weight"] = weight;
  if (!targets.empty()) body["targets"] = targets_json(targets);
  json r =
      MD_TRY(http::UnixClient(socket_, timeout_).call("POST", svc_path(service, "/canary"), &body));
  return switch_result_from_json(r);
}

Result<SwitchResult> AdminClient::promote(std::string_view service) {
  json r = MD_TRY(http::UnixClient(socket_, timeout_).call("POST", svc_path(service, "/promote")));
  return switch_result_from_json(r);
}

Result<SwitchResult> AdminClient::abort_canary(std::string_view service) {
  json r = MD_TRY(http::UnixClient(socket_, timeout_).call("POST", svc_path(service, "/abort")));
  return switch_result_from_json(r);
}

Status AdminClient::set_maintenance(std::string_view service, bool on, std::string_view page) {
  json body = {{"on", on}};
  if (!page.empty()) body["page"] = std::string(page);
  return http::UnixClient(socket_, timeout_)
      .call("POST", svc_path(service, "/maintenance"), &body)
      .map([](json) {});
}

Status AdminClient::pause(std::string_view service, const PauseOptions& o) {
  json body = {{"max_held", o.max_held}, {"max_wait_ms", o.max_wait.count()}};
  return http::UnixClient(socket_, timeout_)
      .call("POST", svc_path(service, "/pause"), &body)
      .map([](json) {});
}

Status AdminClient::resume(std::string_view service) {
  return http::UnixClient(socket_, timeout_)
      .call("POST", svc_path(service, "/resume"))
      .map([](json) {});
}

Result<std::vector<ServiceStatus>> AdminClient::status() {
  json r = MD_TRY(http::UnixClient(socket_, timeout_).call("GET", "/v1/status"));
  std::vector<ServiceStatus> out;
  if (!r.contains("services") || !r["services"].is_array())
    return fail(Errc::kInternal, "status answer has no 'services' array");
  for (const auto& s : r["services"]) out.push_back(MD_TRY(status_from_json(s)));
  return out;
}

Result<ServiceStatus> AdminClient::status(std::string_view service) {
  json r = MD_TRY(http::UnixClient(socket_, timeout_).call("GET", svc_path(service)));
  return status_from_json(r);
}

Result<MetricsSnapshot> AdminClient::metrics() {
  json r = MD_TRY(http::UnixClient(socket_, timeout_).call("GET", "/v1/metrics"));
  return metrics_from_json(r);
}

Result<std::string> AdminClient::metrics_prometheus() {
  http::ClientResponse r = MD_TRY(http::UnixClient(socket_, timeout_).request("GET", "/metrics"));
  MD_TRY_STATUS(r.to_status());
  return r.body;
}

}  // namespace md::proxy
