#!/usr/bin/env bash
# Tests a .deb (default: target/debian/nightlite_<version>-1_amd64.deb, from packaging/ci.sh or
# `cargo deb`) in two rings:
#
#  1. The archive itself: where each file lands with which mode, the conffiles, the control
#     fields, every hardening directive of the unit (and systemd's own offline verdict on it),
#     the maintainer scripts, that the packaged binary reads the packaged config file, and that
#     the system calls it makes pass the unit's filter. arm64 and armhf packages get the same,
#     their binary run under qemu-user.
#  2. For a package of this machine's architecture, a real installation into a throwaway Debian
#     root (debootstrap --variant=minbase, cached as a tarball in target/deb-test/ and unpacked
#     fresh each run) with dpkg inside a chroot:
#     postinst creates the user, the state directory and the API secret and prints it; the
#     server started as the unit starts it (same user, config, environment file) reads that
#     secret and stores an entry; an upgrade keeps the edited conffiles, the secret and the
#     data; remove keeps data and user; purge deletes them.
#
# systemd does not run here (and never in a chroot), so the unit's sandbox is checked by
# `systemd-analyze`, not by starting it; postinst's start is skipped by its own guard, which
# the chroot also exercises.
#
#   packaging/test-deb.sh [path/to/nightlite_<version>-1_<arch>.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${DEB_TEST_SUITE:-bookworm}
MIRROR=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
CACHE=target/deb-test

fail() {
  printf 'test-deb: FAIL: %s\n' "$*" >&2
  exit 1
}
ok() { printf '  ok  %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
deb=${1:-target/debian/nightlite_${version}-1_amd64.deb}
[ -f "$deb" ] || fail "no package at $deb (build it with packaging/ci.sh or cargo deb)"
deb=$(realpath "$deb")

work=$(mktemp -d)
root=""
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; fi
  if [ -n "$root" ]; then
    umount "$root/proc" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# SIGTERM, what systemd sends to stop the unit, is a graceful stop: bounded, and it must
# exit 0.
stop_server() {
  local status=0
  kill -TERM "$server_pid"
  timeout 30 tail --pid="$server_pid" -f /dev/null || fail "the server ignored SIGTERM for 30 s"
  wait "$server_pid" || status=$?
  server_pid=""
  [ "$status" = 0 ] || fail "the server exited with status $status on SIGTERM"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------
section "archive: $(basename "$deb")"
x=$work/x
ctl=$work/control
dpkg-deb -x "$deb" "$x"
dpkg-deb -e "$deb" "$ctl"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = nightlite ] || fail "Package is '$(field Package)'"
arch=$(field Architecture)
case "$deb" in *"_$arch.deb") ;; *) fail "$(basename "$deb") holds Architecture: $arch" ;; esac
[ "$(field Version)" = "$version-1" ] || fail "Version is '$(field Version)', not $version-1"
field Depends | grep -q 'libc6' || fail "Depends has no libc6: $(field Depends)"
ok "control: nightlite $(field Version) $arch, Depends: $(field Depends)"

# What the binary must be, and how to run it here: natively, or under qemu-user on the oldest
# core the build is for (as packaging/smoke-qemu.sh does).
case "$arch" in
  amd64) machine=X86-64 runner="" ;;
  arm64) machine=AArch64 runner="qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu" ;;
  armhf) machine=ARM runner="qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf" ;;
  *) fail "no test for architecture $arch" ;;
esac
host_arch=$(dpkg --print-architecture)
[ "$arch" = "$host_arch" ] && runner=""
if [ -n "$runner" ] && ! command -v "${runner%% *}" >/dev/null; then
  fail "${runner%% *} is needed to run the $arch binary (apt-get install qemu-user)"
fi

# path, mode, owner: dpkg-deb -c shows what dpkg will create, owners included.
listing=$(dpkg-deb -c "$deb")
expect_file() {
  local path=$1 mode=$2 line
  line=$(grep -E " \./$path\$" <<<"$listing") || fail "$path is not in the package"
  # dpkg-deb prints owners by name or by number depending on how the tar was written.
  case "$line" in
    "$mode root/root "* | "$mode 0/0 "*) ok "/$path $mode root/root" ;;
    *) fail "/$path: expected $mode root/root, got: $line" ;;
  esac
}
expect_file usr/bin/nightlite -rwxr-xr-x
expect_file etc/nightlite/nightlite.toml -rw-r-----
expect_file etc/default/nightlite -rw-------
expect_file usr/share/doc/nightlite/README.md -rw-r--r--
# Debian 12 packages ship units under /lib or /usr/lib (merged /usr makes them one folder).
unit=""
for u in usr/lib/systemd/system/nightlite.service lib/systemd/system/nightlite.service; do
  if [ -f "$x/$u" ]; then unit=$u; fi
