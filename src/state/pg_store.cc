// The Postgres store, for teams whose controllers run on several machines.
// Talks to Postgres only through pg/pg.h. Tables live in one schema (URL
// parameter `schema`, default "meshdeploy"). Locks are row locks: the lease
// decision runs in a transaction holding `SELECT ... FOR UPDATE` on the
// environment's row; schema upgrades hold a transaction-scoped advisory lock.
// Concurrency: one connection per Store, serialised by mu_.
#include <functional>
#include <mutex>
#include <set>

#include "pg/pg.h"
#include "state/store_impl.h"

namespace md::state::internal {
namespace {

// Placeholder $n as a timestamptz from Unix milliseconds (exact).
std::string ts(int n) {
  return "('epoch'::timestamptz + $" + std::to_string(n) + "::bigint * interval '1 millisecond')";
}
// A timestamptz column read back as Unix milliseconds, named after the column.
std::string ms(const std::string& col) {
  return "(extract(epoch from " + col + ") * 1000)::bigint AS " + col;
}
std::string num(int64_t v) { return std::to_string(v); }
std::string num(SysTime t) { return std::to_string(to_unix_ms(t)); }
pg::Value opt_num(const std::optional<SysTime>& t) { return t ? pg::Value(num(*t)) : pg::Value(); }
std::string limit_clause(int limit) { return limit <= 0 ? "" : " LIMIT " + std::to_string(limit); }

const std::string& str(const pg::Rows& r, size_t row, std::string_view col) {
  static const std::string kEmpty;
  const pg::Value& v = r.at(row, col);
  return v ? *v : kEmpty;
}
int64_t i64(const pg::Rows& r, size_t row, std::string_view col) {
  const pg::Value& v = r.at(row, col);
  return v ? std::stoll(*v) : 0;
}
SysTime time_at(const pg::Rows& r, size_t row, std::string_view col) {
  return from_unix_ms(i64(r, row, col));
}

const std::string kDeploymentCols =
    "id, environment, kind, version, previous_version, strategy, actor, triggered_by, status, "
    "reason, " +
    ms("started_at") + ", " + ms("finished_at");

Result<Deployment> read_deployment(const pg::Rows& r, size_t i) {
  Deployment d;
  d.id = str(r, i, "id");
  d.environment = str(r, i, "environment");
  d.kind = str(r, i, "kind");
  d.version = str(r, i, "version");
  d.previous_version = str(r, i, "previous_version");
  d.strategy = str(r, i, "strategy");
  d.actor = str(r, i, "actor");
  d.trigger = str(r, i, "triggered_by");
  auto st = parse_status(str(r, i, "status"));
  if (!st) return fail(Errc::kCorruption, "deployment " + d.id + " has unknown status");
  d.status = *st;
  d.reason = str(r, i, "reason");
  d.started_at = time_at(r, i, "started_at");
  if (r.at(i, "finished_at")) d.finished_at = time_at(r, i, "finished_at");
  return d;
}

const std::string kOutboxCols =
    "id, event_id, channel, environment, event_type, payload, status, attempts, " +
    ms("created_at") + ", " + ms("next_attempt_at") + ", last_error";

Result<OutboxEvent> read_event(const pg::Rows& r, size_t i) {
  OutboxEvent e;
  e.id = i64(r, i, "id");
  e.event_id = str(r, i, "event_id");
  e.channel = str(r, i, "channel");
  e.environment = str(r, i, "environment");
  e.event_type = str(r, i, "event_type");
  e.payload = str(r, i, "payload");
  auto st = parse_outbox_status(str(r, i, "status"));
  if (!st) return fail(Errc::kCorruption, "outbox event has unknown status");
  e.status = *st;
  e.attempts = static_cast<int>(i64(r, i, "attempts"));
  e.created_at = time_at(r, i, "created_at");
  e.next_attempt_at = time_at(r, i, "next_attempt_at");
  e.last_error = str(r, i, "last_error");
  return e;
}

class PgStore final : public Store {
 public:
  PgStore(PgTarget target, std::string shown, Clock& clock)
      : target_(std::move(target)), shown_(std::move(shown)), clock_(clock) {}

