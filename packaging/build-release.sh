#!/usr/bin/env bash
# Release binaries for every platform nightlite ships on, with no Docker: Debian's cross gcc
# links the ARM builds and compiles rusqlite's bundled SQLite (.cargo/config.toml names them).
#
#   packaging/build-release.sh                 # all four targets
#   NIGHTLITE_TARGETS="aarch64-unknown-linux-gnu" packaging/build-release.sh
#   NIGHTLITE_PROFILE=release-low packaging/build-release.sh
#
# Results: target/dist/nightlite-<version>-<target>. Builds reuse target/, so a second run only
# relinks what changed; nothing here cleans it.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS="x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-unknown-linux-musl"
TARGETS=${NIGHTLITE_TARGETS:-$ALL_TARGETS}
PROFILE=${NIGHTLITE_PROFILE:-release}
DIST=target/dist

say() { printf '== %s\n' "$*"; }
die() {
  printf 'build-release: %s\n' "$*" >&2
  exit 1
}

# apt-get needs root; in a user's shell sudo stands in, in CI (root) nothing does.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"
  fi
}

# Debian package giving each tool a target needs (the linker and C compiler for SQLite).
tool_for() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf" ;;
    x86_64-unknown-linux-musl) echo "musl-gcc musl-tools" ;;
    *) echo "" ;;
  esac
}

missing_pkgs=()
for t in $TARGETS; do
  case " $ALL_TARGETS " in *" $t "*) ;; *) die "unknown target '$t' (known: $ALL_TARGETS)" ;; esac
  read -r tool pkg <<<"$(tool_for "$t")"
  if [ -n "$tool" ] && ! command -v "$tool" >/dev/null; then missing_pkgs+=("$pkg"); fi
done
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  command -v apt-get >/dev/null ||
    die "missing cross compilers; install the equivalents of Debian's ${missing_pkgs[*]}, or use cross (cross.toml)"
  say "installing ${missing_pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing_pkgs[@]}" ||
    { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing_pkgs[@]}"; }
fi

host=$(rustc -vV | sed -n 's/^host: //p')
installed=$(rustup target list --installed)
for t in $TARGETS; do
  if [ "$t" != "$host" ] && ! grep -qx "$t" <<<"$installed"; then
    say "rustup target add $t"
    rustup target add "$t"
  fi
done

# rustls or nothing: an OpenSSL dependency would need a C TLS library per target.
if cargo tree --locked --target all -i openssl-sys >/dev/null 2>&1; then
  cargo tree --locked --target all -i openssl-sys >&2
  die "openssl-sys is in the dependency graph; use rustls"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in Cargo.toml"
mkdir -p "$DIST"

# cargo names the profile's folder after the profile, except `dev`, which goes to debug/.
outdir() {
  local sub=$PROFILE
  [ "$PROFILE" = dev ] && sub=debug
  if [ "$1" = "$host" ]; then echo "target/$sub"; else echo "target/$1/$sub"; fi
}

for t in $TARGETS; do
  say "build $t ($PROFILE)"
  start=$(date +%s)
  # The host target builds without --target so it shares target/release with `cargo build
  # --release` in .ci/run and on developers' machines instead of compiling everything twice.
  if [ "$t" = "$host" ]; then
    cargo build --locked --profile "$PROFILE" --bin nightlite
  else
    cargo build --locked --profile "$PROFILE" --bin nightlite --target "$t"
  fi
  out="$DIST/nightlite-$version-$t"
  [ "$PROFILE" = release ] || out="$out-$PROFILE"
  cp "$(outdir "$t")/nightlite" "$out.tmp"
  mv "$out.tmp" "$out"
  echo "built $out in $(($(date +%s) - start))s"
done

# readelf reads any architecture, so one tool checks all the binaries: the CPU they are for,
# whether they are static, and the newest glibc symbol version they need (the oldest OS they
# run on).
say "binaries"
printf '%-58s %10s  %-9s %s\n' file bytes machine needs
for t in $TARGETS; do
  out="$DIST/nightlite-$version-$t"
  [ "$PROFILE" = release ] || out="$out-$PROFILE"
  machine=$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')
  case "$machine" in
    *X86-64*) machine=x86_64 ;;
    *AArch64*) machine=aarch64 ;;
    *ARM*) machine=arm ;;
  esac
  if readelf -l "$out" | grep -q 'Requesting program interpreter'; then
    needs=$(readelf -V "$out" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1)
    needs="dynamic, glibc >= ${needs#GLIBC_}"
  else
    needs="static"
  fi
  printf '%-58s %10s  %-9s %s\n' "$out" "$(stat -c %s "$out")" "$machine" "$needs"
done
