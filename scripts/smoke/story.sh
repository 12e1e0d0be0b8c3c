#!/usr/bin/env bash
# The end-to-end story alone (SPEC §9, issue 9): ingest → index → search → record playbook →
# boosted search → validate → audit verify. Needs the demo roster (`make run` loads it).
# Usage: scripts/smoke/story.sh [--config FILE] [--token TOKEN]. Ends with `N passed, N failed`.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
exec "$ROOT/.venv/bin/python" -m lakehouse_common.cli.probe story "$@"
