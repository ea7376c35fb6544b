#!/usr/bin/env bash
# sqlgate side by side with dbhub, mcp-alchemy and the raw-driver floors, with the shared
# peers harness (../shared/peers: run its setup.sh once). Installs this checkout into
# $PEERS_DIR/sqlgate-bench (or $SQLGATE_VENV); BEFORE=<commit> also installs that commit (git archive) into
# $PEERS_DIR/sqlgate-<commit> and measures both in the same run.
#
#   bench/peers.sh                      # this checkout + peers + floors
#   BEFORE=b3b79d2 bench/peers.sh       # ... and an older commit beside it
#   bench/peers.sh --db postgres        # extra arguments go to run_peers.py
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PEERS_DIR=${PEERS_DIR:-$HOME/.cache/sqlgate-peers}
HARNESS=${PEERS_HARNESS:-$ROOT/../shared/peers}
[ -x "$PEERS_DIR/client/bin/python" ] || { echo "run $HARNESS/setup.sh first" >&2; exit 1; }

install() {  # venv source: a fresh copy of the source, whatever version it says
  if [ -x "$1/bin/python" ]; then
    "$1/bin/pip" install -q --force-reinstall --no-deps "$2" >/dev/null
    "$1/bin/pip" install -q "$2" >/dev/null  # dependencies added since (uvloop, ...)
  else
    python3 -m venv "$1" && "$1/bin/pip" install -q "$2" >/dev/null
  fi
}

peers_for() {  # venv label -> the peers file entries for that install
  python3 - "$1" "$2" "$ROOT/bench/peers.json" <<'PY'
import json, sys
venv, label, path = sys.argv[1:]
out = []
for entry in json.load(open(path)):
    text = json.dumps(entry).replace("$SQLGATE_VENV", venv)
    entry = json.loads(text)
    if label:
        entry["name"] = entry["name"].replace("sqlgate", f"sqlgate-{label}")
    out.append(entry)
print(json.dumps(out))
PY
}

PEERS_FILE=$(mktemp --suffix=.json)
trap 'rm -f "$PEERS_FILE"' EXIT
VENV=${SQLGATE_VENV:-$PEERS_DIR/sqlgate-bench}
install "$VENV" "$ROOT"
entries=$(peers_for "$VENV" "")
if [ -n "${BEFORE:-}" ]; then
  src=$(mktemp -d)
  git -C "$ROOT" archive "$BEFORE" | tar -x -C "$src"
  install "$PEERS_DIR/sqlgate-$BEFORE" "$src"
  rm -rf "$src"
  entries=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]) + json.loads(sys.argv[2])))' \
    "$entries" "$(peers_for "$PEERS_DIR/sqlgate-$BEFORE" "$BEFORE")")
fi
echo "$entries" > "$PEERS_FILE"
uptime
cd "$HARNESS"
"$PEERS_DIR/client/bin/python" run_peers.py --peers-file "$PEERS_FILE" \
  --only dbhub --only alchemy --only sqlgate --only floor "$@"
uptime
