#!/usr/bin/env bash
# Smoke of storaged (SPEC §9, issue 9): its /health and a few real calls through the gateway.
# Usage: scripts/smoke/storaged.sh [--config FILE] [--token TOKEN]. Ends with `N passed, N failed`.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe smoke storaged "$@"
