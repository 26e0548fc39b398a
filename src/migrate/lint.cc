#include "migrate/lint.h"

#include <algorithm>
#include <set>

namespace md::migrate {
namespace {

using S = Severity;

const std::vector<RuleDoc> kRules = {
    {"adding-field-with-default", S::kError,
     "a volatile default (or any default before Postgres 11) rewrites the whole table under an "
     "ACCESS "
     "EXCLUSIVE lock: every read and write waits until it finishes",
     "add the column without a default (or with a constant one on Postgres 11+), set the default "
     "in a "
     "second statement, then backfill existing rows in batches"},
    {"adding-serial-column", S::kError,
     "adding a serial or identity column fills every existing row: a full table rewrite under "
     "ACCESS "
     "EXCLUSIVE",
     "create the table with the column from the start, or add a nullable bigint column, a sequence "
     "and a "
     "default, and backfill in batches"},
    {"adding-stored-generated-column", S::kError,
     "a STORED generated column is computed for every existing row: a full rewrite under ACCESS "
     "EXCLUSIVE",
     "add a plain column, fill it with a trigger for new rows and a batched backfill for old ones"},
    {"adding-required-field", S::kError,
     "NOT NULL without a default fails on a table with rows, and the old release's INSERTs that do "
     "not "
     "name the column fail once it exists",
     "add the column nullable or with a default; enforce NOT NULL later with a validated CHECK"},
    {"adding-not-nullable-field", S::kError,
     "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE to check every row",
     "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c (in a later "
     "statement); "
     "then SET NOT NULL (Postgres 12+ uses the validated constraint and skips the scan); drop c"},
    {"require-concurrent-index-creation", S::kError,
     "CREATE INDEX without CONCURRENTLY blocks every write to the table (SHARE lock) until the "
     "index is "
     "built",
     "CREATE INDEX CONCURRENTLY in a file of its own (it cannot run in a transaction; meshdeploy "
     "runs "
     "such files statement by statement and resumes them)"},
    {"require-concurrent-index-deletion", S::kError,
     "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table: reads and writes wait",
     "DROP INDEX CONCURRENTLY IF EXISTS name"},
    {"constraint-missing-not-valid", S::kError,
     "adding a CHECK or FOREIGN KEY constraint validates every row while holding a lock that "
     "blocks "
     "writes (and, for a foreign key, the referenced table too)",
     "ADD CONSTRAINT ... NOT VALID (instant), then VALIDATE CONSTRAINT in a separate statement "
     "(takes only "
     "SHARE UPDATE EXCLUSIVE)"},
    {"adding-foreign-key-constraint", S::kError,
     "a column added with REFERENCES validates at once and locks both tables",
     "add the column first, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and VALIDATE "
     "CONSTRAINT"},
    {"changing-column-type", S::kError,
     "changing a column's type usually rewrites the table and its indexes under ACCESS EXCLUSIVE, "
     "and the "
     "old release may not understand the new type (only varchar(n) to larger/text and similar are "
     "free)",
     "add a new column of the new type, write both from the application, backfill in batches, "
     "switch "
     "reads, then drop the old column in a contract migration"},
    {"renaming-column", S::kError,
     "the release still running during the switch queries the old column name and fails",
     "add a new column, write both, backfill, switch reads, then drop the old column (contract)"},
    {"renaming-table", S::kError,
     "the release still running during the switch queries the old table name and fails",
     "create the new table (or a view with the new name over the old one), move the application, "
     "then "
     "drop the old name in a contract migration"},
    {"ban-drop-column", S::kError,
     "the release still running may read or write the column; dropping it breaks those queries and "
     "loses "
     "its data",
     "stop using the column in a release first, then drop it in a contract migration (runs after "
     "the old "
     "release stopped); acknowledge with meshdeploy:allow once that is so"},
    {"ban-drop-table", S::kError, "the release still running may use the table; its data is gone",
     "stop using the table in a release first, then drop it in a contract migration; keep a "
     "backup"},
    {"ban-drop-database", S::kError, "dropping a database loses every table in it",
     "do it by hand, never from a migration"},
    {"ban-truncate", S::kError, "TRUNCATE takes ACCESS EXCLUSIVE and deletes every row",
     "DELETE in batches, or acknowledge when the table is known to be unused"},
    {"disallowed-unique-constraint", S::kError,
     "ADD UNIQUE builds its index under ACCESS EXCLUSIVE: reads and writes wait for the build",
     "CREATE UNIQUE INDEX CONCURRENTLY idx ...; then ADD CONSTRAINT c UNIQUE USING INDEX idx"},
    {"adding-primary-key-constraint", S::kError,
     "ADD PRIMARY KEY builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE",
     "CREATE UNIQUE INDEX CONCURRENTLY idx ...; then ADD CONSTRAINT pk PRIMARY KEY USING INDEX "
     "idx"},
    {"adding-exclusion-constraint", S::kError,
     "an EXCLUDE constraint builds its index and checks every row under ACCESS EXCLUSIVE",
     "create the table with it, or accept the lock in a maintenance window (acknowledge)"},
    {"ban-vacuum-full", S::kError, "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
     "plain VACUUM, or pg_repack outside the migration"},
    {"ban-cluster", S::kError, "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
     "pg_repack outside the migration"},
    {"require-concurrent-refresh", S::kError,
     "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view until it finishes",
     "add a unique index on the view and REFRESH MATERIALIZED VIEW CONCURRENTLY"},
    {"require-concurrent-reindex", S::kError,
     "REINDEX without CONCURRENTLY blocks writes (and reads that use the index)",
     "REINDEX ... CONCURRENTLY (Postgres 12+), in a file of its own"},
    {"table-rewrite", S::kError,
     "SET TABLESPACE / SET LOGGED / SET UNLOGGED / SET ACCESS METHOD rewrite the table under "
     "ACCESS "
     "EXCLUSIVE",
     "do it outside a deploy, in a maintenance window"},
    {"identity-change", S::kError,
     "adding, changing or dropping an identity or generation expression changes how the running "
     "release's "
     "INSERTs behave and takes ACCESS EXCLUSIVE",
     "give the column a sequence default first (expand), move the application, then change "
     "identity "
     "(contract)"},
    {"explicit-lock", S::kError,
     "LOCK TABLE in a strong mode holds every conflicting query until the migration commits",
     "remove the LOCK, or use a weaker mode"},
    {"unbatched-backfill", S::kError,
     "an UPDATE or DELETE in the same transaction as DDL on that table holds the DDL's ACCESS "
     "EXCLUSIVE lock "
     "for the whole backfill",
     "backfill in its own migration (or outside migrations), in batches of a few thousand rows"},
    {"transaction-nesting", S::kError,
     "meshdeploy runs each file in its own transaction; BEGIN/COMMIT inside the file end it early, "
     "so a "
     "failure half-applies the file",
     "remove BEGIN/COMMIT from the file"},
    {"ban-alter-domain-with-add-constraint", S::kError,
     "ALTER DOMAIN ADD CONSTRAINT checks every column of that domain while holding locks",
     "add the constraint NOT VALID and VALIDATE it separately"},
    {"missing-lock-timeout", S::kWarning,
     "meshdeploy sets lock_timeout for every migration, but the Supabase CLI and psql do not: run "
     "there, "
     "this file could queue behind a long query and block every other query on the table",
     "start the file with SET lock_timeout = '3s';"},
    {"ban-drop-not-null", S::kWarning,
     "dropping NOT NULL lets the new release write NULLs the old release may not expect",
     "make sure the old release handles NULL"},
    {"ban-create-domain-with-constraint", S::kWarning,
     "a domain's constraints cannot be changed later without scanning every column that uses it",
     "use a CHECK constraint on the table instead"},
    {"prefer-jsonb", S::kWarning,
     "json has no equality operator: SELECT DISTINCT and UNION on the table break, and it is "
     "slower",
     "use jsonb"},
    {"prefer-text-field", S::kWarning,
     "changing varchar(n)'s limit later may need an ACCESS EXCLUSIVE lock",
     "text with a CHECK (char_length(col) <= n) constraint"},
    {"prefer-timestamptz", S::kWarning,
     "timestamp without time zone is read in the session's time zone: values shift between clients",
     "timestamptz"},
    {"prefer-bigint", S::kWarning,
     "an int/serial key runs out at 2^31; changing it later rewrites the table",
     "bigint / bigserial / bigint generated always as identity"},
    {"ban-char-field", S::kWarning, "char(n) pads with spaces and is no faster than text", "text"},
    {"unanalysed-sql", S::kWarning,
     "meshdeploy reads every statement with Postgres's own parser, with the PL/pgSQL of DO blocks "
     "and of "
     "the functions the run calls; SQL built at run time (EXECUTE) or rejected by the Postgres 15 "
     "grammar "
     "cannot be read, so what it locks, rewrites or drops is unknown",
     "write the statements out (or EXECUTE a constant string); otherwise check by hand what it "
     "locks and "
     "acknowledge with -- meshdeploy:allow unanalysed-sql <reason>"},
};

bool has(const std::vector<Token>& t, std::string_view w, size_t from = 0) {
  for (size_t k = from; k < t.size(); ++k)
    if (t[k].kind == TokKind::kWord && t[k].text == w) return true;
  return false;
}

// Index of the word sequence `ws` (at any depth) from `from`; npos if none.
size_t find_seq(const std::vector<Token>& t, std::initializer_list<std::string_view> ws,
                size_t from = 0) {
  for (size_t k = from; k + ws.size() <= t.size(); ++k) {
    size_t j = 0;
    for (std::string_view w : ws) {
      if (t[k + j].kind != TokKind::kWord || t[k + j].text != w) break;
      ++j;
    }
    if (j == ws.size()) return k;
  }
  return std::string::npos;
}

const std::set<std::string> kVolatile = {
    "random",           "clock_timestamp",    "gen_random_uuid",
    "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "nextval",          "timeofday",          "txid_current",
    "gen_random_bytes", "uuid_generate_v7"};

class Linter {
 public:
  Linter(const std::vector<Token>& t, const StatementFacts& f, const AnalysisContext& ctx,
         const std::string& file, int line)
      : t_(t), f_(f), ctx_(ctx), file_(file), line_(line) {}