  // (Re)connects when the connection is gone; sets the search path.
  Status connect() {
    if (conn_ && conn_->ok()) return ok();
    conn_.reset();
    auto c = pg::Connection::connect(target_.url);
    if (!c) return fail(std::move(c.error()).with_context("state store " + shown_));
    conn_.emplace(std::move(*c));
    schema_set_ = false;
    return ok();
  }
  Status use_schema() {
    MD_TRY(q("SET search_path TO " + pg::quote_ident(target_.schema)));
    return ok();
  }

  Result<pg::Rows> q(const std::string& sql, const pg::Params& params = {}) {
    auto r = conn_->exec(sql, params);
    if (!r) return fail(std::move(r.error()).with_context("state store " + shown_));
    return std::move(*r);
  }

  // Runs `body` in a transaction on a live connection (reconnecting if it
  // broke); `in_schema` = false only for the upgrade, which makes the schema.
  Status tx(const std::function<Status()>& body, bool in_schema = true) {
    MD_TRY_STATUS(connect());
    if (in_schema && !schema_set_) {
      MD_TRY_STATUS(use_schema());
      schema_set_ = true;
    }
    MD_TRY(q("BEGIN"));
    Status st = body();
    if (st) {
      auto c = q("COMMIT");
      if (!c) st = fail(c.error());
    }
    if (!st && conn_->ok()) (void)conn_->exec("ROLLBACK");
    return st;
  }
  // A read outside an explicit transaction (one statement).
  Result<pg::Rows> read(const std::string& sql, const pg::Params& params = {}) {
    pg::Rows rows;
    MD_TRY_STATUS(tx([&]() -> Status {
      rows = MD_TRY(q(sql, params));
      return ok();
    }));
    return rows;
  }

  Status upgrade(std::span<const SchemaStep> steps) {
    std::lock_guard lock(mu_);
    return tx(
        [&]() -> Status {
          // WHY an advisory lock: two controllers opening a fresh store at once
          // must not both create the schema; it is released at COMMIT/ROLLBACK.
          MD_TRY(q("SELECT pg_advisory_xact_lock(hashtext('meshdeploy.state'), hashtext($1))",
                   {target_.schema}));
          auto ns = MD_TRY(q("SELECT 1 FROM pg_namespace WHERE nspname = $1", {target_.schema}));
          if (ns.empty()) MD_TRY(q("CREATE SCHEMA " + pg::quote_ident(target_.schema)));
          MD_TRY_STATUS(use_schema());
          schema_set_ = true;
          MD_TRY(
              q("CREATE TABLE IF NOT EXISTS store_schema (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL)"));
          auto cur = MD_TRY(q("SELECT coalesce(max(version), 0) AS v FROM store_schema"));
          int current = static_cast<int>(i64(cur, 0, "v"));
          auto todo =
              MD_TRY(steps_after(steps, current, shown_ + " (schema " + target_.schema + ")"));
          for (const SchemaStep& s : todo) {
            auto r = conn_->exec_script(s.sql);
            if (!r)
              return fail(std::move(r.error()).with_context("state store " + shown_ +
                                                            ": upgrade schema to version " +
                                                            std::to_string(s.version)));
            MD_TRY(q("INSERT INTO store_schema (version, applied_at) VALUES ($1, " + ts(2) + ")",
                     {num(s.version), num(clock_.now())}));
            current = s.version;
          }
          version_ = current;
          return ok();
        },
        /*in_schema=*/false);
  }

