#include "agent/traffic.h"

namespace md::agent {

std::string_view op_name(OpKind k) {
  switch (k) {
    case OpKind::kDeploy:
      return "deploy";
    case OpKind::kCanary:
      return "canary";
    case OpKind::kCanaryWeight:
      return "canary_weight";
    case OpKind::kPromote:
      return "promote";
    case OpKind::kAbort:
      return "abort";
    case OpKind::kRemove:
      return "remove";
  }
  return "unknown";
}

Result<std::vector<TrafficOp>> plan_route(
    const std::map<std::string, ServiceRoute>& current, const std::map<std::string, int>& weights,
    const std::map<std::string, std::set<std::string>>& web_services) {
  std::map<std::string, int> w;
  int sum = 0;
  for (const auto& [version, pct] : weights) {
    if (pct < 0 || pct > 100)
      return fail(Errc::kInvalidArgument,
                  "weight of " + version + " must be 0..100, not " + std::to_string(pct));
    if (pct == 0) continue;
    w[version] = pct;
    sum += pct;
  }
  if (w.empty()) return fail(Errc::kInvalidArgument, "route: no version with a weight above 0");
  if (sum != 100)
    return fail(Errc::kInvalidArgument,
                "route: weights sum to " + std::to_string(sum) + ", not 100");
  if (w.size() > 2)
    return fail(Errc::kInvalidArgument, "route: at most two versions (live and canary) at once");
  for (const auto& [version, pct] : w) {
    auto it = web_services.find(version);
    if (it == web_services.end() || it->second.empty())
      return fail(Errc::kFailedPrecondition, "release " + version + " has no web process started");
  }
  auto route_of = [&](const std::string& s) {
    auto it = current.find(s);
    return it == current.end() ? ServiceRoute{} : it->second;
  };

  std::vector<TrafficOp> ops;
  // Makes `version` the live set of `s` (promoting it when it is the canary).
  auto make_live = [&](const std::string& s, const ServiceRoute& cur, const std::string& version) {
    if (cur.live == version) return;
    if (cur.canary == version)
      ops.push_back({s, OpKind::kPromote, version, 0});
    else
      ops.push_back({s, OpKind::kDeploy, version, 0});
  };

  if (w.size() == 1) {
    const std::string& x = w.begin()->first;
    for (const std::string& s : web_services.at(x)) {
      ServiceRoute cur = route_of(s);
      if (cur.live == x && cur.canary.empty()) continue;
      if (cur.live == x)
        ops.push_back({s, OpKind::kAbort, "", 0});
      else
        make_live(s, cur, x);
    }
    for (const auto& [s, cur] : current)
      if (!web_services.at(x).count(s) && (!cur.live.empty() || !cur.canary.empty()))
        ops.push_back({s, OpKind::kRemove, "", 0});
    return ops;
  }

  auto a = w.begin(), b = std::next(a);
  int a_live = 0, b_live = 0;
  for (const auto& [s, cur] : current) {
    a_live += cur.live == a->first;
    b_live += cur.live == b->first;
  }
  bool a_is_live = a_live != b_live ? a_live > b_live : a->second >= b->second;
  const std::string& live = a_is_live ? a->first : b->first;
  const std::string& canary = a_is_live ? b->first : a->first;
  int weight = a_is_live ? b->second : a->second;

  std::set<std::string> services = web_services.at(live);
  services.insert(web_services.at(canary).begin(), web_services.at(canary).end());
  for (const std::string& s : services) {
    ServiceRoute cur = route_of(s);
    bool in_live = web_services.at(live).count(s) > 0;
    bool in_canary = web_services.at(canary).count(s) > 0;
    if (!in_live) {  // new in the canary release: nothing else can serve it
      make_live(s, cur, canary);
      continue;
    }
    if (cur.live != live) {
      make_live(s, cur, live);
      cur = ServiceRoute{live, "", 0};
    }
    if (!in_canary) {
      if (!cur.canary.empty()) ops.push_back({s, OpKind::kAbort, "", 0});
      continue;
    }
    if (cur.canary == canary) {
      if (cur.weight != weight) ops.push_back({s, OpKind::kCanaryWeight, canary, weight});
    } else {
      ops.push_back({s, OpKind::kCanary, canary, weight});
    }
  }
  return ops;
}

std::map<std::string, int> weights_of(const std::map<std::string, ServiceRoute>& routes) {
  for (const auto& [s, r] : routes) {
    if (r.live.empty() && r.canary.empty()) continue;
    std::map<std::string, int> out;
    int canary = r.canary.empty() ? 0 : r.weight;
    if (!r.live.empty() && canary < 100) out[r.live] = 100 - canary;
    if (!r.canary.empty() && canary > 0) out[r.canary] += canary;
    return out;
  }
  return {};
}

}  // namespace md::agent
