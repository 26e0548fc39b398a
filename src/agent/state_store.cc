// The state store an agent serves (StateService: routes over <root>/state.db)
// and the controller's Store that calls it (AgentStore). state_api.h.
#include <chrono>

#include "agent/state_api.h"
#include "core/json.h"

namespace md::agent {
namespace {
using json = nlohmann::json;
using http::Request;
using http::Response;

int64_t ns(SysTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

template <class T>
json list(const std::vector<T>& v) {
  json a = json::array();
  for (const T& e : v) a.push_back(to_json(e));
  return a;
}

// The fields of one request body, each required and of its type.
Result<std::string> str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_string())
    return fail(Errc::kInvalidArgument, std::string("field '") + key + "' (a string) is required");
  return j.at(key).get<std::string>();
}
Result<int64_t> num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_number_integer())
    return fail(Errc::kInvalidArgument,
                std::string("field '") + key + "' (a whole number) is required");
  return j.at(key).get<int64_t>();
}
Result<int> count(const json& j, const char* key) {
  int64_t v = MD_TRY(num(j, key));
  if (v < 0 || v > 1'000'000)
    return fail(Errc::kInvalidArgument, std::string("field '") + key + "' is out of range");
  return static_cast<int>(v);
}

// One operation: the request body in, the answer (or the store's error) out.
Result<json> run_op(state::Store& s, const std::string& op, const json& q) {
  if (op == "commit") {
    MD_TRY_STATUS(s.commit(MD_TRY(decode<state::Batch>(q))));
    return json::object();
  }
  if (op == "deployment") return to_json(MD_TRY(s.deployment(MD_TRY(str(q, "id")))));
  if (op == "deployments")
    return list(MD_TRY(s.deployments(MD_TRY(str(q, "environment")), MD_TRY(count(q, "limit")))));
  if (op == "running") {
    auto d = MD_TRY(s.running(MD_TRY(str(q, "environment"))));
    return json{{"deployment", d ? to_json(*d) : json(nullptr)}};
  }
  if (op == "journal") return list(MD_TRY(s.journal(MD_TRY(str(q, "deployment_id")))));
  if (op == "releases") return list(MD_TRY(s.releases(MD_TRY(str(q, "environment")))));
  if (op == "audit")
    return list(MD_TRY(s.audit(MD_TRY(str(q, "environment")), MD_TRY(count(q, "limit")))));
  if (op == "acquire_lock")
    return to_json(
        MD_TRY(s.acquire_lock(MD_TRY(str(q, "environment")), MD_TRY(str(q, "holder")),
                              MD_TRY(str(q, "deployment_id")), Millis(MD_TRY(num(q, "ttl_ms"))))));
  if (op == "renew_lock") {
    MD_TRY_STATUS(s.renew_lock(MD_TRY(str(q, "environment")), MD_TRY(str(q, "holder")),
                               Millis(MD_TRY(num(q, "ttl_ms")))));
    return json::object();
  }
  if (op == "release_lock") {
    MD_TRY_STATUS(s.release_lock(MD_TRY(str(q, "environment")), MD_TRY(str(q, "holder"))));
    return json::object();
  }
  if (op == "lock_info") {
    auto l = MD_TRY(s.lock_info(MD_TRY(str(q, "environment"))));
    return json{{"lock", l ? to_json(*l) : json(nullptr)}};
  }
  if (op == "due_events") {
    SysTime now{std::chrono::duration_cast<SysTime::duration>(
        std::chrono::nanoseconds(MD_TRY(num(q, "now"))))};
    return list(MD_TRY(s.due_events(now, MD_TRY(count(q, "limit")))));
  }
  if (op == "events") {
    std::optional<state::OutboxStatus> status;
    if (q.is_object() && q.contains("status") && !q.at("status").is_null()) {
      std::string name = MD_TRY(str(q, "status"));
      status = state::parse_outbox_status(name);
      if (!status) return fail(Errc::kInvalidArgument, "unknown outbox status '" + name + "'");
    }
    return list(MD_TRY(s.events(status, MD_TRY(count(q, "limit")))));
  }
  if (op == "mark_delivered") {
    MD_TRY_STATUS(s.mark_delivered(MD_TRY(num(q, "id"))));
    return json::object();
  }
  if (op == "mark_attempt_failed") {
    if (!q.contains("permanent") || !q.at("permanent").is_boolean())
      return fail(Errc::kInvalidArgument, "field 'permanent' (true or false) is required");
    SysTime next{std::chrono::duration_cast<SysTime::duration>(
        std::chrono::nanoseconds(MD_TRY(num(q, "next_attempt"))))};
    MD_TRY_STATUS(s.mark_attempt_failed(MD_TRY(num(q, "id")), MD_TRY(str(q, "error")), next,
                                        q.at("permanent").get<bool>()));
    return json::object();
  }
  if (op == "retry_event") {
    MD_TRY_STATUS(s.retry_event(MD_TRY(num(q, "id"))));
    return json::object();
  }
  return fail(Errc::kNotFound, "no state operation '" + op + "'");
}