done
[ -n "$unit" ] || fail "no nightlite.service under /usr/lib/systemd/system or /lib/systemd/system"
expect_file "$unit" -rw-r--r--
readelf -h "$x/usr/bin/nightlite" | grep -q "Machine: .*$machine\$" ||
  fail "/usr/bin/nightlite is not a $machine binary: $(readelf -h "$x/usr/bin/nightlite" | grep Machine)"
ok "/usr/bin/nightlite is $machine${runner:+ (run here under ${runner%% *})}"

[ -f "$ctl/conffiles" ] || fail "no DEBIAN/conffiles"
sort "$ctl/conffiles" >"$work/conffiles"
printf '%s\n' /etc/default/nightlite /etc/nightlite/nightlite.toml >"$work/conffiles.want"
diff -u "$work/conffiles.want" "$work/conffiles" || fail "DEBIAN/conffiles differs (above)"
ok "conffiles: $(tr '\n' ' ' <"$ctl/conffiles")"

# ---------------------------------------------------------------------------------------------
section "unit /$unit"
u=$x/$unit
while IFS= read -r directive; do
  [ -n "$directive" ] || continue
  grep -qxF "$directive" "$u" || fail "the unit lacks the line: $directive"
  ok "$directive"
done <<'EOF'
Type=exec
User=nightlite
Group=nightlite
Environment=NIGHTLITE_DATA_DIR=/var/lib/nightlite
EnvironmentFile=-/etc/default/nightlite
ExecStart=/usr/bin/nightlite --config /etc/nightlite/nightlite.toml serve
TimeoutStopSec=30
Restart=on-failure
RestartPreventExitStatus=2
StateDirectory=nightlite
StateDirectoryMode=0750
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
PrivateMounts=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
MemoryMax=256M
LimitNOFILE=2048
WantedBy=multi-user.target
EOF

if command -v systemd-analyze >/dev/null; then
  # verify checks ExecStart= and the unit's dependencies inside a root: the host's own units
  # (sysinit.target and the like) plus the unit and binary from the package.
  vroot=$work/verify-root
  mkdir -p "$vroot/usr/lib/systemd" "$vroot/usr/bin"
  cp -a /usr/lib/systemd/system "$vroot/usr/lib/systemd/"
  cp "$u" "$vroot/usr/lib/systemd/system/nightlite.service"
  cp "$x/usr/bin/nightlite" "$vroot/usr/bin/nightlite"
  if ! systemd-analyze verify --root="$vroot" /usr/lib/systemd/system/nightlite.service >"$work/verify" 2>&1; then
    cat "$work/verify" >&2
    fail "systemd-analyze verify rejected the unit"
  fi
  if [ -s "$work/verify" ]; then
    cat "$work/verify"
    fail "systemd-analyze verify printed warnings (above)"
  fi
  ok "systemd-analyze verify: clean"
  exposure=$(systemd-analyze security --offline=true "$u" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
  # systemd rates 0-10; below 2 is its "OK" band and what this unit is built for.
  python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" ||
    fail "systemd-analyze security exposure $exposure > 2.0"
  ok "systemd-analyze security: exposure $exposure (of 10; lower is better)"
else
  echo "  skip systemd-analyze (not installed)"
fi

# ---------------------------------------------------------------------------------------------
section "maintainer scripts"
for s in postinst prerm postrm; do
  [ -x "$ctl/$s" ] || fail "no executable DEBIAN/$s"
  sh -n "$ctl/$s" || fail "DEBIAN/$s is not valid sh"
  ! grep -q '#DEBHELPER#' "$ctl/$s" || fail "DEBIAN/$s still holds the #DEBHELPER# token"
done
grep -q 'deb-systemd-helper enable' "$ctl/postinst" || fail "postinst does not enable the unit"
grep -q '/run/systemd/system' "$ctl/postinst" || fail "postinst starts the unit without the systemd guard"
grep -q 'deb-systemd-invoke stop' "$ctl/prerm" || fail "prerm does not stop the unit"
ok "postinst, prerm, postrm: valid sh, systemd fragments in place and guarded"

# ---------------------------------------------------------------------------------------------
section "the packaged config, read by the packaged binary"
bin=$x/usr/bin/nightlite
toml=$x/etc/nightlite/nightlite.toml
# $runner is a command prefix (empty natively) and is split into words on purpose.
# shellcheck disable=SC2086
run_bin() { $runner "$bin" "$@"; }
# Healthcheck reads the file and probes its port: 1 (nobody answers) or 0 (something does)
# shows the file parsed; 2 is a configuration error.
status=0
run_bin --config "$toml" healthcheck >"$work/hc.out" 2>&1 || status=$?
case "$status" in
  0 | 1) ;;
  *)
    cat "$work/hc.out" >&2
    fail "healthcheck with the packaged nightlite.toml exited $status (2: the file was refused)"
    ;;
