#!/usr/bin/env bash
# Materializer parity probe (SPEC §7, §9; issue 8): `lakehouse distill materialize`'s library over
# the fixture _kb (tests/fixtures/distill/_kb), each evidence file byte for byte (ignoring only
# provenance.recorded_at) and the receipt's counts against tests/fixtures/distill/expected; a
# second run must write nothing; with --other DIR, another runtime's evidence/ compared too.
# Usage: scripts/parity/materializer_parity.sh [--kb DIR] [--expected DIR] [--other DIR]
# Ends with `materializer_parity: N/N assertions passed`; exit 0 when all pass, else 1.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe materializer "$@"
