#!/usr/bin/env bash
# kill -9 of the controller at both journal records of each traffic step,
# then resume or a new deploy: one live version, no orphans, complete journals.
. "$(dirname "$0")/lib.sh"
e2e_init
crash_scenario ready shift_traffic watch workers drain_old keep_warm