esac
ok "healthcheck with the packaged config: exit $status ($(head -c 120 "$work/hc.out"))"
# A broken file must stop it with one clean line naming the file.
printf 'PORT = 1337\nHOSTNAME =\n' >"$work/bad.toml"
status=0
run_bin --config "$work/bad.toml" healthcheck >"$work/bad.out" 2>&1 || status=$?
# shellcheck disable=SC2015 # fail when any of them is false
[ "$status" = 2 ] && grep -q "bad.toml" "$work/bad.out" ||
  fail "a bad config was not refused cleanly (exit $status): $(cat "$work/bad.out")"
ok "a bad config file stops it: $(head -n 1 "$work/bad.out")"
# A name nightlite does not read (a Nightscout setting moved over) is named in a warning and
# ignored, as Nightscout ignores names it does not know.
printf 'PORT = 1337\nNOT_A_SETTING = 1\n' >"$work/extra.toml"
status=0
run_bin --config "$work/extra.toml" healthcheck >"$work/extra.out" 2>&1 || status=$?
# shellcheck disable=SC2015 # fail when any of them is false
[ "$status" != 2 ] && grep -q NOT_A_SETTING "$work/extra.out" ||
  fail "an unknown name was not warned about and ignored (exit $status): $(cat "$work/extra.out")"
ok "an unknown name is ignored with a warning: $(grep NOT_A_SETTING "$work/extra.out")"
# Serve with the packaged file; the environment moves data and port, as the unit's
# Environment= and /etc/default/nightlite would.
port=$(free_port)
# shellcheck disable=SC2086
NIGHTLITE_DATA_DIR=$work/data PORT=$port HOSTNAME=127.0.0.1 NIGHTLITE_LOG=warn \
  $runner "$bin" --config "$toml" serve >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$port/api/versions" && break
  kill -0 "$server_pid" 2>/dev/null || {
    cat "$work/serve.log" >&2
    fail "the packaged binary exited with the packaged config"
  }
  sleep 0.05
done
NIGHTLITE_DATA_DIR=$work/data PORT=$port HOSTNAME=127.0.0.1 run_bin --config "$toml" healthcheck ||
  fail "no healthy server with the packaged config"
stop_server
# shellcheck disable=SC2015 # fail when any of them is false
[ -s "$work/data/api_secret" ] && [ -s "$work/data/nightlite.sqlite3" ] ||
  fail "no api_secret or database in the data directory"
ok "served with the packaged config; made its database and secret"

