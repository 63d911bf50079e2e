#!/usr/bin/env bash
# Shows what the policy does to one admission request (`make demo`):
#
#   scripts/demo.sh KWCTL REQUEST SETTINGS
#
# KWCTL is kwctl or the bundled runner (target/runner/policy-runner); REQUEST an
# AdmissionReview JSON file; SETTINGS a settings file (YAML/JSON) or inline JSON. The
# module is $POLICY, by default policy.wasm at the repository's root.
#
# Prints kwctl's AdmissionResponse, its JSON patch decoded, the pod with the patch
# applied, and a one-line summary. Needs jq, base64 and the jsonpatch CLI (PyPI jsonpatch,
# make test-deps installs it).
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 KWCTL REQUEST SETTINGS" >&2
  exit 2
fi
kwctl=$1 request=$2 settings=$3
repo=$(cd "$(dirname "$0")/.." && pwd)
policy=${POLICY:-$repo/policy.wasm}
sidecar=iamra-credential-helper

for tool in jq base64 jsonpatch; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is needed (make test-deps)" >&2; exit 1; }
done
[ -f "$policy" ] || { echo "$0: no policy module at $policy (make policy.wasm)" >&2; exit 1; }

if [[ $settings == "{"* ]]; then
  settings_flag=(--settings-json "$settings")
else
  settings_flag=(--settings-path "$settings")
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

section() { printf '\n=== %s ===\n' "$1"; }

section "kwctl run --request-path $request ${settings_flag[*]} $(basename "$policy")"
"$kwctl" run --request-path "$request" "${settings_flag[@]}" "$policy" >"$tmp/response.json"
jq . "$tmp/response.json"

if jq -e '.allowed == false' "$tmp/response.json" >/dev/null; then
  printf '\nSummary: rejected (%s): %s\n' \
    "$(jq -r '.status.code // "no code"' "$tmp/response.json")" \
    "$(jq -r '.status.message // ""' "$tmp/response.json")"
  exit 0
fi

warnings=$(jq -r '(.warnings // []) | length' "$tmp/response.json")
if jq -e '.patch == null' "$tmp/response.json" >/dev/null; then
  printf '\nSummary: allowed unchanged (no patch), %s warning(s).\n' "$warnings"
  exit 0
fi

section "JSON patch (the response's base64 \"patch\", decoded)"
jq -r .patch "$tmp/response.json" | base64 -d >"$tmp/patch.json"
jq . "$tmp/patch.json"

section "Pod after the patch"
jq .request.object "$request" >"$tmp/pod.json"
jsonpatch "$tmp/pod.json" "$tmp/patch.json" >"$tmp/patched.json"
jq . "$tmp/patched.json"

where=$(jq -r --arg s "$sidecar" '
  ([((.spec.initContainers // []) + .spec.containers)[] | select(.name == $s)] | length) as $n
  | if $n > 1 then "\($n) times (expected once)"
  elif any(.spec.initContainers[]?; .name == $s) then
    "as a native sidecar (initContainers[\(.spec.initContainers | map(.name) | index($s))])"
  elif any(.spec.containers[]?; .name == $s) then
    "as a classic sidecar (containers[\(.spec.containers | map(.name) | index($s))])"
  else "nowhere" end' "$tmp/patched.json")
wired=$(jq -r --arg s "$sidecar" '
  [((.spec.initContainers // []) + .spec.containers)[]
   | select(.name != $s and any(.env[]?; .name == "AWS_EC2_METADATA_SERVICE_ENDPOINT"))
   | .name] | "\(length) container(s) wired (\(join(", ")))"' "$tmp/patched.json")
endpoint=$(jq -r --arg s "$sidecar" '
  [((.spec.initContainers // []) + .spec.containers)[] | select(.name != $s) | .env[]?
   | select(.name == "AWS_EC2_METADATA_SERVICE_ENDPOINT") | .value] | first // "-"' "$tmp/patched.json")
printf '\nSummary: sidecar %s added %s; %s to %s; %s warning(s).\n' \
  "$sidecar" "$where" "$wired" "$endpoint" "$warnings"