  Status commit(const Batch& in) override {
    Batch b = MD_TRY(prepare_batch(in, clock_.now()));
    std::lock_guard lock(mu_);
    return tx([&]() -> Status {
      if (b.upsert_deployment) {
        const Deployment& d = *b.upsert_deployment;
        MD_TRY(
            q("INSERT INTO deployments (id, environment, kind, version, previous_version, "
              "strategy, actor, triggered_by, status, reason, started_at, finished_at) VALUES "
              "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, " +
                  ts(11) + ", " + ts(12) +
                  ") ON CONFLICT (id) DO UPDATE SET environment = excluded.environment, kind = "
                  "excluded.kind, version = excluded.version, previous_version = "
                  "excluded.previous_version, strategy = excluded.strategy, actor = "
                  "excluded.actor, triggered_by = excluded.triggered_by, status = "
                  "excluded.status, reason = excluded.reason, started_at = "
                  "excluded.started_at, finished_at = excluded.finished_at",
              {d.id, d.environment, d.kind, d.version, d.previous_version, d.strategy, d.actor,
               d.trigger, std::string(status_name(d.status)), d.reason, num(d.started_at),
               opt_num(d.finished_at)}));
      }
      // WHY lock the deployment rows: seq is max + 1; two writers of one
      // deployment's journal must not compute the same seq.
      std::set<std::string> ids;
      for (const JournalEntry& j : b.journal) ids.insert(j.deployment_id);
      for (const std::string& id : ids)
        MD_TRY(q("SELECT 1 FROM deployments WHERE id = $1 FOR UPDATE", {id}));
      for (const JournalEntry& j : b.journal)
        MD_TRY(
            q("INSERT INTO journal (deployment_id, seq, step, phase, outcome, detail, at) "
              "VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM journal WHERE "
              "deployment_id = $1), $2, $3, $4, $5, " +
                  ts(6) + ")",
              {j.deployment_id, j.step, j.phase, j.outcome, j.detail, num(j.at)}));
      for (const Release& r : b.upsert_releases)
        MD_TRY(
            q("INSERT INTO releases (environment, version, artifact_sha256, state, created_at, "
              "updated_at) VALUES ($1, $2, $3, $4, " +
                  ts(5) + ", " + ts(6) +
                  ") ON CONFLICT (environment, version) DO UPDATE SET artifact_sha256 = "
                  "CASE excluded.artifact_sha256 WHEN '' THEN releases.artifact_sha256 ELSE "
                  "excluded.artifact_sha256 END, state = excluded.state, updated_at = "
                  "excluded.updated_at",
              {r.environment, r.version, r.artifact_sha256, r.state, num(r.created_at),
               num(r.updated_at)}));
      for (const AuditEntry& a : b.audit)
        MD_TRY(
            q("INSERT INTO audit_log (at, actor, action, environment, target, detail) VALUES "
              "(" +
                  ts(1) + ", $2, $3, $4, $5, $6)",
              {num(a.at), a.actor, a.action, a.environment, a.target, a.detail}));
      for (const OutboxEvent& e : b.outbox)
        MD_TRY(
            q("INSERT INTO outbox (event_id, channel, environment, event_type, payload, "
              "status, attempts, created_at, next_attempt_at, last_error) VALUES ($1, $2, $3, "
              "$4, $5, 'pending', 0, " +
                  ts(6) + ", " + ts(7) + ", '') ON CONFLICT (channel, event_id) DO NOTHING",
              {e.event_id, e.channel, e.environment, e.event_type, e.payload, num(e.created_at),
               num(e.next_attempt_at)}));
      return ok();
    });
  }

  Result<Deployment> deployment(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT " + kDeploymentCols + " FROM deployments WHERE id = $1", {id}));
    if (r.empty()) return fail(Errc::kNotFound, "no deployment " + id);
    return read_deployment(r, 0);
  }

