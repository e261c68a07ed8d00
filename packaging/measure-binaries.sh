#!/usr/bin/env bash
# The figures behind docs/PERFORMANCE.md, "Binaries".
#
#   packaging/measure-binaries.sh start        # start time of each binary in target/dist
#   packaging/measure-binaries.sh opt-levels   # size and instructions at opt-level 3, s, z
#
# start: spawn to the first 200 on /api/versions, polled every 2 ms; the median of 7 first
# starts on an empty data directory and of 7 restarts on it (ARM under qemu-user, which
# measures the emulator more than nightlite).
#
# opt-levels: builds the release profile three times into target/measure/opt-<level> (the
# first run compiles everything three times over) and counts, with callgrind, the
# instructions the server runs for one fixed workload: start, 50 POSTs of 100 entries, 100
# GETs of 100 entries, SIGTERM. Instruction counts repeat within a fraction of a percent on a
# busy machine, where wall-clock ingest figures do not.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  printf 'measure-binaries: %s\n' "$*" >&2
  exit 1
}

# A small client, in Python so that it costs the server nothing it would not see anyway.
client=$(mktemp)
trap 'rm -f "$client"' EXIT
cat >"$client" <<'EOF'
import hashlib, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
            c.sendall(b"GET /api/versions HTTP/1.0\r\nHost: x\r\n\r\n")
            return c.recv(12)[9:12] == b"200"
    except OSError:
        return False

def env(port, data):
    return dict(os.environ, API_SECRET="measure-secret-1", PORT=str(port),
                HOSTNAME="127.0.0.1", NIGHTLITE_DATA_DIR=data, NIGHTLITE_LOG="warn")

def start_once(cmd, data):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd + ["serve"], env=env(port, data),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(port):
        if p.poll() is not None:
            sys.exit(f"{cmd} exited during start")
        time.sleep(0.002)
    ms = (time.perf_counter() - t0) * 1000
    p.terminate(); p.wait(30)
    return ms

def start(label, cmd):
    first, again = [], []
    for _ in range(7):
        d = tempfile.mkdtemp()
        first.append(start_once(cmd, d)); again.append(start_once(cmd, d))
        shutil.rmtree(d)
    print(f"{label}: first start {statistics.median(first):.0f} ms, "
          f"restart {statistics.median(again):.0f} ms")

def workload(port):
    h = hashlib.sha1(b"measure-secret-1").hexdigest()
    def req(method, path, body=None):
        r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body,
                                   headers={"api-secret": h, "content-type": "application/json"})
        with urllib.request.urlopen(r, timeout=600) as resp:
            resp.read()
    t = 1700000000000
    for b in range(50):
        docs = [{"type": "sgv", "sgv": 100 + i % 50, "direction": "Flat", "device": "m",
                 "date": t + (b * 100 + i) * 60000} for i in range(100)]
        req("POST", "/api/v1/entries", json.dumps(docs).encode())
    for _ in range(100):
        req("GET", "/api/v1/entries.json?count=100")

def instructions(label, binary):
    d = tempfile.mkdtemp(); port = free_port()
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.%p",
                          binary, "serve"], env=env(port, d + "/data"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(port):
        if p.poll() is not None:
            sys.exit(f"{binary} exited under valgrind")
        time.sleep(0.2)
    workload(port)
    p.terminate(); p.wait(600)
    total = 0
    for name in (n for n in os.listdir(d) if n.startswith("cg.")):
        with open(os.path.join(d, name)) as f:
            total += sum(int(l.split()[1]) for l in f if l.startswith("summary:"))
    shutil.rmtree(d)
    print(f"{label}: {os.path.getsize(binary)} bytes, {total / 1e9:.3f} G instructions")

if sys.argv[1] == "start":
    start(sys.argv[2], sys.argv[3:])
else:
    instructions(sys.argv[2], sys.argv[3])
EOF

case "${1:-}" in
  start)
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
    shopt -s nullglob
    bins=(target/dist/nightlite-"$version"-*-linux-*)
    [ ${#bins[@]} -gt 0 ] || die "no binaries in target/dist; run packaging/build-release.sh"
    for b in "${bins[@]}"; do
      case "$(readelf -h "$b" | sed -n 's/^ *Machine: *//p')" in
        *AArch64*) run=(qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu) ;;
        *X86-64*) run=() ;;
        *ARM*) run=(qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf) ;;
        *) die "$b: unknown machine" ;;
      esac
      python3 "$client" start "$(basename "$b")${run[0]:+ (${run[0]})}" "${run[@]}" "$b"
    done
    ;;
  opt-levels)
    command -v valgrind >/dev/null || die "needs valgrind (apt-get install valgrind)"
    mkdir -p target/measure
    for level in 3 s z; do
      dir=target/measure/opt-$level
      CARGO_PROFILE_RELEASE_OPT_LEVEL=$level cargo build --locked --release --bin nightlite \
        --target-dir "$dir" >"$dir.log" 2>&1 || die "build failed, see $dir.log"
      python3 "$client" instructions "opt-level $level" "$dir/release/nightlite"
    done
    ;;
  *) die "usage: $0 start | opt-levels" ;;
esac
