#!/usr/bin/env bash
# RUSTC_WRAPPER of the structured target's build (scripts/fuzz.sh): coverage for the
# policy crate alone. cargo-fuzz's RUSTFLAGS put SanitizerCoverage (-Cpasses=sancov-module)
# into every crate, and RUSTFLAGS cannot differ per crate (nor can LLVM's coverage allowlist
# be reached through -Cllvm-args), so this drops that pass from every other crate's rustc
# command: the harness (payload building, oracles) and the dependencies' own code run
# uninstrumented, and libFuzzer sees the policy's edges only (docs/dev/fuzzing.md, "Speed").
# ASan and every other flag stay as cargo-fuzz sets them. Cargo does not notice a change to
# this file: remove the structured target's build directory after one.
set -euo pipefail
rustc="$1"
shift
crate=
previous=
for arg in "$@"; do
  [ "$previous" = --crate-name ] && crate="$arg"
  previous="$arg"
done
[ "$crate" = iamra_sidecar_policy ] && exec "$rustc" "$@"
args=()
for arg in "$@"; do
  [ "$arg" = -Cpasses=sancov-module ] || args+=("$arg")
done
exec "$rustc" "${args[@]}"
