#!/usr/bin/env bash
# make fuzz: runs each fuzz target (fuzz/, docs/dev/fuzzing.md) for FUZZ_SECONDS (default
# 120) with the nightly toolchain and cargo-fuzz, one target at a time. Without them it
# says how to get them and that it skipped the targets, and exits 0: CI machines may have
# neither. Each target first replays its reproducers of past findings (fuzz/regressions/),
# then fuzzes from the committed seeds alone (a fresh scratch corpus) with a fixed seed
# (FUZZ_SEED, default 1), so that a run does not depend on what an earlier one found.
# Extra libFuzzer flags come from FUZZ_FLAGS. With FUZZ_INSTALL=1 (CI) a missing cargo-fuzz is
# installed, not skipped.
#
# make fuzz-long (--long): each target in turn for FUZZ_LONG_SECONDS (default 3600) in
# libFuzzer's fork mode on FUZZ_JOBS cores (default 2), going on after a finding, from a
# corpus kept between runs (fuzz/target/long-corpus/). Its final figures are appended to
# fuzz/long-runs.txt (commit it; docs/dev/fuzzing.md cites it) and its log kept under
# fuzz/target/long-logs/.
# Usage: scripts/fuzz.sh [--long] [target...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-120}"
seed="${FUZZ_SEED:-1}"
long=
if [ "${1:-}" = --long ]; then
  long=1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(validate validate_structured validate_settings)

cargo_fuzz=(cargo +stable install cargo-fuzz --locked --version 0.13.2)
skip() {
  echo "SKIPPED: make fuzz ($*). To run it:"
  echo "  rustup toolchain install nightly --profile minimal"
  echo "  ${cargo_fuzz[*]}   # 30 s to 5 minutes here"
  exit 0
}
command -v rustup >/dev/null || skip "no rustup, so no nightly toolchain"
rustup run nightly rustc --version >/dev/null 2>&1 || skip "no nightly toolchain"
if ! cargo fuzz --version >/dev/null 2>&1; then
  [ "${FUZZ_INSTALL:-}" = 1 ] || skip "cargo-fuzz is not installed"
  "${cargo_fuzz[@]}"
fi

failed() {
  echo "FAILED: $1 found an input that breaks an oracle; it is saved under" \
    "fuzz/artifacts/$1/ (cargo +nightly fuzz fmt --fuzz-dir fuzz $1 <file> shows it;" \
    "cargo +nightly fuzz run --fuzz-dir fuzz $1 <file> runs it with ASan's allocation" \
    "stacks)" >&2
  exit 1
}

# -timeout is generous: a loaded machine is slow, and only a hang should fail.
limits=(-timeout=60 -rss_limit_mb=2048)
# Entropic scheduling updates a frequency per feature per execution, and an execution here
# hits thousands: without it the targets ran 1.4-1.6x faster and reached more coverage in
# the same 45 s (docs/dev/fuzzing.md). FUZZ_FLAGS=-entropic=1 turns it back on.
# No leak detection: policy-server drops the instance after every request, so a leak
# cannot pile up, and -rss_limit_mb still stops one that grows within a run.
strategy=(-entropic=0 -detect_leaks=0)
# While fuzzing (not replaying), ASan records no allocation stacks: unwinding and storing
# one per allocation was an eighth of an execution. failed() says how to get them back.
# Nor does it move locals to its fake stacks to catch a use after return (a tenth to a
# fifth of a structured execution): safe Rust cannot return a reference to a local, and
# the policy's unsafe code (its arena) is the allocator of the wasm module only.
fuzz_asan="${ASAN_OPTIONS:-malloc_context_size=0:detect_stack_use_after_return=0}"

