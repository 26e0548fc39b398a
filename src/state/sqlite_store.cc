// The SQLite store: one file (default .meshdeploy/state.db), WAL journal so
// readers never block the writer, a busy timeout so several processes share
// it, BEGIN IMMEDIATE for every read-modify-write so the write lock is taken
// before anything is read (no upgrade deadlocks between processes).
// Concurrency: one connection per Store, serialised by mu_.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>

#include "core/fs.h"
#include "state/store_impl.h"

namespace md::state::internal {
namespace {

constexpr int kBusyTimeoutMs = 10000;

Error sqlite_error(sqlite3* db, int rc, const std::string& path, std::string_view what) {
  int base = rc & 0xff;
  std::string msg = "state store " + path + ": " + std::string(what) + ": " +
                    (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (base) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(Errc::kUnavailable,
                   msg + " (still busy after " + std::to_string(kBusyTimeoutMs / 1000) + " s)",
                   true);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error(Errc::kCorruption, msg);
    case SQLITE_CONSTRAINT:
      return Error(Errc::kInvalidArgument, msg);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Error(Errc::kPermissionDenied, msg);
    default:
      return Error(Errc::kIo, msg);
  }
}

// A prepared statement. Binds are 1-based like SQLite's.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql, const std::string& path) : db_(db), path_(path) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view v) {
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, SysTime t) { return bind(i, to_unix_ms(t)); }
  Stmt& bind(int i, const std::optional<SysTime>& t) {
    if (t) return bind(i, *t);
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_null(s_, i);
    return *this;
  }

