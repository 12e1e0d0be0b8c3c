#!/usr/bin/env bash
# The smoke chain (SPEC §9, issue 9): every daemon's smoke (the checks of scripts/smoke/<daemon>.sh,
# in start order), then the end-to-end story (scripts/smoke/story.sh), in one process.
# Usage: scripts/smoke/run_all.sh [--config FILE] [--token TOKEN]
# Default: the dev stack (configs/lakehouse.toml, or $LAKEHOUSE_CONFIG). Ends with
# `N passed, N failed`; exits 1 when anything failed.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe smoke --story "$@"
