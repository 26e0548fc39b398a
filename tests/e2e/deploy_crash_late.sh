#!/usr/bin/env bash
# kill -9 of the controller at both journal records of each closing step,
# then resume or a new deploy: one live version, no orphans, complete journals.
. "$(dirname "$0")/lib.sh"
e2e_init
crash_scenario stop_old migrate_contract record prune post_deploy_hook notify_finished
