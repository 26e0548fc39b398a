// The store's tables, as ordered upgrade steps per backend. A step is never
// edited once released: a change is a new step with the next version, added
// to BOTH lists (docs/formats/state-store.md describes each version).
// Times: SQLite keeps Unix milliseconds (INTEGER); Postgres keeps timestamptz.
#include "state/store_impl.h"

namespace md::state::internal {
namespace {

constexpr SchemaStep kSqlite[] = {
    {1, R"sql(
CREATE TABLE deployments (
  id               TEXT PRIMARY KEY,
  environment      TEXT NOT NULL,
  kind             TEXT NOT NULL,
  version          TEXT NOT NULL,
  previous_version TEXT NOT NULL,
  strategy         TEXT NOT NULL,
  actor            TEXT NOT NULL,
  triggered_by     TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','rolled_back')),
  reason           TEXT NOT NULL,
  started_at       INTEGER NOT NULL,
  finished_at      INTEGER
);
CREATE INDEX deployments_by_environment ON deployments (environment, started_at);
CREATE TABLE journal (
  deployment_id TEXT NOT NULL REFERENCES deployments (id),
  seq           INTEGER NOT NULL,
  step          TEXT NOT NULL,
  phase         TEXT NOT NULL CHECK (phase IN ('intent','outcome')),
  outcome       TEXT NOT NULL,
  detail        TEXT NOT NULL,
  at            INTEGER NOT NULL,
  PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE releases (
  environment     TEXT NOT NULL,
  version         TEXT NOT NULL,
  artifact_sha256 TEXT NOT NULL,
  state           TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (environment, version)
);
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  environment TEXT NOT NULL,
  target      TEXT NOT NULL,
  detail      TEXT NOT NULL
);
CREATE INDEX audit_log_by_environment ON audit_log (environment, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE env_locks (
  environment   TEXT PRIMARY KEY,
  holder        TEXT NOT NULL,
  deployment_id TEXT NOT NULL,
  acquired_at   INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
);
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT NOT NULL,
  channel         TEXT NOT NULL,
  environment     TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  payload         TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
  attempts        INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT NOT NULL,
  UNIQUE (channel, event_id)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
)sql"},
};

constexpr SchemaStep kPostgres[] = {
    {1, R"sql(
CREATE TABLE deployments (
  id               text PRIMARY KEY,
  environment      text NOT NULL,
  kind             text NOT NULL,
  version          text NOT NULL,
  previous_version text NOT NULL,
  strategy         text NOT NULL,
  actor            text NOT NULL,
  triggered_by     text NOT NULL,
  status           text NOT NULL CHECK (status IN ('running','succeeded','failed','rolled_back')),
  reason           text NOT NULL,
  started_at       timestamptz NOT NULL,
  finished_at      timestamptz
);
CREATE INDEX deployments_by_environment ON deployments (environment, started_at);
CREATE TABLE journal (
  deployment_id text NOT NULL REFERENCES deployments (id),
  seq           bigint NOT NULL,
  step          text NOT NULL,
  phase         text NOT NULL CHECK (phase IN ('intent','outcome')),
  outcome       text NOT NULL,
  detail        text NOT NULL,
  at            timestamptz NOT NULL,
  PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE releases (
  environment     text NOT NULL,
  version         text NOT NULL,
  artifact_sha256 text NOT NULL,
  state           text NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (environment, version)
);
CREATE TABLE audit_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  environment text NOT NULL,
  target      text NOT NULL,
  detail      text NOT NULL
);
CREATE INDEX audit_log_by_environment ON audit_log (environment, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TABLE env_locks (
  environment   text PRIMARY KEY,
  holder        text NOT NULL,
  deployment_id text NOT NULL,
  acquired_at   timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL
);
CREATE TABLE outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id        text NOT NULL,
  channel         text NOT NULL,
  environment     text NOT NULL,
  event_type      text NOT NULL,
  payload         text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending','delivered','failed')),
  attempts        integer NOT NULL,
  created_at      timestamptz NOT NULL,
  next_attempt_at timestamptz NOT NULL,
  last_error      text NOT NULL,
  UNIQUE (channel, event_id)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
)sql"},
};

}  // namespace

std::span<const SchemaStep> sqlite_schema() { return kSqlite; }
std::span<const SchemaStep> postgres_schema() { return kPostgres; }

}  // namespace md::state::internal
