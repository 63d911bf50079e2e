#!/usr/bin/env bash
# make load: a bounded load on 127.0.0.1 through Kubewarden's real policy-server. The
# annotated pod of e2e-tests/fixtures/pod-plain.json goes to the inject policy (settings
# e2e-tests/fixtures/settings.yaml: no ServiceAccount read), and the same request to a
# floor: a waPC guest that answers with the pod plus one annotation without reading the
# request, so its figure is what policy-server itself costs for a mutating policy. One
# run, both figures: their ratio is the policy's own share. A benchmark, not a test.
#
# Usage: scripts/load.sh POLICY_WASM [SECONDS_PER_MODULE (default 10, at most 15)]
set -euo pipefail
cd "$(dirname "$0")/.."
policy=$(realpath "$1")
seconds=${2:-10}
((seconds >= 1 && seconds <= 15)) || { echo "SECONDS_PER_MODULE must be 1..15 (the load stays under 30 s)" >&2; exit 2; }
request=e2e-tests/fixtures/pod-plain.json
settings=e2e-tests/fixtures/settings.yaml

server=$(command -v policy-server) || {
  echo "policy-server is needed (Kubewarden's; ../shared/bin has one for these machines)" >&2; exit 2; }
scripts/debian-install.sh wrk wabt jq

work=$(mktemp -d)
pid=""
# Stops the server by its pid; its SIGTERM status is not the script's.
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The floor's answer: the request's pod with one annotation added.
answer=$(jq -c '{accepted: true, mutated_object: (.request.object
  | .metadata.annotations["load.example/floor"] = "true")}' "$request")
hex() { od -An -v -tx1 | tr -d ' \n' | sed 's/../\\&/g'; }
# waPC guest: protocol_version (16 bytes) -> "v1", validate_settings (17) -> valid,
# validate -> the answer above. The request is read into memory but never parsed.
cat > "$work/floor.wat" <<WAT
(module
  (import "wapc" "__guest_request" (func \$guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func \$guest_response (param i32 i32)))
  (memory (export "memory") 8)
  (data (i32.const 0) "\"v1\"")
  (data (i32.const 16) "{\"valid\":true}")
  (data (i32.const 262144) "$(printf %s "$answer" | hex)")
  (func (export "__guest_call") (param \$op_len i32) (param \$msg_len i32) (result i32)
    (call \$guest_request (i32.const 1024) (i32.const 4096))
    (if (i32.eq (local.get \$op_len) (i32.const 16))
      (then (call \$guest_response (i32.const 0) (i32.const 4)) (return (i32.const 1))))
    (if (i32.eq (local.get \$op_len) (i32.const 17))
      (then (call \$guest_response (i32.const 16) (i32.const 14)) (return (i32.const 1))))
    (call \$guest_response (i32.const 262144) (i32.const ${#answer}))
    (i32.const 1)))
WAT
wat2wasm "$work/floor.wat" -o "$work/floor.wasm"
cat > "$work/floor-metadata.yml" <<'YAML'
rules: [{apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], operations: ["CREATE"]}]
mutating: true
executionMode: kubewarden-wapc
YAML
scripts/annotate.sh "$work/floor.wasm" "$work/floor-annotated.wasm" "$work/floor-metadata.yml"
scripts/annotate.sh "$policy" "$work/policy-annotated.wasm"

cat > "$work/policies.yml" <<YAML
iamra:
  module: file://$work/policy-annotated.wasm
  policyMode: protect
  allowedToMutate: true
  settings: $(python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$settings")
floor:
  module: file://$work/floor-annotated.wasm
  policyMode: protect
  allowedToMutate: true
  settings: {}
YAML
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

# Both answer with a patch before any figure counts.
for p in iamra floor; do
  curl -fs -XPOST -H 'content-type: application/json' --data @"$request" \
    "http://127.0.0.1:$port/validate/$p" | jq -e '.response.allowed and (.response.patch | length > 0)' >/dev/null ||
    { echo "$p did not answer with a patch" >&2; exit 1; }
done

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local f = io.open("$request", "r"); wrk.body = f:read("*a"); f:close()
LUA
printf '%-8s %10s %10s %10s %8s\n' module 'req/s' p50 p99 errors
declare -A rps
failed=0
for p in iamra floor; do
  out=$(wrk -t2 -c8 -d"${seconds}s" --timeout 5s --latency -s "$work/post.lua" "http://127.0.0.1:$port/validate/$p")
  rps[$p]=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  printf '%-8s %10s %10s %10s %8s\n' "$p" "${rps[$p]}" "$p50" "$p99" "$errors"
  ((errors == 0)) || failed=1
done
awk -v a="${rps[iamra]}" -v b="${rps[floor]}" 'BEGIN {printf "policy / floor throughput: %.2f\n", a / b}'
((failed == 0)) || { echo "errors under load: see above" >&2; exit 1; }