// The controller's side. Stateless apart from what open() learnt.
class AgentStore final : public state::Store {
 public:
  AgentStore(std::filesystem::path socket, std::string where, Millis timeout,
             std::shared_ptr<void> keep)
      : socket_(std::move(socket)),
        where_(std::move(where)),
        timeout_(timeout),
        keep_(std::move(keep)) {}

  Status open() {
    http::UnixClient c(socket_, timeout_);
    auto r = c.call("GET", "/v1/state/info");
    if (!r && r.error().code() == Errc::kNotFound)
      return fail(Errc::kFailedPrecondition,
                  "the " + where_ + " serves no state store (its meshdeploy is older than " +
                      "this one: upgrade it, e.g. meshdeploy hosts setup)");
    if (!r && (r.error().code() == Errc::kUnavailable || r.error().code() == Errc::kTimeout))
      return fail(r.error().code(), "state store on the " + where_ + ": " + r.error().what(), true);
    auto j = MD_TRY_CTX(std::move(r), "state store on the " + where_);
    if (!j.is_object() || !j.contains("schema_version") || !j["schema_version"].is_number_integer())
      return fail(Errc::kInternal, where_ + ": unexpected answer to /v1/state/info");
    schema_ = j["schema_version"].get<int>();
    file_ = j.value("file", "");
    return ok();
  }

  Status commit(const state::Batch& b) override { return done(call("commit", to_json(b))); }
  Result<state::Deployment> deployment(const std::string& id) override {
    return as<state::Deployment>(call("deployment", {{"id", id}}));
  }
  Result<std::vector<state::Deployment>> deployments(const std::string& env, int limit) override {
    return as_list<state::Deployment>(
        call("deployments", {{"environment", env}, {"limit", limit}}));
  }
  Result<std::optional<state::Deployment>> running(const std::string& env) override {
    auto j = MD_TRY(call("running", {{"environment", env}}));
    if (!j.contains("deployment") || j["deployment"].is_null())
      return std::optional<state::Deployment>();
    return std::optional<state::Deployment>(MD_TRY(as<state::Deployment>(j["deployment"])));
  }
  Result<std::vector<state::JournalEntry>> journal(const std::string& id) override {
    return as_list<state::JournalEntry>(call("journal", {{"deployment_id", id}}));
  }
  Result<std::vector<state::Release>> releases(const std::string& env) override {
    return as_list<state::Release>(call("releases", {{"environment", env}}));
  }
  Result<std::vector<state::AuditEntry>> audit(const std::string& env, int limit) override {
    return as_list<state::AuditEntry>(call("audit", {{"environment", env}, {"limit", limit}}));
  }
  Result<state::LockInfo> acquire_lock(const std::string& env, const std::string& holder,
                                       const std::string& deployment_id, Millis ttl) override {
    return as<state::LockInfo>(call("acquire_lock", {{"environment", env},
                                                     {"holder", holder},
                                                     {"deployment_id", deployment_id},
                                                     {"ttl_ms", ttl.count()}}));
  }
  Status renew_lock(const std::string& env, const std::string& holder, Millis ttl) override {
    return done(
        call("renew_lock", {{"environment", env}, {"holder", holder}, {"ttl_ms", ttl.count()}}));
  }
  Status release_lock(const std::string& env, const std::string& holder) override {
    return done(call("release_lock", {{"environment", env}, {"holder", holder}}));
  }
  Result<std::optional<state::LockInfo>> lock_info(const std::string& env) override {
    auto j = MD_TRY(call("lock_info", {{"environment", env}}));
    if (!j.contains("lock") || j["lock"].is_null()) return std::optional<state::LockInfo>();
    return std::optional<state::LockInfo>(MD_TRY(as<state::LockInfo>(j["lock"])));
  }
  Result<std::vector<state::OutboxEvent>> due_events(SysTime now, int limit) override {
    return as_list<state::OutboxEvent>(call("due_events", {{"now", ns(now)}, {"limit", limit}}));
  }
  Result<std::vector<state::OutboxEvent>> events(std::optional<state::OutboxStatus> status,
                                                 int limit) override {
    json q = {{"limit", limit}, {"status", nullptr}};
    if (status) q["status"] = state::outbox_status_name(*status);
    return as_list<state::OutboxEvent>(call("events", q));
  }
  Status mark_delivered(int64_t id) override { return done(call("mark_delivered", {{"id", id}})); }
  Status mark_attempt_failed(int64_t id, const std::string& error, SysTime next_attempt,
                             bool permanent) override {
    return done(call("mark_attempt_failed", {{"id", id},
                                             {"error", error},
                                             {"next_attempt", ns(next_attempt)},
                                             {"permanent", permanent}}));
  }
  Status retry_event(int64_t id) override { return done(call("retry_event", {{"id", id}})); }
  int schema_version() const override { return schema_; }
  std::string describe() const override {
    return where_ + " (" + (file_.empty() ? socket_.string() : file_) + ")";
  }

