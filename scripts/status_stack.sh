#!/usr/bin/env bash
# status the stack (SPEC §9). Usage: scripts/status_stack.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/_lakehouse.sh"
exec "$LAKEHOUSE" stack status "$@"
