#!/usr/bin/env bash
# A local sdgate cluster on the tiny synthetic model: nats-server (JetStream,
# file storage), PostgreSQL (initdb in a temp dir), redis-server, two
# workers and two gateways. Prints the base URLs and an API key; Ctrl-C
# stops everything and removes the temp dir. Needs bin/sdgate (make build)
# and Debian's nats-server, postgresql and redis-server (scripts/ci-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/sdgate}
BASE_PORT=${BASE_PORT:-18080}
[ -x "$BIN" ] || { echo "cluster: $BIN missing: run make build" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "cluster: nats-server missing: scripts/ci-deps.sh" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "cluster: redis-server missing: scripts/ci-deps.sh" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "cluster: postgresql missing: scripts/ci-deps.sh" >&2; exit 1; }

DIR=$(mktemp -d /tmp/sdgate-cluster-XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# PostgreSQL refuses to run as root: run it as nobody then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
PGUSER=$( [ "$(id -u)" -eq 0 ] && echo nobody || id -un )
NATS_PORT=$((BASE_PORT + 100)); PG_PORT=$((BASE_PORT + 101)); REDIS_PORT=$((BASE_PORT + 102))

mkdir -p "$DIR/pg" && chown "$PGUSER" "$DIR" "$DIR/pg" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$DIR/pg" -A trust -U "$PGUSER" --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -o "-p $PG_PORT -k $DIR -c listen_addresses=127.0.0.1" -w -l "$DIR/pg.log" start >/dev/null
DSN="host=127.0.0.1 port=$PG_PORT user=$PGUSER dbname=postgres sslmode=disable"

nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DIR/nats" >"$DIR/nats.log" 2>&1 & PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --dir "$DIR" >"$DIR/redis.log" 2>&1 & PIDS+=($!)
NATS="nats://127.0.0.1:$NATS_PORT"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT) 2>/dev/null && break; sleep 0.1; done

"$BIN" synth --preset tiny --out "$DIR/models/tiny" >/dev/null
for w in 1 2; do
	"$BIN" worker --nats "$NATS" --models "$DIR/models" --id "worker$w" --device cpu --cpu-threads 1 \
		>"$DIR/worker$w.log" 2>&1 & PIDS+=($!)
done
KEY="sk-cluster-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for g in 1 2; do
	"$BIN" gateway --addr "127.0.0.1:$((BASE_PORT + g - 1))" --nats "$NATS" --postgres "$DSN" \
		--redis "redis://127.0.0.1:$REDIS_PORT/0" --api-keys "cluster:$KEY" >"$DIR/gateway$g.log" 2>&1 & PIDS+=($!)
done
for g in 1 2; do
	url="http://127.0.0.1:$((BASE_PORT + g - 1))"
	for _ in $(seq 100); do curl -fsS "$url/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
	echo "gateway $g: $url/v1"
done
echo "API key: $KEY   logs: $DIR/*.log   Ctrl-C stops the cluster"
echo "try: curl -s $url/v1/images/generations -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' -d '{\"model\":\"tiny\",\"prompt\":\"a cat\",\"size\":\"64x64\",\"response_format\":\"b64_json\"}' | head -c 200"
wait
