#!/usr/bin/env bash
# extract_json parity probe (SPEC §3, §9; issue 9): tests/fixtures/extract_json_cases.json
# through the library, then through validatord's iterate loop when --echo-model names a chat
# model that answers with the prompt (validatord's `final` is what extract_json found).
# Usage: scripts/parity/extract_json_parity.sh [--config FILE] [--token TOKEN] [--peer URL] [--echo-model MODEL]
# PEER_URL (a second runtime's gateway) and ECHO_MODEL may be set in the environment instead.
# Ends with `extract_json_parity: N/N assertions passed`; exits 1 when one failed (docs/OPERATIONS.md).
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe extract-json "$@"