  std::vector<Finding> run() {
    if (t_.empty()) return {};
    const std::string& w0 = t_[0].text;
    bool existing = !f_.target.empty() && !ctx_.new_relations.count(f_.target);
    if (f_.explicit_transaction)
      add("transaction-nesting", "explicit " + f_.summary + " in a migration file");
    if (w0 == "alter" && t_.size() > 1 && t_[1].text == "table" && existing) alter_table();
    if (existing)
      for (const std::string& col : f_.inline_checks)
        add("constraint-missing-not-valid",
            "inline CHECK on new column " + f_.target + "." + col +
                " validates every row under ACCESS EXCLUSIVE (a column "
                "constraint cannot be NOT VALID)");
    if (w0 == "alter" && t_.size() > 1 && t_[1].text == "table") column_types(true);
    if (w0 == "create" && has(t_, "table") && !has(t_, "index")) column_types(false);
    if (w0 == "create" && f_.summary.find("INDEX") != std::string::npos && existing &&
        f_.summary.find("CONCURRENTLY") == std::string::npos)
      add("require-concurrent-index-creation", f_.summary + " on an existing table");
    if (w0 == "drop") drop(existing);
    if (w0 == "vacuum" && f_.summary == "VACUUM FULL") add("ban-vacuum-full", "VACUUM FULL");
    if (w0 == "cluster") add("ban-cluster", f_.summary);
    if (w0 == "refresh" && f_.summary.find("CONCURRENTLY") == std::string::npos && existing)
      add("require-concurrent-refresh", f_.summary);
    if (w0 == "reindex" && f_.summary.find("CONCURRENTLY") == std::string::npos)
      add("require-concurrent-reindex", f_.summary);
    if (w0 == "truncate" && existing) add("ban-truncate", f_.summary);
    if (w0 == "lock" && existing) {
      for (const Lock& l : f_.locks)
        if (l.mode >= LockMode::kShare) add("explicit-lock", f_.summary);
    }
    if ((w0 == "update" || w0 == "delete") && existing && ctx_.ddl_tables.count(f_.target))
      add("unbatched-backfill", f_.summary + " after DDL on the same table in this file");
    if (w0 == "alter" && t_.size() > 1 && t_[1].text == "domain" &&
        find_seq(t_, {"add", "constraint"}) != std::string::npos && !has(t_, "valid"))
      add("ban-alter-domain-with-add-constraint", f_.summary);
    if (w0 == "create" && t_.size() > 1 && t_[1].text == "domain" &&
        (has(t_, "check") || has(t_, "constraint")))
      add("ban-create-domain-with-constraint", f_.summary);
    if (!ctx_.file_sets_lock_timeout) {
      for (const Lock& l : f_.locks)
        if (!l.new_object && l.mode >= LockMode::kShare && !ctx_.warned_lock_timeout) {
          add("missing-lock-timeout", f_.summary + " takes " + std::string(lock_mode_name(l.mode)) +
                                          " on " + l.target +
                                          " without SET lock_timeout in the file");
          break;
        }
    }
    return std::move(out_);
  }

