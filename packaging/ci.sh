#!/usr/bin/env bash
# Everything about shipping, in the order a release goes: release binaries for x86_64, aarch64,
# armv7 and static x86_64-musl; the smoke test of each (ARM under qemu-user); the .debs for
# amd64, arm64 and armhf and their checks, the amd64 one also installed into a throwaway
# Debian root.
# .ci/run calls this once, under its own time bound; each step has a bound of its own so a
# hang names the step.
#
# The cross builds reuse target/ (never cleaned here): a warm run only recompiles nightlite
# itself per target. A cold run compiles every dependency four times over.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== packaging: %s\n' "$*"; }

step "release binaries (packaging/build-release.sh)"
# A cold build (empty target/) took 40 minutes on 2 busy cores; a warm one relinks in minutes.
timeout "${PACKAGING_BUILD_TIMEOUT:-4200}" bash packaging/build-release.sh

step "smoke tests, ARM under qemu-user (packaging/smoke-qemu.sh)"
timeout 900 bash packaging/smoke-qemu.sh

step ".deb packages (packaging/build-deb.sh)"
timeout 1800 bash packaging/build-deb.sh # includes `cargo install cargo-deb` on a new machine

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
for arch in amd64 arm64 armhf; do
  step ".deb $arch (packaging/test-deb.sh; amd64 also installed into a throwaway root)"
  timeout 900 bash packaging/test-deb.sh "target/debian/nightlite_${version}-1_$arch.deb"
done
