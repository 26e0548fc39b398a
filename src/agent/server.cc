// The control API's routes (paths in docs/agent.md): JSON in, an operation,
// JSON or a typed error out.
#include <charconv>
#include <thread>

#include "agent/agent_impl.h"
#include "core/guard.h"

namespace md::agent {
namespace {

using http::Request;
using http::Response;
using json = nlohmann::json;

// A POST handler: decodes Req from the body, runs `fn`, encodes its result.
template <class Req, class Fn>
http::Handler with_body(Fn fn) {
  return [fn](const Request& q) -> Response {
    auto body = q.json();
    if (!body) return Response::from_error(body.error());
    auto req = decode<Req>(*body);
    if (!req) return Response::from_error(req.error());
    auto res = fn(*req);
    if (!res) return Response::from_error(res.error());
    if constexpr (std::is_same_v<std::decay_t<decltype(*res)>, json>)
      return Response::json(200, *res);
    else
      return Response::json(200, to_json(*res));
  };
}

// {"version": "..."} bodies of promote/abort and friends.
Result<std::string> version_of(const Request& q) {
  auto body = MD_TRY(q.json());
  if (!body.is_object() || !body.contains("version") || !body["version"].is_string())
    return fail(Errc::kInvalidArgument, "field 'version' (a string) is required");
  return body["version"].get<std::string>();
}

Response answer(const Result<AgentStatus>& r) {
  if (!r) return Response::from_error(r.error());
  return Response::json(200, to_json(*r));
}

// GET /metrics: the proxy's counters in Prometheus' text format.
void add_prometheus(http::Router& r, Agent::Impl& a) {
  r.add("GET", "/metrics", [&a](const Request&) {
    return Response::text(200, proxy::to_prometheus(a.proxy->metrics()),
                          "text/plain; version=0.0.4");
  });
}

}  // namespace

http::Router make_metrics_router(Agent::Impl& a) {
  http::Router r;
  add_prometheus(r, a);
  return r;
}

http::Router make_router(Agent::Impl& a) {
  http::Router r;
  r.add("GET", "/v1/agent/status",
        [&a](const Request&) { return Response::json(200, to_json(a.status())); });
  r.add("GET", "/v1/agent/releases/{version}", [&a](const Request& q) {
    auto info = a.release_info(q.params.at("version"));
    return info ? Response::json(200, to_json(*info)) : Response::from_error(info.error());
  });
  r.add("POST", "/v1/agent/artifacts", with_body<RegisterArtifact>([&a](const RegisterArtifact& x) {
          return a.register_artifact(x);
        }));
  r.add("PUT", "/v1/agent/artifacts/{version}/chunks", [&a](const Request& q) {
    uint64_t offset = 0;
    std::string o = q.query_param("offset").value_or("0");
    auto [p, ec] = std::from_chars(o.data(), o.data() + o.size(), offset);
    if (ec != std::errc() || p != o.data() + o.size())
      return Response::error(400, Errc::kInvalidArgument, "offset must be a byte count");
    auto st = a.upload_chunk(q.params.at("version"), offset, q.body);
    return st ? Response::json(200, json{{"received", offset + q.body.size()}})
              : Response::from_error(st.error());
  });
  r.add("POST", "/v1/agent/artifacts/{version}/commit", [&a](const Request& q) {
    auto body = q.json();
    if (!body) return Response::from_error(body.error());
    if (!body->contains("sha256") || !(*body)["sha256"].is_string())
      return Response::error(400, Errc::kInvalidArgument, "field 'sha256' (a string) is required");
    auto info = a.commit_upload(q.params.at("version"), (*body)["sha256"].get<std::string>());
    return info ? Response::json(200, to_json(*info)) : Response::from_error(info.error());
  });
  r.add("POST", "/v1/agent/unpack",
        with_body<Unpack>([&a](const Unpack& x) { return a.unpack(x); }));
  r.add("POST", "/v1/agent/start",
        with_body<Start>([&a](const Start& x) { return a.start_release(x); }));
  r.add("POST", "/v1/agent/wait-ready",
        with_body<WaitReady>([&a](const WaitReady& x) { return a.wait_ready(x); }));
  r.add("POST", "/v1/agent/route", with_body<Route>([&a](const Route& x) { return a.route(x); }));
  r.add("POST", "/v1/agent/canary", [&a](const Request& q) {
    auto v = version_of(q);
    if (!v) return Response::from_error(v.error());
    auto body = *q.json();
    // WHY the range here: get<int>() would wrap 4294967396 to 100.
    if (!body.contains("weight") || !body["weight"].is_number_integer() ||
        body["weight"].get<int64_t>() < 0 || body["weight"].get<int64_t>() > 100 ||
        (body["weight"].is_number_unsigned() && body["weight"].get<uint64_t>() > 100))
      return Response::error(400, Errc::kInvalidArgument,
                             "field 'weight' must be a whole number from 0 to 100");
    return answer(a.set_canary(*v, static_cast<int>(body["weight"].get<int64_t>())));
  });
  r.add("POST", "/v1/agent/promote", [&a](const Request& q) {
    auto v = version_of(q);
    return v ? answer(a.promote(*v)) : Response::from_error(v.error());
  });
  r.add("POST", "/v1/agent/abort", [&a](const Request& q) {
    auto v = version_of(q);
    return v ? answer(a.abort_canary(*v)) : Response::from_error(v.error());
  });
  r.add("POST", "/v1/agent/maintenance",
        with_body<Maintenance>([&a](const Maintenance& x) { return a.maintenance(x); }));
  r.add("POST", "/v1/agent/drain", with_body<Drain>([&a](const Drain& x) -> Result<json> {
          MD_TRY_STATUS(a.drain(x));
          return json{{"drained", x.version}};
        }));
  r.add("POST", "/v1/agent/stop",
        with_body<Stop>([&a](const Stop& x) { return a.stop_release(x); }));
  r.add("POST", "/v1/agent/keep-warm",
        with_body<KeepWarm>([&a](const KeepWarm& x) { return a.keep_warm(x); }));
  r.add("POST", "/v1/agent/logs", with_body<Logs>([&a](const Logs& x) { return a.logs(x); }));
  r.add("POST", "/v1/agent/prune", with_body<Prune>([&a](const Prune& x) -> Result<json> {
          return json{{"removed", MD_TRY(a.prune(x))}};
        }));
  r.add("GET", "/v1/agent/metrics",
        [&a](const Request&) { return Response::json(200, to_json(a.metrics())); });
  r.add("GET", "/v1/agent/proxy/metrics",
        [&a](const Request&) { return Response::json(200, proxy::to_json(a.proxy->metrics())); });
  add_prometheus(r, a);
  if (a.state_service) a.state_service->add_routes(r);
  r.add("PUT", "/v1/agent/notify", [&a](const Request& q) {
    if (!a.opts.notify_handoff)
      return Response::error(501, Errc::kFailedPrecondition, "this agent sends no notifications");
    auto st = a.opts.notify_handoff(q.body);
    return st ? Response::json(200, json{{"accepted", true}}) : Response::from_error(st.error());
  });
  r.add("POST", "/v1/agent/shutdown", [&a](const Request& q) {
    auto body = q.json();
    bool all = body && body->is_object() && body->value("all", false);
    bool restart = body && body->is_object() && body->value("restart", false);
    if (all && restart)
      return Response::json(400, json{{"error",
                                       {{"code", "invalid_argument"},
                                        {"message", "restart and all exclude each other"}}}});
    if (all) (void)a.stop_everything();
    // WHY a delay: stopping the server closes its connections, this answer's
    // too; give the I/O thread time to send it first.
    std::lock_guard lock(a.wake_mu);
    if (!a.waker.joinable())
      a.waker = std::thread([&a, all, restart] {
        guarded(log::Logger("agent"), "shutdown waker", [&] {
          a.clock.sleep_for(std::chrono::milliseconds(200));
          std::lock_guard lock(a.wake_mu);
          a.stop_requested = true;
          a.stop_all = a.stop_all || all;
          a.restart = restart && !a.stop_all;
          a.wake_cv.notify_all();
        });
      });
    return Response::json(200, json{{"stopping", true}, {"all", all}, {"restart", restart}});
  });
  return r;
}

}  // namespace md::agent
