#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30): ./fuzz/run.sh 60
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Its -Z flags need nightly; on stable,
# RUSTC_BOOTSTRAP=1 lets rustc accept them. Targets are built with debug assertions, overflow
# checks and AddressSanitizer. The kept corpus (corpus/<target>) is only read: new inputs go
# to a scratch directory, so it stays small; a crash lands in artifacts/<target>/ and makes
# the script exit 1.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
export RUSTC_BOOTSTRAP=1
targets=(find_query dates prepare v3_filter)
cargo fuzz build || exit 1
status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  # Outside the scratch corpus: libFuzzer reads every file in it as an input.
  log=$(mktemp)
  echo "== $t, ${secs} s"
  if cargo fuzz run "$t" "$scratch" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$log" || tail -n 2 "$log"
  else
    echo "!! $t failed (crash input in fuzz/artifacts/$t/):"
    grep -E -A 12 "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer|==[0-9]+== ?ERROR" "$log" | head -n 40
    status=1
  fi
  rm -rf "$scratch" "$log"
done
exit $status
