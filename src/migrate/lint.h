// Lint rules: the Postgres rules of squawk and strong_migrations, server
// version aware. Pure: tokens + facts + context in, findings out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "migrate/analyze.h"
#include "migrate/migrate.h"

namespace md::migrate {

struct RuleDoc {
  std::string_view id;
  Severity severity;
  std::string_view why;     // why it is dangerous
  std::string_view recipe;  // the safe way
};

// Every rule, in documentation order (docs/migrations.md lists the same).
const std::vector<RuleDoc>& rules();
const RuleDoc* find_rule(std::string_view id);

// Findings of one statement. `ctx` is the context before this statement.
std::vector<Finding> lint_statement(const std::vector<Token>& tokens, const StatementFacts& facts,
                                    const AnalysisContext& ctx, const std::string& file, int line);

}  // namespace md::migrate
