#!/usr/bin/env bash
# Socket.IO compatibility: the real socket.io-client 4.x and 2.x against the release binary.
# Installs its npm packages itself (package-lock.json pins them), starts a server on a free
# port with a temporary database, runs test.mjs, and stops the server.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${NIGHTLITE_BIN:-$root/target/release/nightlite}"
[ -x "$bin" ] || { echo "build the server first ($bin missing)" >&2; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --silent >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
secret="sio-test-secret-$RANDOM$RANDOM"
API_SECRET="$secret" AUTH_DEFAULT_ROLES=denied PORT="$port" HOSTNAME=127.0.0.1 \
  NIGHTLITE_DATA_DIR="$data" "$bin" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  PORT="$port" HOSTNAME=127.0.0.1 "$bin" healthcheck 2>/dev/null && break
  sleep 0.1
done
NIGHTLITE_URL="http://127.0.0.1:$port" NIGHTLITE_SECRET="$secret" node test.mjs
