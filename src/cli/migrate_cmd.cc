// meshdeploy migrate status|plan|up|lint|baseline|restore: arguments to one
// migrate:: call, its result to text or JSON and an exit code.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <optional>
#include <ostream>

#include "cli/commands.h"
#include "config/config.h"
#include "migrate/migrate.h"
#include "migrate/report.h"
#include "secrets/secrets.h"

namespace md::cli {
namespace {

struct MigrateArgs {
  std::string env;
  std::string config;
  std::string database_url;
  std::string dir;
  bool json = false;
  bool all = false;           // lint
  bool include_all = false;   // up
  bool accept_drift = false;  // up
  bool skip_lint = false;     // up
  int lock_timeout_ms = -1;
  std::string version;  // baseline
  std::string file;     // restore
};

using ArgsPtr = std::shared_ptr<MigrateArgs>;

void add_common(CLI::App& cmd, const ArgsPtr& a) {
  add_env_option(cmd, a->env, /*required=*/false);
  add_config_option(cmd, a->config);
  cmd.add_option(
      "--database-url", a->database_url,
      "Postgres URL; wins over $MESHDEPLOY_DATABASE_URL and the vault (argv is visible to ps: "
      "prefer the variable)");
  cmd.add_option("--dir", a->dir, "migrations folder (default supabase/migrations)");
  cmd.add_flag("--json", a->json, "print JSON instead of text");
}

// The database URL, first found wins: --database-url, $MESHDEPLOY_DATABASE_URL,
// then (with --env) the vault secret named by migrations.database_url_secret.
// An empty Secret when no source applies and no environment is given.
// kNotFound (exit 5) naming the secret and the vault when the environment's
// vault lacks it; the vault's own errors (no key, wrong key) as they come.
Result<secrets::Secret> database_url(const MigrateArgs& a, const config::Environment* env) {
  if (!a.database_url.empty()) return secrets::Secret(a.database_url);
  if (const char* v = std::getenv("MESHDEPLOY_DATABASE_URL"); v && *v) return secrets::Secret(v);
  if (!env) return secrets::Secret();
  const std::string& name = env->migrations.database_url_secret;
  std::string vault = secrets::vault_location(*env).vault.string();
  secrets::SecretMap all = MD_TRY_CTX(secrets::load_secrets(*env), "database URL of " + env->name);
  // WHY install: libpq and pg_dump messages pass through our logs; the URL
  // and every other value of this vault are masked there from now on.
  secrets::install_log_redactor(std::make_shared<const secrets::Redactor>(all));
  auto it = all.find(name);
  if (it == all.end())
    return fail(Errc::kNotFound,
                "no secret " + name + " (migrations.database_url_secret) in the " + env->name +
                    " vault " + vault + ": add it with `meshdeploy secrets set --env " + env->name +
                    " " + name + "`, or pass --database-url / set MESHDEPLOY_DATABASE_URL");
  return it->second;
}

enum class Db {
  kRequired,  // status, plan, up, baseline, restore
  kOptional,  // lint: without a database every file is linted as pending
};

// Builds the engine's request from flags, meshdeploy.yml and the environment.
Result<migrate::Request> request_for(Io& io, const MigrateArgs& a, Db need) {
  migrate::Request req;
  std::filesystem::path dir = "supabase/migrations";
  std::optional<config::Environment> env;
  if (!a.env.empty()) {
    env = MD_TRY(load_environment(io, a.config, a.env));
    req.settings = env->migrations;
    dir = env->base_dir / env->migrations.dir;
    req.settings.backup_dir = (env->base_dir / env->migrations.backup_dir).string();
    req.production = a.env == "production";
  }
  if (!a.dir.empty()) dir = a.dir;
  req.dir = dir;
  auto url = database_url(a, env ? &*env : nullptr);
  if (!url && need == Db::kOptional && url.error().code() == Errc::kNotFound) {
    // WHY not silent: a CI job without the key still gets a lint, and is told
    // it covers every file rather than only the pending ones.
    io.err << "meshdeploy: linting every file without a database: " << url.error().what() << "\n";
    url = secrets::Secret();
  }
  if (!url) return fail(std::move(url.error()));
  if (need == Db::kOptional && url->empty() && !env)
    io.err << "meshdeploy: linting every file without a database (no --env, --database-url or "
              "MESHDEPLOY_DATABASE_URL): each counts as pending\n";
  if (need == Db::kRequired && url->empty())
    return fail(Errc::kInvalidArgument,
                "no database: pass --env, --database-url or set MESHDEPLOY_DATABASE_URL");
  req.database_url = std::move(*url);
  if (a.include_all) req.settings.include_all = true;
  req.accept_drift = a.accept_drift;
  if (a.lock_timeout_ms >= 0) req.settings.lock_timeout = Millis(a.lock_timeout_ms);
  if (const char* u = std::getenv("USER")) req.actor = u;
  return req;
}

Exit print(Io& io, const std::string& text) {
  io.out << text;
  return Exit::kOk;
}

Action status_or_plan(CLI::App& cmd, Io& io, bool plan) {
  auto a = std::make_shared<MigrateArgs>();
  add_common(cmd, a);
  return [a, &io, plan] {
    auto req = request_for(io, *a, Db::kRequired);
    if (!req) return report(io, req.error());
    auto p = migrate::plan(*req);
    if (!p) return report(io, p.error());
    if (a->json)
      print(io, migrate::plan_json(*p, plan ? migrate::Scope::kPending : migrate::Scope::kAll));
    else
      print(io, plan ? migrate::plan_text(*p) : migrate::status_text(*p));
    if (plan && !p->verdict.ok) return Exit::kFailed;
    bool blocking = false;
    for (const auto& pr : p->problems) blocking |= pr.blocking && pr.code != "phase-order";
    return !plan && blocking ? Exit::kFailed : Exit::kOk;
  };
}

}  // namespace

Action setup_migrate_status(CLI::App& cmd, Io& io) { return status_or_plan(cmd, io, false); }
Action setup_migrate_plan(CLI::App& cmd, Io& io) { return status_or_plan(cmd, io, true); }

Action setup_migrate_up(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<MigrateArgs>();
  add_common(cmd, a);
  cmd.add_flag("--include-all", a->include_all,
               "also apply files older than the newest applied one");
  cmd.add_flag("--accept-drift", a->accept_drift, "go on although applied files changed since");
  cmd.add_flag("--skip-lint", a->skip_lint, "apply although lint findings are not acknowledged");
  cmd.add_option("--lock-timeout-ms", a->lock_timeout_ms,
                 "lock_timeout of each migration (default 3000)");
  return [a, &io] {
    auto req = request_for(io, *a, Db::kRequired);
    if (!req) return report(io, req.error());
    // WHY plan first: every blocker (preflight and lint) is listed at once;
    // apply() re-checks the preflight under the runner lock.
    auto p = migrate::plan(*req);
    if (!p) return report(io, p.error());
    bool lint = !a->skip_lint && req->settings.require_lint_clean;
    auto blockers = migrate::blockers(*p, migrate::Selection::kAll, lint);
    if (!blockers.empty()) {
      std::string msg =
          "nothing applied: " + std::to_string(blockers.size()) + " blocker(s)" +
          (lint ? " (acknowledge a lint finding with '-- meshdeploy:allow <rule> <reason>' "
                  "or pass --skip-lint)"
                : "") +
          ":";
      for (const auto& b : blockers) msg += "\n  " + b;
      return report(io, Error(Errc::kFailedPrecondition, msg));
    }
    migrate::ApplyReport r = migrate::apply(*req, migrate::Selection::kAll);
    print(io, a->json ? migrate::apply_json(r) : migrate::apply_text(r));
    return r.ok() ? Exit::kOk : report(io, *r.error);
  };
}

Action setup_migrate_lint(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<MigrateArgs>();
  add_common(cmd, a);
  cmd.add_flag("--all", a->all, "lint every file, not only the pending ones");
  return [a, &io] {
    auto req = request_for(io, *a, Db::kOptional);
    if (!req) return report(io, req.error());
    bool db = !req->database_url.empty();
    auto p = db ? migrate::plan(*req) : migrate::plan_offline(*req);
    if (!p) return report(io, p.error());
    // Without a database every file is pending.
    migrate::Scope scope = a->all ? migrate::Scope::kAll : migrate::Scope::kPending;
    print(io, a->json ? migrate::lint_json(*p, scope) : migrate::lint_text(*p, scope));
    return migrate::blocking_findings(*p, scope).empty() ? Exit::kOk : Exit::kFailed;
  };
}

Action setup_migrate_baseline(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<MigrateArgs>();
  add_common(cmd, a);
  cmd.add_option("--version", a->version, "record files up to this version (default: all)");
  return [a, &io] {
    auto req = request_for(io, *a, Db::kRequired);
    if (!req) return report(io, req.error());
    auto added = migrate::baseline(*req, a->version);
    if (!added) return report(io, added.error());
    for (const auto& v : *added) io.out << "recorded " << v << " as applied (not run)\n";
    if (added->empty()) io.out << "nothing to record\n";
    return Exit::kOk;
  };
}

Action setup_migrate_restore(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<MigrateArgs>();
  add_common(cmd, a);
  cmd.add_option("file", a->file, "backup written before a migration run (pg_dump -Fc)")
      ->required();
  return [a, &io] {
    auto req = request_for(io, *a, Db::kRequired);
    if (!req) return report(io, req.error());
    if (auto st = migrate::restore(*req, a->file); !st) return report(io, st.error());
    io.out << "restored " << a->file << "\n";
    return Exit::kOk;
  };
}

}  // namespace md::cli
