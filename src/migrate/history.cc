#include "migrate/history.h"

namespace md::migrate {
namespace {

using pg::quote_literal;

std::string lit_or_null(const std::string& s) { return s.empty() ? "NULL" : quote_literal(s); }

std::vector<std::string> as_strings(const std::vector<pg::Value>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(x.value_or(""));
  return out;
}

}  // namespace

Status ensure_tables(pg::Connection& c) {
  // The first five statements are the Supabase CLI's own (pkg/migration/history.go),
  // so a database set up by either tool is the same to the other.
  static const char* kSql =
      "SET lock_timeout = '4s';"
      "CREATE SCHEMA IF NOT EXISTS supabase_migrations;"
      "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL "
      "PRIMARY KEY);"
      "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements "
      "text[];"
      "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;"
      "CREATE TABLE IF NOT EXISTS supabase_migrations.meshdeploy_history ("
      " version text NOT NULL PRIMARY KEY,"
      " name text NOT NULL,"
      " checksum text NOT NULL,"
      " phase text NOT NULL,"
      " transactional boolean NOT NULL,"
      " statements_total integer NOT NULL,"
      " statements_done integer NOT NULL,"
      " started_at timestamptz NOT NULL DEFAULT now(),"
      " applied_at timestamptz,"
      " duration_ms bigint,"
      " lock_retries integer NOT NULL DEFAULT 0,"
      " applied_by text NOT NULL,"
      " deployment_id text,"
      " format integer NOT NULL DEFAULT 1);"
      "RESET lock_timeout;";
  auto r = c.exec_script(kSql);
  if (!r) return fail(std::move(r.error()).with_context("create history tables"));
  return ok();
}

Result<Observed> observe(pg::Connection& c) {
  Observed o;
  o.server_version = c.server_version();
  auto cat = MD_TRY_CTX(
      c.exec("SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS s,"
             " to_regclass('supabase_migrations.meshdeploy_history') IS NOT NULL AS m,"
             " (SELECT coalesce(array_agg(name::text), '{}') FROM pg_available_extensions) AS ext,"
             " (SELECT coalesce(array_agg(nspname::text), '{}') FROM pg_namespace) AS nsp,"
             " (SELECT coalesce(array_agg(rolname::text), '{}') FROM pg_roles) AS rol"),
      "read catalog");
  auto set_of = [&](const char* col) -> Result<std::set<std::string>> {
    auto arr = MD_TRY(pg::parse_text_array(cat.at(0, col).value_or("{}")));
    std::set<std::string> s;
    for (auto& v : arr) s.insert(v.value_or(""));
    return s;
  };
  o.available_extensions = MD_TRY(set_of("ext"));
  o.schemas = MD_TRY(set_of("nsp"));
  o.roles = MD_TRY(set_of("rol"));
  if (cat.at(0, "s") == "t") {
    auto rows =
        MD_TRY_CTX(c.exec("SELECT version, coalesce(name, '') AS name, statements::text AS st"
                          " FROM supabase_migrations.schema_migrations"),
                   "read supabase_migrations.schema_migrations");
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      SupabaseRow r;
      r.name = rows.at(i, "name").value_or("");
      if (rows.at(i, "st"))
        r.statements = as_strings(MD_TRY(pg::parse_text_array(*rows.at(i, "st"))));
      o.supabase[*rows.at(i, "version")] = std::move(r);
    }
  }
  if (cat.at(0, "m") == "t") {
    auto rows =
        MD_TRY_CTX(c.exec("SELECT version, name, checksum, phase, transactional, statements_total,"
                          " statements_done, applied_at IS NOT NULL AS complete"
                          " FROM supabase_migrations.meshdeploy_history"),
                   "read meshdeploy_history");
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      MeshdeployRow r;
      r.name = rows.at(i, "name").value_or("");
      r.checksum = rows.at(i, "checksum").value_or("");
      r.phase = rows.at(i, "phase").value_or("");
      r.transactional = rows.at(i, "transactional") == "t";
      r.statements_total = std::stoi(rows.at(i, "statements_total").value_or("0"));
      r.statements_done = std::stoi(rows.at(i, "statements_done").value_or("0"));
      r.complete = rows.at(i, "complete") == "t";
      o.meshdeploy[*rows.at(i, "version")] = std::move(r);
    }
  }
  auto inv = MD_TRY_CTX(
      c.exec(
          "SELECT quote_ident(n.nspname) || '.' || quote_ident(ci.relname) AS idx,"
          " n.nspname || '.' || ct.relname AS tbl"
          " FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid"
          " JOIN pg_class ct ON ct.oid = i.indrelid JOIN pg_namespace n ON n.oid = ci.relnamespace"
          " WHERE NOT i.indisvalid ORDER BY 1"),
      "find invalid indexes");
  for (size_t i = 0; i < inv.rows.size(); ++i)
    o.invalid_indexes.push_back(
        InvalidIndex{inv.at(i, "idx").value_or(""), inv.at(i, "tbl").value_or("")});
  return o;
}