 private:
  void add(std::string_view rule, std::string message) {
    const RuleDoc* d = find_rule(rule);
    Finding f;
    f.file = file_;
    f.line = line_;
    f.rule = std::string(rule);
    f.severity = d ? d->severity : Severity::kError;
    f.message = std::move(message);
    if (d) {
      f.why = std::string(d->why);
      f.recipe = std::string(d->recipe);
    }
    out_.push_back(std::move(f));
  }

  // Token ranges of ALTER TABLE's comma-separated actions.
  std::vector<std::pair<size_t, size_t>> actions() const {
    std::vector<std::pair<size_t, size_t>> out;
    size_t k = 2;
    while (k < t_.size() &&
           !(t_[k].kind == TokKind::kWord &&
             (t_[k].text == "add" || t_[k].text == "alter" || t_[k].text == "drop" ||
              t_[k].text == "rename" || t_[k].text == "set" || t_[k].text == "validate" ||
              t_[k].text == "cluster" || t_[k].text == "enable" || t_[k].text == "disable" ||
              t_[k].text == "attach" || t_[k].text == "detach" || t_[k].text == "owner" ||
              t_[k].text == "replica" || t_[k].text == "inherit" || t_[k].text == "no" ||
              t_[k].text == "force" || t_[k].text == "reset" || t_[k].text == "of" ||
              t_[k].text == "not")))
      ++k;
    int depth = 0;
    size_t start = k;
    for (; k < t_.size(); ++k) {
      if (t_[k].text == "(" && t_[k].kind == TokKind::kPunct) ++depth;
      if (t_[k].text == ")" && t_[k].kind == TokKind::kPunct) --depth;
      if (depth == 0 && t_[k].kind == TokKind::kPunct && t_[k].text == ",") {
        out.emplace_back(start, k);
        start = k + 1;
      }
    }
    if (start < t_.size()) out.emplace_back(start, t_.size());
    return out;
  }

