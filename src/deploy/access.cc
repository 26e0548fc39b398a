#include "deploy/access.h"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "core/json.h"
#include "deploy/state_place.h"
#include "state/state.h"

namespace md::deploy {

std::string Identity::display() const {
  if (label.empty() || label == actor) return actor;
  return label + " (" + actor + ")";
}

Identity identity_from(const config::EnvLookup& lookup, const std::string& os_user) {
  auto get = [&](const char* name) { return lookup(name).value_or(""); };
  Identity id;
  id.label = get("MESHDEPLOY_ACTOR");
  // WHY the prefix: a GitHub login and a local user of the same name are
  // different people; `alice` in a rule never admits `github:alice`.
  if (get("GITHUB_ACTIONS") == "true" && !get("GITHUB_ACTOR").empty()) {
    id.actor = "github:" + get("GITHUB_ACTOR");
    id.source = "github-actions";
  } else {
    id.actor = os_user;
    id.source = "os-user";
  }
  return id;
}

Identity current_identity() {
  const uid_t uid = geteuid();
  std::string user;
  // WHY getpwuid_r and not $USER: the variable is whatever the caller sets;
  // the effective uid is what the kernel says this process runs as.
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_name)
    user = found->pw_name;
  if (user.empty()) user = "uid" + std::to_string(static_cast<unsigned long>(uid));
  return identity_from(config::getenv_lookup, user);
}

std::string_view guarded_name(Guarded g) {
  switch (g) {
    case Guarded::kDeploy:
      return "deploy";
    case Guarded::kResume:
      return "resume";
    case Guarded::kRollback:
      return "rollback";
    case Guarded::kPromote:
      return "promote";
    case Guarded::kAbort:
      return "abort";
  }
  return "deploy";
}

config::Operation guarded_operation(Guarded g) {
  switch (g) {
    case Guarded::kDeploy:
    case Guarded::kResume:
      return config::Operation::kDeploy;
    case Guarded::kRollback:
      return config::Operation::kRollback;
    case Guarded::kPromote:
    case Guarded::kAbort:
      return config::Operation::kPromote;
  }
  return config::Operation::kDeploy;
}

namespace {

std::string action_text(Guarded g, const std::string& env) {
  switch (g) {
    case Guarded::kDeploy:
      return "deploy to " + env;
    case Guarded::kResume:
      return "resume a deploy in " + env;
    case Guarded::kRollback:
      return "roll back " + env;
    case Guarded::kPromote:
      return "promote the deploy in " + env;
    case Guarded::kAbort:
      return "abort the deploy in " + env;
  }
  return env;
}

Status append_audit(const config::Environment& env, state::AuditEntry entry) {
  auto store = MD_TRY_CTX(open_state(env), "state store");
  return store->commit({.audit = {std::move(entry)}});
}

}  // namespace

Status authorize(const config::Environment& env, Guarded g, const Identity& who,
                 const std::string& target, bool audit_allowed) {
  const config::AccessDecision d =
      config::check_access(env, guarded_operation(g), who.actor, action_text(g, env.name));
  if (d.allowed && !audit_allowed) return ok();
  state::AuditEntry a;
  a.actor = who.display();
  a.environment = env.name;
  a.target = target;
  nlohmann::json detail{
      {"command", guarded_name(g)}, {"identity", who.actor}, {"source", who.source}};
  if (!who.label.empty()) detail["label"] = who.label;
  if (!d.rule.empty()) {
    detail["rule"] = d.rule;
    detail["where"] = d.where;
    const auto& rule = env.access.rule(guarded_operation(g));
    detail["allow"] = rule ? rule->allow : std::vector<std::string>{};
  }
  if (d.allowed) {
    a.action = g == Guarded::kResume ? "deploy.resume" : "access.granted";
    a.detail = to_json_text(detail);
    return append_audit(env, std::move(a));
  }
  a.action = "access.denied";
  a.detail = to_json_text(detail);
  Status audited = append_audit(env, std::move(a));
  if (!audited)
    return fail(Errc::kPermissionDenied,
                d.message + "; the refusal could not be written to the audit log: " +
                    audited.error().what());
  return fail(Errc::kPermissionDenied, d.message);
}

}  // namespace md::deploy
