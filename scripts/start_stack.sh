#!/usr/bin/env bash
# start the stack (SPEC §9). Usage: scripts/start_stack.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/_lakehouse.sh"
# catalogd refuses to start without a private audit key (SPEC §8): a development config gets
# one generated (mode 0600) when it has none; any other config needs `lakehouse audit keygen`.
config_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --config) config_args=(--config "${args[i + 1]:-}") ;;
    --config=*) config_args=("${args[i]}") ;;
  esac
done
"$LAKEHOUSE" audit keygen --if-missing --dev-only "${config_args[@]}"
exec "$LAKEHOUSE" stack start "$@"
