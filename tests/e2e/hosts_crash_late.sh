#!/usr/bin/env bash
# Three hosts over ssh: the controller kill -9'd at both journal records of
# each step from keeping the old release warm on, then resume or a new deploy: one live version
# on every host, no orphans, complete journals.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ssh.sh"
e2e_init
hosts_crash_scenario keep_warm stop_old record prune notify_finished
