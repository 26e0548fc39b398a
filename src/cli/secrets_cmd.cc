// `meshdeploy secrets keygen|set|get|list|rm|import|rotate-key`. Values come
// on stdin or from files, never from argv (where `ps` shows them); nothing
// here prints a value except `get`. Each change is audited in the state
// store (actor, action, secret name — never the value).
#include <pwd.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "cli/commands.h"
#include "config/config.h"
#include "core/fs.h"
#include "core/json.h"
#include "deploy/state_place.h"
#include "secrets/import.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::cli {
namespace {

struct Args {
  std::string config;
  std::string env;
  std::string name;
  std::string file;  // import: dotenv file; keygen: --out
  std::string new_key_file;
};

// "user@host": who changed a secret, for the audit log.
std::string actor() {
  std::string user;
  if (const char* u = ::getenv("USER"); u && *u) user = u;
  if (user.empty())
    if (const passwd* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
  if (user.empty()) user = "uid " + std::to_string(::geteuid());
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return user + "@" + host;
}

// An environment's vault, its key and its state store, ready for one change.
struct Target {
  config::Environment env;
  secrets::VaultLocation loc;
  secrets::LoadedKey key;
};

Result<Target> target(Io& io, const Args& a) {
  config::Environment env = MD_TRY(load_environment(io, a.config, a.env));
  secrets::VaultLocation loc = secrets::vault_location(env);
  secrets::LoadedKey key = MD_TRY(secrets::load_key(loc.environment, loc.key_file));
  return Target{std::move(env), std::move(loc), std::move(key)};
}

// The vault of a target, opened for reading, or locked and opened for a
// change (kCreate: a missing vault starts empty).
enum class Mode { kRead, kChange, kCreate };
struct Opened {
  Target t;
  std::optional<secrets::VaultLock> lock;
  secrets::Vault vault;
};
Result<Opened> open_vault(Target t, Mode mode) {
  std::optional<secrets::VaultLock> lock;
  if (mode != Mode::kRead) lock.emplace(MD_TRY(secrets::VaultLock::acquire(t.loc.vault)));
  const secrets::VaultLocation& loc = t.loc;
  secrets::Vault v =
      mode == Mode::kCreate
          ? MD_TRY(secrets::Vault::open_or_create(loc.vault, loc.environment, t.key.key))
          : MD_TRY(secrets::Vault::open(loc.vault, loc.environment, t.key.key));
  return Opened{std::move(t), std::move(lock), std::move(v)};
}
Result<Opened> open_vault(Io& io, const Args& a, Mode mode) {
  return open_vault(MD_TRY(target(io, a)), mode);
}

std::string where(const secrets::VaultLocation& loc) {
  std::error_code ec;
  auto rel = std::filesystem::relative(loc.vault, ec);
  return ec || rel.empty() || rel.string().starts_with("..") ? loc.vault.string() : rel.string();
}

// Saves the vault and appends the audit entries, opening the store first so
// that an unreachable store refuses the change instead of losing its trace.
Status save_and_audit(const Opened& o, std::vector<state::AuditEntry> entries) {
  // WHY the vault as edited: with the state on an ssh host, the ssh key
  // being set here is the one that reaches the store.
  auto store = deploy::open_state(o.t.env, &o.vault.secrets());
  if (!store) return fail(std::move(store.error()).with_context("audit log"));
  MD_TRY_STATUS(o.vault.save());
  std::string who = actor();
  for (auto& e : entries) {
    e.actor = who;
    e.environment = o.t.loc.environment;
  }
  auto st = (*store)->commit({.audit = std::move(entries)});
  if (!st)
    return fail(std::move(st.error())
                    .with_context("the vault was changed, but its audit entry was not written"));
  return ok();
}

state::AuditEntry audit(std::string action, std::string name, const nlohmann::json& detail = {}) {
  state::AuditEntry e;
  e.action = std::move(action);
  e.target = std::move(name);
  e.detail = detail.is_null() ? "{}" : to_json_text(detail);
  return e;
}

std::string read_all(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void strip_one_newline(std::string& s) {
  if (s.ends_with("\r\n"))
    s.resize(s.size() - 2);
  else if (s.ends_with("\n"))
    s.pop_back();
}

void add_common(CLI::App& cmd, Args& a) {
  add_config_option(cmd, a.config);
  add_env_option(cmd, a.env);
}

}  // namespace

Action setup_secrets_keygen(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  cmd.add_option("-e,--env", a->env, "environment the key is for (names its variable)")
      ->type_name("ENV");
  cmd.add_option("--out", a->file, "also write the key to this new file, mode 0600")
      ->type_name("FILE");
  return [a, &io] {
    secrets::MasterKey key = secrets::MasterKey::generate();
    if (!a->file.empty()) {
      std::error_code ec;
      if (std::filesystem::exists(a->file, ec))
        return report(io, Error(Errc::kAlreadyExists,
                                a->file + " already exists; refusing to overwrite a key"));
      std::filesystem::path p(a->file);
      if (p.has_parent_path()) {
        if (auto st = fs::ensure_dir(p.parent_path(), 0700); !st) return report(io, st.error());
      }
      if (auto st = fs::atomic_write(p, key.reveal_text() + "\n", 0600); !st)
        return report(io, st.error());
    }
    io.out << key.reveal_text() << "\n";
    std::string var = secrets::key_env_var(a->env.empty() ? "<env>" : a->env);
    io.err << "# key id " << key.id() << ": keep it in " << var
           << (a->file.empty() ? " or a key file (chmod 600)" : " or " + a->file)
           << "; never commit it\n";
    return Exit::kOk;
  };
}

Action setup_secrets_set(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  cmd.add_option("name", a->name, "secret name, e.g. DATABASE_URL")->required();
  return [a, &io] {
    if (auto st = secrets::check_secret_name(a->name); !st) return report(io, st.error());
    auto t = target(io, *a);  // before reading stdin: a missing key is told at once
    if (!t) return report(io, t.error());
    std::string value;
    if (&io.in == &std::cin && ::isatty(0)) {
      // WHY no echo: a value typed at a terminal must not stay on the screen.
      io.err << "value of " << a->name << " (not echoed; end with Ctrl-D): " << std::flush;
      termios saved{};
      bool restore = ::tcgetattr(0, &saved) == 0;
      if (restore) {
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(0, TCSANOW, &quiet);
      }
      value = read_all(io.in);
      if (restore) ::tcsetattr(0, TCSANOW, &saved);
      io.err << "\n";
    } else {
      value = read_all(io.in);
    }
    strip_one_newline(value);
    if (auto st = secrets::check_secret_value(a->name, value); !st) return report(io, st.error());
    auto o = open_vault(std::move(*t), Mode::kCreate);
    if (!o) return report(io, o.error());
    bool existed = o->vault.contains(a->name);
    auto changed = o->vault.set(a->name, secrets::Secret(std::move(value)), real_clock().now());
    if (!changed) return report(io, changed.error());
    if (!*changed) {
      io.out << a->name << " unchanged in " << where(o->t.loc) << "\n";
      return Exit::kOk;
    }
    const char* what = existed ? "changed" : "added";
    if (auto st = save_and_audit(*o, {audit("secrets.set", a->name, {{"change", what}})}); !st)
      return report(io, st.error());
    io.out << a->name << " " << what << " in " << where(o->t.loc) << "\n";
    return Exit::kOk;
  };
}

Action setup_secrets_get(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  cmd.add_option("name", a->name, "secret name")->required();
  return [a, &io] {
    auto o = open_vault(io, *a, Mode::kRead);
    if (!o) return report(io, o.error());
    auto s = o->vault.get(a->name);
    if (!s) return report(io, s.error());
    // The one place a value is revealed on purpose.
    io.out << s->reveal() << "\n";
    return Exit::kOk;
  };
}

Action setup_secrets_list(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  return [a, &io] {
    auto env = load_environment(io, a->config, a->env);
    if (!env) return report(io, env.error());
    secrets::VaultLocation loc = secrets::vault_location(*env);
    std::vector<secrets::VaultEntry> entries;
    auto key = secrets::load_key(loc.environment, loc.key_file);
    if (key) {
      auto vault = secrets::Vault::open(loc.vault, loc.environment, key->key);
      if (!vault) return report(io, vault.error());
      entries = vault->list();
    } else if (key.error().code() == Errc::kNotFound) {
      // WHY list without a key: names are readable by design; say that
      // nothing was verified.
      auto peek = secrets::Vault::peek(loc.vault);
      if (!peek) return report(io, peek.error());
      entries = std::move(*peek);
      io.err << "note: no key for " << loc.environment << " ("
             << secrets::key_env_var(loc.environment)
             << "): names listed without verifying the vault\n";
    } else {
      return report(io, key.error());
    }
    size_t width = 0;
    for (const auto& e : entries) width = std::max(width, e.name.size());
    for (const auto& e : entries)
      io.out << e.name << std::string(width - e.name.size() + 2, ' ') << format_time(e.updated_at)
             << "\n";
    if (entries.empty()) io.err << "no secrets in " << where(loc) << "\n";
    return Exit::kOk;
  };
}

Action setup_secrets_rm(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  cmd.add_option("name", a->name, "secret name")->required();
  return [a, &io] {
    auto o = open_vault(io, *a, Mode::kChange);
    if (!o) return report(io, o.error());
    if (auto st = o->vault.remove(a->name); !st) return report(io, st.error());
    if (auto st = save_and_audit(*o, {audit("secrets.rm", a->name)}); !st)
      return report(io, st.error());
    io.out << a->name << " removed from " << where(o->t.loc) << "\n";
    return Exit::kOk;
  };
}

Action setup_secrets_import(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  cmd.add_option("file", a->file, "dotenv file, e.g. .env.production")->required();
  return [a, &io] {
    auto t = target(io, *a);
    if (!t) return report(io, t.error());
    auto text = fs::read_file(a->file);
    if (!text) return report(io, text.error());
    auto plan = secrets::plan_dotenv_import(*text, a->file);
    if (!plan) return report(io, plan.error());
    if (!plan->problems.empty()) {
      for (const auto& p : plan->problems) io.err << p << "\n";
      return report(io, Error(Errc::kInvalidArgument, "import " + a->file + ": " +
                                                          std::to_string(plan->problems.size()) +
                                                          " problem(s); nothing was imported"));
    }
    const std::vector<std::string> skipped = plan->skipped;
    auto o = open_vault(std::move(*t), Mode::kCreate);
    if (!o) return report(io, o.error());
    auto done = secrets::apply_import(o->vault, std::move(*plan), real_clock().now());
    if (!done) return report(io, done.error());
    const auto& [added, changed, unchanged] = *done;
    std::map<std::string, const char*> changes;  // by name, as the vault orders them
    for (const auto& name : added) changes[name] = "added";
    for (const auto& name : changed) changes[name] = "changed";
    std::vector<state::AuditEntry> trail;
    trail.reserve(changes.size());
    for (const auto& [name, change] : changes)
      trail.push_back(audit("secrets.set", name, {{"change", change}, {"import", a->file}}));
    if (!trail.empty()) {
      if (auto st = save_and_audit(*o, std::move(trail)); !st) return report(io, st.error());
    }
    auto show = [&](const char* label, const std::vector<std::string>& names) {
      if (names.empty()) return;
      io.out << label << " (" << names.size() << "):";
      for (const auto& n : names) io.out << " " << n;
      io.out << "\n";
    };
    show("added", added);
    show("changed", changed);
    show("unchanged", unchanged);
    show("skipped, empty", skipped);
    io.out << "imported " << a->file << " into " << where(o->t.loc) << "\n";
    return Exit::kOk;
  };
}

Action setup_secrets_rotate_key(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<Args>();
  add_common(cmd, *a);
  cmd.add_option("--new-key-file", a->new_key_file,
                 "read the new key from this file (mode 0600) instead of standard input")
      ->type_name("FILE");
  return [a, &io] {
    auto o = open_vault(io, *a, Mode::kChange);
    if (!o) return report(io, o.error());
    std::string source = a->new_key_file.empty() ? "standard input" : a->new_key_file;
    std::string text;
    if (a->new_key_file.empty()) {
      text = read_all(io.in);
    } else {
      if (auto st = fs::check_private(a->new_key_file); !st) return report(io, st.error());
      auto r = fs::read_file(a->new_key_file);
      if (!r) return report(io, r.error());
      text = std::move(*r);
    }
    auto next = secrets::MasterKey::parse(text);
    if (!next) return report(io, Error(next.error()).context("new key from " + source));
    std::string old_id = o->t.key.key.id(), new_id = next->id();
    if (new_id == old_id)
      return report(io, Error(Errc::kInvalidArgument,
                              "the new key is the current key; make one with `meshdeploy secrets "
                              "keygen`"));
    o->vault.rekey(*next);
    size_t n = o->vault.secrets().size();
    nlohmann::json detail = {{"old_key_id", old_id}, {"new_key_id", new_id}, {"secrets", n}};
    if (auto st = save_and_audit(*o, {audit("secrets.rotate_key", "", detail)}); !st)
      return report(io, st.error());
    io.out << "re-encrypted " << n << " secret(s) of " << o->t.loc.environment << " under key id "
           << new_id << " (was " << old_id << ")\n"
           << "now replace the key in " << o->t.key.source
           << " (and wherever else it is kept, e.g. CI) with the new one\n";
    return Exit::kOk;
  };
}

}  // namespace md::cli
