// Private to src/state: what the SQLite and Postgres stores share — batch
// validation, the lease decisions (pure: current row + now in, new row or a
// conflict out), the backend factories and the schema-upgrade planner.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "state/state.h"

namespace md::state::internal {

// Normalises and checks a batch before any write: "" detail/payload become
// "{}", anything that is not a JSON object is kInvalidArgument, journal
// phases/outcomes are checked, empty event ids are assigned, zero times
// become `now`. The result is what the backend writes.
Result<Batch> prepare_batch(const Batch& in, SysTime now);

// The lock row as stored; holder "" means free.
struct LockRow {
  std::string holder;
  std::string deployment_id;
  SysTime acquired_at{};
  SysTime expires_at{};
};

// Who gets the lease: kConflict (with the user-facing message) while another
// holder's lease is live, else the row to write.
Result<LockRow> decide_acquire(const std::string& environment, const std::optional<LockRow>& cur,
                               const std::string& holder, const std::string& deployment_id,
                               SysTime now, Millis ttl);
// kConflict if `holder` no longer holds the row; else the row extended.
Result<LockRow> decide_renew(const std::string& environment, const std::optional<LockRow>& cur,
                             const std::string& holder, SysTime now, Millis ttl);
// The live lease as LockInfo, or nullopt when free or expired.
std::optional<LockInfo> live_lock(const std::string& environment, const std::optional<LockRow>& cur,
                                  SysTime now);

// One schema upgrade: the SQL that takes the store from version-1 to version.
struct SchemaStep {
  int version;
  const char* sql;
};
// Which steps to run from `current` (0 = empty store): the steps with a
// higher version, in order. kFailedPrecondition when `current` is newer than
// the last step (a newer meshdeploy wrote this store); `where` names it.
Result<std::span<const SchemaStep>> steps_after(std::span<const SchemaStep> steps, int current,
                                                const std::string& where);

std::span<const SchemaStep> sqlite_schema();
std::span<const SchemaStep> postgres_schema();

// Backends. `steps` is the schema to bring the store to (tests pass a prefix
// or an extension of the real one to exercise upgrades).
Result<std::unique_ptr<Store>> open_sqlite(const std::string& path, Clock& clock,
                                           std::span<const SchemaStep> steps);
Result<std::unique_ptr<Store>> open_postgres(const std::string& url, Clock& clock,
                                             std::span<const SchemaStep> steps);

// The SQLite store's file (sqlite_file.cc). What is at `path` before SQLite
// opens it: false when nothing is (a new store may be created), true for a
// non-empty regular file (tightened to the owner's bits when it is ours);
// kCorruption, with what to do, for a zero-length file, a non-regular file,
// or a missing store whose -wal file is still there.
Result<bool> check_store_file(const std::string& path);
// Creates a new store at `path` that appears there only complete: a temp
// file of mode 0600 in the same directory is passed to `init` (which builds
// the schema and closes it), then linked to `path`. Not an error if another
// process created `path` meanwhile: theirs is kept, ours dropped.
Status create_store_file(const std::string& path,
                         const std::function<Status(const std::string&)>& init);

// Splits the `schema` query parameter out of a Postgres URL. kInvalidArgument
// for a schema name that is not [a-z_][a-z0-9_]{0,62}.
struct PgTarget {
  std::string url;     // for libpq, without `schema`
  std::string schema;  // default "meshdeploy"
};
Result<PgTarget> parse_pg_url(const std::string& url);

}  // namespace md::state::internal