 private:
  // One request. An error keeps the agent's code; kUnavailable and kTimeout
  // (the agent or the connection to it is gone) are retryable, as a store's are.
  Result<json> call(const std::string& op, const json& body) {
    http::UnixClient c(socket_, timeout_);
    auto r = c.call("POST", "/v1/state/" + op, &body);
    if (r) return r;
    Error e = std::move(r.error());
    const bool retry =
        e.retryable() || e.code() == Errc::kUnavailable || e.code() == Errc::kTimeout;
    Error out(e.code(), e.what(), retry);
    if (e.code() == Errc::kUnavailable || e.code() == Errc::kTimeout || e.code() == Errc::kIo)
      out.context("state store on the " + where_);
    return fail(std::move(out));
  }
  static Status done(const Result<json>& r) {
    if (!r) return fail(r.error());
    return ok();
  }
  template <class T>
  Result<T> as(const Result<json>& r) {
    if (!r) return fail(r.error());
    return decode<T>(*r).map_error([this](const Error& e) {
      return Error(Errc::kInternal, "unexpected answer from the " + where_ + ": " + e.what());
    });
  }
  template <class T>
  Result<std::vector<T>> as_list(const Result<json>& r) {
    if (!r) return fail(r.error());
    if (!r->is_array())
      return fail(Errc::kInternal, "unexpected answer from the " + where_ + ": not a list");
    std::vector<T> out;
    out.reserve(r->size());
    for (const json& e : *r) out.push_back(MD_TRY(as<T>(e)));
    return out;
  }

  std::filesystem::path socket_;
  std::string where_;
  Millis timeout_;
  std::shared_ptr<void> keep_;
  int schema_ = 0;
  std::string file_;
};

}  // namespace

StateService::StateService(std::filesystem::path file, Clock& clock)
    : file_(std::move(file)),
      open_([url = "sqlite:" + file_.string(), &clock] { return state::open_store(url, clock); }) {}

Result<state::Store*> StateService::store() {
  std::lock_guard lock(mu_);
  if (!store_) store_ = MD_TRY_CTX(open_(), "state store " + file_.string());
  return store_.get();
}

void StateService::add_routes(http::Router& r) {
  r.add("GET", "/v1/state/info", [this](const Request&) {
    auto s = store();
    if (!s) return Response::from_error(s.error());
    return Response::json(
        200, json{{"schema_version", (*s)->schema_version()}, {"file", file_.string()}});
  });
  r.add("POST", "/v1/state/{op}", [this](const Request& q) {
    auto body = q.json();
    if (!body) return Response::from_error(body.error());
    auto s = store();
    if (!s) return Response::from_error(s.error());
    auto out = run_op(**s, q.params.at("op"), *body);
    return out ? Response::json(200, *out) : Response::from_error(out.error());
  });
}

Result<std::unique_ptr<state::Store>> open_agent_store(std::filesystem::path socket,
                                                       std::string where, Millis timeout,
                                                       std::shared_ptr<void> keep) {
  auto s =
      std::make_unique<AgentStore>(std::move(socket), std::move(where), timeout, std::move(keep));
  MD_TRY_STATUS(s->open());
  return std::unique_ptr<state::Store>(std::move(s));
}

}  // namespace md::agent
