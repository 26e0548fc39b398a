// The one table of commands. `meshdeploy help` is generated from it.
#include "cli/commands.h"

namespace md::cli {
namespace {
constexpr CommandSpec kCommands[] = {
    {"deploy", "deploy a release to an environment (blue-green or canary)", setup_deploy},
    {"rollback", "move an environment back to its previous (or a named) release", setup_rollback},
    {"promote", "promote the running canary to its next step", setup_promote},
    {"abort", "abort the running canary and return all traffic to the live release", setup_abort},
    {"status", "what runs in an environment: releases, weights, health", setup_status},
    {"history", "past deployments of an environment", setup_history},
    {"logs", "a release's process logs (redacted)", setup_logs},
    {"config validate", "check meshdeploy.yml and report every problem", setup_config_validate},
    {"config show", "print one environment's resolved configuration, secrets redacted",
     setup_config_show},
    {"secrets keygen", "print a new master key for MESHDEPLOY_KEY_<ENV>", setup_secrets_keygen},
    {"secrets set", "store a secret read from standard input", setup_secrets_set},
    {"secrets get", "print one secret's value", setup_secrets_get},
    {"secrets list", "list the secret names of an environment", setup_secrets_list},
    {"secrets rm", "remove a secret", setup_secrets_rm},
    {"secrets import", "import a dotenv file into the vault", setup_secrets_import},
    {"secrets rotate-key", "re-encrypt the vault under a new master key", setup_secrets_rotate_key},
    {"migrate status", "applied, pending and drifted migrations", setup_migrate_status},
    {"migrate plan", "dry run: statements, locks, phase and lint findings", setup_migrate_plan},
    {"migrate up", "apply pending migrations", setup_migrate_up},
    {"migrate lint", "flag migrations that lock or rewrite busy tables", setup_migrate_lint},
    {"migrate baseline", "record existing migrations as applied without running them",
     setup_migrate_baseline},
    {"migrate restore", "restore a backup taken before a migration run", setup_migrate_restore},
    {"hosts import", "check or write an environment's hosts: from `terraform output -json`",
     setup_hosts_import},
    {"agent run", "run the host agent: proxy, supervisor, release store", setup_agent_run},
    {"agent status", "what a running agent supervises and routes", setup_agent_status},
    {"agent stop", "stop the agent (release processes keep running unless --all)",
     setup_agent_stop},
    {"agent restart", "re-exec the agent (e.g. after an upgrade) keeping its public listeners open",
     setup_agent_restart},
    {"agent log-writer", "internal: redact a process's output into its log file",
     setup_agent_log_writer},
    {"proxy run", "run the traffic proxy on its own", setup_proxy_run},
    {"proxy deploy", "health-check new targets, switch a service to them, drain the old",
     setup_proxy_deploy},
    {"proxy canary", "send a weight of a service's traffic to a canary target set",
     setup_proxy_canary},
    {"proxy promote", "make the canary set the live set", setup_proxy_promote},
    {"proxy abort", "drop the canary set", setup_proxy_abort},
    {"proxy status", "services, target sets, weights and health", setup_proxy_status},
    {"proxy metrics", "request, latency and error metrics per service and set",
     setup_proxy_metrics},
    {"proxy maintenance", "answer 503 with the maintenance page (health path still served)",
     setup_proxy_maintenance},
    {"proxy pause", "hold new requests of a service (database switchover)", setup_proxy_pause},
    {"proxy resume", "end maintenance or pause", setup_proxy_resume},
    {"notify test", "send a test notification to an environment's channels", setup_notify_test},
    {"notify status", "pending and failed notification deliveries", setup_notify_status},
    {"notify retry", "retry a failed delivery now", setup_notify_retry},
};
}  // namespace

std::span<const CommandSpec> command_table() { return kCommands; }

}  // namespace md::cli
