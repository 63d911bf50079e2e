#!/usr/bin/env bash
# Counts the instructions of one request through wasmtime (valgrind's callgrind), for
# opted-in pods of 1, 10 and 100 containers under the minimal and the full settings, for
# the policy, the floor (bench/floor) and the constant-answer guest (the policy's answer,
# precomputed, returned without reading the request). Two ways to serve a request:
#   fresh: a new store and instance, wapc_init, one validate, as policy-server 1.35 does;
#   warm:  one instance serving every request (kwctl bench, and earlier figures).
# A figure is the difference between two counts of one process, over the N requests
# between them: fresh, 1 and 1+N requests; warm, 2 and 2+N, because an instance's second
# request reads and keeps its settings (src/lib.rs) and warm is the steady state after it.
# Instructions do not vary with the machine's load the way timings do; callgrind counts
# the process's own instructions, not the kernel's (mmap, page faults of a new instance).
# Usage: e2e-tests/runner/bench-count.sh [path/to/policy.wasm [path/to/floor.wasm]]
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/policy.wasm}")"
floor="$(realpath "${2:-$root/target/bench-floor.wasm}")"
cd "$root"
command -v valgrind >/dev/null || scripts/debian-install.sh valgrind
# shellcheck source=policy-perf.bash
source e2e-tests/runner/policy-perf.bash

# Prints "fresh warm": instructions per request each way.
per_request() {
  fill "$@" --instance fresh
  local one fresh two warm
  one="$(count "$@" --instance fresh)"
  fresh="$(count "$@" --instance fresh --requests $((requests + 1)))"
  two="$(count "$@" --instance warm --requests 2)"
  warm="$(count "$@" --instance warm --requests $((requests + 2)))"
  echo "$(((fresh - one) / requests)) $(((warm - two) / requests))"
}

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for settings in minimal full; do
  for containers in 1 10 100; do
    echo "counting $containers container(s), $settings settings..." >&2
    ours="$(per_request "$module" --settings "$settings" --containers "$containers")"
    base="$(per_request "$floor" --settings "$settings" --containers "$containers")"
    constant="$(per_request "$module" --constant --settings "$settings" --containers "$containers")"
    read -r ours_fresh ours_warm <<<"$ours"
    read -r floor_fresh floor_warm <<<"$base"
    read -r const_fresh const_warm <<<"$constant"
    echo "$settings $containers $ours_fresh $floor_fresh $const_fresh $ours_warm $floor_warm $const_warm" >>"$results"
  done
done

echo "instructions per request, opted-in Pod CREATE; floor: typed Pod round trip plus one annotation; constant: our answer, precomputed, returned without reading the request"
table() {
  printf '%-9s %10s %12s %12s %12s %14s %11s\n' settings containers ours floor constant ours/constant ours/floor
  awk -v o="$1" -v f="$2" -v c="$3" '{ printf "%-9s %10s %12d %12d %12d %13.2fx %10.2fx\n",
    $1, $2, $o, $f, $c, $o / $c, $o / $f }' "$results"
}
echo "fresh instance per request (as policy-server 1.35: new store and instance, wapc_init, one validate):"
table 3 4 5
echo "warm (one instance, many calls):"
table 6 7 8
