// Setup functions of every command, one group per file (config_cmd.cc, ...).
// The table that lists them is in commands.cc.
#pragma once

#include "cli/cli.h"

namespace md::cli {

#define MD_CMD(fn) Action fn(CLI::App& cmd, Io& io);
// config_cmd.cc
MD_CMD(setup_config_validate)
MD_CMD(setup_config_show)
// secrets_cmd.cc
MD_CMD(setup_secrets_keygen)
MD_CMD(setup_secrets_set)
MD_CMD(setup_secrets_get)
MD_CMD(setup_secrets_list)
MD_CMD(setup_secrets_rm)
MD_CMD(setup_secrets_import)
MD_CMD(setup_secrets_rotate_key)
// proxy_cmd.cc
MD_CMD(setup_proxy_run)
MD_CMD(setup_proxy_deploy)
MD_CMD(setup_proxy_canary)
MD_CMD(setup_proxy_promote)
MD_CMD(setup_proxy_abort)
MD_CMD(setup_proxy_status)
MD_CMD(setup_proxy_metrics)
MD_CMD(setup_proxy_maintenance)
MD_CMD(setup_proxy_pause)
MD_CMD(setup_proxy_resume)
// migrate_cmd.cc
MD_CMD(setup_migrate_status)
MD_CMD(setup_migrate_plan)
MD_CMD(setup_migrate_up)
MD_CMD(setup_migrate_lint)
MD_CMD(setup_migrate_baseline)
MD_CMD(setup_migrate_restore)
// deploy_cmd.cc
MD_CMD(setup_deploy)
MD_CMD(setup_rollback)
MD_CMD(setup_promote)
MD_CMD(setup_abort)
MD_CMD(setup_status)
MD_CMD(setup_history)
MD_CMD(setup_logs)
// agent_cmd.cc
MD_CMD(setup_agent_run)
MD_CMD(setup_agent_status)
MD_CMD(setup_agent_stop)
MD_CMD(setup_agent_restart)
MD_CMD(setup_agent_log_writer)
// notify_cmd.cc
MD_CMD(setup_notify_test)
MD_CMD(setup_notify_status)
MD_CMD(setup_notify_retry)
// hosts_cmd.cc
MD_CMD(setup_hosts_import)
MD_CMD(setup_hosts_setup)
MD_CMD(setup_hosts_check)
#undef MD_CMD

}  // namespace md::cli
