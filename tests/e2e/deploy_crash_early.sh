#!/usr/bin/env bash
# kill -9 of the controller at both journal records of each early step, then
# resume or a new deploy: one live version, no orphans, complete journals.
. "$(dirname "$0")/lib.sh"
e2e_init
crash_scenario preflight pre_deploy_hook notify_started migrate_expand ship start_new