  Result<std::vector<Deployment>> deployments(const std::string& environment, int limit) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT " + kDeploymentCols +
                             " FROM deployments WHERE ($1 = '' OR environment = $1) ORDER BY "
                             "started_at DESC, id DESC" +
                             limit_clause(limit),
                         {environment}));
    std::vector<Deployment> out;
    for (size_t i = 0; i < r.rows.size(); ++i) out.push_back(MD_TRY(read_deployment(r, i)));
    return out;
  }

  Result<std::optional<Deployment>> running(const std::string& environment) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT " + kDeploymentCols +
                             " FROM deployments WHERE environment = $1 AND status = 'running' "
                             "ORDER BY started_at DESC, id DESC LIMIT 1",
                         {environment}));
    if (r.empty()) return std::optional<Deployment>();
    return std::optional<Deployment>(MD_TRY(read_deployment(r, 0)));
  }

  Result<std::vector<JournalEntry>> journal(const std::string& deployment_id) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT seq, step, phase, outcome, detail, " + ms("at") +
                             " FROM journal WHERE deployment_id = $1 ORDER BY seq",
                         {deployment_id}));
    std::vector<JournalEntry> out;
    for (size_t i = 0; i < r.rows.size(); ++i)
      out.push_back({i64(r, i, "seq"), deployment_id, str(r, i, "step"), str(r, i, "phase"),
                     str(r, i, "outcome"), str(r, i, "detail"), time_at(r, i, "at")});
    return out;
  }

  Result<std::vector<Release>> releases(const std::string& environment) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT version, artifact_sha256, state, " + ms("created_at") + ", " +
                             ms("updated_at") +
                             " FROM releases WHERE environment = $1 ORDER BY created_at DESC, "
                             "version DESC",
                         {environment}));
    std::vector<Release> out;
    for (size_t i = 0; i < r.rows.size(); ++i)
      out.push_back({environment, str(r, i, "version"), str(r, i, "artifact_sha256"),
                     str(r, i, "state"), time_at(r, i, "created_at"), time_at(r, i, "updated_at")});
    return out;
  }

  Result<std::vector<AuditEntry>> audit(const std::string& environment, int limit) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT id, " + ms("at") +
                             ", actor, action, environment, target, detail FROM audit_log WHERE "
                             "($1 = '' OR environment = $1) ORDER BY id DESC" +
                             limit_clause(limit),
                         {environment}));
    std::vector<AuditEntry> out;
    for (size_t i = 0; i < r.rows.size(); ++i)
      out.push_back({i64(r, i, "id"), time_at(r, i, "at"), str(r, i, "actor"), str(r, i, "action"),
                     str(r, i, "environment"), str(r, i, "target"), str(r, i, "detail")});
    return out;
  }

  // Inside a transaction: the environment's row, locked until COMMIT.
  Result<LockRow> locked_row(const std::string& environment) {
    MD_TRY(
        q("INSERT INTO env_locks (environment, holder, deployment_id, acquired_at, "
          "expires_at) VALUES ($1, '', '', 'epoch', 'epoch') ON CONFLICT (environment) DO "
          "NOTHING",
          {environment}));
    auto r = MD_TRY(q("SELECT holder, deployment_id, " + ms("acquired_at") + ", " +
                          ms("expires_at") + " FROM env_locks WHERE environment = $1 FOR UPDATE",
                      {environment}));
    MD_CHECK(!r.empty());  // inserted above, and rows are never deleted
    return LockRow{str(r, 0, "holder"), str(r, 0, "deployment_id"), time_at(r, 0, "acquired_at"),
                   time_at(r, 0, "expires_at")};
  }
  Status put_lock(const std::string& environment, const LockRow& row) {
    MD_TRY(
        q("UPDATE env_locks SET holder = $2, deployment_id = $3, acquired_at = " + ts(4) +
              ", expires_at = " + ts(5) + " WHERE environment = $1",
          {environment, row.holder, row.deployment_id, num(row.acquired_at), num(row.expires_at)}));
    return ok();
  }

  Result<LockInfo> acquire_lock(const std::string& environment, const std::string& holder,
                                const std::string& deployment_id, Millis ttl) override {
    std::lock_guard lock(mu_);
    LockRow row;
    MD_TRY_STATUS(tx([&]() -> Status {
      LockRow cur = MD_TRY(locked_row(environment));
      row = MD_TRY(decide_acquire(environment, cur, holder, deployment_id, clock_.now(), ttl));
      return put_lock(environment, row);
    }));
    return LockInfo{environment, row.holder, row.deployment_id, row.acquired_at, row.expires_at};
  }

  Status renew_lock(const std::string& environment, const std::string& holder,
                    Millis ttl) override {
    std::lock_guard lock(mu_);
    return tx([&]() -> Status {
      LockRow cur = MD_TRY(locked_row(environment));
      LockRow row = MD_TRY(decide_renew(environment, cur, holder, clock_.now(), ttl));
      return put_lock(environment, row);
    });
  }

  Status release_lock(const std::string& environment, const std::string& holder) override {
    std::lock_guard lock(mu_);
    MD_TRY(
        read("UPDATE env_locks SET holder = '', deployment_id = '' WHERE environment = $1 AND "
             "holder = $2",
             {environment, holder}));
    return ok();
  }

  Result<std::optional<LockInfo>> lock_info(const std::string& environment) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT holder, deployment_id, " + ms("acquired_at") + ", " +
                             ms("expires_at") + " FROM env_locks WHERE environment = $1",
                         {environment}));
    std::optional<LockRow> cur;
    if (!r.empty())
      cur = LockRow{str(r, 0, "holder"), str(r, 0, "deployment_id"), time_at(r, 0, "acquired_at"),
                    time_at(r, 0, "expires_at")};
    return live_lock(environment, cur, clock_.now());
  }

  Result<std::vector<OutboxEvent>> due_events(SysTime now, int limit) override {
    std::lock_guard lock(mu_);
    auto r =
        MD_TRY(read("SELECT " + kOutboxCols +
                        " FROM outbox WHERE status = 'pending' AND next_attempt_at <= " + ts(1) +
                        " ORDER BY next_attempt_at, id" + limit_clause(limit),
                    {num(now)}));
    std::vector<OutboxEvent> out;
    for (size_t i = 0; i < r.rows.size(); ++i) out.push_back(MD_TRY(read_event(r, i)));
    return out;
  }

  Result<std::vector<OutboxEvent>> events(std::optional<OutboxStatus> status, int limit) override {
    std::lock_guard lock(mu_);
    auto r = MD_TRY(read("SELECT " + kOutboxCols +
                             " FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC" +
                             limit_clause(limit),
                         {std::string(status ? outbox_status_name(*status) : "")}));
    std::vector<OutboxEvent> out;
    for (size_t i = 0; i < r.rows.size(); ++i) out.push_back(MD_TRY(read_event(r, i)));
    return out;
  }

  Status update_event(int64_t id, const std::string& sql, pg::Params params) {
    std::lock_guard lock(mu_);
    params.insert(params.begin(), num(id));
    auto r = MD_TRY(read(sql, params));
    if (r.affected == 0) return fail(Errc::kNotFound, "no outbox event " + std::to_string(id));
    return ok();
  }
  Status mark_delivered(int64_t id) override {
    return update_event(
        id, "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 WHERE id = $1", {});
  }
  Status mark_attempt_failed(int64_t id, const std::string& error, SysTime next_attempt,
                             bool permanent) override {
    return update_event(id,
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
                        "next_attempt_at = " +
                            ts(3) + ", status = $4 WHERE id = $1",
                        {error, num(next_attempt), std::string(permanent ? "failed" : "pending")});
  }
  Status retry_event(int64_t id) override {
    return update_event(
        id, "UPDATE outbox SET status = 'pending', next_attempt_at = " + ts(2) + " WHERE id = $1",
        {num(clock_.now())});
  }

  int schema_version() const override { return version_; }
  std::string describe() const override { return shown_ + " (schema " + target_.schema + ")"; }

 private:
  std::mutex mu_;
  PgTarget target_;
  std::string shown_;  // the URL without its password
  Clock& clock_;
  std::optional<pg::Connection> conn_;
  bool schema_set_ = false;
  int version_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres(const std::string& url, Clock& clock,
                                             std::span<const SchemaStep> steps) {
  PgTarget target = MD_TRY(parse_pg_url(url));
  auto store = std::make_unique<PgStore>(target, pg::redact_url(target.url), clock);
  MD_TRY_STATUS(store->upgrade(steps));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace md::state::internal
