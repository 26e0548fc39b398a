// One statement of a migration file analysed and linted as the server will
// run it: its own parse tree, then the PL/pgSQL it runs now — the body of a
// DO block, and the bodies of functions created earlier in the run that it
// calls — statement by statement. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "migrate/analyze.h"
#include "migrate/migrate.h"

namespace md::migrate {

struct AnalysedStatement {
  StatementFacts facts;           // the statement's, with its bodies' locks and phase merged in
  std::vector<Finding> findings;  // its own, then its bodies' (anchored at their file lines)
  std::vector<std::string> blind_spots;  // what could not be analysed (dynamic SQL, parse errors)
};

// Analyses `sql` (one statement, no trailing ';'), which starts at `line` of
// `file`, and records its effects in `ctx` (new relations, functions defined,
// lock_timeout, DDL taken) for the statements after it. Never fails: what the
// grammar rejects, or SQL built at run time (EXECUTE), is a blind spot with an
// `unanalysed-sql` warning, never "no lock".
AnalysedStatement analyze_statement(std::string_view sql, const std::string& file, int line,
                                    AnalysisContext& ctx);

}  // namespace md::migrate
