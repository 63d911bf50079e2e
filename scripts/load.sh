#!/usr/bin/env bash
# make load: a bounded load on 127.0.0.1 through Kubewarden's real policy-server 1.35,
# which serves every request in a fresh instance of the policy. Three cases, each through
# our module and beside guests that do less, in one run:
#   inject: the annotated pod of e2e-tests/fixtures/pod-plain.json, settings
#     e2e-tests/fixtures/settings.yaml (no ServiceAccount read);
#   guard, Certificate: e2e-tests/fixtures/guard/certificate.json, a Certificate of the
#     workload issuer (the only Certificates the chart's guard is sent), which it rejects;
#   guard, csi pod: the pod as the inject policy patched it (golden plain.pod.json), which
#     the guard checks after the mutating webhooks, as every pod with a cert-manager csi
#     volume; settings.yaml plus `mode: guard`.
# The guests: the SDK floor (bench/floor: a typed Pod round trip plus one annotation; it
# reads Pods only, so not for the Certificate), and the constant-answer guest, which
# answers exactly what our module answers to that request (precomputed by running it)
# without reading the request: policy-server then does the same work after the call (for
# the inject case the same patch to compute), so ours/constant is the policy's own share.
# A benchmark, not a test: it fails only when a module answers wrongly or errors occur.
# The eight runs are made ROUNDS times, one after the other, and each ratio is the median
# of its rounds': on a shared 2-core machine one 5 s run's ratio varies from 0.6 to 0.8.
#
# Usage: scripts/load.sh POLICY_WASM FLOOR_WASM [SECONDS_PER_RUN (default 5, at most 10)]
#   [ROUNDS (default 3, at most 5)]
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
policy=$(realpath "$1")
floor=$(realpath "$2")
seconds=${3:-5}
rounds=${4:-3}
((seconds >= 1 && seconds <= 10)) || { echo "SECONDS_PER_RUN must be 1..10 (8 runs a round)" >&2; exit 2; }
((rounds >= 1 && rounds <= 5)) || { echo "ROUNDS must be 1..5 (the load stays under 7 minutes)" >&2; exit 2; }
fixtures=e2e-tests/fixtures

server=$(command -v policy-server) || {
  echo "policy-server is needed (Kubewarden's; ../shared/bin has one for these machines)" >&2; exit 2; }
scripts/debian-install.sh wrk wabt jq
cargo build --locked --quiet --profile runner -p policy-runner --bin policy-perf
perf=target/runner/policy-perf

work=$(mktemp -d)
pid=""
# Stops the server by its pid; its SIGTERM status is not the script's.
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The requests and settings of the three cases.
cp "$fixtures/pod-plain.json" "$work/inject.json"
cp "$fixtures/guard/certificate.json" "$work/certificate.json"
jq --slurpfile pod "$fixtures/golden/plain.pod.json" '.request.object = $pod[0]' \
  "$fixtures/pod-plain.json" >"$work/csi-pod.json"
python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' \
  "$fixtures/settings.yaml" >"$work/inject-settings.json"
jq -c '. + {mode: "guard"}' "$work/inject-settings.json" >"$work/guard-settings.json"

cat >"$work/guest-metadata.yml" <<'YAML'
rules:
  - {apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], operations: ["CREATE"]}
  - {apiGroups: ["cert-manager.io"], apiVersions: ["v1"], resources: ["certificates"], operations: ["CREATE", "UPDATE"]}
mutating: true
executionMode: kubewarden-wapc
YAML
scripts/annotate.sh "$policy" "$work/policy-annotated.wasm"
scripts/annotate.sh "$floor" "$work/floor-annotated.wasm" "$work/guest-metadata.yml"

