#!/usr/bin/env bash
# Counts the instructions of one `validate` call of the policy and of the floor through
# wasmtime, for 1, 10 and 100 containers: valgrind's callgrind runs `policy-bench --calls`
# once with 1 call and once with 41, and the difference over 40 calls is printed.
# Instructions do not vary with the machine's load the way timings do.
# Usage: e2e-tests/runner/bench-count.sh [path/to/policy.wasm [path/to/floor.wasm]]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/policy.wasm}")"
floor="$(realpath "${2:-$root/target/bench-floor.wasm}")"
cd "$root"
command -v valgrind >/dev/null || scripts/debian-install.sh valgrind
cargo build --locked --quiet --release -p policy-runner --features native-bench --bin policy-bench
bench="$root/target/release/policy-bench"

# Instructions of `policy-bench --calls $2` on module $1 with $3 containers.
count() {
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    "$bench" "$1" --calls "$2" --containers "$3" 2>&1 | sed -n 's/.*Collected : //p'
}

per_call() {
  "$bench" "$1" --calls 1 --containers "$2" # fills wasmtime's compilation cache
  local one many
  one="$(count "$1" 1 "$2")"
  many="$(count "$1" 41 "$2")"
  echo $(((many - one) / 40))
}

printf '%-11s %16s %16s %11s\n' containers "ours (instr)" "floor (instr)" ours/floor
for containers in 1 10 100; do
  ours="$(per_call "$module" "$containers")"
  base="$(per_call "$floor" "$containers")"
  awk -v c="$containers" -v o="$ours" -v b="$base" 'BEGIN { printf "%-11s %16d %16d %10.2fx\n", c, o, b, o / b }'
done
