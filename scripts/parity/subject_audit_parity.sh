#!/usr/bin/env bash
# Subject-audit parity probe (SPEC §8, §9; issue 7): phase 1 recomputes every known answer of
# tests/fixtures/audit_known_answer/ (and runs `lakehouse audit verify` on the chain); phase 2
# verifies every live subject log through catalogd and offline, which must agree (and, with
# --other URL, a second runtime's gateway too).
# Usage: scripts/parity/subject_audit_parity.sh [--config FILE] [--gateway URL] [--other URL]
#                                               [--limit N] [--skip-live]
# Ends with `subject_audit_parity: N/N assertions passed`; exit 0 when all pass, else 1.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe subject-audit "$@"
