// The history tables and everything plan() observes on the server. The only
// file of migrate/ that writes history SQL.
//
// supabase_migrations.schema_migrations (version text primary key,
//   statements text[], name text) — created and written exactly as the
//   Supabase CLI does, so `supabase migration list` / `db push` agree.
// supabase_migrations.meshdeploy_history — meshdeploy's own record, one row
//   per version: checksum, phase, progress of non-transactional files,
//   applied_at, duration, applied_by, deployment id. Format: docs/migrations.md
//   ("History tables"); `format` column = 1.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pg/pg.h"

namespace md::migrate {

struct SupabaseRow {
  std::string name;
  std::vector<std::string> statements;
};

struct MeshdeployRow {
  std::string name;
  std::string checksum;
  std::string phase;
  bool transactional = true;
  int statements_total = 0;
  int statements_done = 0;
  bool complete = false;  // applied_at is set
};

struct InvalidIndex {
  std::string index;  // schema-qualified
  std::string table;
};

// What the server holds. Built by observe(); plain data for the pure planner.
struct Observed {
  int server_version = 0;
  std::map<std::string, SupabaseRow> supabase;      // by version
  std::map<std::string, MeshdeployRow> meshdeploy;  // by version
  std::set<std::string> available_extensions;
  std::set<std::string> schemas;
  std::set<std::string> roles;
  std::vector<InvalidIndex> invalid_indexes;
};

// Reads history (absent tables are empty history) and catalog facts. Writes nothing.
Result<Observed> observe(pg::Connection& c);

// Creates the schema and both tables if missing (as the Supabase CLI does, plus ours).
Status ensure_tables(pg::Connection& c);

// SQL that records a completed file (both tables), for appending to the file's
// own transaction. `duration_ms` < 0 means "now() - started_at of the row".
std::string record_sql(const std::string& version, const std::string& name,
                       const std::vector<std::string>& supabase_statements,
                       const std::string& checksum, const std::string& phase, bool transactional,
                       int statements_total, int64_t duration_ms, int lock_retries,
                       const std::string& applied_by, const std::string& deployment_id);

// Non-transactional files: creates or updates the progress row.
Status record_progress(pg::Connection& c, const std::string& version, const std::string& name,
                       const std::string& checksum, const std::string& phase, int statements_total,
                       int done, const std::string& applied_by, const std::string& deployment_id);

// SQL that moves the progress of a non-transactional file to `done`, for a
// transaction that also runs statement done-1 (so both commit together).
std::string progress_sql(const std::string& version, int done);

// Baseline: records a file as applied without running it.
std::string baseline_sql(const std::string& version, const std::string& name,
                         const std::vector<std::string>& supabase_statements,
                         const std::string& checksum, const std::string& phase, bool transactional,
                         int statements_total, const std::string& applied_by);

// True when `index` exists and is valid / exists at all.
Result<std::optional<bool>> index_valid(pg::Connection& c, const std::string& qualified_index);

}  // namespace md::migrate
