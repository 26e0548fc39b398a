// `meshdeploy hosts import`: an environment's hosts: list from `terraform
// output -json`, checked (default) or written into meshdeploy.yml.
// `meshdeploy hosts setup | check`: bootstrap and check each host's agent
// (deploy/host_setup.h).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <ostream>

#include "cli/commands.h"
#include "cli/version.h"
#include "config/inventory.h"
#include "core/fs.h"
#include "core/json.h"
#include "deploy/adapters.h"
#include "deploy/host_setup.h"

namespace md::cli {
namespace {

struct ImportArgs {
  std::string config;
  std::string env;
  std::string terraform_output;
  std::string output_name = "meshdeploy_hosts";
  bool write = false;
  bool check = false;
};

std::vector<config::InventoryHost> file_hosts(const config::Environment& env) {
  std::vector<config::InventoryHost> out;
  for (const config::Host& h : env.hosts) out.push_back({h.name, h.address, h.host_key});
  return out;
}

Exit run_import(Io& io, const ImportArgs& a) {
  auto conf = load_config(io, a.config);
  if (!conf) return report(io, conf.error());
  std::string env_name = a.env;
  if (env_name.empty()) {
    if (conf->environments.size() != 1)
      return report(io, Error(Errc::kInvalidArgument,
                              "hosts import: --env is required (" + conf->file.string() + " has " +
                                  std::to_string(conf->environments.size()) + " environments)"));
    env_name = conf->environments.front();
  }
  auto env = config::resolve(*conf, env_name);
  if (!env) return report(io, env.error());
  auto json = fs::read_file(a.terraform_output);
  if (!json) return report(io, json.error().context("hosts import"));
  auto wanted = config::parse_terraform_hosts(*json, a.terraform_output, a.output_name);
  if (!wanted) return report(io, wanted.error().context("hosts import"));

  std::vector<config::InventoryHost> have = file_hosts(*env);
  std::vector<std::string> diff = config::diff_hosts(have, *wanted);
  const std::string where = conf->file.string() + " environments." + env_name + ".hosts";
  if (diff.empty()) {
    io.out << where << ": matches " << a.terraform_output << " (" << wanted->size()
           << (wanted->size() == 1 ? " host)" : " hosts)") << (a.write ? "; unchanged" : "")
           << "\n";
    return Exit::kOk;
  }
  if (!a.write) {
    io.out << where << " differs from " << a.terraform_output << ":\n";
    for (const std::string& line : diff) io.out << "  " << line << "\n";
    io.out << "run `meshdeploy hosts import --write` to update it\n";
    return Exit::kFailed;
  }

  auto text = fs::read_file(conf->file);
  if (!text) return report(io, text.error().context("hosts import"));
  auto edited = config::replace_hosts(*text, conf->file.string(), env_name, *wanted);
  if (!edited) return report(io, edited.error().context("hosts import"));
  // The new file must load as a whole before it replaces the old one.
  config::LoadResult check = config::load_text(*edited, conf->file, config::getenv_lookup);
  if (!check.config) {
    for (const config::Diagnostic& d : check.diagnostics) io.err << d.format() << "\n";
    return report(io, Error(Errc::kInvalidArgument, "hosts import: the imported hosts would make " +
                                                        conf->file.string() +
                                                        " invalid; it was not changed"));
  }
  struct stat st {};
  unsigned mode = ::stat(conf->file.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  if (auto w = fs::atomic_write(conf->file, *edited, mode); !w)
    return report(io, w.error().context("hosts import"));
  io.out << where << ": updated from " << a.terraform_output << ":\n";
  for (const std::string& line : diff) io.out << "  " << line << "\n";
  return Exit::kOk;
}

struct HostsArgs {
  std::string config;
  std::string env;
  bool json = false;
};

// The environment and, when its ssh trust or key is in the vault, its
// secrets (their values masked in the log and in everything printed).
struct Loaded {
  config::Environment env;
  secrets::SecretMap secrets;
  std::shared_ptr<const secrets::Redactor> redactor;
};
Result<Loaded> load_hosts_env(Io& io, const HostsArgs& a) {
  Loaded l;
  l.env = MD_TRY(load_environment(io, a.config, a.env));
  if (deploy::needs_ssh_secrets(l.env)) {
    l.secrets = MD_TRY_CTX(secrets::load_secrets(l.env), "secrets of " + a.env);
    l.redactor = std::make_shared<const secrets::Redactor>(l.secrets);
    secrets::install_log_redactor(l.redactor);
  }
  return l;
}

Exit run_setup(Io& io, const HostsArgs& a) {
  auto l = load_hosts_env(io, a);
  if (!l) return report(io, l.error());
  std::vector<deploy::SetupTarget> targets;
  std::vector<deploy::SetupReport> reports =
      deploy::setup_hosts(l->env, l->secrets, "/proc/self/exe", std::string(version()), &targets);
  std::vector<std::string> failed;
  for (size_t i = 0; i < reports.size(); ++i) {
    for (const std::string& line : deploy::format_setup(reports[i], targets[i]))
      io.out << (l->redactor ? l->redactor->redact(line) : line) << "\n";
    if (!reports[i].error.empty()) failed.push_back(reports[i].host + " (" + reports[i].step + ")");
  }
  if (failed.empty()) return Exit::kOk;
  std::string names;
  for (const std::string& f : failed) names += (names.empty() ? "" : ", ") + f;
  io.err << "meshdeploy: hosts setup failed on " << names << "\n";
  return Exit::kFailed;
}

Exit run_check(Io& io, const HostsArgs& a) {
  auto l = load_hosts_env(io, a);
  if (!l) return report(io, l.error());
  const std::string v(version());
  std::vector<deploy::HostHealth> hosts =
      deploy::check_hosts(l->env, l->secrets, "/proc/self/exe", v, deploy::CheckLimits{});
  std::string text = a.json ? to_json_text(deploy::check_json(hosts, v), 2) + "\n"
                            : deploy::format_check_table(hosts, v);
  io.out << (l->redactor ? l->redactor->redact(text) : text);
  std::string names;
  for (const deploy::HostHealth& h : hosts)
    if (!h.problems.empty()) names += (names.empty() ? "" : ", ") + h.host;
  if (names.empty()) return Exit::kOk;
  io.err << "meshdeploy: hosts check: problems on " << names << "\n";
  return Exit::kFailed;
}

}  // namespace

Action setup_hosts_setup(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<HostsArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env);
  return [a, &io] { return run_setup(io, *a); };
}

Action setup_hosts_check(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<HostsArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env);
  cmd.add_flag("--json", a->json, "print the report as JSON");
  return [a, &io] { return run_check(io, *a); };
}

Action setup_hosts_import(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<ImportArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env, /*required=*/false);
  cmd.add_option("--terraform-output", a->terraform_output,
                 "the output of `terraform output -json`")
      ->type_name("FILE")
      ->required();
  cmd.add_option("--output-name", a->output_name,
                 "the Terraform output that lists the hosts (default: meshdeploy_hosts)")
      ->type_name("NAME");
  auto* write = cmd.add_flag("--write", a->write, "rewrite the environment's hosts: list");
  cmd.add_flag("--check", a->check, "compare only; exit 1 on a difference (the default)")
      ->excludes(write);
  return [a, &io] { return run_import(io, *a); };
}

}  // namespace md::cli
