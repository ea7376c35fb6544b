#!/usr/bin/env bash
# Start nginx in front of N sqlgate Streamable HTTP workers on loopback ports, for trying a
# fleet on one machine (see docs/deployment.md). Ctrl-C stops everything.
#
#   DATABASE_URL=postgresql://... \
#   SQLGATE_AUDIT_DATABASE_URL=postgresql://.../audit \
#   deploy/fleet.sh 3
#
# Environment:
#   DATABASE_URL                the database the workers serve (required; any sqlgate URL)
#   SQLGATE_AUDIT_DATABASE_URL  one audit sink shared by every worker (PostgreSQL or MySQL;
#                               migrated here with `sqlgate migrate upgrade --audit`). Unset:
#                               each worker writes its own audit.sqlite3 under FLEET_DIR.
#   SQLGATE_AUTH_TOKEN          bearer token every worker checks (recommended)
#   FLEET_PORT                  nginx's port (default 8080); clients use http://127.0.0.1:FLEET_PORT/mcp
#   FLEET_BASE_PORT             first worker's port (default 8101; worker i listens on BASE+i-1)
#   FLEET_DIR                   logs, nginx prefix, data dirs (default: a new temp dir)
#   SQLGATE                     the sqlgate command (default: sqlgate on PATH)
#   NGINX                       the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
# Any other SQLGATE_* setting (mode, allowed_tables, ...) reaches every worker unchanged.
set -euo pipefail

N="${1:-3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
FLEET_PORT="${FLEET_PORT:-8080}"
FLEET_BASE_PORT="${FLEET_BASE_PORT:-8101}"
FLEET_DIR="${FLEET_DIR:-$(mktemp -d -t sqlgate-fleet-XXXXXX)}"
SQLGATE="${SQLGATE:-sqlgate}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

if [ -z "${DATABASE_URL:-}" ]; then
  echo "fleet.sh: set DATABASE_URL to the database the workers serve" >&2
  exit 2
fi
if [ ! -x "$NGINX" ]; then
  echo "fleet.sh: nginx not found (apt-get install nginx, or set NGINX=/path/to/nginx)" >&2
  exit 2
fi

mkdir -p "$FLEET_DIR/nginx"
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

if [ -n "${SQLGATE_AUDIT_DATABASE_URL:-}" ]; then
  "$SQLGATE" migrate upgrade --audit >/dev/null
fi

workers="" upstreams="" routes=""
for i in $(seq 1 "$N"); do
  port=$((FLEET_BASE_PORT + i - 1))
  mkdir -p "$FLEET_DIR/worker$i"
  "$SQLGATE" serve --transport streamable-http --host 127.0.0.1 --port "$port" \
    --data-dir "$FLEET_DIR/worker$i" --worker-id "w$i" >"$FLEET_DIR/worker$i.log" 2>&1 &
  pids+=("$!")
  workers="${workers}server 127.0.0.1:${port} max_fails=1 fail_timeout=5s; "
  upstreams="${upstreams}upstream sqlgate_w$i { server 127.0.0.1:${port}; keepalive 8; } "
  routes="${routes}~^w$i\\. sqlgate_w$i; "
done

export NGINX_PREFIX="$FLEET_DIR/nginx" SQLGATE_LISTEN="127.0.0.1:$FLEET_PORT" SQLGATE_WORKERS="$workers" \
  SQLGATE_WORKER_UPSTREAMS="$upstreams" SQLGATE_SESSION_ROUTES="$routes"
# shellcheck disable=SC2016 # the variable names are envsubst's argument, not expansions
envsubst '${SQLGATE_LISTEN} ${SQLGATE_WORKERS} ${SQLGATE_WORKER_UPSTREAMS} ${SQLGATE_SESSION_ROUTES}' <"$HERE/nginx/sqlgate.conf.template" >"$NGINX_PREFIX/sqlgate.conf"
# shellcheck disable=SC2016
envsubst '${NGINX_PREFIX}' <"$HERE/nginx/main.conf.template" >"$NGINX_PREFIX/nginx.conf"
"$NGINX" -t -q -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf"

for i in $(seq 1 "$N"); do
  port=$((FLEET_BASE_PORT + i - 1))
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
done
"$NGINX" -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" &
pids+=("$!")

echo "sqlgate fleet: $N workers behind http://127.0.0.1:$FLEET_PORT/mcp"
echo "  workers: 127.0.0.1:$FLEET_BASE_PORT..$((FLEET_BASE_PORT + N - 1)) (each serves /metrics, /readyz)"
echo "  logs and nginx prefix: $FLEET_DIR"
wait -n "${pids[@]}" || true
echo "fleet.sh: a process exited; stopping the fleet" >&2