std::string record_sql(const std::string& version, const std::string& name,
                       const std::vector<std::string>& supabase_statements,
                       const std::string& checksum, const std::string& phase, bool transactional,
                       int statements_total, int64_t duration_ms, int lock_retries,
                       const std::string& applied_by, const std::string& deployment_id) {
  std::string v = quote_literal(version);
  std::string dur = duration_ms < 0
                        ? "(extract(epoch FROM clock_timestamp() - h.started_at) * 1000)::bigint"
                        : std::to_string(duration_ms);
  std::string sql =
      "INSERT INTO supabase_migrations.schema_migrations(version, name, statements) VALUES (" + v +
      ", " + quote_literal(name) + ", " + quote_literal(pg::make_text_array(supabase_statements)) +
      "::text[]);\n";
  // The progress row of a non-transactional file exists already; a
  // transactional file gets its row here, in the same transaction.
  sql +=
      "INSERT INTO supabase_migrations.meshdeploy_history AS h (version, name, checksum, phase, "
      "transactional,"
      " statements_total, statements_done, started_at, applied_by, deployment_id) VALUES (" +
      v + ", " + quote_literal(name) + ", " + quote_literal(checksum) + ", " +
      quote_literal(phase) + ", " + (transactional ? "true" : "false") + ", " +
      std::to_string(statements_total) + ", " + std::to_string(statements_total) +
      ", transaction_timestamp(), " + quote_literal(applied_by) + ", " +
      lit_or_null(deployment_id) +
      ") ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, statements_done = "
      "EXCLUDED.statements_done;\n";
  sql +=
      "UPDATE supabase_migrations.meshdeploy_history h SET applied_at = clock_timestamp(), "
      "duration_ms = " +
      dur + ", lock_retries = h.lock_retries + " + std::to_string(lock_retries) +
      " WHERE version = " + v;
  return sql;
}

Status record_progress(pg::Connection& c, const std::string& version, const std::string& name,
                       const std::string& checksum, const std::string& phase, int statements_total,
                       int done, const std::string& applied_by, const std::string& deployment_id) {
  auto r = c.exec(
      "INSERT INTO supabase_migrations.meshdeploy_history (version, name, checksum, phase, "
      "transactional,"
      " statements_total, statements_done, applied_by, deployment_id) VALUES ($1, $2, $3, $4, "
      "false, $5, $6, $7, $8)"
      " ON CONFLICT (version) DO UPDATE SET statements_done = EXCLUDED.statements_done, checksum = "
      "EXCLUDED.checksum",
      {version, name, checksum, phase, std::to_string(statements_total), std::to_string(done),
       applied_by, deployment_id.empty() ? pg::Value() : pg::Value(deployment_id)});
  if (!r) return fail(std::move(r.error()).with_context("record progress of " + version));
  return ok();
}

std::string progress_sql(const std::string& version, int done) {
  return "UPDATE supabase_migrations.meshdeploy_history SET statements_done = " +
         std::to_string(done) + " WHERE version = " + quote_literal(version);
}

std::string baseline_sql(const std::string& version, const std::string& name,
                         const std::vector<std::string>& supabase_statements,
                         const std::string& checksum, const std::string& phase, bool transactional,
                         int statements_total, const std::string& applied_by) {
  return record_sql(version, name, supabase_statements, checksum, phase, transactional,
                    statements_total, 0, 0, applied_by, "baseline");
}

Result<std::optional<bool>> index_valid(pg::Connection& c, const std::string& qualified_index) {
  auto r = MD_TRY(c.exec("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                         {qualified_index}));
  if (r.empty()) return std::optional<bool>();
  return std::optional<bool>(r.at(0, "indisvalid") == "t");
}

}  // namespace md::migrate