  // true: a row is ready; false: done.
  Result<bool> step() {
    if (rc_ != SQLITE_OK) return fail(sqlite_error(db_, rc_, path_, "prepare"));
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return fail(sqlite_error(db_, rc, path_, "step"));
  }
  // Runs to completion; returns the rows changed.
  Result<int> run() {
    while (MD_TRY(step())) {
    }
    return sqlite3_changes(db_);
  }

  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  SysTime time(int col) const { return from_unix_ms(i64(col)); }
  bool null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

constexpr const char* kDeploymentCols =
    "id, environment, kind, version, previous_version, strategy, actor, triggered_by, status, "
    "reason, started_at, finished_at";

Result<Deployment> read_deployment(const Stmt& s) {
  Deployment d;
  d.id = s.text(0);
  d.environment = s.text(1);
  d.kind = s.text(2);
  d.version = s.text(3);
  d.previous_version = s.text(4);
  d.strategy = s.text(5);
  d.actor = s.text(6);
  d.trigger = s.text(7);
  auto st = parse_status(s.text(8));
  if (!st)
    return fail(Errc::kCorruption, "deployment " + d.id + " has unknown status " + s.text(8));
  d.status = *st;
  d.reason = s.text(9);
  d.started_at = s.time(10);
  if (!s.null(11)) d.finished_at = s.time(11);
  return d;
}

constexpr const char* kOutboxCols =
    "id, event_id, channel, environment, event_type, payload, status, attempts, created_at, "
    "next_attempt_at, last_error";

Result<OutboxEvent> read_event(const Stmt& s) {
  OutboxEvent e;
  e.id = s.i64(0);
  e.event_id = s.text(1);
  e.channel = s.text(2);
  e.environment = s.text(3);
  e.event_type = s.text(4);
  e.payload = s.text(5);
  auto st = parse_outbox_status(s.text(6));
  if (!st) return fail(Errc::kCorruption, "outbox event has unknown status " + s.text(6));
  e.status = *st;
  e.attempts = static_cast<int>(s.i64(7));
  e.created_at = s.time(8);
  e.next_attempt_at = s.time(9);
  e.last_error = s.text(10);
  return e;
}

int64_t sql_limit(int limit) { return limit <= 0 ? -1 : limit; }

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path, Clock& clock)
      : db_(db), path_(std::move(path)), clock_(clock) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  // Runs `body` in a transaction; IMMEDIATE takes the write lock up front.
  // The file must still be at its path when the transaction commits.
  Status tx(bool immediate, const std::function<Status()>& body) {
    MD_TRY_STATUS(exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN"));
    Status st = body();
    if (st) st = still_linked();
    if (st) st = exec("COMMIT");
    if (!st) exec("ROLLBACK");
    if (!st && moved_) return fail(moved_error());
    return st;
  }

  // kFailedPrecondition once the open file is no longer the one at path_
  // (deleted, or replaced by another file): whatever is committed to it
  // would be lost when this process closes it.
  Status still_linked() {
    int moved = 0;
    if (moved_ || (sqlite3_file_control(db_, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
                   moved != 0)) {
      moved_ = true;
      return fail(Errc::kFailedPrecondition, "moved");  // replaced by moved_error() after ROLLBACK
    }
    return ok();
  }
  // The refusal, after saving (once) what this connection still sees of the
  // deleted file beside its old path, so that nothing recorded is lost.
  Error moved_error() {
    if (salvage_.empty()) salvage_ = salvage();
    return Error(Errc::kFailedPrecondition,
                 "state store " + path_ +
                     " was deleted or replaced while this meshdeploy had it open: refusing to "
                     "write records nobody would read. " +
                     salvage_);
  }
  std::string salvage() {
    const std::string to = path_ + ".recovered-" + std::to_string(to_unix_ms(clock_.now()) / 1000) +
                           "-" + std::to_string(::getpid());
    std::string why;
    int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      why = std::strerror(errno);
    } else {
      ::close(fd);
      sqlite3* dst = nullptr;
      int rc = sqlite3_open_v2(to.c_str(), &dst, SQLITE_OPEN_READWRITE, nullptr);
      if (rc == SQLITE_OK) {
        sqlite3_backup* b = sqlite3_backup_init(dst, "main", db_, "main");
        rc = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(dst);
        if (b) sqlite3_backup_finish(b);
      }
      if (rc != SQLITE_DONE) why = dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc);
      sqlite3_close_v2(dst);
      if (!why.empty()) ::unlink(to.c_str());
    }
    if (!why.empty())
      return "Its records could not be saved (" + to + ": " + why + "); restore " + path_ +
             " from a backup";
    return "Everything it held until now was saved to " + to +
           "; once no meshdeploy runs, put it back: mv " + to + " " + path_;
  }
  Status exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return fail(sqlite_error(db_, rc, path_, sql));
    return ok();
  }

  // An existing file must be a store of ours: anything else is refused
  // before a single table is added to it.
  Status is_ours() {
    std::lock_guard lock(mu_);
    Stmt q(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'store_schema'",
           path_);
    auto row = q.step();
    const std::string hint =
        ": refusing to use it. Point `state:` at the environment's store, or restore it from a "
        "backup";
    if (!row && row.error().code() == Errc::kCorruption)
      return fail(Errc::kCorruption, "state store " + path_ +
                                         " is not a meshdeploy state store (not an SQLite "
                                         "database, or a damaged one)" +
                                         hint);
    if (!row) return tl::unexpected(row.error());
    if (q.i64(0) == 0)
      return fail(Errc::kCorruption, "state store " + path_ +
                                         " is an SQLite database but not a meshdeploy state store "
                                         "(it has no store_schema table)" +
                                         hint);
    return ok();
  }

  Status upgrade(std::span<const SchemaStep> steps) {
    std::lock_guard lock(mu_);
    return tx(true, [&]() -> Status {
      MD_TRY_STATUS(
          exec("CREATE TABLE IF NOT EXISTS store_schema (version INTEGER PRIMARY KEY, "
               "applied_at INTEGER NOT NULL)"));
      Stmt q(db_, "SELECT coalesce(max(version), 0) FROM store_schema", path_);
      MD_TRY(q.step());
      int current = static_cast<int>(q.i64(0));
      auto todo = MD_TRY(steps_after(steps, current, path_));
      for (const SchemaStep& s : todo) {
        char* err = nullptr;
        int rc = sqlite3_exec(db_, s.sql, nullptr, nullptr, &err);
        sqlite3_free(err);
        if (rc != SQLITE_OK)
          return fail(sqlite_error(db_, rc, path_,
                                   "upgrade schema to version " + std::to_string(s.version)));
        Stmt ins(db_, "INSERT INTO store_schema (version, applied_at) VALUES (?1, ?2)", path_);
        MD_TRY(ins.bind(1, int64_t{s.version}).bind(2, clock_.now()).run());
        current = s.version;
      }
      version_ = current;
      return ok();
    });
  }

  Status commit(const Batch& in) override {
    Batch b = MD_TRY(prepare_batch(in, clock_.now()));
    std::lock_guard lock(mu_);
    return tx(true, [&]() -> Status {
      if (b.upsert_deployment) {
        const Deployment& d = *b.upsert_deployment;
        Stmt s(db_,
               "INSERT INTO deployments (id, environment, kind, version, previous_version, "
               "strategy, actor, triggered_by, status, reason, started_at, finished_at) VALUES "
               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO UPDATE "
               "SET environment = excluded.environment, kind = excluded.kind, version = "
               "excluded.version, previous_version = excluded.previous_version, strategy = "
               "excluded.strategy, actor = excluded.actor, triggered_by = excluded.triggered_by, "
               "status = excluded.status, reason = excluded.reason, started_at = "
               "excluded.started_at, finished_at = excluded.finished_at",
               path_);
        s.bind(1, d.id).bind(2, d.environment).bind(3, d.kind).bind(4, d.version);
        s.bind(5, d.previous_version).bind(6, d.strategy).bind(7, d.actor).bind(8, d.trigger);
        s.bind(9, status_name(d.status)).bind(10, d.reason).bind(11, d.started_at);
        MD_TRY(s.bind(12, d.finished_at).run());
      }
      for (const JournalEntry& j : b.journal) {
        Stmt s(db_,
               "INSERT INTO journal (deployment_id, seq, step, phase, outcome, detail, at) "
               "VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM journal WHERE "
               "deployment_id = ?1), ?2, ?3, ?4, ?5, ?6)",
               path_);
        s.bind(1, j.deployment_id).bind(2, j.step).bind(3, j.phase).bind(4, j.outcome);
        MD_TRY(s.bind(5, j.detail).bind(6, j.at).run());
      }
      for (const Release& r : b.upsert_releases) {
        Stmt s(db_,
               "INSERT INTO releases (environment, version, artifact_sha256, state, created_at, "
               "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (environment, version) "
               "DO UPDATE SET artifact_sha256 = CASE excluded.artifact_sha256 WHEN '' THEN "
               "releases.artifact_sha256 ELSE excluded.artifact_sha256 END, state = "
               "excluded.state, updated_at = excluded.updated_at",
               path_);
        s.bind(1, r.environment).bind(2, r.version).bind(3, r.artifact_sha256).bind(4, r.state);
        MD_TRY(s.bind(5, r.created_at).bind(6, r.updated_at).run());
      }
      for (const AuditEntry& a : b.audit) {
        Stmt s(db_,
               "INSERT INTO audit_log (at, actor, action, environment, target, detail) VALUES "
               "(?1, ?2, ?3, ?4, ?5, ?6)",
               path_);
        s.bind(1, a.at).bind(2, a.actor).bind(3, a.action).bind(4, a.environment);
        MD_TRY(s.bind(5, a.target).bind(6, a.detail).run());
      }
      for (const OutboxEvent& e : b.outbox) {
        Stmt s(db_,
               "INSERT INTO outbox (event_id, channel, environment, event_type, payload, status, "
               "attempts, created_at, next_attempt_at, last_error) VALUES (?1, ?2, ?3, ?4, ?5, "
               "'pending', 0, ?6, ?7, '') ON CONFLICT (channel, event_id) DO NOTHING",
               path_);
        s.bind(1, e.event_id).bind(2, e.channel).bind(3, e.environment).bind(4, e.event_type);
        MD_TRY(s.bind(5, e.payload).bind(6, e.created_at).bind(7, e.next_attempt_at).run());
      }
      return ok();
    });
  }

  Result<Deployment> deployment(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, std::string("SELECT ") + kDeploymentCols + " FROM deployments WHERE id = ?1",
           path_);
    s.bind(1, id);
    if (!MD_TRY(s.step())) return fail(Errc::kNotFound, "no deployment " + id);
    return read_deployment(s);
  }

  Result<std::vector<Deployment>> deployments(const std::string& environment, int limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           std::string("SELECT ") + kDeploymentCols +
               " FROM deployments WHERE (?1 = '' OR environment = ?1) ORDER BY started_at DESC, "
               "id DESC LIMIT ?2",
           path_);
    s.bind(1, environment).bind(2, sql_limit(limit));
    std::vector<Deployment> out;
    while (MD_TRY(s.step())) out.push_back(MD_TRY(read_deployment(s)));
    return out;
  }

  Result<std::optional<Deployment>> running(const std::string& environment) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           std::string("SELECT ") + kDeploymentCols +
               " FROM deployments WHERE environment = ?1 AND status = 'running' ORDER BY "
               "started_at DESC, id DESC LIMIT 1",
           path_);
    s.bind(1, environment);
    if (!MD_TRY(s.step())) return std::optional<Deployment>();
    return std::optional<Deployment>(MD_TRY(read_deployment(s)));
  }

  Result<std::vector<JournalEntry>> journal(const std::string& deployment_id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT seq, step, phase, outcome, detail, at FROM journal WHERE deployment_id = ?1 "
           "ORDER BY seq",
           path_);
    s.bind(1, deployment_id);
    std::vector<JournalEntry> out;
    while (MD_TRY(s.step()))
      out.push_back(
          {s.i64(0), deployment_id, s.text(1), s.text(2), s.text(3), s.text(4), s.time(5)});
    return out;
  }

  Result<std::vector<Release>> releases(const std::string& environment) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT version, artifact_sha256, state, created_at, updated_at FROM releases WHERE "
           "environment = ?1 ORDER BY created_at DESC, version DESC",
           path_);
    s.bind(1, environment);
    std::vector<Release> out;
    while (MD_TRY(s.step()))
      out.push_back({environment, s.text(0), s.text(1), s.text(2), s.time(3), s.time(4)});
    return out;
  }

  Result<std::vector<AuditEntry>> audit(const std::string& environment, int limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT id, at, actor, action, environment, target, detail FROM audit_log WHERE "
           "(?1 = '' OR environment = ?1) ORDER BY id DESC LIMIT ?2",
           path_);
    s.bind(1, environment).bind(2, sql_limit(limit));
    std::vector<AuditEntry> out;
    while (MD_TRY(s.step()))
      out.push_back({s.i64(0), s.time(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)});
    return out;
  }

  Result<std::optional<LockRow>> lock_row(const std::string& environment) {
    Stmt s(db_,
           "SELECT holder, deployment_id, acquired_at, expires_at FROM env_locks WHERE "
           "environment = ?1",
           path_);
    s.bind(1, environment);
    if (!MD_TRY(s.step())) return std::optional<LockRow>();
    return std::optional<LockRow>(LockRow{s.text(0), s.text(1), s.time(2), s.time(3)});
  }
  Status put_lock(const std::string& environment, const LockRow& row) {
    Stmt s(db_,
           "INSERT OR REPLACE INTO env_locks (environment, holder, deployment_id, acquired_at, "
           "expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
           path_);
    s.bind(1, environment).bind(2, row.holder).bind(3, row.deployment_id);
    MD_TRY(s.bind(4, row.acquired_at).bind(5, row.expires_at).run());
    return ok();
  }

  Result<LockInfo> acquire_lock(const std::string& environment, const std::string& holder,
                                const std::string& deployment_id, Millis ttl) override {
    std::lock_guard lock(mu_);
    LockRow row;
    MD_TRY_STATUS(tx(true, [&]() -> Status {
      auto cur = MD_TRY(lock_row(environment));
      row = MD_TRY(decide_acquire(environment, cur, holder, deployment_id, clock_.now(), ttl));
      return put_lock(environment, row);
    }));
    return LockInfo{environment, row.holder, row.deployment_id, row.acquired_at, row.expires_at};
  }

  Status renew_lock(const std::string& environment, const std::string& holder,
                    Millis ttl) override {
    std::lock_guard lock(mu_);
    return tx(true, [&]() -> Status {
      auto cur = MD_TRY(lock_row(environment));
      LockRow row = MD_TRY(decide_renew(environment, cur, holder, clock_.now(), ttl));
      return put_lock(environment, row);
    });
  }

  Status release_lock(const std::string& environment, const std::string& holder) override {
    std::lock_guard lock(mu_);
    if (!still_linked()) return fail(moved_error());
    Stmt s(db_, "DELETE FROM env_locks WHERE environment = ?1 AND holder = ?2", path_);
    MD_TRY(s.bind(1, environment).bind(2, holder).run());
    return ok();
  }

  Result<std::optional<LockInfo>> lock_info(const std::string& environment) override {
    std::lock_guard lock(mu_);
    auto cur = MD_TRY(lock_row(environment));
    return live_lock(environment, cur, clock_.now());
  }

  Result<std::vector<OutboxEvent>> due_events(SysTime now, int limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           std::string("SELECT ") + kOutboxCols +
               " FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY "
               "next_attempt_at, id LIMIT ?2",
           path_);
    s.bind(1, now).bind(2, sql_limit(limit));
    std::vector<OutboxEvent> out;
    while (MD_TRY(s.step())) out.push_back(MD_TRY(read_event(s)));
    return out;
  }

  Result<std::vector<OutboxEvent>> events(std::optional<OutboxStatus> status, int limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           std::string("SELECT ") + kOutboxCols +
               " FROM outbox WHERE (?1 = '' OR status = ?1) ORDER BY id DESC LIMIT ?2",
           path_);
    s.bind(1, status ? outbox_status_name(*status) : "").bind(2, sql_limit(limit));
    std::vector<OutboxEvent> out;
    while (MD_TRY(s.step())) out.push_back(MD_TRY(read_event(s)));
    return out;
  }

  Status update_event(int64_t id, const char* sql, const std::function<void(Stmt&)>& bind_rest) {
    std::lock_guard lock(mu_);
    if (!still_linked()) return fail(moved_error());
    Stmt s(db_, sql, path_);
    s.bind(1, id);
    bind_rest(s);
    if (MD_TRY(s.run()) == 0) return fail(Errc::kNotFound, "no outbox event " + std::to_string(id));
    return ok();
  }
  Status mark_delivered(int64_t id) override {
    return update_event(
        id, "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 WHERE id = ?1",
        [](Stmt&) {});
  }
  Status mark_attempt_failed(int64_t id, const std::string& error, SysTime next_attempt,
                             bool permanent) override {
    return update_event(id,
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, "
                        "next_attempt_at = ?3, status = ?4 WHERE id = ?1",
                        [&](Stmt& s) {
                          s.bind(2, error).bind(3, next_attempt);
                          s.bind(4, permanent ? "failed" : "pending");
                        });
  }
  Status retry_event(int64_t id) override {
    SysTime now = clock_.now();
    return update_event(id,
                        "UPDATE outbox SET status = 'pending', next_attempt_at = ?2 WHERE id = ?1",
                        [&](Stmt& s) { s.bind(2, now); });
  }

  int schema_version() const override { return version_; }
  std::string describe() const override { return path_; }

 private:
  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  Clock& clock_;
  int version_ = 0;
  bool moved_ = false;   // the file at path_ is no longer ours (guarded by mu_)
  std::string salvage_;  // what became of its records, once moved_ (guarded by mu_)
};

