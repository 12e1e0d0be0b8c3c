# Sourced by the stack scripts: the repo root and the lakehouse CLI of its .venv.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAKEHOUSE="$ROOT/.venv/bin/lakehouse"
if [ ! -x "$LAKEHOUSE" ]; then
  echo "no $LAKEHOUSE: run 'make install' (or 'make run', which installs) first" >&2
  exit 2
fi
cd "$ROOT"