# The structured target's bytes are choices, not text, so libFuzzer's comparison tables
# (trace-compares) have little to give it: built without them, in a target directory of
# its own so the other targets' build stays, it ran 1.5x faster and reached more
# coverage in the same 150 s (docs/dev/fuzzing.md). Its edits always make JSON, so it
# also gets coverage for the policy crate alone (fuzz/rustc-policy-coverage.sh, as
# RUSTC_WRAPPER): the harness's and the dependencies' code held two fifths of the
# counters libFuzzer collects per execution, and without them it ran faster and reached
# more of the policy's edges in the same time. Cargo does not rebuild when the wrapper
# comes or goes, so that build has a directory of its own too.
build_flags() {
  case "$1" in
    validate_structured) echo "--no-trace-compares --target-dir fuzz/target/policy-coverage" ;;
  esac
}
rustc_wrapper() {
  case "$1" in
    validate_structured) echo "$PWD/fuzz/rustc-policy-coverage.sh" ;;
    *) echo "${RUSTC_WRAPPER:-}" ;;
  esac
}

# cargo fuzz run on `target` (`$1`), built with its flags; the rest are cargo-fuzz's
# arguments after the target: inputs, then `--` and libFuzzer's flags.
run_target() {
  local target="$1" wrapper
  shift
  wrapper="$(rustc_wrapper "$target")"
  # shellcheck disable=SC2046 # build_flags is a list of flags
  RUSTC_WRAPPER="$wrapper" cargo +nightly fuzz run --fuzz-dir fuzz $(build_flags "$target") \
    "$target" "$@"
}

# Fuzzing (not replaying) `target` (`$1`) from the corpus directories `dirs` for `seconds`;
# the rest are libFuzzer flags of the mode, before the common ones and FUZZ_FLAGS.
fuzz_target() {
  local target="$1"
  shift
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  ASAN_OPTIONS="$fuzz_asan" run_target "$target" "${dirs[@]}" -- "$@" \
    -seed="$seed" -max_total_time="$seconds" "${limits[@]}" "${strategy[@]}" \
    -print_final_stats=1 ${FUZZ_FLAGS:-}
}

# The reproducers of `target`'s past findings, each run once (files, not a directory:
# libFuzzer runs them and does not fuzz).
replay() {
  local regressions=(fuzz/regressions/"$1"/*)
  [ -e "${regressions[0]}" ] || return 0
  echo "== $1: ${#regressions[@]} reproducers of past findings"
  run_target "$1" "${regressions[@]}" -- "${limits[@]}" || {
    echo "FAILED: a reproducer under fuzz/regressions/$1/ breaks an oracle again" >&2
    exit 1
  }
}

# The corpus directories for `target`, the first (`$2`) the one libFuzzer adds to: a
# scratch copy, so the committed seeds stay as they are. The reproducers are seeds too.
corpus() {
  mkdir -p "$2"
  dirs=("$2" "fuzz/corpus/$1")
  [ -d "fuzz/regressions/$1" ] && dirs+=("fuzz/regressions/$1")
  return 0
}

if [ -z "$long" ]; then
  for target in "${targets[@]}"; do
    replay "$target"
    rm -rf "fuzz/target/corpus/$target"
    corpus "$target" "fuzz/target/corpus/$target"
    echo "== fuzzing $target for ${seconds}s (seed $seed)"
    fuzz_target "$target" || failed "$target"
  done
  exit 0
fi

seconds="${FUZZ_LONG_SECONDS:-3600}"
jobs="${FUZZ_JOBS:-2}"
commit="$(git describe --always --dirty --abbrev=12)"
mkdir -p fuzz/target/long-logs
found=0
for target in "${targets[@]}"; do
  replay "$target"
  corpus "$target" "fuzz/target/long-corpus/$target"
  log="fuzz/target/long-logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
  started="$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "== fuzzing $target for ${seconds}s on $jobs workers (log: $log)"
  fuzz_target "$target" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    >"$log" 2>&1 || true
  # Fork mode's last status line holds the totals of all its jobs.
  stats="$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1)"
  [ -n "$stats" ] || stats="no status line (see $log)"
  echo "$started  $commit  $target  ${seconds}s  fork=$jobs  $stats" | tee -a fuzz/long-runs.txt
  case "$stats" in
    *"oom/timeout/crash: 0/0/0"*) ;;
    *) found=1 ;;
  esac
done
if [ "$found" = 1 ]; then
  echo "FOUND: a target saved inputs under fuzz/artifacts/ (see the lines above)" >&2
  exit 1
fi