# policy_entry ID MODULE SETTINGS_FILE MUTATE: one policies.yml entry.
policy_entry() {
  printf '%s:\n  module: file://%s\n  policyMode: protect\n  allowedToMutate: %s\n  settings: %s\n' \
    "$1" "$2" "$4" "$(cat "$3")"
}
echo '{}' >"$work/no-settings.json"
{
  policy_entry inject "$work/policy-annotated.wasm" "$work/inject-settings.json" true
  policy_entry guard "$work/policy-annotated.wasm" "$work/guard-settings.json" false
  policy_entry floor "$work/floor-annotated.wasm" "$work/no-settings.json" true
} >"$work/policies.yml"
# The constant-answer guests, one per case: our module's answer, precomputed.
for case in inject:inject certificate:guard csi-pod:guard; do
  request=${case%%:*} settings=${case#*:}
  "$perf" constant-guest "$policy" -r "$work/$request.json" -s "$work/$settings-settings.json" \
    >"$work/constant-$request.wat"
  wat2wasm "$work/constant-$request.wat" -o "$work/constant-$request.wasm"
  scripts/annotate.sh "$work/constant-$request.wasm" "$work/constant-$request-annotated.wasm" \
    "$work/guest-metadata.yml"
  policy_entry "constant-$request" "$work/constant-$request-annotated.wasm" "$work/no-settings.json" \
    "$([ "$settings" = inject ] && echo true || echo false)" >>"$work/policies.yml"
done

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ready=$((port == 65535 ? port - 1 : port + 1))
mkdir "$work/downloads"
RUST_BACKTRACE=0 "$server" --policies "$work/policies.yml" --addr 127.0.0.1 --port "$port" \
  --readiness-probe-port "$ready" --ignore-kubernetes-connection-failure \
  --policies-download-dir "$work/downloads" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 240); do
  curl -fs "http://127.0.0.1:$ready/readiness" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$ready/readiness" >/dev/null || { echo "policy-server not ready" >&2; exit 1; }

answer() {
  curl -fs -XPOST -H 'content-type: application/json' --data @"$work/$2.json" \
    "http://127.0.0.1:$port/validate/$1" | jq -S .response
}
# Before any figure counts: each answers as meant, and each constant guest exactly as ours.
answer inject inject | jq -e '.allowed and (.patch | length > 0)' >/dev/null ||
  { echo "the policy did not patch the pod" >&2; exit 1; }
answer guard certificate | jq -e '.allowed == false' >/dev/null ||
  { echo "the guard did not reject the Certificate" >&2; exit 1; }
answer guard csi-pod | jq -e '.allowed and .patch == null' >/dev/null ||
  { echo "the guard did not accept the injected pod unchanged" >&2; exit 1; }
answer floor inject | jq -e '.allowed and (.patch | length > 0)' >/dev/null ||
  { echo "the floor did not patch the pod" >&2; exit 1; }
for case in inject:inject certificate:guard csi-pod:guard; do
  request=${case%%:*} ours=${case#*:}
  [ "$(answer "constant-$request" "$request")" = "$(answer "$ours" "$request")" ] ||
    { echo "constant-$request does not answer $request as $ours does" >&2; exit 1; }
done

# run CASE REQUEST POLICY GUEST: one wrk run of this round; prints a table row, records
# req/s.
declare -A rps
failed=0
run() {
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local f = io.open("$work/$2.json", "r"); wrk.body = f:read("*a"); f:close()
LUA
  local out p50 p99 errors
  out=$(wrk -t2 -c8 -d"${seconds}s" --timeout 5s --latency -s "$work/post.lua" "http://127.0.0.1:$port/validate/$3")
  rps[$1:$4:$round]=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  printf '%-6s %-18s %-9s %10s %10s %10s %8s\n' "$round" "$1" "$4" "${rps[$1:$4:$round]}" \
    "$p50" "$p99" "$errors"
  ((errors == 0)) || failed=1
}
echo "$("$server" --version | sed -n 1p), 127.0.0.1, wrk 2 threads, 8 connections, ${seconds} s a run, $rounds rounds"
printf '%-6s %-18s %-9s %10s %10s %10s %8s\n' round case guest 'req/s' p50 p99 errors
for round in $(seq "$rounds"); do
  run inject inject inject ours
  run inject inject floor floor
  run inject inject constant-inject constant
  run "guard Certificate" certificate guard ours
  run "guard Certificate" certificate constant-certificate constant
  run "guard csi pod" csi-pod guard ours
  run "guard csi pod" csi-pod floor floor
  run "guard csi pod" csi-pod constant-csi-pod constant
done
# ratio CASE GUEST: ours / GUEST's throughput, the median of the rounds, then each round's.
ratio() {
  local each=()
  for round in $(seq "$rounds"); do
    each+=("$(awk -v a="${rps[$1:ours:$round]}" -v b="${rps[$1:$2:$round]}" 'BEGIN {printf "%.2f", a / b}')")
  done
  echo "$(printf '%s\n' "${each[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}') (${each[*]})"
}
echo "ours / constant (throughput), median (rounds): inject $(ratio inject constant), guard Certificate $(ratio "guard Certificate" constant), guard csi pod $(ratio "guard csi pod" constant)"
echo "ours / floor (throughput), median (rounds): inject $(ratio inject floor), guard csi pod $(ratio "guard csi pod" floor) (the floor mutates the pod; the guard does not)"
((failed == 0)) || { echo "errors under load: see above" >&2; exit 1; }