  bool word(size_t k, std::string_view w) const {
    return k < t_.size() && t_[k].kind == TokKind::kWord && t_[k].text == w;
  }
  bool range_has(size_t b, size_t e, std::string_view w) const {
    for (size_t k = b; k < e; ++k)
      if (word(k, w)) return true;
    return false;
  }

  void alter_table() {
    const std::string& tbl = f_.target;
    for (auto [b, e] : actions()) {
      if (word(b, "add")) {
        size_t k = b + 1;
        bool constraint = word(k, "constraint");
        if (constraint) k += 2;
        if (word(k, "foreign") || word(k, "check")) {
          if (!range_has(k, e, "valid"))
            add("constraint-missing-not-valid",
                std::string(word(k, "check") ? "CHECK" : "FOREIGN KEY") + " constraint on " + tbl +
                    " without NOT VALID");
          continue;
        }
        if (word(k, "unique")) {
          if (!range_has(k, e, "using"))
            add("disallowed-unique-constraint", "ADD UNIQUE on " + tbl);
          continue;
        }
        if (word(k, "primary")) {
          if (!range_has(k, e, "using"))
            add("adding-primary-key-constraint", "ADD PRIMARY KEY on " + tbl);
          continue;
        }
        if (word(k, "exclude")) {
          add("adding-exclusion-constraint", "ADD EXCLUDE on " + tbl);
          continue;
        }
        add_column(k, e);
      } else if (word(b, "alter")) {
        size_t k = b + 1;
        if (word(k, "column")) ++k;
        std::string col = k < e ? t_[k].text : "";
        ++k;
        if (word(k, "type") || (word(k, "set") && word(k + 1, "data")))
          add("changing-column-type", "type change of " + tbl + "." + col);
        else if (word(k, "set") && word(k + 1, "not") && word(k + 2, "null")) {
          if (!(ctx_.server_version >= 120000 && ctx_.validated_tables.count(tbl)))
            add("adding-not-nullable-field", "SET NOT NULL on " + tbl + "." + col);
        } else if (word(k, "drop") && word(k + 1, "not") && word(k + 2, "null"))
          add("ban-drop-not-null", "DROP NOT NULL on " + tbl + "." + col);
        else if ((word(k, "add") && word(k + 1, "generated")) ||
                 (word(k, "set") && word(k + 1, "generated")) ||
                 (word(k, "drop") && (word(k + 1, "identity") || word(k + 1, "expression"))))
          add("identity-change", "identity/generation change of " + tbl + "." + col);
      } else if (word(b, "drop")) {
        if (word(b + 1, "constraint")) continue;
        size_t k = b + 1;
        if (word(k, "column")) ++k;
        if (word(k, "if")) k += 2;
        add("ban-drop-column",
            "DROP COLUMN " + (k < e ? t_[k].text : std::string()) + " of " + tbl);
      } else if (word(b, "rename")) {
        if (word(b + 1, "to"))
          add("renaming-table", "RENAME of " + tbl);
        else if (!word(b + 1, "constraint"))
          add("renaming-column", "RENAME COLUMN of " + tbl);
      } else if (word(b, "set") && word(b + 1, "schema")) {
        add("renaming-table", "SET SCHEMA of " + tbl);
      } else if (word(b, "set") &&
                 (word(b + 1, "tablespace") || word(b + 1, "logged") || word(b + 1, "unlogged") ||
                  (word(b + 1, "access") && word(b + 2, "method")))) {
        add("table-rewrite", "SET " + t_[b + 1].text + " on " + tbl);
      }
    }
  }

