#!/usr/bin/env bash
# Smoke test of the release binaries in target/dist (packaging/build-release.sh), each on the
# CPU it was built for: ARM under qemu-user, x86_64 natively. Each one must start on an empty
# data directory, create its database, answer `healthcheck` (run by the same binary, so the
# client side is tested on that CPU too), accept a v1 entry authenticated by the hashed
# API secret, return it, stop cleanly on SIGTERM, and still hold the entry after a restart.
#
#   packaging/smoke-qemu.sh                      # every binary of this version in target/dist
#   packaging/smoke-qemu.sh target/dist/nightlite-0.1.0-aarch64-unknown-linux-gnu
#
# Prints the time from exec to the first answer (under qemu this measures the emulator more
# than nightlite; the native figures are the real ones).
set -euo pipefail
cd "$(dirname "$0")/.."

# Generous for emulation on a busy 2-core machine; native start takes milliseconds.
START_TIMEOUT=${SMOKE_START_TIMEOUT:-90}

die() {
  printf 'smoke: %s\n' "$*" >&2
  exit 1
}

if [ $# -gt 0 ]; then
  bins=("$@")
else
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
  shopt -s nullglob
  bins=(target/dist/nightlite-"$version"-*-linux-*)
  shopt -u nullglob
  [ ${#bins[@]} -gt 0 ] || die "no binaries in target/dist; run packaging/build-release.sh first"
fi

# The command prefix that runs a binary on this x86_64 machine. -L gives qemu the target's
# dynamic loader and glibc (Debian's libc6-*-cross, installed with the cross gcc); a static
# binary ignores it. -cpu is the oldest core each build is for, so an instruction the Pis
# lack fails here: Cortex-A53 (Pi 3, Zero 2 W) for 64-bit, Cortex-A7 (Pi 2) for 32-bit.
runner_for() {
  case "$(readelf -h "$1" | sed -n 's/^ *Machine: *//p')" in
    *AArch64*) echo "qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu" ;;
    *X86-64*) echo "" ;;
    *ARM*) echo "qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf" ;;
    *) echo "unsupported" ;;
  esac
}

need_qemu=false
for b in "${bins[@]}"; do
  r=$(runner_for "$b")
  [ "$r" != unsupported ] || die "$b: unknown machine type"
  case "$r" in qemu-*) command -v "${r%% *}" >/dev/null || need_qemu=true ;; esac
done
if $need_qemu; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  # A fresh machine may have no package lists yet: update once if the first try fails.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user ||
    { "${sudo[@]}" apt-get update -q &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user; }
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now_ms() { date +%s%3N; }

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the server in the background and waits until it answers. Sets pid, and started_ms
# to the milliseconds that took (globals: a $(...) subshell would lose the pid).
start_server() {
  local bin=$1 data=$2 port=$3 log=$4 t0
  t0=$(now_ms)
  # shellcheck disable=SC2086 # $runner is a command prefix, split on purpose
  API_SECRET="$secret" AUTH_DEFAULT_ROLES=denied PORT="$port" HOSTNAME=127.0.0.1 \
    NIGHTLITE_DATA_DIR="$data" NIGHTLITE_LOG=warn $runner "$bin" serve >>"$log" 2>&1 &
  pid=$!
  local deadline=$(($(date +%s) + START_TIMEOUT))
  until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/api/versions"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      die "$bin exited during start-up"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "$bin did not answer within ${START_TIMEOUT}s"
    sleep 0.02
  done
  started_ms=$(($(now_ms) - t0))
}

# SIGTERM (systemd's stop) and SIGINT (Ctrl-C) are both graceful stops, exiting 0; qemu
# passes signals on to the program it runs.
stop_server() {
  local bin=$1 log=$2 sig=$3 status=0
  kill "-$sig" "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    cat "$log" >&2
    die "$bin did not stop within 30s of SIG$sig"
  fi
  wait "$pid" || status=$?
  pid=""
  [ "$status" = 0 ] || {
    cat "$log" >&2
    die "$bin exited with status $status after SIG$sig"
  }
}

