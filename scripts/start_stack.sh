#!/usr/bin/env bash
# start the stack (SPEC §9). Usage: scripts/start_stack.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/_lakehouse.sh"
exec "$LAKEHOUSE" stack start "$@"
