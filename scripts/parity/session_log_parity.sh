#!/usr/bin/env bash
# Session-log parity probe (SPEC §6, §9; issue 9): the known lines of
# tests/fixtures/parity/session_records.json, then live sessions (POST /v1/iterate) read back
# through GET /v1/sessions and from the log file: every field, in order, as answered.
# Usage: scripts/parity/session_log_parity.sh [--config FILE] [--token TOKEN] [--peer URL] [--echo-model MODEL]
# PEER_URL (a second runtime's gateway) and ECHO_MODEL may be set in the environment instead.
# Ends with `session_log_parity: N/N assertions passed`; exits 1 when one failed (docs/OPERATIONS.md).
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe session-log "$@"
