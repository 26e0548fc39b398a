// Traffic operations: the planned proxy calls (traffic.h) applied one by one,
// each persisted as it lands; drain; metrics by version.
#include <thread>

#include "agent/agent_impl.h"

namespace md::agent {

using namespace std::chrono_literals;

std::map<std::string, ServiceRoute> Agent::Impl::current_routes() const {
  std::lock_guard lock(mu);
  std::map<std::string, ServiceRoute> out;
  for (const auto& [s, r] : state.routes) out[s] = ServiceRoute{r.live, r.canary, r.canary_weight};
  return out;
}

// Web services with at least one process that runs or will, by version.
std::map<std::string, std::set<std::string>> Agent::Impl::routable_web_services() const {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& p : sup->status()) {
    if (p.kind != config::ServiceKind::kWeb || p.port <= 0) continue;
    if (p.state == supervisor::State::kStopped || p.state == supervisor::State::kStopping ||
        p.state == supervisor::State::kFailed)
      continue;
    out[p.release].insert(p.service);
  }
  return out;
}

bool Agent::Impl::takes_traffic(const std::string& version) const {
  for (const auto& [s, r] : current_routes())
    if (r.live == version || (r.canary == version && r.weight > 0)) return true;
  return false;
}

Result<Millis> Agent::Impl::apply(const TrafficOp& op, Millis health_timeout) {
  Millis probe{0};
  std::string ctx = std::string(op_name(op.kind)) + " " + op.service +
                    (op.version.empty() ? "" : " to " + op.version);
  proxy::DeployOptions opts{health_timeout, 50ms, /*wait_for_drain=*/false};
  SavedRoute route;
  std::optional<SavedRelease> rel;
  {
    std::lock_guard lock(mu);
    if (auto it = state.routes.find(op.service); it != state.routes.end()) route = it->second;
    route.service = op.service;
    std::string owner = op.kind == OpKind::kPromote  ? route.canary
                        : op.kind == OpKind::kDeploy ? op.version
                                                     : route.live;
    if (auto it = state.releases.find(owner); it != state.releases.end()) rel = it->second;
  }
  // The service's routing spec follows the release that is (or becomes) live.
  auto upsert = [&]() -> Status {
    if (!rel) return ok();
    const config::Service* svc = find_service(*rel, op.service);
    if (!svc) return ok();
    return proxy->upsert_service(proxy_spec(*rel, *svc));
  };
  switch (op.kind) {
    case OpKind::kDeploy: {
      MD_TRY_STATUS(upsert().map_error([&](Error e) { return std::move(e).with_context(ctx); }));
      auto t = targets(op.version, op.service);
      probe = MD_TRY_CTX(proxy->deploy(op.service, t, opts), ctx).health_wait;
      route.live = op.version;
      route.canary.clear();
      route.canary_weight = 0;
      break;
    }
    case OpKind::kCanary: {
      if (!proxy->status(op.service)) MD_TRY_STATUS(upsert());
      probe =
          MD_TRY_CTX(
              proxy->set_canary(op.service, targets(op.version, op.service), op.weight, opts), ctx)
              .health_wait;
      route.canary = op.version;
      route.canary_weight = op.weight;
      break;
    }
    case OpKind::kCanaryWeight:
      MD_TRY_CTX(proxy->set_canary(op.service, {}, op.weight, opts), ctx);
      route.canary_weight = op.weight;
      break;
    case OpKind::kPromote:
      MD_TRY_CTX(proxy->promote(op.service, opts), ctx);
      route.live = route.canary;
      route.canary.clear();
      route.canary_weight = 0;
      MD_TRY_STATUS(upsert().map_error([&](Error e) { return std::move(e).with_context(ctx); }));
      break;
    case OpKind::kAbort:
      MD_TRY_CTX(proxy->abort_canary(op.service, opts), ctx);
      route.canary.clear();
      route.canary_weight = 0;
      break;
    case OpKind::kRemove:
      if (auto st = proxy->remove_service(op.service); !st && st.error().code() != Errc::kNotFound)
        return fail(std::move(st.error()).with_context(ctx));
      break;
  }
  {
    std::lock_guard lock(mu);
    if (op.kind == OpKind::kRemove)
      state.routes.erase(op.service);
    else
      state.routes[op.service] = route;
    // A release that takes traffic again (a rollback to it) is no longer
    // waiting to be stopped.
    for (const std::string& v : {route.live, route.canary})
      if (auto it = state.releases.find(v); !v.empty() && it != state.releases.end())
        it->second.warm_until_ms = 0;
  }
  kLog.info("traffic: {}", ctx);
  MD_TRY_STATUS(persist());
  return probe;
}

