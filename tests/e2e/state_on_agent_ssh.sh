#!/usr/bin/env bash
# state_on_agent.sh with the host reached over ssh (sshd on 127.0.0.2) and no
# `state:` written: the state lives on that host's agent by default.
STATE_HOST=ssh exec bash "$(dirname "$0")/state_on_agent.sh"
