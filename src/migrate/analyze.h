// What one statement does, read from its tokens: kind, target relation,
// the lock it takes, whether it can run in a transaction block, and whether
// it is destructive (contract phase). Pure.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "migrate/lexer.h"
#include "migrate/migrate.h"

namespace md::migrate {

// Relations created so far in the run (schema-qualified), and settings the
// file made itself. Grows as statements are analysed in order.
struct AnalysisContext {
  int server_version = 150000;
  std::set<std::string> new_relations;  // created earlier in this run: nobody else waits on them
  std::set<std::string> validated_tables;  // VALIDATE CONSTRAINT ran on them earlier in the run
  // Per file (reset by the planner at each file):
  bool file_sets_lock_timeout = false;  // the file itself ran SET lock_timeout
  bool warned_lock_timeout = false;     // missing-lock-timeout already reported for this file
  std::set<std::string> ddl_tables;     // ACCESS EXCLUSIVE taken earlier in this file
};

struct StatementFacts {
  std::vector<std::string> words;  // the statement's tokens, lower-cased words / raw others
  std::string summary;             // e.g. "ALTER TABLE public.workflows ADD COLUMN"
  std::string target;              // main relation ("" if none), schema-qualified
  bool creates_relation = false;   // CREATE TABLE / MATERIALIZED VIEW / INDEX ... target is new
  bool transactional = true;
  bool destructive = false;        // drop / rename / truncate: contract phase
  bool explicit_transaction = false;  // BEGIN / COMMIT / ROLLBACK / START TRANSACTION
  std::vector<Lock> locks;
  std::vector<std::string> extensions;  // CREATE EXTENSION names
  std::vector<std::string> schemas;     // schemas referenced by qualified names
  std::vector<std::string> created_schemas;
  std::vector<std::string> roles;       // roles referenced (GRANT ... TO, POLICY ... TO, OWNER TO)
  std::vector<std::string> created_roles;
};

// `tokens` are the statement's tokens (no trailing ';').
StatementFacts analyze(const std::vector<Token>& tokens, const AnalysisContext& ctx);

// "public.x" for x, "s.x" for s.x.
std::string qualify(const std::string& name);

}  // namespace md::migrate
