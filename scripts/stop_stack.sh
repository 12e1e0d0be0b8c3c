#!/usr/bin/env bash
# stop the stack (SPEC §9). Usage: scripts/stop_stack.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/_lakehouse.sh"
exec "$LAKEHOUSE" stack stop "$@"
