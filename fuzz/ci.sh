#!/usr/bin/env bash
# Fuzzing for CI: builds every cargo-fuzz target and runs each briefly; exits non-zero when a
# target crashes (panic, AddressSanitizer report, libFuzzer's out-of-memory or slow-unit limit),
# when the build fails, or when a step overruns its time bound.
#
#   fuzz/ci.sh                 # 15 s per target
#   FUZZ_SECONDS=60 fuzz/ci.sh # longer
#   fuzz/ci.sh 60              # the same
#
# Needs only rustup's stable toolchain and a C/C++ compiler (libFuzzer and SQLite are C/C++):
# cargo-fuzz is installed if missing, and RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z
# flags cargo-fuzz passes (sanitizer, coverage). Targets come from `cargo fuzz list`, so a new
# target in fuzz/Cargo.toml is run without editing this script. The kept corpus
# (fuzz/corpus/<target>) is only read; new inputs go to a scratch directory. A crash input is
# left in fuzz/artifacts/<target>/ and the command to replay it is printed.
#
# Bounds (seconds, overridable): FUZZ_INSTALL_TIMEOUT (1800) for installing cargo-fuzz,
# FUZZ_BUILD_TIMEOUT (2400) for building the targets, and per target FUZZ_SECONDS plus
# FUZZ_RUN_SLACK (120, start-up and merging the corpus).
set -uo pipefail
cd "$(dirname "$0")"

secs=${1:-${FUZZ_SECONDS:-15}}
install_timeout=${FUZZ_INSTALL_TIMEOUT:-1800}
build_timeout=${FUZZ_BUILD_TIMEOUT:-2400}
slack=${FUZZ_RUN_SLACK:-120}
export RUSTC_BOOTSTRAP=1
t0=$SECONDS

say() { echo "fuzz/ci.sh: $*"; }

if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  say "seconds per target must be a positive whole number, got '$secs'"
  exit 2
fi
for tool in cargo timeout; do
  command -v "$tool" >/dev/null || { say "$tool not found"; exit 2; }
done
if ! command -v c++ >/dev/null && ! command -v clang++ >/dev/null && ! command -v g++ >/dev/null; then
  say "no C++ compiler (libFuzzer is built from C++): install g++ or clang"
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz 0.13.2 (cargo install cargo-fuzz --version 0.13.2 --locked)"
  timeout --kill-after=30 "$install_timeout" cargo install cargo-fuzz --version 0.13.2 --locked
  rc=$?
  if [ $rc -ne 0 ]; then
    say "installing cargo-fuzz failed (exit $rc; 124: took over ${install_timeout} s)"
    exit 1
  fi
fi
say "$(cargo fuzz --version)"

mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
  say "cargo fuzz list found no targets"
  exit 1
fi
say "targets: ${targets[*]}; ${secs} s each"

tb=$SECONDS
timeout --kill-after=30 "$build_timeout" cargo fuzz build
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  say "cargo fuzz build took over ${build_timeout} s"
  exit 1
elif [ $rc -ne 0 ]; then
  say "cargo fuzz build failed (exit $rc)"
  exit 1
fi
say "built in $((SECONDS - tb)) s"

status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  # Outside the scratch corpus: libFuzzer reads every file in that directory as an input.
  log=$(mktemp)
  mkdir -p "corpus/$t"
  echo "== $t, ${secs} s"
  timeout --kill-after=30 $((secs + slack)) \
    cargo fuzz run "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$log" || tail -n 2 "$log"
  else
    status=1
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      echo "!! $t did not finish within $((secs + slack)) s; last lines:"
      tail -n 20 "$log"
    else
      echo "!! $t failed (exit $rc):"
      grep -E -A 12 "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer|==[0-9]+== ?ERROR|SUMMARY" "$log" | head -n 60
      artifact=$(grep -oE "artifacts/$t/[A-Za-z0-9_.-]+" "$log" | tail -n 1)
      if [ -n "$artifact" ]; then
        echo "!! crash input: fuzz/$artifact (base64: $(base64 -w0 "$artifact" 2>/dev/null | head -c 2000))"
        echo "!! replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $artifact)"
      else
        tail -n 20 "$log"
      fi
    fi
  fi
  rm -rf "$scratch" "$log"
done
say "done in $((SECONDS - t0)) s, $([ $status -eq 0 ] && echo 'no crash' || echo 'FAILED')"
exit $status
