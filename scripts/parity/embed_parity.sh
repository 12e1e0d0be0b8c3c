#!/usr/bin/env bash
# Embed parity probe (SPEC §5, §9; issue 9): /v1/embed through the gateway vs embedd directly
# vs the recorded vectors of tests/fixtures/parity/embed_cases.json (and vs PEER_URL): cosine
# >= 0.99999 over unicode, a single character, a 200-word text and more.
# Usage: scripts/parity/embed_parity.sh [--config FILE] [--token TOKEN] [--peer URL] [--echo-model MODEL]
# PEER_URL (a second runtime's gateway) and ECHO_MODEL may be set in the environment instead.
# Ends with `embed_parity: N/N assertions passed`; exits 1 when one failed (docs/OPERATIONS.md).
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe embed "$@"
