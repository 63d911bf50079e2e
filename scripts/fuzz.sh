#!/usr/bin/env bash
# make fuzz: runs each fuzz target (fuzz/, README "Fuzzing") for FUZZ_SECONDS (default 120)
# with the nightly toolchain and cargo-fuzz, one target at a time. Without them it says how
# to get them and that it skipped the targets, and exits 0: CI machines may have neither.
# Extra libFuzzer flags come from FUZZ_FLAGS (e.g. "-fork=1 -ignore_crashes=1").
# Usage: scripts/fuzz.sh [target...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-120}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(validate validate_structured validate_settings)

skip() {
  echo "SKIPPED: make fuzz ($*). To run it:"
  echo "  rustup toolchain install nightly --profile minimal"
  echo "  cargo install cargo-fuzz --locked   # 3 minutes here"
  exit 0
}
command -v rustup >/dev/null || skip "no rustup, so no nightly toolchain"
rustup run nightly rustc --version >/dev/null 2>&1 || skip "no nightly toolchain"
cargo fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not installed"

for target in "${targets[@]}"; do
  # libFuzzer adds what it finds to the first directory only: a scratch copy, so the
  # committed seeds stay as they are. Reproducers of past findings run first.
  scratch="fuzz/target/corpus/$target"
  mkdir -p "$scratch"
  dirs=("$scratch" "fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && dirs+=("fuzz/regressions/$target")
  echo "== fuzzing $target for ${seconds}s"
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  if ! cargo +nightly fuzz run --fuzz-dir fuzz "$target" "${dirs[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 ${FUZZ_FLAGS:-}; then
    echo "FAILED: $target found an input that breaks an oracle; it is saved under" \
      "fuzz/artifacts/$target/ (cargo +nightly fuzz fmt --fuzz-dir fuzz $target <file> shows it)" >&2
    exit 1
  fi
done