# ---------------------------------------------------------------------------------------------
section "the unit's system call filter against the calls the server makes"
# A call outside SystemCallFilter= fails with EPERM under systemd, far from here, on someone's
# Pi. So trace the packaged binary as an unprivileged user (as the unit runs it; SQLite, for
# one, calls fchown only as root) through start, writes, reads, the viewer, healthcheck and
# stop, and compare with the groups the unit names, expanded by this machine's systemd. ARM
# binaries are traced by qemu-user itself (-strace), with the ARM names of the calls.
if [ -z "$runner" ] && ! command -v strace >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null
fi
if { [ -n "$runner" ] || command -v strace >/dev/null; } && command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
  expand_group() {
    systemd-analyze syscall-filter "$1" | tail -n +2 | sed 's/^ *//' | grep -v -e '^#' -e '^$' |
      while read -r item; do
        case "$item" in @*) expand_group "$item" ;; *) echo "$item" ;; esac
      done
  }
  allow_groups=$(sed -n 's/^SystemCallFilter=\([^~].*\)$/\1/p' "$u")
  deny_groups=$(sed -n 's/^SystemCallFilter=~\(.*\)$/\1/p' "$u")
  for g in $allow_groups; do expand_group "$g"; done | sort -u >"$work/allowed"
  for g in $deny_groups; do expand_group "$g"; done | sort -u >"$work/denied"
  trace_dir=$work/trace
  mkdir -p "$trace_dir/data"
  chmod 711 "$work" # nobody may pass through to its own folder, not list the rest
  # The packaged file is 0640 root-owned here; nobody reads its own copy.
  cp "$toml" "$trace_dir/nightlite.toml"
  chown -R nobody:nogroup "$trace_dir"
  port=$(free_port)
  tsecret="trace-secret-$RANDOM$RANDOM"
  if [ -z "$runner" ]; then
    tracer=(strace -f -qq -o "$trace_dir/calls")
  else
    # shellcheck disable=SC2206 # the qemu command line, split into words
    tracer=($runner -strace)
  fi
  # qemu's trace goes to stderr, into the log; strace writes its own file.
  setpriv --reuid=nobody --regid=nogroup --clear-groups env NIGHTLITE_DATA_DIR="$trace_dir/data" \
    PORT="$port" HOSTNAME=127.0.0.1 API_SECRET="$tsecret" NIGHTLITE_LOG=warn \
    "${tracer[@]}" "$bin" --config "$trace_dir/nightlite.toml" serve >"$work/trace.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/api/versions" && break
    kill -0 "$server_pid" 2>/dev/null || fail "the traced server exited: $(cat "$work/trace.log")"
    sleep 0.05
  done
  th=$(printf '%s' "$tsecret" | sha1sum | cut -d' ' -f1)
  base="http://127.0.0.1:$port"
  curl -sf -o /dev/null -H "api-secret: $th" -H 'content-type: application/json' \
    --data '[{"type":"sgv","sgv":99,"date":1700000000000}]' "$base/api/v1/entries" || fail "traced POST failed"
  curl -sf -o /dev/null -H "api-secret: $th" --compressed "$base/api/v1/entries.json?count=10" || fail "traced GET failed"
  curl -sf -o /dev/null -H "api-secret: $th" -H 'content-type: application/json' \
    --data '{"eventType":"Note","notes":"trace","created_at":"2024-01-01T00:00:00Z"}' \
    "$base/api/v1/treatments" || fail "traced treatment POST failed"
  curl -sf -o /dev/null -H "api-secret: $th" "$base/api/v1/status.json" || fail "traced status GET failed"
  curl -sf -o /dev/null --compressed "$base/" || fail "traced viewer GET failed"
  PORT="$port" HOSTNAME=127.0.0.1 run_bin healthcheck >/dev/null
  # Under strace the server is strace's child; under qemu it is the process itself.
  spid=$server_pid
  if [ -z "$runner" ]; then spid=$(pgrep -P "$server_pid" -x nightlite || true); fi
  [ -n "$spid" ] || fail "no traced server process"
  kill -TERM "$spid"
  timeout 30 tail --pid="$server_pid" -f /dev/null || fail "the traced server ignored SIGTERM"
  wait "$server_pid" || fail "the traced server did not stop cleanly: $(cat "$work/trace.log")"
  server_pid=""
  # "123 name(args" and "123 <... name resumed>" -> name; qemu writes "123 name(args" too.
  [ -n "$runner" ] && cp "$work/trace.log" "$trace_dir/calls"
  sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/^([a-z0-9_]+)\(.*/\1/' \
    "$trace_dir/calls" | grep -E '^[a-z0-9_]+$' | sort -u >"$work/used"
  [ "$(wc -l <"$work/used")" -gt 20 ] || fail "the trace holds almost no system calls"
  outside=$(comm -23 "$work/used" "$work/allowed" | tr '\n' ' ')
  denied=$(comm -12 "$work/used" "$work/denied" | tr '\n' ' ')
  [ -z "$outside" ] || fail "the server calls what SystemCallFilter=$allow_groups does not allow: $outside"
  [ -z "$denied" ] || fail "the server calls what SystemCallFilter=~$deny_groups denies: $denied"
  ok "$(wc -l <"$work/used") distinct system calls, all in $allow_groups and none in $deny_groups"
else
  echo "  skip (needs root, strace and setpriv)"
fi

# ---------------------------------------------------------------------------------------------
if [ "$arch" != "$host_arch" ]; then
  echo
  echo "test-deb: $arch: all archive checks passed (installation is tested with the $host_arch package)"
  exit 0
fi
section "installation into a throwaway $SUITE root"
[ "$(id -u)" = 0 ] || fail "the installation test needs root (chroot); ring 1 passed"
mkdir -p "$CACHE"
base=$CACHE/$SUITE-minbase.tar
if [ ! -s "$base" ]; then
  command -v debootstrap >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
  echo "debootstrap $SUITE (once; cached in $base)"
  rm -rf "$CACHE/base.tmp"
  debootstrap --variant=minbase "$SUITE" "$CACHE/base.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    fail "debootstrap failed, see $CACHE/debootstrap.log"
  tar -C "$CACHE/base.tmp" -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$CACHE/base.tmp"
fi
root=$work/root
mkdir -p "$root"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/nightlite.deb"
in_root() { chroot "$root" "$@"; }

in_root dpkg -i /tmp/nightlite.deb >"$work/install.out" 2>&1 || {
  cat "$work/install.out" >&2
  fail "dpkg -i failed"
}
sed 's/^/  | /' "$work/install.out"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
in_root dpkg-query -W -f='${Status}\n' nightlite | grep -q 'install ok installed' ||
  fail "nightlite is not 'install ok installed'"
ok "dpkg -i: installed"

pw=$(in_root getent passwd nightlite) || fail "no user nightlite"
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
[ "$uid" -lt 1000 ] || fail "nightlite is not a system user (uid $uid)"
[ "$shell" = /usr/sbin/nologin ] || fail "nightlite has a login shell: $shell"
[ "$home" = /var/lib/nightlite ] || fail "nightlite's home is $home"
ok "system user nightlite (uid $uid, $shell)"

statf() { in_root stat -c '%U:%G %a' "$1"; }
[ "$(statf /var/lib/nightlite)" = "nightlite:nightlite 750" ] || fail "/var/lib/nightlite is $(statf /var/lib/nightlite)"
[ "$(statf /var/lib/nightlite/api_secret)" = "nightlite:nightlite 600" ] ||
  fail "api_secret is $(statf /var/lib/nightlite/api_secret)"
[ "$(statf /etc/nightlite/nightlite.toml)" = "root:nightlite 640" ] ||
  fail "nightlite.toml is $(statf /etc/nightlite/nightlite.toml)"
[ "$(statf /etc/default/nightlite)" = "root:root 600" ] || fail "/etc/default/nightlite is $(statf /etc/default/nightlite)"
ok "modes: state dir 750, api_secret 600 nightlite, toml 640 root:nightlite, defaults 600 root"

secret=$(tr -d '\n' <"$root/var/lib/nightlite/api_secret")
[ "${#secret}" -ge 20 ] || fail "the generated secret is short: '${secret}'"
grep -qF "$secret" "$work/install.out" || fail "postinst did not print the generated secret"
grep -q '/var/lib/nightlite/api_secret' "$work/install.out" || fail "postinst did not say where the secret is"
ok "postinst generated a ${#secret}-character secret, printed it and its file"

# Start the server as the unit does: user nightlite, the unit's Environment=, the environment
# file (edited, which the upgrade below must keep), the packaged config.
port=$(free_port)
printf 'PORT=%s\nHOSTNAME=127.0.0.1\n' "$port" >>"$root/etc/default/nightlite"
# Runs nightlite as the unit would; call it in a subshell, `( service serve ) &`, so that exec
# makes $! the server itself and a signal reaches it. UMask= is the unit's too.
service() {
  umask 077
  # shellcheck disable=SC2046 # the env file's lines become separate NAME=value words
  exec chroot --userspec=nightlite:nightlite "$root" env -i PATH=/usr/bin:/bin \
    NIGHTLITE_DATA_DIR=/var/lib/nightlite $(grep -E '^[A-Z_]+=' "$root/etc/default/nightlite") \
    /usr/bin/nightlite --config /etc/nightlite/nightlite.toml "$@"
}
start_service() {
  (service serve) >>"$work/service.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    (service healthcheck) 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/service.log" >&2
  fail "the installed service did not come up"
}

start_service
hash=$(printf '%s' "$secret" | sha1sum | cut -d' ' -f1)
when=$(date +%s%3N)
code=$(curl -s -o "$work/post.out" -w '%{http_code}' -H 'content-type: application/json' \
  -H "api-secret: $hash" --data "[{\"type\":\"sgv\",\"sgv\":111,\"date\":$when,\"device\":\"deb-test\"}]" \
  "http://127.0.0.1:$port/api/v1/entries")
[ "$code" = 200 ] || fail "POST with the generated secret answered $code: $(cat "$work/post.out")"
ok "the service as user nightlite accepted an entry with the generated secret"

# The README's admin commands, as written there (sudo -u is runuser here: minbase has no
# sudo), next to the running service: a token that then works, a backup, and a restore.
admin() { in_root runuser -u nightlite -- nightlite --config /etc/nightlite/nightlite.toml "$@"; }
token=$(admin token create --name readme --role readable 2>/dev/null) || fail "token create failed"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/entries.json?token=$token")
[ "$code" = 200 ] || fail "the token from 'token create' was refused ($code)"
admin backup >"$work/backup.out" 2>&1 || fail "backup failed: $(cat "$work/backup.out")"
backup_file=$(find "$root/var/lib/nightlite/backups" -name 'nightlite-*.sqlite3' | head -n1)
[ -n "$backup_file" ] || fail "backup wrote nothing into /var/lib/nightlite/backups"
stop_server
[ "$(statf /var/lib/nightlite/nightlite.sqlite3)" = "nightlite:nightlite 600" ] ||
  fail "the database is $(statf /var/lib/nightlite/nightlite.sqlite3)"
admin restore "${backup_file#"$root"}" >"$work/restore.out" 2>&1 || fail "restore failed: $(cat "$work/restore.out")"
[ "$(statf /var/lib/nightlite/nightlite.sqlite3 | cut -d' ' -f1)" = nightlite:nightlite ] ||
  fail "the restored database is $(statf /var/lib/nightlite/nightlite.sqlite3)"
ok "README commands as user nightlite: token create (the token works), backup, restore"

# Upgrade: the same package as version -2. The edited /etc/default/nightlite, the secret, the
# database and the user must all survive, and no new secret may be printed.
rm -rf "$work/repack"
dpkg-deb -R "$deb" "$work/repack"
sed -i "s/^Version: .*/Version: $version-2/" "$work/repack/DEBIAN/control"
dpkg-deb -b --root-owner-group "$work/repack" "$root/tmp/nightlite-2.deb" >/dev/null
in_root dpkg -i /tmp/nightlite-2.deb >"$work/upgrade.out" 2>&1 || {
  cat "$work/upgrade.out" >&2
  fail "the upgrade failed"
}
grep -q "^PORT=$port\$" "$root/etc/default/nightlite" || fail "the upgrade replaced /etc/default/nightlite"
[ "$(tr -d '\n' <"$root/var/lib/nightlite/api_secret")" = "$secret" ] || fail "the upgrade changed the secret"
! grep -q 'generated the admin API secret' "$work/upgrade.out" || fail "the upgrade printed a new secret"
[ "$(statf /etc/nightlite/nightlite.toml)" = "root:nightlite 640" ] || fail "the upgrade reset the config's mode"
start_service
curl -s -g -H "api-secret: $hash" "http://127.0.0.1:$port/api/v1/entries.json?find[date]=$when" | grep -q '"sgv":111' ||
  fail "the entry was gone after the upgrade"
stop_server
ok "upgrade to $version-2: edited conffile, secret, data and modes kept"

in_root dpkg -r nightlite >"$work/remove.out" 2>&1 || {
  cat "$work/remove.out" >&2
  fail "dpkg -r failed"
}
[ ! -e "$root/usr/bin/nightlite" ] || fail "remove left /usr/bin/nightlite"
[ -s "$root/var/lib/nightlite/nightlite.sqlite3" ] || fail "remove deleted the database"
[ -f "$root/etc/default/nightlite" ] || fail "remove deleted a conffile"
in_root getent passwd nightlite >/dev/null || fail "remove deleted the user"
ok "remove: binary gone; data, conffiles and user kept"

in_root dpkg -P nightlite >"$work/purge.out" 2>&1 || {
  cat "$work/purge.out" >&2
  fail "dpkg -P failed"
}
for p in /var/lib/nightlite /etc/nightlite /etc/default/nightlite; do
  [ ! -e "$root$p" ] || fail "purge left $p"
done
! in_root getent passwd nightlite >/dev/null || fail "purge left the user"
! in_root getent group nightlite >/dev/null || fail "purge left the group"
[ -z "$(in_root dpkg-statoverride --list /etc/nightlite/nightlite.toml || true)" ] || fail "purge left the statoverride"
ok "purge: data, conffiles, user, group and statoverride gone"

echo
echo "test-deb: all checks passed"
