#include <gtest/gtest.h>

#include "agent/api.h"

namespace md::agent {
namespace {

template <class T>
T round_trip(const T& v) {
  auto back = decode<T>(to_json(v));
  EXPECT_TRUE(back) << back.error().what();
  EXPECT_EQ(to_json(*back), to_json(v));
  return *back;
}

TEST(ApiJson, StartCarriesServicesEnvAndSecrets) {
  Start s;
  s.version = "v2";
  s.role = Role::kWeb;
  s.environment = "staging";
  config::Service web;
  web.name = "web";
  web.command = "node index.js";
  web.count = 2;
  web.health.start_timeout = Millis(1234);
  web.stop_grace = Millis(4000);
  s.services = {web};
  s.env = {{"A", "1"}};
  s.secrets.emplace("TOKEN", secrets::Secret("tok"));
  Start back = round_trip(s);
  EXPECT_EQ(back.role, Role::kWeb);
  EXPECT_EQ(back.services.at(0).count, 2);
  EXPECT_EQ(back.services.at(0).health.start_timeout, Millis(1234));
  EXPECT_EQ(back.services.at(0).stop_grace, Millis(4000));
  EXPECT_EQ(back.secrets.at("TOKEN").reveal(), "tok");
}

// Regression (issue 11): nlohmann's get<int> turned a weight of 100.5 into 100
// (and 4294967396 into 100) without a word.
TEST(ApiJson, NonIntegerOrOutOfRangeNumbersAreRefused) {
  for (const char* body : {R"({"weights": {"v1": 100.5}})", R"({"weights": {"v1": 4294967396}})",
                           R"({"weights": {"v1": -4294967196}})", R"({"weights": {"v1": 1e2}})"}) {
    auto r = decode<Route>(nlohmann::json::parse(body));
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(r.error().message().find("'weights' must hold whole numbers"), std::string::npos)
        << r.error().message();
  }
  auto ok = decode<Route>(nlohmann::json::parse(R"({"weights": {"v1": 100}})"));
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->weights.at("v1"), 100);
  auto ms = decode<WaitReady>(nlohmann::json::parse(R"({"version": "v1", "timeout_ms": 1.5})"));
  EXPECT_FALSE(ms);
}

TEST(ApiJson, EveryRequestRoundTrips) {
  round_trip(RegisterArtifact{"v1", std::string(64, 'a'), "/tmp/a.tar.gz"});
  round_trip(Unpack{"v1", {"uploads"}, {".env"}});
  round_trip(WaitReady{"v1", Role::kWorkers, Millis(5000)});
  round_trip(Route{{{"v1", 75}, {"v2", 25}}, Millis(3000)});
  round_trip(Drain{"v1", Millis(100)});
  round_trip(Stop{"v1", Role::kAll, Millis(10), true, false});
  round_trip(Maintenance{true, "web", "<p>back soon</p>"});
  round_trip(Logs{"v1", "web.1", 10, {{"web.1", 42}}});
  round_trip(Prune{3, {"v0"}});
}

TEST(ApiJson, AnswersRoundTrip) {
  AgentStatus st;
  st.pid = 7;
  st.listen = {"127.0.0.1:8080"};
  ReleaseInfo r;
  r.version = "v1";
  r.traffic = "live";
  r.weight = 100;
  ProcessInfo p;
  p.name = "web.1";
  p.service = "web";
  p.state = "running";
  p.port = 3000;
  r.processes = {p};
  st.releases = {r};
  st.routes = {RouteInfo{"web", "", "/", "v1", "", 0, 3, 0, false}};
  st.weights = {{"v1", 100}};
  AgentStatus back = round_trip(st);
  EXPECT_EQ(back.releases.at(0).processes.at(0).port, 3000);
  VersionMetrics m;
  m.instance = "i-1";
  m.by_version["v1"].requests = 10;
  m.by_version["v1"].by_class[4] = 2;
  m.by_version["v1"].latency[3] = 10;
  m.by_version["v1"].latency[proxy::latency_bucket(250'000)] = 1;
  EXPECT_EQ(round_trip(m).by_version.at("v1").by_class[4], 2u);
  EXPECT_EQ(round_trip(m).by_version.at("v1").latency, m.by_version["v1"].latency);
  round_trip(LogsResult{{{"web.1", "2026-01-01T00:00:00.000Z", "hi"}}, {{"web.1", 10}}});
}

TEST(ApiJson, BadInputNamesTheFieldAndNeverEchoesValues) {
  auto missing = decode<Start>(nlohmann::json{{"role", "web"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(missing.error().what().find("'version' is required"), std::string::npos);
  auto bad_role = decode<Stop>(nlohmann::json{{"version", "v1"}, {"role", "everything"}});
  EXPECT_NE(bad_role.error().what().find("role"), std::string::npos);
  nlohmann::json s = to_json(Start{});
  s["secrets"] = {{"TOKEN", 12345678}};
  auto wrong = decode<Start>(s);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().what().find("12345678"), std::string::npos);
  EXPECT_FALSE(decode<Route>(nlohmann::json::array()));
  EXPECT_FALSE(decode<Prune>(nlohmann::json{{"keep", 0}}));
  nlohmann::json svc = to_json(config::Service{});
  svc["kind"] = "daemon";
  svc["name"] = "x";
  EXPECT_NE(decode<config::Service>(svc).error().what().find("web or worker"), std::string::npos);
}

}  // namespace
}  // namespace md::agent
