#!/usr/bin/env bash
# Where a fresh-instance request's instructions go, for the policy: instantiation,
# wapc_init, the request's read, the first call's one-time work, the settings' read and
# the injection, each measured by difference (callgrind, as
# bench-count.sh counts) between workloads that do one more step, for opted-in pods of
# 1 and 100 containers under the minimal settings. A rewrite of the module (wabt's
# wasm2wat and wat2wasm; the code is the same) without its `wapc_init` export isolates
# the instance alone. The memory.grow calls are seen with strace: wasmtime's default
# allocator makes grown pages accessible with mprotect; the page faults of a request,
# which callgrind does not see, with GNU time.
# Prints a Markdown table, then the module's layout.
# Usage: e2e-tests/runner/bench-phases.sh [path/to/policy.wasm]
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$(realpath "${1:-$root/policy.wasm}")"
cd "$root"
scripts/debian-install.sh valgrind wabt strace time
# shellcheck source=policy-perf.bash
source e2e-tests/runner/policy-perf.bash

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
wasm2wat "$module" -o "$work/policy.wat"
wat2wasm "$work/policy.wat" -o "$work/base.wasm"
grep -q '^  (export "wapc_init" (func [0-9]*))$' "$work/policy.wat" ||
  { echo "the module exports no wapc_init" >&2; exit 1; }
sed '/^  (export "wapc_init" (func [0-9]*))$/d' "$work/policy.wat" >"$work/no-init.wat"
wat2wasm "$work/no-init.wat" -o "$work/no-init.wasm"

# per_request INSTANCE ARGS...: instructions per request, fresh or warm (as
# bench-count.sh: warm from the third request on, after the second kept the settings).
per_request() {
  local instance=$1
  shift
  fill "$@" --instance fresh
  local first=1
  [ "$instance" = warm ] && first=2
  local one many
  one="$(count "$@" --instance "$instance" --requests "$first")"
  many="$(count "$@" --instance "$instance" --requests $((requests + first)))"
  echo $(((many - one) / requests))
}

# grows ARGS...: the memory.grow calls of one fresh request, as "count: pages pages ...".
grows() {
  local base call
  base="$(strace -f -e trace=mprotect "$perf" count "$@" --instance fresh --call none 2>&1 >/dev/null |
    grep -c 'PROT_READ|PROT_WRITE) = 0')"
  call="$(strace -f -e trace=mprotect "$perf" count "$@" --instance fresh 2>&1 >/dev/null |
    grep 'PROT_READ|PROT_WRITE) = 0' | sed -n 's/^[^,]*, \([0-9]*\),.*/\1/p')"
  # The instance's own mprotects come first; the rest are the call's growth.
  tail -n +"$((base + 1))" <<<"$call" | awk '{ n++; p += $1 / 65536; s = s " " $1 / 65536 }
    END { printf "%d (%d pages:%s)\n", n, p, s }'
}

# faults ARGS...: the minor page faults of one fresh request (1 and 1001 requests).
faults() {
  local one many
  one="$(/usr/bin/time -f %R "$perf" count "$@" --instance fresh 2>&1 >/dev/null | tail -1)"
  many="$(/usr/bin/time -f %R "$perf" count "$@" --instance fresh --requests 1001 2>&1 >/dev/null | tail -1)"
  echo $(((many - one + 500) / 1000)) # rounded: a few faults of the process differ between runs
}