// Opens one connection to `path` (which must exist) with the store's settings.
Result<std::unique_ptr<SqliteStore>> connect(const std::string& path, Clock& clock) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(db, rc, path, "open");
    sqlite3_close_v2(db);
    return fail(std::move(e));
  }
  auto store = std::make_unique<SqliteStore>(db, path, clock);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return store;
}

Status configure(SqliteStore& store) {
  // WHY synchronous=FULL: the journal is what makes a killed deploy
  // resumable; a committed step must survive a power cut, not only a crash.
  MD_TRY_STATUS(store.exec("PRAGMA journal_mode = WAL"));
  MD_TRY_STATUS(store.exec("PRAGMA synchronous = FULL"));
  MD_TRY_STATUS(store.exec("PRAGMA foreign_keys = ON"));
  return ok();
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite(const std::string& path, Clock& clock,
                                           std::span<const SchemaStep> steps) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) MD_TRY_STATUS(fs::ensure_dir(p.parent_path()));
  if (!MD_TRY(check_store_file(path))) {
    MD_TRY_STATUS(create_store_file(path, [&](const std::string& tmp) -> Status {
      auto fresh = MD_TRY(connect(tmp, clock));
      MD_TRY_STATUS(configure(*fresh));
      return fresh->upgrade(steps);
    }));
    MD_TRY(check_store_file(path));  // tightens a store another process created meanwhile
  }
  auto store = MD_TRY(connect(path, clock));
  MD_TRY_STATUS(store->is_ours());
  MD_TRY_STATUS(configure(*store));
  MD_TRY_STATUS(store->upgrade(steps));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace md::state::internal
