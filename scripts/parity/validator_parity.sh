#!/usr/bin/env bash
# Validator parity probe (SPEC §3, §9; issue 9): ValidationError wire bytes — the library
# and the daemons' JSON renderer against the golden encodings, then POST /v1/validate byte for
# byte against tests/fixtures/parity/validate_cases.json (and the peer's answers).
# Usage: scripts/parity/validator_parity.sh [--config FILE] [--token TOKEN] [--peer URL] [--echo-model MODEL]
# PEER_URL (a second runtime's gateway) and ECHO_MODEL may be set in the environment instead.
# Ends with `validator_parity: N/N assertions passed`; exits 1 when one failed (docs/OPERATIONS.md).
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe validator "$@"
