#!/usr/bin/env bash
# System packages the tests use beyond Go and the ONNX Runtime library, from
# Debian's archive: redis-server for the cache's Redis store tests and
# postgresql (initdb, pg_ctl) for the PostgreSQL key store tests, chromium
# for the browser tests of the web pages (server/browsertest) — they skip,
# saying so, when it is missing — and nats-server for scripts/cluster.sh
# (the dispatch tests embed nats-server as a Go module). Safe to run again;
# .ci/run calls it.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# node + npm: the official OpenAI Node SDK tests (server, cmd/sdgate's cluster test)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-deps: no apt-get; install ${missing[*]} by hand (tests that need them will skip)" >&2
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "ci-deps: installing ${missing[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