summary=()
for bin in "${bins[@]}"; do
  [ -x "$bin" ] || die "$bin is not an executable file"
  name=$(basename "$bin")
  runner=$(runner_for "$bin")
  how=${runner%% *}
  how=${how:-native}
  echo "== $name ($how)"
  data="$work/$name/data"
  log="$work/$name/server.log"
  mkdir -p "$work/$name"
  secret="smoke-$RANDOM-$RANDOM-$RANDOM"
  hash=$(printf '%s' "$secret" | sha1sum | cut -d' ' -f1)
  port=$(free_port)
  base="http://127.0.0.1:$port"

  # shellcheck disable=SC2086
  if PORT="$port" HOSTNAME=127.0.0.1 $runner "$bin" healthcheck 2>/dev/null; then
    die "$name: healthcheck passed with no server running"
  fi

  start_server "$bin" "$data" "$port" "$log"
  ms=$started_ms
  echo "answered after ${ms} ms"
  # shellcheck disable=SC2086
  PORT="$port" HOSTNAME=127.0.0.1 $runner "$bin" healthcheck || die "$name: healthcheck failed"
  echo "healthcheck ok"

  [ -s "$data/nightlite.sqlite3" ] || die "$name: no database at $data/nightlite.sqlite3"
  echo "database created: $(stat -c %s "$data/nightlite.sqlite3") bytes"

  date_ms=$(now_ms)
  device="smoke-$name"
  entry="[{\"type\":\"sgv\",\"sgv\":123,\"direction\":\"Flat\",\"date\":$date_ms,\"device\":\"$device\"}]"
  code=$(curl -s -o "$work/$name/post.json" -w '%{http_code}' --max-time 30 \
    -H 'content-type: application/json' -H "api-secret: $hash" --data "$entry" "$base/api/v1/entries")
  [ "$code" = 200 ] || die "$name: POST /api/v1/entries answered $code: $(cat "$work/$name/post.json")"
  echo "POST /api/v1/entries: 200"

  # Without credentials (AUTH_DEFAULT_ROLES=denied) a read must be refused.
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$base/api/v1/entries.json")
  [ "$code" = 401 ] || die "$name: unauthenticated GET answered $code, not 401"

  check_entry() {
    curl -s -g --max-time 30 -H "api-secret: $hash" \
      "$base/api/v1/entries.json?find[date]=$date_ms&find[device]=$device" >"$work/$name/get.json"
    python3 - "$work/$name/get.json" "$date_ms" "$device" <<'EOF' || die "$name: $1"
import json, sys
docs = json.load(open(sys.argv[1]))
ok = (len(docs) == 1 and docs[0].get("sgv") == 123 and docs[0].get("date") == int(sys.argv[2])
      and docs[0].get("device") == sys.argv[3] and len(docs[0].get("_id", "")) == 24)
if not ok:
    print("unexpected answer:", json.dumps(docs)[:500], file=sys.stderr)
    sys.exit(1)
EOF
  }
  check_entry "the entry did not come back"
  echo "GET returned the entry"

  stop_server "$bin" "$log" TERM
  echo "stopped cleanly on SIGTERM"

  port=$(free_port)
  base="http://127.0.0.1:$port"
  start_server "$bin" "$data" "$port" "$log"
  ms2=$started_ms
  check_entry "the entry was gone after a restart"
  echo "restart on the same data: answered after ${ms2} ms, entry still there"
  stop_server "$bin" "$log" INT
  echo "stopped cleanly on SIGINT"

  summary+=("$(printf '%-52s %-13s start %6s ms, restart %6s ms: ok' "$name" "${how}" "$ms" "$ms2")")
done

echo
echo "== smoke summary"
printf '%s\n' "${summary[@]}"
