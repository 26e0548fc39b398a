// `meshdeploy config validate|show`, and the -c/--env helpers every command
// group uses to get at meshdeploy.yml.
#include <CLI/CLI.hpp>
#include <memory>
#include <ostream>

#include "cli/commands.h"
#include "secrets/secrets.h"

namespace md::cli {

void add_config_option(CLI::App& cmd, std::string& path) {
  cmd.add_option("-c,--config", path, "configuration file (default: ./meshdeploy.yml)")
      ->type_name("FILE");
}

void add_env_option(CLI::App& cmd, std::string& env, bool required) {
  auto* opt = cmd.add_option("-e,--env", env, "environment, e.g. production")->type_name("ENV");
  if (required) opt->required();
}

Result<config::Config> load_config(Io& io, const std::string& path) {
  std::filesystem::path file = MD_TRY(config::locate(path));
  config::LoadResult r = config::load(file);
  if (r.config) return std::move(*r.config);
  for (const config::Diagnostic& d : r.diagnostics) io.err << d.format() << "\n";
  size_t n = r.diagnostics.size();
  return fail(Errc::kInvalidArgument,
              file.string() + ": " + std::to_string(n) + (n == 1 ? " problem" : " problems"));
}

Result<config::Environment> load_environment(Io& io, const std::string& path,
                                             const std::string& env) {
  config::Config c = MD_TRY(load_config(io, path));
  return config::resolve(c, env);
}

namespace {

// The names in an environment's vault, read without its key. nullopt when
// the vault does not exist yet (nothing to check against).
Result<std::optional<std::vector<std::string>>> vault_names(const config::Environment& env) {
  auto entries = secrets::Vault::peek(secrets::vault_location(env).vault);
  if (!entries) {
    if (entries.error().code() == Errc::kNotFound) return std::optional<std::vector<std::string>>();
    return fail(entries.error());
  }
  std::vector<std::string> names;
  for (const secrets::VaultEntry& e : *entries) names.push_back(e.name);
  return std::optional<std::vector<std::string>>(std::move(names));
}

struct ValidateArgs {
  std::string config;
};

struct ShowArgs {
  std::string config;
  std::string env;
  bool json = false;
};

}  // namespace

Action setup_config_validate(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ValidateArgs>();
  add_config_option(cmd, a->config);
  return [a, &io] {
    auto c = load_config(io, a->config);
    if (!c) return report(io, c.error());
    // Secret names are checked against each vault that exists (committed
    // vaults are readable without a key: names are in clear).
    size_t problems = 0;
    for (const std::string& e : c->environments) {
      auto env = config::resolve(*c, e);
      if (!env) return report(io, env.error());
      auto names = vault_names(*env);
      if (!names) {
        io.err << names.error().what() << "\n";
        ++problems;
        continue;
      }
      if (!*names) continue;
      for (const config::Diagnostic& d : config::check_secret_names(*c, e, **names)) {
        io.err << d.format() << "\n";
        ++problems;
      }
    }
    if (problems > 0)
      return report(
          io, Error(Errc::kInvalidArgument, c->file.string() + ": " + std::to_string(problems) +
                                                (problems == 1 ? " problem" : " problems")));
    std::string envs;
    for (const std::string& e : c->environments) envs += (envs.empty() ? "" : ", ") + e;
    size_t n = c->environments.size();
    io.out << c->file.string() << ": ok (" << n << (n == 1 ? " environment: " : " environments: ")
           << envs << ")\n";
    return Exit::kOk;
  };
}

Action setup_config_show(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ShowArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env);
  cmd.add_flag("--json", a->json, "print JSON instead of YAML");
  return [a, &io] {
    auto env = load_environment(io, a->config, a->env);
    if (!env) return report(io, env.error());
    // WHY names only: show never needs the key and never decrypts; the
    // vault's names (clear in the file) complete a `secrets: ["*"]`.
    std::vector<std::string> names;
    if (auto v = vault_names(*env); v && *v)
      names = **v;
    else if (!v)
      return report(io, v.error());
    io.out << (a->json ? config::render_json(*env, names) : config::render_yaml(*env, names));
    return Exit::kOk;
  };
}

}  // namespace md::cli
