// `meshdeploy deploy | rollback | promote | abort | status | history | logs`:
// options in, one deploy/ library call, output and an exit code out.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "core/interrupt.h"
#include "core/json.h"
#include "deploy/access.h"
#include "deploy/artifact.h"
#include "deploy/deploy.h"
#include "deploy/inspect.h"
#include "deploy/lease.h"
#include "deploy/report.h"
#include "deploy/session.h"
#include "deploy/state_place.h"
#include "secrets/secrets.h"

namespace md::cli {
namespace {

std::string getenv_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool in_ci() { return getenv_or("CI") == "true" || getenv_or("GITHUB_ACTIONS") == "true"; }

// Who runs this, for the records: the identity access rules check (the OS
// user, or github:<login> on GitHub Actions), behind $MESHDEPLOY_ACTOR as a
// label when set (deploy/access.h).
std::string actor() { return deploy::current_identity().display(); }

deploy::OutputMode output_mode(Io& io, bool json) {
  const bool tty = &io.out == &std::cout && isatty(STDOUT_FILENO) && getenv_or("TERM") != "dumb";
  return deploy::pick_mode(json, getenv_or("GITHUB_ACTIONS") == "true", tty);
}

// The deploy lock's lease: MESHDEPLOY_LOCK_TTL in meshdeploy.yml's duration
// grammar (config::parse_duration: "30s", "1m", "1500ms"), or the older
// MESHDEPLOY_LOCK_TTL_MS, a bare number of milliseconds, still read as that
// grammar with "ms" implied. nullopt when neither is set.
Result<std::optional<Millis>> lock_ttl_from_env() {
  const std::string ttl = getenv_or("MESHDEPLOY_LOCK_TTL"),
                    ms = getenv_or("MESHDEPLOY_LOCK_TTL_MS");
  if (ttl.empty() && ms.empty()) return std::optional<Millis>();
  if (!ttl.empty() && !ms.empty())
    return fail(Errc::kInvalidArgument,
                "set MESHDEPLOY_LOCK_TTL or MESHDEPLOY_LOCK_TTL_MS, not both");
  const char* name = ttl.empty() ? "MESHDEPLOY_LOCK_TTL_MS" : "MESHDEPLOY_LOCK_TTL";
  if (!ms.empty() && ms.find_first_not_of("0123456789") != std::string::npos)
    return fail(Errc::kInvalidArgument, "MESHDEPLOY_LOCK_TTL_MS must be a number of milliseconds");
  auto d = config::parse_duration(ttl.empty() ? ms + "ms" : ttl);
  if (!d) return fail(Errc::kInvalidArgument, std::string(name) + ": " + d.error().what());
  if (*d < Millis(300))
    return fail(Errc::kInvalidArgument, std::string(name) + " must be at least 300ms");
  return std::optional<Millis>(*d);
}

// The controller's options from its environment: the actor, the trigger,
// the lock's lease (lock_ttl_from_env) and MESHDEPLOY_FAULT_KILL_AT (the
// crash tests' fault point).
Result<deploy::Options> controller_options() {
  deploy::Options o;
  o.actor = actor();
  o.trigger = in_ci() ? "ci" : "cli";
  if (auto ttl = MD_TRY(lock_ttl_from_env())) o.lock_ttl = *ttl;
  if (std::string f = getenv_or("MESHDEPLOY_FAULT_KILL_AT"); !f.empty())
    o.fault = MD_TRY_CTX(deploy::parse_fault(f), "MESHDEPLOY_FAULT_KILL_AT");
  o.interrupted = &interrupt::flag();
  return o;
}

// What every controller command opens: the environment, its secrets (also
// installed as the log redactor) and a session.
struct Opened {
  config::Environment env;
  secrets::SecretMap secrets;
  std::unique_ptr<deploy::Session> session;
};

// The access rule a changing command must pass (docs/deploy.md, "Access
// control"), checked before secrets are read or anything is touched.
struct Guard {
  deploy::Guarded command;
  std::string target;          // for the audit row: the version asked for
  bool audit_allowed = false;  // resume: the library does not audit it itself
};

Result<Opened> open_env(Io& io, const std::string& config_path, const std::string& env_name,
                        const deploy::SessionOptions& so, bool need_secrets,
                        std::optional<Guard> guard = std::nullopt) {
  Opened o;
  o.env = MD_TRY(load_environment(io, config_path, env_name));
  if (guard)
    MD_TRY_STATUS(deploy::authorize(o.env, guard->command, deploy::current_identity(),
                                    guard->target, guard->audit_allowed));
  // WHY also for ssh: the key or known_hosts of the hosts may be in the vault.
  if (need_secrets || deploy::needs_ssh_secrets(o.env)) {
    o.secrets = MD_TRY_CTX(secrets::load_secrets(o.env), "secrets of " + env_name);
    secrets::install_log_redactor(std::make_shared<const secrets::Redactor>(o.secrets));
  }
  o.session = MD_TRY(deploy::Session::open(o.env, o.secrets, actor(), so));
  return o;
}

Exit exit_for_outcome(const deploy::Outcome& r) {
  if (interrupt::flag()) return Exit::kInterrupted;
  if (r.via_abort)
    return r.deployment.status == state::DeployStatus::kRolledBack ? Exit::kOk : Exit::kFailed;
  switch (r.deployment.status) {
    case state::DeployStatus::kSucceeded:
      return Exit::kOk;
    case state::DeployStatus::kRolledBack:
      return Exit::kRolledBack;
    default:
      return Exit::kFailed;
  }
}

void print_outcome(Io& io, bool json, const deploy::Outcome& r, const std::string& notes) {
  if (json) {
    nlohmann::json steps = nlohmann::json::array();
    for (const deploy::StepTiming& t : r.steps)
      steps.push_back({{"step", deploy::step_name(t.step)},
                       {"outcome", t.outcome},
                       {"duration_ms", t.duration.count()},
                       {"detail", t.detail}});
    nlohmann::json j{{"event", "result"},
                     {"deployment", deploy::deployment_json(r.deployment)},
                     {"steps", steps}};
    j["switch_ms"] =
        r.switch_time ? nlohmann::json(r.switch_time->count()) : nlohmann::json(nullptr);
    j["probe_ms"] = r.probe_time ? nlohmann::json(r.probe_time->count()) : nlohmann::json(nullptr);
    j["via_abort"] = r.via_abort;
    if (!r.hosts.empty()) {
      j["hosts"] = r.hosts;
      j["spread_ms"] =
          r.spread_time ? nlohmann::json(r.spread_time->count()) : nlohmann::json(nullptr);
    }
    if (!notes.empty()) j["warning"] = notes;
    io.out << to_json_text(j) << "\n";
    return;
  }
  io.out << deploy::summary_line(r) << "\n";
  if (!notes.empty()) io.err << "meshdeploy: warning: " << notes << "\n";
}

// The body shared by deploy and rollback: run `body` with a session, a
// renderer and notifications, then report.
template <class Body>
Exit run_controller(Io& io, const std::string& config_path, const std::string& env_name, bool json,
                    bool migrations, Guard access, Body body) {
  auto opts = controller_options();
  if (!opts) return report(io, opts.error());
  deploy::Renderer renderer(io.out, output_mode(io, json));
  deploy::SessionOptions so;
  so.migrations = migrations;
  so.hook_line = [&renderer](std::string_view l) { renderer.line(l); };
  so.on_retry = [&renderer](const std::string& m) { renderer.line("warning: " + m); };
  auto opened = open_env(io, config_path, env_name, so, true, std::move(access));
  if (!opened) return report(io, opened.error());
  opts->secrets = opened->secrets;
  // SIGINT/SIGTERM abort the running deploy instead of killing the
  // controller half-way; one that arrives while an agent call is in flight
  // cuts it and stops the controller at once (deploy/executor.cc).
  interrupt::Watch signals;
  deploy::Deployer d(opened->env, opened->session->seams(renderer), *opts);
  opened->session->start_notifications();
  Result<deploy::Outcome> r = body(d, opened->env);
  const std::string notes = opened->session->finish_notifications(Millis(5000));
  if (!r) return report(io, r.error());
  print_outcome(io, json, *r, notes);
  return exit_for_outcome(*r);
}

// ---- deploy -------------------------------------------------------------------

struct DeployArgs {
  std::string config, env, artifact, version, strategy;
  bool resume = false, json = false;
};

Exit run_deploy(const DeployArgs& a, Io& io) {
  if (!a.resume && a.artifact.empty() && a.version.empty())
    return report(io, Error(Errc::kInvalidArgument,
                            "deploy needs --artifact PATH or --version V (or --resume)"));
  Guard guard{a.resume ? deploy::Guarded::kResume : deploy::Guarded::kDeploy,
              a.version.empty() ? a.artifact : a.version, a.resume};
  return run_controller(
      io, a.config, a.env, a.json, true, std::move(guard),
      [&](deploy::Deployer& d, const config::Environment& env) -> Result<deploy::Outcome> {
        if (a.resume) return d.resume();
        deploy::DeployRequest req;
        deploy::LocatedArtifact art;
        if (!a.artifact.empty()) {
          art = MD_TRY(deploy::read_artifact(a.artifact));
          req.version = MD_TRY(deploy::version_from_artifact_name(env.artifact, env.app,
                                                                  art.path.filename().string()));
        } else {
          req.version = a.version;
          art = MD_TRY(deploy::locate_artifact(env, a.version));
        }
        req.artifact = art.path;
        req.sha256 = art.sha256;
        if (a.strategy == "canary") req.strategy = config::StrategyKind::kCanary;
        if (a.strategy == "blue_green") req.strategy = config::StrategyKind::kBlueGreen;
        return d.deploy(req);
      });
}

// ---- rollback -----------------------------------------------------------------

struct RollbackArgs {
  std::string config, env, to;
  bool json = false;
};

// ---- promote / abort ------------------------------------------------------------

struct ControlArgs {
  std::string config, env, reason;
  bool json = false;
};

Exit run_control(const ControlArgs& a, Io& io, deploy::ControlCommand c) {
  deploy::SessionOptions so;
  so.migrations = false;
  so.notifications = false;
  so.agent_patience = Millis(0);
  const deploy::Guarded g =
      c == deploy::ControlCommand::kPromote ? deploy::Guarded::kPromote : deploy::Guarded::kAbort;
  auto opened = open_env(io, a.config, a.env, so, false, Guard{g, ""});
  if (!opened) return report(io, opened.error());
  auto t = deploy::request_control(opened->session->store(), a.env, c, actor(), a.reason);
  if (!t) return report(io, t.error());
  auto taken = deploy::await_control(opened->session->store(), *t, Millis(10000), real_clock());
  if (!taken) return report(io, taken.error());
  const std::string what(deploy::control_name(c));
  if (a.json) {
    io.out << to_json_text(nlohmann::json{{"deployment_id", t->deployment_id},
                                          {"version", t->version},
                                          {"command", what},
                                          {"taken", *taken}})
           << "\n";
  } else if (*taken) {
    io.out << fmt::format("{}: deployment {} ({}) took the {} request\n", a.env, t->deployment_id,
                          t->version, what);
  } else {
    io.err << fmt::format(
        "meshdeploy: {}: deployment {} has not taken the {} request within 10s; its "
        "controller may be gone (`meshdeploy status --env {}`); the request stays "
        "queued\n",
        a.env, t->deployment_id, what, a.env);
    return Exit::kFailed;
  }
  return Exit::kOk;
}

// ---- status / history / logs --------------------------------------------------------

struct ViewArgs {
  std::string config, env, release, process, id, host;
  bool json = false, follow = false;
  int limit = 20, tail = 100;
};

Result<Opened> open_quiet(Io& io, const ViewArgs& a) {
  deploy::SessionOptions so;
  so.migrations = false;
  so.notifications = false;
  so.agent_patience = Millis(0);
  return open_env(io, a.config, a.env, so, false);
}

void common(CLI::App& cmd, std::string& config, std::string& env) {
  add_config_option(cmd, config);
  add_env_option(cmd, env);
}

}  // namespace

Action setup_deploy(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<DeployArgs>();
  common(cmd, a->config, a->env);
  auto* art = cmd.add_option("--artifact", a->artifact,
                             "release archive (.tar.gz/.tar.zst) with a .sha256 beside it")
                  ->type_name("PATH");
  auto* ver = cmd.add_option("--version", a->version,
                             "release version; its artifact is found in artifact.dir")
                  ->type_name("V");
  art->excludes(ver);
  cmd.add_option("--strategy", a->strategy, "override strategy.kind for this deploy")
      ->check(CLI::IsMember({"blue_green", "canary"}));
  auto* res =
      cmd.add_flag("--resume", a->resume, "finish (or roll back) a deploy whose controller died");
  res->excludes(art)->excludes(ver);
  cmd.add_flag("--json", a->json, "JSON lines on stdout, for machines");
  return [a, &io] { return run_deploy(*a, io); };
}

Action setup_rollback(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<RollbackArgs>();
  common(cmd, a->config, a->env);
  cmd.add_option("--to", a->to, "release to go back to (default: the one live before the current)")
      ->type_name("V");
  cmd.add_flag("--json", a->json, "JSON lines on stdout, for machines");
  return [a, &io] {
    return run_controller(
        io, a->config, a->env, a->json, false, Guard{deploy::Guarded::kRollback, a->to},
        [&](deploy::Deployer& d, const config::Environment&) { return d.rollback(a->to); });
  };
}

Action setup_promote(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ControlArgs>();
  common(cmd, a->config, a->env);
  cmd.add_flag("--json", a->json, "JSON on stdout");
  return [a, &io] { return run_control(*a, io, deploy::ControlCommand::kPromote); };
}

Action setup_abort(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ControlArgs>();
  common(cmd, a->config, a->env);
  cmd.add_option("--reason", a->reason, "why, for the journal and the notifications");
  cmd.add_flag("--json", a->json, "JSON on stdout");
  return [a, &io] { return run_control(*a, io, deploy::ControlCommand::kAbort); };
}

Action setup_status(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ViewArgs>();
  common(cmd, a->config, a->env);
  cmd.add_flag("--json", a->json, "JSON on stdout");
  return [a, &io] {
    auto o = open_quiet(io, *a);
    if (!o) return report(io, o.error());
    auto s = deploy::environment_status(o->session->store(), o->session->host(), a->env);
    if (!s) return report(io, s.error());
    if (a->json)
      io.out << to_json_text(deploy::status_json(*s), 2) << "\n";
    else
      io.out << deploy::format_status(*s, real_clock().now());
    return s->host ? Exit::kOk : Exit::kFailed;
  };
}

Action setup_history(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ViewArgs>();
  common(cmd, a->config, a->env);
  cmd.add_option("-n,--limit", a->limit, "how many deployments (newest first)")
      ->check(CLI::Range(1, 10000));
  cmd.add_option("--id", a->id, "one deployment's step journal instead")->type_name("DEPLOYMENT");
  cmd.add_flag("--json", a->json, "JSON on stdout");
  return [a, &io] {
    auto env = load_environment(io, a->config, a->env);
    if (!env) return report(io, env.error());
    auto store = deploy::open_state(*env);
    if (!store) return report(io, store.error());
    if (!a->id.empty()) {
      auto d = (*store)->deployment(a->id);
      if (!d) return report(io, d.error());
      auto j = (*store)->journal(a->id);
      if (!j) return report(io, j.error());
      if (a->json)
        io.out << to_json_text(deploy::journal_json(*d, *j), 2) << "\n";
      else
        io.out << deploy::format_journal(*d, *j);
      return Exit::kOk;
    }
    auto ds = (*store)->deployments(a->env, a->limit);
    if (!ds) return report(io, ds.error());
    // Several hosts: each deployment's own (its journal says which it ran on).
    std::map<std::string, std::vector<std::string>> hosts;
    if (env->hosts.size() > 1)
      for (const state::Deployment& d : *ds) {
        auto j = (*store)->journal(d.id);
        if (!j) return report(io, j.error());
        hosts[d.id] = deploy::deployment_hosts(*j);
      }
    if (a->json)
      io.out << to_json_text(deploy::history_json(*ds, hosts), 2) << "\n";
    else
      io.out << deploy::format_history(*ds, hosts);
    return Exit::kOk;
  };
}

Action setup_logs(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ViewArgs>();
  common(cmd, a->config, a->env);
  cmd.add_option("--release", a->release, "release version (default: the live one)")
      ->type_name("V");
  cmd.add_option("--process", a->process, "one process, e.g. web.1 (default: all, merged by time)");
  cmd.add_option("--tail", a->tail, "start with the last N lines")->check(CLI::Range(0, 1000000));
  cmd.add_flag("-f,--follow", a->follow, "keep printing new lines until interrupted");
  cmd.add_option("--host", a->host, "the host's name in hosts: (default: the first)")
      ->type_name("NAME");
  return [a, &io] {
    auto env = load_environment(io, a->config, a->env);
    if (!env) return report(io, env.error());
    size_t index = 0;
    if (!a->host.empty()) {
      std::string names;
      for (index = 0; index < env->hosts.size() && env->hosts[index].name != a->host; ++index)
        names += (names.empty() ? "" : ", ") + env->hosts[index].name;
      if (index == env->hosts.size())
        return report(
            io, Error(Errc::kNotFound, fmt::format("environment {} has no host {} (its hosts: {})",
                                                   env->name, a->host, names)));
    }
    secrets::SecretMap secrets;
    if (deploy::needs_ssh_secrets(*env)) {
      auto loaded = secrets::load_secrets(*env);
      if (!loaded)
        return report(io, std::move(loaded.error()).with_context("secrets of " + a->env));
      secrets = std::move(*loaded);
      secrets::install_log_redactor(std::make_shared<const secrets::Redactor>(secrets));
    }
    auto link = deploy::open_agent_link(*env, index, secrets);
    if (!link) return report(io, link.error());
    // Ctrl-C ends --follow: between lines, or by cutting the agent call.
    interrupt::Watch signals;
    Status s = deploy::stream_logs(*link, *env, a->release, a->process, a->tail, a->follow,
                                   [&io](const std::string& line) {
                                     io.out << line << "\n" << std::flush;
                                     return !interrupt::flag().load();
                                   });
    if (!s && !interrupt::flag()) return report(io, s.error());
    return Exit::kOk;
  };
}

}  // namespace md::cli
