#!/usr/bin/env bash
# The learning story through the gateway of a running stack (after `make run`).
# Usage: scripts/demo.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/_lakehouse.sh"
exec "$LAKEHOUSE" demo story "$@"
