// Human and JSON renderings of plans, lint findings and apply reports, for
// the CLI and the deploy journal. Pure. JSON shapes: docs/migrations.md.
#pragma once

#include <string>
#include <vector>

#include "migrate/migrate.h"

namespace md::migrate {

enum class Scope { kPending, kAll };

// `status`: one line per file (version, name, state, phase) + problems.
std::string status_text(const Plan& p);
// `plan`: per file and statement: transactional or not, locks, phase, findings; verdict.
std::string plan_text(const Plan& p);
// `lint`: findings with why and recipe; a summary line.
std::string lint_text(const Plan& p, Scope scope);
// Unacknowledged error findings in scope (what makes `lint` exit non-zero).
std::vector<Finding> blocking_findings(const Plan& p, Scope scope);
std::string apply_text(const ApplyReport& r);

std::string plan_json(const Plan& p, Scope scope);  // status and plan use the same shape
std::string lint_json(const Plan& p, Scope scope);
std::string apply_json(const ApplyReport& r);

}  // namespace md::migrate
