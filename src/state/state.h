// The state store: deployments, their step journal, releases, the audit log,
// the environment deploy lock (a lease) and the notification outbox.
// One interface, two implementations: SQLite (embedded default) and Postgres
// (teams, several controllers). The same test suite runs against both.
// CONTRACT: names below are stable for deploy/, notify/, server/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::config {
struct Environment;
}

namespace md::state {

enum class DeployStatus { kRunning, kSucceeded, kFailed, kRolledBack };
std::string_view status_name(DeployStatus s);  // "running", "succeeded", ...
// The inverse of status_name; nullopt for an unknown name.
std::optional<DeployStatus> parse_status(std::string_view name);

struct Deployment {
  std::string id{};  // unique, e.g. "d-20261122-090000-ab12"
  std::string environment{};
  std::string kind = "deploy";  // "deploy" | "rollback"
  std::string version{};
  std::string previous_version{};  // "" for the first deploy
  std::string strategy{};          // "blue_green" | "canary"
  std::string actor{};             // who: user, CI identity
  std::string trigger{};           // what: "cli", "ci", "webhook", "auto-rollback"
  DeployStatus status = DeployStatus::kRunning;
  std::string reason{};  // failure / rollback reason ("" if none)
  SysTime started_at{};
  std::optional<SysTime> finished_at{};
};

// One journal record: an intent before a step runs, an outcome after it.
struct JournalEntry {
  int64_t seq = 0;  // assigned by the store, increasing per deployment
  std::string deployment_id{};
  std::string step{};     // e.g. "migrate_expand", "switch_traffic"
  std::string phase{};    // "intent" | "outcome"
  std::string outcome{};  // outcome only: "ok" | "failed" | "skipped"
  std::string detail{};   // JSON object text (already redacted)
  SysTime at{};
};

struct Release {
  std::string environment{};
  std::string version{};
  std::string artifact_sha256{};  // "" in an upsert: keep the one recorded
  std::string state{};            // "live" | "warm" | "stopped" | "pruned" | "failed"
  SysTime created_at{};
  SysTime updated_at{};
};

struct AuditEntry {
  int64_t id = 0;  // assigned by the store
  SysTime at{};
  std::string actor{};
  std::string action{};  // e.g. "deploy.start", "secrets.set", "rollback"
  std::string environment{};
  std::string target{};  // version, secret name, ...
  std::string detail{};  // JSON object text (already redacted)
};

struct LockInfo {
  std::string environment{};
  std::string holder{};  // "user@host pid N"
  std::string deployment_id{};
  SysTime acquired_at{};
  SysTime expires_at{};
};

enum class OutboxStatus { kPending, kDelivered, kFailed };
std::string_view outbox_status_name(OutboxStatus s);  // "pending" | "delivered" | "failed"
std::optional<OutboxStatus> parse_outbox_status(std::string_view name);

struct OutboxEvent {
  int64_t id = 0;          // assigned by the store
  std::string event_id{};  // stable id for idempotent delivery (webhook-id)
  std::string channel{};   // channel name from the config
  std::string environment{};
  std::string event_type{};  // started | succeeded | failed | rolled_back | canary_step |
                             // approval_needed | test
  std::string payload{};     // JSON object text (already redacted)
  OutboxStatus status = OutboxStatus::kPending;
  int attempts = 0;
  SysTime created_at{};
  SysTime next_attempt_at{};
  std::string last_error{};  // redacted
};

// Everything one deploy step writes, committed in one transaction: the
// outbox event is written with the journal record of the step that caused it.
// Applied in field order: deployment, journal, releases, audit, outbox.
// - upsert_deployment replaces every field of the row with that id.
// - journal: `seq` is ignored and assigned (max + 1 per deployment); the
//   deployment must exist (in the store or earlier in the batch); phase is
//   "intent" (outcome "") or "outcome" (outcome "ok" | "failed" | "skipped").
// - releases are keyed by (environment, version); created_at keeps the first
//   write's value; a zero created_at / updated_at means "now".
// - audit entries are appended (there is no way to change or remove one);
//   a zero `at` means "now".
// - outbox events are keyed by (channel, event_id): committing the same event
//   again is not an error and changes nothing (a resumed deploy re-commits).
//   An empty event_id is assigned ("evt_" + 24 hex digits). A zero
//   next_attempt_at means "due now"; status/attempts/last_error are ignored.
// - detail/payload fields must be "" (stored as "{}") or a JSON object:
//   anything else is kInvalidArgument and nothing is written.
// (Default member initializers let callers write `{.journal = {...}}`.)
struct Batch {
  std::optional<Deployment> upsert_deployment{};
  std::vector<JournalEntry> journal{};
  std::vector<Release> upsert_releases{};
  std::vector<AuditEntry> audit{};
  std::vector<OutboxEvent> outbox{};
};

// Thread-safe (each implementation serialises internally); one Store per
// process is enough, and several processes (or machines, for Postgres) may
// share one store. Every call blocks on the database. Errors: kUnavailable
// (retryable: database busy past the busy timeout, server unreachable), kIo,
// kCorruption (the SQLite file is damaged), kInvalidArgument (bad batch).
class Store {
 public:
  virtual ~Store() = default;

