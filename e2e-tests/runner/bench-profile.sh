#!/usr/bin/env bash
# Where a fresh-instance request's instructions go, by function of the policy module:
# callgrind over `policy-perf count` (1 and 1 + N requests, as bench-count.sh counts),
# each address in the compiled code named by the function that holds it (policy-perf's
# --symbols, from wasmtime's own table of the module's functions; bench-profile.py).
# The module is built again keeping its function names (the release profile strips
# them), under target/names; the code is the same. Arguments go to `policy-perf count`
# (default: the 1-container opted-in pod, minimal settings), e.g. --containers 100 or
# --settings full; PROFILE_ROWS (30) sets how many functions are listed.
# Usage: e2e-tests/runner/bench-profile.sh [policy-perf count options]
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v valgrind >/dev/null || scripts/debian-install.sh valgrind
# shellcheck source=policy-perf.bash
source e2e-tests/runner/policy-perf.bash

module=target/names/policy.wasm
CARGO_PROFILE_RELEASE_STRIP=none WASM_TARGET_DIR=target/names \
  scripts/build-wasm.sh iamra-sidecar-policy "$module"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fill "$module" "$@" --instance fresh
for n in 1 $((requests + 1)); do
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$work/cg.$n" \
    "$perf" count "$module" "$@" --instance fresh --requests "$n" --symbols "$work/sym.$n" \
    >"$work/log.$n" 2>&1 || { cat "$work/log.$n" >&2; exit 1; }
done
echo "Instructions per fresh-instance request, by function of the module (policy-perf count ${*:-with its defaults}):"
echo
python3 e2e-tests/runner/bench-profile.py "$work/cg.1" "$work/sym.1" \
  "$work/cg.$((requests + 1))" "$work/sym.$((requests + 1))" "$requests" "${PROFILE_ROWS:-30}"