Result<AgentStatus> Agent::Impl::route(const Route& r) {
  std::lock_guard op(op_mu);
  auto ops = MD_TRY(plan_route(current_routes(), r.weights, routable_web_services()));
  Millis probe{0};
  for (const TrafficOp& o : ops) probe += MD_TRY(apply(o, r.health_timeout));
  AgentStatus st = status();
  st.probe_ms = probe.count();
  return st;
}

Result<AgentStatus> Agent::Impl::set_canary(const std::string& version, int weight) {
  std::string live;
  for (const auto& [s, r] : current_routes())
    if (!r.live.empty()) {
      live = r.live;
      break;
    }
  if (live.empty())
    return fail(Errc::kFailedPrecondition, "canary " + version + ": nothing is live yet");
  if (live == version)
    return fail(Errc::kInvalidArgument, "canary " + version + ": it is the live release");
  if (weight < 0 || weight > 100)
    return fail(Errc::kInvalidArgument, "canary weight must be 0..100");
  if (weight == 0) return abort_canary(version);
  return route(Route{{{live, 100 - weight}, {version, weight}}});
}

Result<AgentStatus> Agent::Impl::promote(const std::string& version) {
  bool canary = false, live = false;
  for (const auto& [s, r] : current_routes()) {
    canary = canary || r.canary == version;
    live = live || r.live == version;
  }
  if (!canary && !live)
    return fail(Errc::kFailedPrecondition, "promote " + version + ": it is not the canary");
  return route(Route{{{version, 100}}});  // already live: a no-op
}

Result<AgentStatus> Agent::Impl::abort_canary(const std::string& version) {
  std::lock_guard op(op_mu);
  for (const auto& [s, r] : current_routes())
    if (r.canary == version) MD_TRY_STATUS(apply(TrafficOp{s, OpKind::kAbort, "", 0}, 10000ms));
  return status();
}

Result<AgentStatus> Agent::Impl::maintenance(const Maintenance& r) {
  std::lock_guard op(op_mu);
  auto routes = current_routes();
  if (!r.service.empty() && !routes.count(r.service))
    return fail(Errc::kNotFound, "maintenance: no routed service " + r.service);
  for (const auto& [s, route] : routes) {
    if (!r.service.empty() && s != r.service) continue;
    MD_TRY_STATUS(proxy->set_maintenance(s, r.on, r.page));
    std::lock_guard lock(mu);
    state.routes[s].maintenance = r.on;
  }
  MD_TRY_STATUS(persist());
  return status();
}

Status Agent::Impl::drain(const Drain& r) {
  if (takes_traffic(r.version))
    return fail(Errc::kFailedPrecondition, "drain " + r.version + ": it still takes traffic");
  std::set<uint16_t> ports;
  {
    std::lock_guard lock(mu);
    for (const auto& [port, v] : port_version)
      if (v == r.version) ports.insert(static_cast<uint16_t>(port));
  }
  MonoTime deadline = clock.mono() + r.timeout;
  for (;;) {
    int64_t active = 0;
    for (const auto& s : proxy->status()) {
      auto count = [&](const proxy::SetStatus& set) {
        for (const auto& t : set.targets)
          if (ports.count(t.endpoint.port)) {
            active += set.active;
            return;
          }
      };
      if (s.live) count(*s.live);
      if (s.canary) count(*s.canary);
      for (const auto& d : s.draining) count(d);
    }
    if (active == 0) return ok();
    if (clock.mono() >= deadline)
      return fail(Errc::kTimeout,
                  "drain " + r.version + ": " + std::to_string(active) +
                      " request(s) still in flight after " + std::to_string(r.timeout.count()) +
                      "ms",
                  true);
    clock.sleep_for(10ms);
  }
}

VersionMetrics Agent::Impl::metrics() const {
  proxy::MetricsSnapshot snap = proxy->metrics();
  VersionMetrics out;
  out.instance = snap.instance;
  std::lock_guard lock(mu);
  for (const auto& svc : snap.services) {
    for (const auto& set : svc.sets) {
      if (set.targets.empty()) continue;
      auto it = port_version.find(set.targets.front().port);
      if (it == port_version.end()) continue;
      proxy::Counters& c = out.by_version[it->second];
      const proxy::Counters& x = set.counters;
      c.requests += x.requests;
      for (size_t i = 0; i < c.by_class.size(); ++i) c.by_class[i] += x.by_class[i];
      c.aborted += x.aborted;
      c.upstream_errors += x.upstream_errors;
      c.retries += x.retries;
      for (size_t i = 0; i < c.latency.size(); ++i) c.latency[i] += x.latency[i];
      c.latency_sum_us += x.latency_sum_us;
      c.active += x.active;
    }
  }
  return out;
}

}  // namespace md::agent
