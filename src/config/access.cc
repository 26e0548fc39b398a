// `access:`: which actors may run which operation on an environment. Pure:
// the actor comes from the caller (deploy/access.h says where it comes from).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/config.h"

namespace md::config {

std::string_view operation_name(Operation op) {
  switch (op) {
    case Operation::kDeploy:
      return "deploy";
    case Operation::kRollback:
      return "rollback";
    case Operation::kPromote:
      return "promote";
  }
  return "deploy";
}

const std::optional<AccessRule>& Access::rule(Operation op) const {
  switch (op) {
    case Operation::kRollback:
      return rollback;
    case Operation::kPromote:
      return promote;
    case Operation::kDeploy:
      break;
  }
  return deploy;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // WHY the classic two-pointer walk: backtracking only to the last `*`
  // keeps it O(|pattern| * |text|) at worst, so a pattern like "a*a*a*b"
  // cannot blow up.
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

AccessDecision check_access(const Environment& env, Operation op, std::string_view actor,
                            std::string_view action) {
  AccessDecision d;
  const std::optional<AccessRule>& rule = env.access.rule(op);
  if (!rule) return d;
  d.rule = "access." + std::string(operation_name(op));
  d.where = rule->where;
  if (!actor.empty()) {
    for (const std::string& pattern : rule->allow)
      if (glob_match(pattern, actor)) return d;
  }
  d.allowed = false;
  std::string allows =
      rule->allow.empty() ? "nobody" : fmt::format("{}", fmt::join(rule->allow, ", "));
  std::string what =
      action.empty() ? fmt::format("{} {}", operation_name(op), env.name) : std::string(action);
  d.message =
      fmt::format("user {} may not {} ({}{} allows: {})", actor.empty() ? "(unknown)" : actor, what,
                  d.rule, d.where.empty() ? "" : " in " + d.where, allows);
  return d;
}

}  // namespace md::config
