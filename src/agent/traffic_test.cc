#include "agent/traffic.h"

#include <gtest/gtest.h>

namespace md::agent {
namespace {

using Routes = std::map<std::string, ServiceRoute>;
using Ops = std::vector<TrafficOp>;
const std::map<std::string, std::set<std::string>> kWeb = {
    {"v1", {"web"}}, {"v2", {"web"}}, {"v3", {"web", "api"}}};

Ops plan(const Routes& cur, const std::map<std::string, int>& w) {
  auto r = plan_route(cur, w, kWeb);
  EXPECT_TRUE(r) << r.error().what();
  return r.value_or(Ops{});
}

TEST(PlanRoute, FirstDeployAndBlueGreen) {
  EXPECT_EQ(plan({}, {{"v1", 100}}), (Ops{{"web", OpKind::kDeploy, "v1", 0}}));
  EXPECT_EQ(plan({{"web", {"v1", "", 0}}}, {{"v2", 100}}),
            (Ops{{"web", OpKind::kDeploy, "v2", 0}}));
}

TEST(PlanRoute, RepeatingTheSplitThatHoldsIsANoOp) {
  EXPECT_EQ(plan({{"web", {"v1", "", 0}}}, {{"v1", 100}}), Ops{});
  EXPECT_EQ(plan({{"web", {"v1", "v2", 25}}}, {{"v1", 75}, {"v2", 25}}), Ops{});
  EXPECT_EQ(plan({{"web", {"v1", "", 0}}}, {{"v1", 100}, {"v2", 0}}), Ops{});
}

TEST(PlanRoute, CanarySteps) {
  Routes live{{"web", {"v1", "", 0}}};
  EXPECT_EQ(plan(live, {{"v1", 95}, {"v2", 5}}), (Ops{{"web", OpKind::kCanary, "v2", 5}}));
  Routes canary{{"web", {"v1", "v2", 5}}};
  EXPECT_EQ(plan(canary, {{"v1", 50}, {"v2", 50}}),
            (Ops{{"web", OpKind::kCanaryWeight, "v2", 50}}));
  // 100 % to the canary promotes it (same set), never redeploys it.
  EXPECT_EQ(plan(canary, {{"v2", 100}}), (Ops{{"web", OpKind::kPromote, "v2", 0}}));
  // Back to the live version drops the canary.
  EXPECT_EQ(plan(canary, {{"v1", 100}}), (Ops{{"web", OpKind::kAbort, "", 0}}));
  // Another canary replaces the current one.
  EXPECT_EQ(plan(canary, {{"v1", 90}, {"v3", 10}}),
            (Ops{{"api", OpKind::kDeploy, "v3", 0}, {"web", OpKind::kCanary, "v3", 10}}));
}

TEST(PlanRoute, TheLiveVersionStaysLiveWhateverTheWeights) {
  // v2 has the larger weight but v1 is live: v2 is the canary at 90 %.
  EXPECT_EQ(plan({{"web", {"v1", "", 0}}}, {{"v1", 10}, {"v2", 90}}),
            (Ops{{"web", OpKind::kCanary, "v2", 90}}));
  // Nothing live: the larger weight goes live first.
  EXPECT_EQ(plan({}, {{"v1", 30}, {"v2", 70}}),
            (Ops{{"web", OpKind::kDeploy, "v2", 0}, {"web", OpKind::kCanary, "v1", 30}}));
}

TEST(PlanRoute, ServicesMissingFromTheNewReleaseAreRemoved) {
  Routes cur{{"web", {"v3", "", 0}}, {"api", {"v3", "", 0}}};
  EXPECT_EQ(plan(cur, {{"v2", 100}}),
            (Ops{{"web", OpKind::kDeploy, "v2", 0}, {"api", OpKind::kRemove, "", 0}}));
}

TEST(PlanRoute, RefusesBadSplits) {
  EXPECT_EQ(plan_route({}, {{"v1", 50}}, kWeb).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(plan_route({}, {}, kWeb).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(plan_route({}, {{"v1", 150}}, kWeb).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(plan_route({}, {{"v1", 50}, {"v2", 25}, {"v3", 25}}, kWeb).error().code(),
            Errc::kInvalidArgument);
  auto unknown = plan_route({}, {{"v9", 100}}, kWeb);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Errc::kFailedPrecondition);
  EXPECT_NE(unknown.error().what().find("v9"), std::string::npos);
}

TEST(WeightsOf, ReadsTheFirstRoutedService) {
  EXPECT_EQ(weights_of({}), (std::map<std::string, int>{}));
  EXPECT_EQ(weights_of({{"web", {"v1", "", 0}}}), (std::map<std::string, int>{{"v1", 100}}));
  EXPECT_EQ(weights_of({{"web", {"v1", "v2", 25}}}),
            (std::map<std::string, int>{{"v1", 75}, {"v2", 25}}));
}

}  // namespace
}  // namespace md::agent
