#!/usr/bin/env bash
# Start a worker with its embedded nats-server and the demo agents, then the Go gateway beside
# it. The worker chooses its NATS port; the gateway learns it (and the worker's HTTP URL) from
# the worker's "worker started" JSON log line. Both stop on Ctrl-C.
#
# Environment: VENV (default .venv), WORKER_* as for the worker (WORKER_HTTP_PORT, default
# 8080), GATEWAY_LISTEN (default 127.0.0.1:8090). The callback secret is shared by both; one is
# generated when WORKER_CALLBACK_SECRET is unset.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
log=$(mktemp "${TMPDIR:-/tmp}/agentos-worker.XXXXXX")
secret=${WORKER_CALLBACK_SECRET:-whsec_$(head -c 32 /dev/urandom | base64)}
worker_pid=""
gateway_pid=""

cleanup() {
	trap - EXIT INT TERM
	[ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
	[ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
	rm -f "$log"
}
trap cleanup EXIT INT TERM

# Build first, so the gateway starts at once when the worker is up.
(cd gateway_stub && go build -o bin/gateway ./cmd/gateway)

WORKER_DEMO_AGENTS=true \
	WORKER_STATE_DIR="${WORKER_STATE_DIR:-.state}" \
	WORKER_LOG_FORMAT=json \
	WORKER_CALLBACK_SECRET="$secret" \
	WORKER_CALLBACK_ALLOW="${WORKER_CALLBACK_ALLOW:-127.0.0.1/8,::1}" \
	"$venv/bin/agentos-worker" 2> >(tee "$log" >&2) &
worker_pid=$!

started=""
for _ in $(seq 1 600); do # 60 s at most
	started=$(grep -m1 '"event":"worker started"' "$log" || true)
	[ -n "$started" ] && break
	kill -0 "$worker_pid" 2>/dev/null || { echo "run-with-worker: the worker exited" >&2; exit 1; }
	sleep 0.1
done
[ -n "$started" ] || { echo "run-with-worker: the worker did not start in 60 s" >&2; exit 1; }

field() { printf '%s' "$started" | "$venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
nats_url=$(field nats_url)
http_url=$(field http_url)

GATEWAY_CALLBACK_SECRET="$secret" gateway_stub/bin/gateway \
	-listen "${GATEWAY_LISTEN:-127.0.0.1:8090}" \
	-worker-url "$http_url" \
	-nats-url "$nats_url" &
gateway_pid=$!
echo "run-with-worker: worker $http_url, NATS $nats_url; demo page on http://${GATEWAY_LISTEN:-127.0.0.1:8090}/" >&2
wait "$gateway_pid"