instance_only="$(per_request fresh "$work/no-init.wasm" --call none)"
started="$(per_request fresh "$work/base.wasm" --call none)"
settings_minimal="$(per_request warm "$work/base.wasm" --call validate-settings --settings minimal)"
settings_full="$(per_request warm "$work/base.wasm" --call validate-settings --settings full)"
declare -A col
for containers in 1 100; do
  echo "counting $containers container(s)..." >&2
  c=(--containers "$containers")
  untouched=(--pod untouched --settings bare "${c[@]}")
  col[untouched_fresh_$containers]="$(per_request fresh "$work/base.wasm" "${untouched[@]}")"
  col[untouched_warm_$containers]="$(per_request warm "$work/base.wasm" "${untouched[@]}")"
  col[minimal_$containers]="$(per_request fresh "$work/base.wasm" --pod untouched --settings minimal "${c[@]}")"
  col[full_$containers]="$(per_request fresh "$work/base.wasm" --pod untouched --settings full "${c[@]}")"
  col[opted_$containers]="$(per_request fresh "$work/base.wasm" "${c[@]}")"
  col[opted_warm_$containers]="$(per_request warm "$work/base.wasm" "${c[@]}")"
  col[constant_$containers]="$(per_request fresh "$module" --constant "${c[@]}")"
  col[grows_$containers]="$(grows "$work/base.wasm" "${c[@]}")"
  col[faults_$containers]="$(faults "$work/base.wasm" "${c[@]}")"
  col[faults_constant_$containers]="$(faults "$module" --constant "${c[@]}")"
done

# The phases for n containers, each a difference between two workloads; they add up
# to the fresh opted-in request.
declare -A phase
for n in 1 100; do
  u=${col[untouched_fresh_$n]} w=${col[untouched_warm_$n]}
  phase[instance_$n]=$instance_only
  phase[init_$n]=$((started - instance_only))
  phase[read_$n]=$w
  phase[first_$n]=$((u - started - w))
  phase[settings_$n]=$((col[minimal_$n] - u))
  phase[inject_$n]=$((col[opted_$n] - col[minimal_$n]))
  phase[total_$n]=${col[opted_$n]}
  phase[warm_$n]=${col[opted_warm_$n]}
  phase[new_$n]=$((col[opted_$n] - col[opted_warm_$n]))
  phase[full_$n]=$((col[full_$n] - col[minimal_$n]))
  phase[constant_$n]=${col[constant_$n]}
  phase[check_minimal_$n]=$settings_minimal
  phase[check_full_$n]=$settings_full
done
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "${phase[$3_1]}" "${phase[$3_100]}"; }

echo "Instructions per fresh-instance request (policy-server 1.35's way), by phase; opted-in pod, minimal settings:"
echo
echo "| phase | measured as | 1 container | 100 containers |"
echo "|---|---|---|---|"
row "instantiation: store, WASI context, instance" "a new instance of the module without its wapc_init export" instance
row "wapc_init" "a new started instance - instantiation" init
row "request read, decision, small answer" "warm call, untouched pod (bare settings)" read
row "first call's one-time work: settings read, first allocations" "fresh untouched pod - started instance - warm call" first
row "the required settings read (trust anchor, region)" "fresh untouched pod: minimal - bare settings" settings
row "the injection: sidecar and volume built and hashed, plan, mutated pod, answer" "fresh: opted-in - untouched pod" inject
row "**fresh request, total**" "fresh, opted-in pod" total
echo
echo "| for comparison | measured as | 1 container | 100 containers |"
echo "|---|---|---|---|"
row "warm request (one instance, many calls)" "warm, opted-in pod" warm
row "paid because the instance is new" "fresh - warm, opted-in pod" new
row "the full settings read instead of the minimal" "fresh untouched pod: full - minimal settings" full
row "constant-answer guest, fresh" "its new instance and one call" constant
row "validate_settings, minimal settings: parse and checks" "warm call" check_minimal
row "validate_settings, full settings: parse and checks" "warm call" check_full
echo
echo "memory.grow calls of one fresh opted-in request: 1 container ${col[grows_1]}; 100 containers ${col[grows_100]}"
echo "minor page faults of one fresh opted-in request: 1 container ${col[faults_1]} (the constant guest ${col[faults_constant_1]});" \
  "100 containers ${col[faults_100]} (the constant guest ${col[faults_constant_100]});" \
  "a started instance without a call $(faults "$work/base.wasm" --call none)"
echo "module: $(stat -c %s "$module") bytes ($(stat -c %s "$work/base.wasm") through wasm2wat and wat2wasm);" \
  "$(wasm-objdump -x "$module" | sed -n 's/^ - memory\[0\] pages: /memory: /p');" \
  "data segments: $(wasm-objdump -x "$module" | sed -n 's/^ - segment\[[0-9]*\] memory=0 size=\([0-9]*\).*/\1/p' | paste -sd+) bytes"
