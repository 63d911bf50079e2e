#!/usr/bin/env bash
# Prints the policy's `validate` timings through wasmtime and natively, for
# opted-in pods with 1, 10 and 100 containers, plus the module size.
# Usage: e2e-tests/runner/bench.sh [path/to/policy.wasm]   (from anywhere)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/policy.wasm}")"
cd "$root"
cargo run --quiet --release -p policy-runner --features native-bench --bin policy-bench -- "$module"
