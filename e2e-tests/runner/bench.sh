#!/usr/bin/env bash
# Prints the policy's `validate` timings through wasmtime and natively, and the floor's
# (bench/floor, through wasmtime), for opted-in pods with 1, 10 and 100 containers, then
# the native scaling series (containers, env vars, volumes, ServiceAccount annotations),
# plus the modules' sizes.
# Usage: e2e-tests/runner/bench.sh [path/to/policy.wasm [path/to/floor.wasm]]   (from anywhere)
# The floor module: scripts/build-wasm.sh bench-floor target/bench-floor.wasm (make bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/policy.wasm}")"
floor="$(realpath "${2:-$root/target/bench-floor.wasm}")"
cd "$root"
cargo run --locked --quiet --release -p policy-runner --features native-bench --bin policy-bench -- \
  --floor "$floor" "$module"
