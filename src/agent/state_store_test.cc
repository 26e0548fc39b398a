// The state store an agent serves: the whole Store contract (the typed suite
// of state/) through a real HTTP server on a unix socket, the exact JSON
// forms, and what the controller sees when the agent is gone.
#include <gtest/gtest.h>

#include "agent/state_api.h"
#include "state/store_contract_test.h"

namespace md::state::testing {

// A SQLite store behind a StateService behind a UnixServer, reached by the
// agent store: every call crosses the socket. Same file, clock and schema
// hooks as SqliteBackend, so the contract's upgrade tests run unchanged.
class AgentBackend {
 public:
  static constexpr const char* kName = "agent";
  void set_up() {
    dir_ = make_temp_dir();
    path_ = (dir_ / "state.db").string();
  }
  void tear_down() { std::filesystem::remove_all(dir_); }
  std::string url() const { return "sqlite:" + path_; }
  std::string fresh_url() const { return "sqlite:" + (dir_ / "fresh" / "state.db").string(); }
  Result<std::unique_ptr<Store>> open(Clock& clock, std::span<const internal::SchemaStep> steps) {
    std::vector<internal::SchemaStep> copy(steps.begin(), steps.end());
    auto service = std::make_shared<agent::StateService>(
        path_, [path = path_, &clock, copy] { return internal::open_sqlite(path, clock, copy); });
    http::Router router;
    service->add_routes(router);
    http::ServerOptions so;
    so.socket_path = dir_ / ("agent-" + std::to_string(++servers_) + ".sock");
    auto server = MD_TRY(http::UnixServer::start(so, std::move(router)));
    auto keep = std::make_shared<Served>(Served{service, std::move(server)});
    return agent::open_agent_store(so.socket_path, "agent of test", Millis(30000), keep);
  }
  std::span<const internal::SchemaStep> schema() const { return internal::sqlite_schema(); }
  Status raw(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    if (rc != SQLITE_OK) return fail(Errc::kInvalidArgument, msg);
    return ok();
  }

 private:
  struct Served {
    std::shared_ptr<agent::StateService> service;
    std::unique_ptr<http::UnixServer> server;  // declared last: stops before the service goes
  };
  std::filesystem::path dir_;
  std::string path_;
  int servers_ = 0;
};

}  // namespace md::state::testing

namespace md::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Agent, StoreTest, ::testing::Types<testing::AgentBackend>,
                               testing::BackendNames);
}  // namespace md::state::contract