  void add_column(size_t k, size_t e) {
    const std::string& tbl = f_.target;
    if (word(k, "column")) ++k;
    if (word(k, "if")) k += 3;
    std::string col = k < e ? t_[k].text : "";
    std::string what = tbl + "." + col;
    size_t def = std::string::npos;
    for (size_t j = k; j < e; ++j)
      if (word(j, "default")) def = j;
    bool serial = false;
    for (size_t j = k + 1; j < e && j < k + 3; ++j)
      if (word(j, "serial") || word(j, "bigserial") || word(j, "smallserial") ||
          word(j, "serial4") || word(j, "serial8") || word(j, "serial2"))
        serial = true;
    if (range_has(k, e, "identity")) serial = true;
    if (serial)
      add("adding-serial-column", "serial/identity column " + what + " added to an existing table");
    if (range_has(k, e, "generated") && range_has(k, e, "stored"))
      add("adding-stored-generated-column", "stored generated column " + what);
    if (def != std::string::npos) {
      bool volatile_call = false;
      std::string fn;
      for (size_t j = def + 1; j + 1 < e; ++j) {
        if (t_[j].kind == TokKind::kWord && t_[j + 1].kind == TokKind::kPunct &&
            t_[j + 1].text == "(" && kVolatile.count(t_[j].text)) {
          volatile_call = true;
          fn = t_[j].text;
        }
      }
      if (ctx_.server_version < 110000)
        add("adding-field-with-default", "column " + what + " with a DEFAULT on Postgres " +
                                             std::to_string(ctx_.server_version / 10000) +
                                             " (before 11)");
      else if (volatile_call)
        add("adding-field-with-default", "column " + what + " with volatile default " + fn + "()");
    }
    bool not_null = false;
    for (size_t j = k; j + 1 < e; ++j)
      if (word(j, "not") && word(j + 1, "null")) not_null = true;
    if (not_null && def == std::string::npos && !serial)
      add("adding-required-field", "NOT NULL column " + what + " without a default");
    if (range_has(k, e, "references"))
      add("adding-foreign-key-constraint", "column " + what + " REFERENCES");
  }

