// What one statement does, read from Postgres's own parse tree (pgquery.h):
// kind, target relation, the locks it takes, whether it can run in a
// transaction block, whether it is destructive (contract phase), and what
// preflight needs (extensions, schemas, roles). Pure.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "migrate/lexer.h"
#include "migrate/migrate.h"
#include "migrate/pgquery.h"

namespace md::migrate {

// A function or procedure created by a migration of the run, kept so that a
// later statement calling it is analysed with its body.
struct FunctionDef {
  std::string name;      // schema-qualified, e.g. "public.copy_runs"
  std::string language;  // "plpgsql", "sql", ... (lower-case)
  std::string sql;       // the whole CREATE FUNCTION statement (PL/pgSQL is parsed from it)
  std::string body;      // the AS '...' text ("" for BEGIN ATOMIC bodies)
  std::string file;      // where it is defined
  int body_line = 0;     // file line where the body text begins
};

// Relations created so far in the run (schema-qualified), and settings the
// file made itself. Grows as statements are analysed in order.
struct AnalysisContext {
  int server_version = 150000;
  std::set<std::string> new_relations;     // created earlier in this run: nobody else waits on them
  std::set<std::string> validated_tables;  // VALIDATE CONSTRAINT ran on them earlier in the run
  std::map<std::string, FunctionDef> functions;  // created earlier in this run, by qualified name
  // Per file (reset by the planner at each file):
  bool file_sets_lock_timeout = false;  // the file itself ran SET lock_timeout
  bool warned_lock_timeout = false;     // missing-lock-timeout already reported for this file
  std::set<std::string> ddl_tables;     // ACCESS EXCLUSIVE taken earlier in this file
};

struct StatementFacts {
  std::vector<std::string> words;  // the statement's tokens, lower-cased words / raw others
  std::string node;                // parse-tree node, e.g. "AlterTableStmt" ("" if unparsed)
  std::string summary;             // e.g. "ALTER TABLE public.workflows ADD COLUMN"
  std::string target;              // main relation ("" if none), schema-qualified
  bool creates_relation =
      false;  // CREATE TABLE / MATERIALIZED VIEW / VIEW / SEQUENCE: target is new
  bool transactional = true;
  bool destructive = false;           // drop / rename / truncate: contract phase
  bool explicit_transaction = false;  // BEGIN / COMMIT / ROLLBACK / START TRANSACTION
  bool sets_lock_timeout = false;     // SET [LOCAL] lock_timeout
  bool validates_constraint = false;  // ALTER TABLE ... VALIDATE CONSTRAINT
  std::vector<Lock> locks;
  std::vector<std::string> extensions;  // CREATE EXTENSION names
  std::vector<std::string> schemas;     // schemas referenced by qualified names
  std::vector<std::string> created_schemas;
  std::vector<std::string> roles;  // roles referenced (GRANT ... TO, POLICY ... TO, OWNER TO)
  std::vector<std::string> created_roles;
  std::vector<std::string> inline_checks;  // ADD COLUMN c ... CHECK (...): the columns
  std::vector<std::string> dropped_views;  // DROP [MATERIALIZED] VIEW names
  bool drop_cascade = false;               // the DROP says CASCADE
  std::string created_view;                // CREATE [OR REPLACE] VIEW name ("" if not)
  std::vector<std::string> calls;          // functions a SELECT/CALL/DML runs (qualified names)
  bool do_block = false;                   // DO: its PL/pgSQL body runs now
  std::optional<FunctionDef> defines;      // CREATE FUNCTION/PROCEDURE (body not run now)
  std::string parse_error;                 // "" or why the grammar rejected the statement
};

// `stmt` is one statement node of pgquery::parse_sql ({"AlterTableStmt": {...}});
// `tokens` are the statement's tokens (no trailing ';').
StatementFacts analyze(const pgquery::Tree& stmt, const std::vector<Token>& tokens,
                       const AnalysisContext& ctx);

// Facts of a statement the grammar rejected: its first words only, and the error.
StatementFacts unparsed(const std::vector<Token>& tokens, std::string error);

// "public.x" for x, "s.x" for s.x.
std::string qualify(const std::string& name);

}  // namespace md::migrate