namespace md::agent {
namespace {
using json = nlohmann::json;
using state::testing::make_temp_dir;

SysTime at_ns(int64_t ns) {
  return SysTime(std::chrono::duration_cast<SysTime::duration>(std::chrono::nanoseconds(ns)));
}

template <class T>
T round_trip(const T& v) {
  auto back = decode<T>(to_json(v));
  EXPECT_TRUE(back) << back.error().what();
  if (!back) return T{};
  EXPECT_EQ(to_json(*back), to_json(v));
  return *back;
}

TEST(StateJson, EveryTypeRoundTripsExactly) {
  state::Deployment d{.id = "d-1",
                      .environment = "production",
                      .kind = "rollback",
                      .version = "v2",
                      .previous_version = "v1",
                      .strategy = "canary",
                      .actor = "ana@ci",
                      .trigger = "ci",
                      .status = state::DeployStatus::kRolledBack,
                      .reason = "host web-3 unreachable",
                      .started_at = at_ns(1'700'000'000'123'456'789),
                      .finished_at = at_ns(1'700'000'100'000'000'001)};
  state::Deployment d2 = round_trip(d);
  EXPECT_EQ(d2.started_at, d.started_at);
  EXPECT_EQ(d2.finished_at, d.finished_at);
  EXPECT_EQ(d2.status, state::DeployStatus::kRolledBack);
  d.finished_at.reset();
  EXPECT_FALSE(round_trip(d).finished_at);

  state::JournalEntry e{.seq = 7,
                        .deployment_id = "d-1",
                        .step = "switch_traffic",
                        .phase = "outcome",
                        .outcome = "ok",
                        .detail = R"({"host":"web-2","ü":"✓"})",
                        .at = at_ns(-5)};
  EXPECT_EQ(round_trip(e).at, e.at);
  EXPECT_EQ(round_trip(e).detail, e.detail);

  state::Release r{.environment = "production",
                   .version = "v2",
                   .artifact_sha256 = std::string(64, 'a'),
                   .state = "warm",
                   .created_at = at_ns(1),
                   .updated_at = at_ns(2)};
  EXPECT_EQ(round_trip(r).updated_at, r.updated_at);

  state::AuditEntry a{.id = 3,
                      .at = at_ns(9),
                      .actor = "bo",
                      .action = "deploy.start",
                      .environment = "production",
                      .target = "v2",
                      .detail = "{}"};
  EXPECT_EQ(round_trip(a).id, 3);

  state::LockInfo l{.environment = "production",
                    .holder = "ana@laptop pid 1",
                    .deployment_id = "d-1",
                    .acquired_at = at_ns(10),
                    .expires_at = at_ns(30'000'000'010)};
  EXPECT_EQ(round_trip(l).expires_at, l.expires_at);

  state::OutboxEvent o{.id = 4,
                       .event_id = "evt_1",
                       .channel = "slack",
                       .environment = "production",
                       .event_type = "succeeded",
                       .payload = R"({"v":2})",
                       .status = state::OutboxStatus::kFailed,
                       .attempts = 5,
                       .created_at = at_ns(11),
                       .next_attempt_at = at_ns(12),
                       .last_error = "HTTP 500"};
  EXPECT_EQ(round_trip(o).status, state::OutboxStatus::kFailed);

  state::Batch b{.upsert_deployment = d,
                 .journal = {e, e},
                 .upsert_releases = {r},
                 .audit = {a},
                 .outbox = {o}};
  state::Batch b2 = round_trip(b);
  ASSERT_TRUE(b2.upsert_deployment);
  EXPECT_EQ(b2.journal.size(), 2u);
  EXPECT_EQ(b2.outbox.at(0).last_error, "HTTP 500");
  EXPECT_FALSE(round_trip(state::Batch{}).upsert_deployment);
}

TEST(StateJson, MissingOrMistypedFieldsAreRefusedByName) {
  json j = to_json(state::LockInfo{.environment = "p", .holder = "h"});
  j.erase("holder");
  auto a = decode<state::LockInfo>(j);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(a.error().message(), "lock: field 'holder' is required");
  json d = to_json(state::Deployment{.id = "d"});
  d["started_at"] = 1.5;
  EXPECT_EQ(decode<state::Deployment>(d).error().message(),
            "deployment: field 'started_at' must be a whole number");
  d = to_json(state::Deployment{.id = "d"});
  d["status"] = "sideways";
  EXPECT_EQ(decode<state::Deployment>(d).error().message(),
            "deployment: unknown status 'sideways'");
  EXPECT_EQ(decode<state::Batch>(json{{"journal", 3}}).error().message(),
            "batch: field 'journal' must be a list");
}

class AgentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    server_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path socket() const { return dir_ / "agent.sock"; }
  void serve(bool with_state) {
    http::Router r;
    service_ = std::make_unique<StateService>(dir_ / "state.db", clock_);
    if (with_state) service_->add_routes(r);
    http::ServerOptions so;
    so.socket_path = socket();
    auto s = http::UnixServer::start(so, std::move(r));
    ASSERT_TRUE(s) << s.error().what();
    server_ = std::move(*s);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<StateService> service_;
  std::unique_ptr<http::UnixServer> server_;
};

TEST_F(AgentStoreTest, NoAgentIsUnavailableAndRetryable) {
  auto s = open_agent_store(socket(), "agent of web-1", Millis(2000));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kUnavailable);
  EXPECT_TRUE(s.error().retryable());
  EXPECT_NE(s.error().what().find("state store on the agent of web-1"), std::string::npos)
      << s.error().what();
}

// The lease loop sees a store that went away as it sees an unreachable
// Postgres: kUnavailable, retryable; the lock is neither lost nor won.
TEST_F(AgentStoreTest, AgentGoneMidwayIsUnavailableAndRetryable) {
  serve(true);
  auto s = open_agent_store(socket(), "agent of web-1", Millis(2000));
  ASSERT_TRUE(s) << s.error().what();
  ASSERT_TRUE((*s)->acquire_lock("production", "ana", "d-1", Millis(30000)));
  EXPECT_EQ((*s)->describe(), "agent of web-1 (" + (dir_ / "state.db").string() + ")");
  server_.reset();
  auto r = (*s)->renew_lock("production", "ana", Millis(30000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
  EXPECT_TRUE(r.error().retryable());
  auto l = (*s)->lock_info("production");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), Errc::kUnavailable);

  serve(true);  // back, same file: the lease is still ana's
  ASSERT_TRUE((*s)->renew_lock("production", "ana", Millis(30000)));
  auto other = (*s)->acquire_lock("production", "bo", "d-2", Millis(30000));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Errc::kConflict);
  EXPECT_NE(other.error().message().find("locked by ana (deployment d-1)"), std::string::npos);
}

TEST_F(AgentStoreTest, AnAgentWithoutTheStoreIsNamed) {
  serve(false);
  auto s = open_agent_store(socket(), "agent of web-1", Millis(2000));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kFailedPrecondition);
  EXPECT_NE(s.error().message().find("the agent of web-1 serves no state store"), std::string::npos)
      << s.error().message();
}

TEST_F(AgentStoreTest, UnknownOperationAndBadBodiesAreRefused) {
  serve(true);
  http::UnixClient c(socket());
  json body = json::object();
  auto r = c.call("POST", "/v1/state/drop_everything", &body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  body = {{"environment", "p"}, {"limit", -1}};
  r = c.call("POST", "/v1/state/deployments", &body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  body = {{"journal", {{{"seq", "x"}}}}};
  r = c.call("POST", "/v1/state/commit", &body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace md::agent
