#!/usr/bin/env bash
# Browser tests of the web viewer (tests/browser/*.test.mjs, shared helpers in lib.mjs): Debian's
# chromium driven by playwright-core from the npm registry, against the real nightlite binary with fixture data.
# Screenshots and perf.json go to target/browser/. Exits non-zero when a test fails.
#
#   tests/browser/run.sh            builds and tests the release binary
#   NIGHTLITE_PROFILE=debug ...     the debug binary (faster to build while developing)
#   NIGHTLITE_BIN=/path ...         a binary built elsewhere
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ ! -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (apt)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

bin=${NIGHTLITE_BIN:-}
if [ -z "$bin" ]; then
  if [ "${NIGHTLITE_PROFILE:-release}" = debug ]; then
    cargo build --locked --bin nightlite
    bin=$root/target/debug/nightlite
  else
    cargo build --release --locked --bin nightlite
    bin=$root/target/release/nightlite
  fi
fi

mkdir -p target/browser
NIGHTLITE_BIN="$bin" NIGHTLITE_ARTIFACTS="$root/target/browser" \
  node --test --test-concurrency=1 --test-timeout=120000 tests/browser/*.test.mjs
