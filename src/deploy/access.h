// Who runs meshdeploy, and the access check every command that changes an
// environment makes before it changes anything (docs/deploy.md, "Access
// control"). The rule itself is config::check_access (pure); this adds the
// identity and the audit row of a refusal.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "core/error.h"

namespace md::deploy {

struct Identity {
  std::string actor;   // what access rules match: "alice", "github:octocat"
  std::string source;  // how it was established: "os-user" | "github-actions"
  std::string label;   // $MESHDEPLOY_ACTOR: display only, never matched by a rule ("" = none)
  // For records (deployments, audit log, journal, lock holder text): the
  // actor, or "<label> (<actor>)" when a label is set and differs.
  std::string display() const;
};

// The identity of this process, pure: on GitHub Actions (GITHUB_ACTIONS=true
// and GITHUB_ACTOR set) "github:<GITHUB_ACTOR>"; otherwise `os_user`, the
// name of the effective uid's user. $USER, $LOGNAME and $MESHDEPLOY_ACTOR
// never change the actor; MESHDEPLOY_ACTOR only sets the label.
Identity identity_from(const config::EnvLookup& lookup, const std::string& os_user);
// identity_from(the process environment, getpwuid(geteuid()) — or
// "uid<N>" when the uid has no passwd entry). Never fails.
Identity current_identity();

// The commands access rules guard, and the rule that guards each.
enum class Guarded { kDeploy, kResume, kRollback, kPromote, kAbort };
std::string_view guarded_name(Guarded g);        // "deploy", "resume", ...
config::Operation guarded_operation(Guarded g);  // deploy, deploy, rollback, promote, promote

// Checks that `who` may run `g` on `env` (config::check_access). Refused:
// appends an audit entry (action "access.denied", target `target`, e.g. the
// version asked for) to the environment's state store, then returns
// kPermissionDenied whose message is the refusal ("user bob may not deploy
// to production (access.deploy in meshdeploy.yml:12 allows: alice)"); when
// the store cannot be written the refusal stands and the message says the
// audit row is missing. Allowed: returns ok and writes nothing, unless
// `audit_allowed` (for a command the deploy library does not audit itself:
// resume), which appends "deploy.resume" (or "access.granted" for another
// command) naming `who`. Blocks on the store.
Status authorize(const config::Environment& env, Guarded g, const Identity& who,
                 const std::string& target = "", bool audit_allowed = false);

}  // namespace md::deploy
