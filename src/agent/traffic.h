// Planning traffic moves: from the routes the proxy has now and the split
// the controller asks for, the proxy calls to make, per web service. Pure.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace md::agent {

// What one proxy service routes to now.
struct ServiceRoute {
  std::string live;    // version, "" = none
  std::string canary;  // version, "" = none
  int weight = 0;      // canary percent
  bool operator==(const ServiceRoute&) const = default;
};

enum class OpKind {
  kDeploy,        // health-check the version's targets, make them live, drop any canary
  kCanary,        // health-check the version's targets, make them the canary at `weight`
  kCanaryWeight,  // change the current canary's weight only
  kPromote,       // the canary set becomes live (same set: metrics continue)
  kAbort,         // drop the canary
  kRemove,        // the service is in none of the routed versions: remove it
};
std::string_view op_name(OpKind k);

struct TrafficOp {
  std::string service;
  OpKind kind = OpKind::kDeploy;
  std::string version;  // kDeploy, kCanary
  int weight = 0;       // kCanary, kCanaryWeight
  bool operator==(const TrafficOp&) const = default;
};

// The calls, in order, that take every web service to `weights` (version ->
// percent; zero entries ignored; the rest must sum to 100; at most two
// versions). With two versions, the one live now stays live (else the larger
// weight becomes live) and the other is the canary. A version that is the
// canary now and gets 100 % is promoted, not redeployed. Nothing is planned
// for a service already in the asked state (idempotent).
// kInvalidArgument: bad weights; kFailedPrecondition: a version has no web
// service (`web_services` lists each version's).
Result<std::vector<TrafficOp>> plan_route(
    const std::map<std::string, ServiceRoute>& current, const std::map<std::string, int>& weights,
    const std::map<std::string, std::set<std::string>>& web_services);

// The split the routes amount to: version -> percent, from the first service
// (by name) that routes anything. Empty when nothing is routed.
std::map<std::string, int> weights_of(const std::map<std::string, ServiceRoute>& routes);

}  // namespace md::agent
