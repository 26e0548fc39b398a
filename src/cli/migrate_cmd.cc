// meshdeploy migrate status|plan|up|lint|baseline|restore: arguments to one
// migrate:: call, its result to text or JSON and an exit code.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <memory>
#include <ostream>

#include "cli/commands.h"
#include "config/config.h"
#include "migrate/migrate.h"
#include "migrate/report.h"

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
  std::string version;        // baseline
  std::string file;           // restore
};

using ArgsPtr = std::shared_ptr<MigrateArgs>;

void add_common(CLI::App& cmd, const ArgsPtr& a) {
  cmd.add_option("--env", a->env, "environment in meshdeploy.yml: its migrations settings and database secret");
  cmd.add_option("--config", a->config, "path of meshdeploy.yml (default ./meshdeploy.yml)");
  cmd.add_option("--database-url", a->database_url,
                 "Postgres URL (default: $MESHDEPLOY_DATABASE_URL; prefer the variable: argv is visible to ps)");
  cmd.add_option("--dir", a->dir, "migrations folder (default supabase/migrations)");
  cmd.add_flag("--json", a->json, "print JSON instead of text");
}

// Builds the engine's request from flags, meshdeploy.yml and the environment.
Result<migrate::Request> request_for(const MigrateArgs& a, bool need_db) {
  migrate::Request req;
  std::filesystem::path dir = "supabase/migrations";
  if (!a.env.empty()) {
    auto file = MD_TRY(config::locate(a.config));
    config::LoadResult lr = config::load(file);
    if (!lr.config) {
      std::string msg = "invalid " + file.string() + ":";
      for (const auto& d : lr.diagnostics) msg += "\n  " + d.format();
      return fail(Errc::kInvalidArgument, msg);
    }
    config::Environment env = MD_TRY(config::resolve(*lr.config, a.env));
    req.settings = env.migrations;
    dir = env.base_dir / env.migrations.dir;
    req.settings.backup_dir = (env.base_dir / env.migrations.backup_dir).string();
    req.production = a.env == "production";
    if (a.database_url.empty() && !std::getenv("MESHDEPLOY_DATABASE_URL") && need_db)
      // WHY: the vault API (secrets/) has not landed in this build yet.
      return fail(Errc::kFailedPrecondition,
                  "reading " + env.migrations.database_url_secret + " from the " + a.env +
                      " vault is not available in this build; pass --database-url or set MESHDEPLOY_DATABASE_URL");
  }
  if (!a.dir.empty()) dir = a.dir;
  req.dir = dir;
  std::string url = a.database_url;
  if (url.empty())
    if (const char* v = std::getenv("MESHDEPLOY_DATABASE_URL")) url = v;
  if (need_db && url.empty())
    return fail(Errc::kInvalidArgument, "no database: pass --env, --database-url or set MESHDEPLOY_DATABASE_URL");
  req.database_url = secrets::Secret(url);
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
    auto req = request_for(*a, true);
    if (!req) return report(io, req.error());
    auto p = migrate::plan(*req);
    if (!p) return report(io, p.error());
    if (a->json) print(io, migrate::plan_json(*p, plan ? migrate::Scope::kPending : migrate::Scope::kAll));
    else print(io, plan ? migrate::plan_text(*p) : migrate::status_text(*p));
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
  cmd.add_flag("--include-all", a->include_all, "also apply files older than the newest applied one");
  cmd.add_flag("--accept-drift", a->accept_drift, "go on although applied files changed since");
  cmd.add_flag("--skip-lint", a->skip_lint, "apply although lint findings are not acknowledged");
  cmd.add_option("--lock-timeout-ms", a->lock_timeout_ms, "lock_timeout of each migration (default 3000)");
  return [a, &io] {
    auto req = request_for(*a, true);
    if (!req) return report(io, req.error());
    if (!a->skip_lint && req->settings.require_lint_clean) {
      auto p = migrate::plan(*req);
      if (!p) return report(io, p.error());
      auto findings = migrate::blocking_findings(*p, migrate::Scope::kPending);
      if (!findings.empty()) {
        std::string msg = "nothing applied: unacknowledged lint findings (acknowledge with "
                          "'-- meshdeploy:allow <rule> <reason>' or pass --skip-lint):";
        for (const auto& f : findings) msg += "\n  " + f.format();
        return report(io, Error(Errc::kFailedPrecondition, msg));
      }
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
    auto req = request_for(*a, false);
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
    auto req = request_for(*a, true);
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
  cmd.add_option("file", a->file, "backup written before a migration run (pg_dump -Fc)")->required();
  return [a, &io] {
    auto req = request_for(*a, true);
    if (!req) return report(io, req.error());
    if (auto st = migrate::restore(*req, a->file); !st) return report(io, st.error());
    io.out << "restored " << a->file << "\n";
    return Exit::kOk;
  };
}

}  // namespace md::cli