  // Column type choices in CREATE TABLE / ADD COLUMN (warnings).
  void column_types(bool alter) {
    for (size_t k = 2; k < t_.size(); ++k) {
      if (t_[k].kind != TokKind::kWord) continue;
      // only type positions: the word after a column name (preceded by a word or ident)
      bool after_name =
          k > 0 && (t_[k - 1].kind == TokKind::kWord || t_[k - 1].kind == TokKind::kIdent) &&
          k > 1 &&
          ((t_[k - 2].kind == TokKind::kPunct &&
            (t_[k - 2].text == "(" || t_[k - 2].text == ",")) ||
           (alter && (word(k - 2, "column") || word(k - 2, "add") || word(k - 2, "exists"))));
      if (!after_name) continue;
      const std::string& ty = t_[k].text;
      std::string col = t_[k - 1].text;
      if (ty == "json") add("prefer-jsonb", "json column " + col);
      if (ty == "varchar" || (ty == "character" && word(k + 1, "varying")))
        add("prefer-text-field", "varchar column " + col);
      if (ty == "timestamp" && !(word(k + 1, "with") && word(k + 2, "time")))
        add("prefer-timestamptz", "timestamp without time zone column " + col);
      if ((ty == "char" || ty == "character") && !word(k + 1, "varying"))
        add("ban-char-field", "char column " + col);
      bool pk = false;
      for (size_t j = k + 1; j < t_.size() && !(t_[j].kind == TokKind::kPunct && t_[j].text == ",");
           ++j)
        if (word(j, "primary")) pk = true;
      if (pk && (ty == "int" || ty == "integer" || ty == "int4" || ty == "serial" ||
                 ty == "serial4" || ty == "smallint" || ty == "smallserial"))
        add("prefer-bigint", ty + " primary key " + col);
    }
  }

  void drop(bool existing) {
    std::string kind = t_.size() > 1 ? t_[1].text : "";
    if (kind == "table" && existing) add("ban-drop-table", f_.summary);
    if (kind == "database") add("ban-drop-database", f_.summary);
    if (kind == "index" && f_.summary.find("CONCURRENTLY") == std::string::npos && existing)
      add("require-concurrent-index-deletion", f_.summary);
  }

  const std::vector<Token>& t_;
  const StatementFacts& f_;
  const AnalysisContext& ctx_;
  const std::string& file_;
  int line_;
  std::vector<Finding> out_;
};

}  // namespace

const std::vector<RuleDoc>& rules() { return kRules; }

const RuleDoc* find_rule(std::string_view id) {
  for (const RuleDoc& r : kRules)
    if (r.id == id) return &r;
  return nullptr;
}

std::vector<Finding> lint_statement(const std::vector<Token>& tokens, const StatementFacts& facts,
                                    const AnalysisContext& ctx, const std::string& file, int line) {
  return Linter(tokens, facts, ctx, file, line).run();
}

}  // namespace md::migrate
