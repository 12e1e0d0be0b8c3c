#!/usr/bin/env bash
# Every parity probe of SPEC §9 (issue 9), then each probe's passed/total and the sum.
#
# Usage: scripts/parity/run_all.sh [--config FILE] [--token TOKEN] [--peer URL]
#                                  [--echo-model MODEL] [--quiet]
#   --config      the stack to probe (default: $LAKEHOUSE_CONFIG or the dev config)
#   --peer        a second runtime's gateway to compare with (or PEER_URL)
#   --echo-model  a chat model answering with the prompt (or ECHO_MODEL): extract_json and
#                 session records become observable through validatord
#   --quiet       print only FAIL lines and each probe's result line
#
# The probes, in SPEC order:
#   validator_parity  extract_json_parity  session_log_parity  materializer_parity (issue 8)
#   embed_parity      subject_audit_parity (issue 7)
# Each probe of a live stack gets --config; PEER_URL, ECHO_MODEL and the token travel in the
# environment (and the peer as --other to subject_audit_parity). materializer_parity needs no
# stack: it materializes its fixture _kb. Exit 0 only when every probe ran and passed all.
set -euo pipefail
source "$(dirname "$0")/../_lakehouse.sh"
HERE="$ROOT/scripts/parity"

config_args=()
quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config_args=(--config "${2:?--config needs a file}"); shift 2 ;;
    --config=*) config_args=(--config "${1#*=}"); shift ;;
    --token) export LAKEHOUSE_GATEWAY__AUTH_TOKEN="${2:?--token needs a value}"; shift 2 ;;
    --peer) export PEER_URL="${2:?--peer needs a URL}"; shift 2 ;;
    --echo-model) export ECHO_MODEL="${2:?--echo-model needs a model}"; shift 2 ;;
    -q | --quiet) quiet=1; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

probes=(validator_parity extract_json_parity session_log_parity materializer_parity
        embed_parity subject_audit_parity)
summary=()
sum_passed=0
sum_total=0
failed=0
for probe in "${probes[@]}"; do
  script="$HERE/$probe.sh"
  args=("${config_args[@]}")
  case "$probe" in
    materializer_parity) args=() ;;
    subject_audit_parity) [ -z "${PEER_URL:-}" ] || args+=(--other "$PEER_URL") ;;
  esac
  echo "== $probe"
  out="$(mktemp)"
  set +e
  "$script" "${args[@]}" >"$out" 2>&1
  rc=$?
  set -e
  if [ "$quiet" = 1 ]; then
    grep -E 'FAIL|[0-9]+/[0-9]+' "$out" || true
  else
    cat "$out"
  fi
  result="$(grep -Eo '[0-9]+/[0-9]+' "$out" | tail -n 1 || true)"
  rm -f "$out"
  if [ -z "$result" ]; then
    summary+=("$(printf '  %-22s no result (exit %d)' "$probe" "$rc")")
    failed=1
    continue
  fi
  passed="${result%/*}"
  total="${result#*/}"
  sum_passed=$((sum_passed + passed))
  sum_total=$((sum_total + total))
  note=""
  if [ "$rc" -ne 0 ] || [ "$passed" -ne "$total" ]; then
    failed=1
    note="  FAILED (exit $rc)"
  fi
  summary+=("$(printf '  %-22s %s%s' "$probe" "$result" "$note")")
done

echo
echo "parity probes:"
printf '%s\n' "${summary[@]}"
printf '  %-22s %s\n' "total" "$sum_passed/$sum_total"
if [ "$failed" -ne 0 ]; then
  echo "parity: FAILED" >&2
  exit 1
fi
echo "parity: all passed"