  // Writes the whole batch in one transaction, or nothing.
  virtual Status commit(const Batch& batch) = 0;

  // kNotFound if no such deployment.
  virtual Result<Deployment> deployment(const std::string& id) = 0;
  // Newest first; `environment` "" = all.
  virtual Result<std::vector<Deployment>> deployments(const std::string& environment,
                                                      int limit) = 0;
  // The running deployment of an environment, if any.
  virtual Result<std::optional<Deployment>> running(const std::string& environment) = 0;
  virtual Result<std::vector<JournalEntry>> journal(const std::string& deployment_id) = 0;
  virtual Result<std::vector<Release>> releases(const std::string& environment) = 0;
  virtual Result<std::vector<AuditEntry>> audit(const std::string& environment, int limit) = 0;

  // Lease lock. Takes the environment's lock for `ttl`, or takes over an
  // expired one. kConflict with "environment E is locked by H (deployment D)
  // since T" while someone else holds a live lease. Re-acquiring one's own
  // lock (same holder) renews it and keeps acquired_at. The decision is made
  // inside one transaction that holds the row (SQLite: BEGIN IMMEDIATE;
  // Postgres: SELECT ... FOR UPDATE), so two processes never both win.
  virtual Result<LockInfo> acquire_lock(const std::string& environment, const std::string& holder,
                                        const std::string& deployment_id, Millis ttl) = 0;
  // Extends a held lease to now + ttl; kConflict if it was lost (taken by
  // someone else after it expired, or released). An expired lease nobody
  // took is still ours and is renewed.
  virtual Status renew_lock(const std::string& environment, const std::string& holder,
                            Millis ttl) = 0;
  // Not an error if the lock is not held by `holder`.
  virtual Status release_lock(const std::string& environment, const std::string& holder) = 0;
  // The live lease of an environment; nullopt when free or expired.
  virtual Result<std::optional<LockInfo>> lock_info(const std::string& environment) = 0;

  // Outbox: pending events due at `now`, oldest first, at most `limit`.
  virtual Result<std::vector<OutboxEvent>> due_events(SysTime now, int limit) = 0;
  virtual Result<std::vector<OutboxEvent>> events(std::optional<OutboxStatus> status,
                                                  int limit) = 0;
  // Marks an event delivered (attempts + 1). kNotFound if no such id.
  virtual Status mark_delivered(int64_t id) = 0;
  // Records a failed attempt (attempts + 1, last_error): reschedules at
  // `next_attempt` or, if `permanent`, marks it failed for good. kNotFound.
  virtual Status mark_attempt_failed(int64_t id, const std::string& error, SysTime next_attempt,
                                     bool permanent) = 0;
  // Puts a failed event back to pending, due now. kNotFound if no such id.
  virtual Status retry_event(int64_t id) = 0;

  // The store schema version this binary wrote or upgraded to.
  virtual int schema_version() const = 0;
  // Where the store lives, for messages: the SQLite path or the Postgres URL
  // with its password hidden.
  virtual std::string describe() const = 0;
};

// The newest store schema version this binary knows (docs/formats/state-store.md).
int latest_schema_version();

// Opens (creating and upgrading the schema as needed) the store at `url`:
// "postgres://..." / "postgresql://..." for Postgres, "sqlite:PATH" or a
// plain path for SQLite. `clock` is used for lease times and timestamps.
// SQLite: the file and its directory are created if missing; WAL journal,
// 10 s busy timeout. Postgres: the tables live in the schema named by the
// URL's `schema` query parameter (default "meshdeploy"; created if missing;
// the parameter is not passed to libpq). Fails with kFailedPrecondition when
// the store's schema is newer than this binary knows, kInvalidArgument for a
// malformed URL, kUnavailable when the database cannot be reached.
Result<std::unique_ptr<Store>> open_store(const std::string& url, Clock& clock = real_clock());

// The store URL of a resolved environment (`state:`, default
// .meshdeploy/state.db): a relative SQLite path is taken relative to the
// directory of meshdeploy.yml; Postgres URLs and "agent:<host>" (the store
// that host's agent serves, which open_store refuses: deploy::open_state
// reaches it) are returned as they are.
std::string store_url(const config::Environment& env);

}  // namespace md::state
