# Shared helpers of the e2e suite. Load with `load helpers` from a .bats file.
#
# Environment (set by `make e2e-tests`):
#   KWCTL   the kwctl binary, or the kwctl-compatible runner (target/runner/policy-runner)
#   POLICY  the policy module (policy.wasm)
#   K8S_SCHEMA_VERSIONS  Kubernetes versions whose OpenAPI schema a mutated pod must
#                        satisfy (kubernetes-validate --strict); default "1.29.0 1.33.0":
#                        1.29 is the first with native sidecars (initContainers[].restartPolicy).
#
# The flow of a test:
#   evaluate REQUEST [SETTINGS]   runs `$KWCTL run`; the response is in $RESPONSE
#   assert_mutated                decodes and applies the patch: the pod is in $POD, checked
#                                 (sidecar once, certificate only in the sidecar, unique
#                                 names, valid against the schema); every patch records the
#                                 response's warnings on the pod (assert_warnings_recorded)
#   assert_rejected TEXT...       / assert_accepted_unchanged / assert_only_warnings_recorded
#
# SETTINGS is a file (YAML or JSON) or, when it starts with '{', inline JSON
# (--settings-json); the default is fixtures/settings.yaml.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FIXTURES="$E2E_DIR/fixtures"
TOOLS="$E2E_DIR/tools"
DEFAULT_SETTINGS="$FIXTURES/settings.yaml"
K8S_SCHEMA_VERSIONS="${K8S_SCHEMA_VERSIONS:-1.29.0 1.33.0}"

# The example identity of the fixtures.
TRUST_ANCHOR=arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f
ROLE=arn:aws:iam::123456789012:role/app
PROFILE=arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70

# The names the policy promises (src/iamra/plan.rs).
SIDECAR=iamra-credential-helper
CERT_VOLUME=iamra-credentials
CSI_DRIVER=csi.cert-manager.io

: "${KWCTL:?set KWCTL to kwctl or to the runner (make e2e-tests does)}"
: "${POLICY:?set POLICY to the policy module, e.g. \$PWD/policy.wasm}"

# Files of the current test; bats gives every test its own BATS_TEST_TMPDIR.
RESPONSE="$BATS_TEST_TMPDIR/response.json"
STDERR="$BATS_TEST_TMPDIR/stderr.txt"
PATCH="$BATS_TEST_TMPDIR/patch.json"
POD="$BATS_TEST_TMPDIR/pod.json"
LAST_REQUEST=""

# fail, assert_equal, assert_output, assert_regex...: bats-support and bats-assert (Debian,
# /usr/lib/bats). What they cannot express (jq conditions on the pod) is written here.
bats_load_library bats-support
bats_load_library bats-assert

# --- running the policy -------------------------------------------------------------

# policy_run REQUEST [SETTINGS]: `$KWCTL run` with kwctl's own flags only. Stdout goes to
# $RESPONSE, stderr to $STDERR; returns kwctl's exit status.
policy_run() {
  local request=$1 settings=${2:-$DEFAULT_SETTINGS}
  local args=(run --request-path "$request")
  if [[ $settings == "{"* || $settings == "["* ]]; then
    args+=(--settings-json "$settings")
  else
    args+=(--settings-path "$settings")
  fi
  LAST_REQUEST=$request
  "$KWCTL" "${args[@]}" "$POLICY" >"$RESPONSE" 2>"$STDERR"
}

# evaluate REQUEST [SETTINGS]: runs the policy, which must answer with an
# AdmissionResponse for this request's uid.
evaluate() {
  policy_run "$@" || fail "$KWCTL run exited with $? on $1:" "$(cat "$STDERR")" || return
  jq -e --arg uid "$(jq -r .request.uid "$1")" '.uid == $uid and (.allowed | type) == "boolean"' \
    "$RESPONSE" >/dev/null ||
    fail "not an AdmissionResponse for this request:" "$(cat "$RESPONSE")"
}

# settings_rejected SETTINGS TEXT...: kwctl refuses to run with these settings: a
# non-zero exit, every TEXT in the error on stderr, and no AdmissionResponse. kwctl
# prints the policy's message Debug-quoted ("region: \"x\" ..."); TEXT is unquoted.
settings_rejected() {
  local settings=$1 text stderr
  shift
  if policy_run "$FIXTURES/pod-plain.json" "$settings"; then
    fail "settings $settings were accepted:" "$(cat "$RESPONSE")" || return
  fi
  local output
  output=$(sed 's/\\"/"/g' "$STDERR")
  for text in "$@"; do
    assert_output --partial "$text" || return
  done
  output=$(cat "$RESPONSE")
  refute_output --partial '"allowed"'  # no AdmissionResponse printed
}

# settings_with EXTRA_JSON: inline settings, the minimal valid ones (as in
# fixtures/settings.yaml) merged with EXTRA_JSON (jq's *, so nested keys merge).
settings_with() {
  local extra=${1:-'{}'}
  jq -cn --arg anchor "$TRUST_ANCHOR" --argjson extra "$extra" \
    '{trustAnchorArn: $anchor, region: "eu-west-1", readServiceAccounts: false} * $extra'
}

# --- context-aware runs: the pod's ServiceAccount replayed from a session file ------

# annotate_policy: writes the module annotated with metadata.yml to
# $BATS_FILE_TMPDIR/annotated-policy.wasm; kwctl grants Kubernetes reads only to what an
# annotated module declares. Call it from setup_file.
annotate_policy() {
  local annotated="$BATS_FILE_TMPDIR/annotated-policy.wasm"
  if "$KWCTL" annotate --help >/dev/null 2>&1; then
    "$KWCTL" annotate -m "$E2E_DIR/../metadata.yml" -o "$annotated" "$POLICY"
  else
    python3 "$TOOLS/annotate.py" "$E2E_DIR/../metadata.yml" "$POLICY" "$annotated"
  fi
}

# use_context_aware: from here on, evaluate runs the annotated module (annotate_policy)
# through kwctl_with_session. Call it from setup.
use_context_aware() {
  POLICY="$BATS_FILE_TMPDIR/annotated-policy.wasm"
  REAL_KWCTL=$KWCTL
  # policy_run calls "$KWCTL" run ...: route it through the session flags.
  KWCTL=kwctl_with_session
  SESSION=""
  CONTEXT_AWARE=true
}

# kwctl_with_session run ARGS...: the real kwctl with --allow-context-aware (unless
# CONTEXT_AWARE=false) and, when SESSION is set, that session replayed.
kwctl_with_session() {
  local command=$1 extra=()
  shift
  [[ $CONTEXT_AWARE == true ]] && extra+=(--allow-context-aware)
  [[ -n $SESSION ]] && extra+=(--replay-host-capabilities-interactions "$SESSION")
  "$REAL_KWCTL" "$command" "${extra[@]}" "$@"
}

# --- building requests --------------------------------------------------------------

# request_from FIXTURE JQ_FILTER [jq args...]: writes a request derived from a fixture
# and prints its path. The filter sees the whole AdmissionReview; `.request.object` is
# the pod.
request_from() {
  local fixture=$1 filter=$2 out
  shift 2
  out=$(mktemp "$BATS_TEST_TMPDIR/request.XXXXXX")
  jq "$@" "$filter" "$fixture" >"$out" || fail "jq could not derive a request: $filter"
  printf '%s\n' "$out"
}

# with_annotations FIXTURE JSON: the fixture's pod with these annotations added
# (a null value removes the annotation).
with_annotations() {
  request_from "$1" '.request.object.metadata.annotations += $a
    | .request.object.metadata.annotations |= with_entries(select(.value != null))' \
    --argjson a "$2"
}

# with_spec FIXTURE JQ_FILTER: the fixture's pod with the filter applied to its spec.
with_spec() {
  request_from "$1" ".request.object.spec |= ($2)"
}

# resubmission_request: the request of the last evaluation, with the pod that its
# patch produced ($POD) as the object and a new uid: what the API server would send
# if the pod came back through the webhook.
resubmission_request() {
  request_from "$LAST_REQUEST" '.request.object = $pod[0] | .request.uid += "-again"' \
    --slurpfile pod "$POD"
}

# --- reading the response -----------------------------------------------------------

# warnings: the response's warnings, one a line.
warnings() {
  jq -r '(.warnings // [])[]' "$RESPONSE"
}

# assert_warning TEXT...: some warning contains each TEXT.
assert_warning() {
  local text output lines
  output=$(warnings)
  mapfile -t lines <<<"$output"
  for text in "$@"; do
    assert_line --partial "$text" || return
  done
}

assert_no_warnings() {
  local output
  output=$(warnings)
  refute_output
}

assert_no_patch() {
  jq -e '(.patch == null) and (.patchType == null)' "$RESPONSE" >/dev/null ||
    fail "the response carries a patch:" "$(decoded_patch)"
}

decoded_patch() {
  jq -r '.patch // empty' "$RESPONSE" | base64 -d
}

# assert_accepted_unchanged: allowed, no patch, no rejection status.
assert_accepted_unchanged() {
  jq -e '.allowed == true' "$RESPONSE" >/dev/null ||
    fail "the request was not allowed:" "$(cat "$RESPONSE")" || return
  assert_no_patch
}

# assert_rejected TEXT...: refused with code 400, the message containing every TEXT,
# and no patch.
assert_rejected() {
  local text
  jq -e '.allowed == false' "$RESPONSE" >/dev/null ||
    fail "the request was allowed:" "$(cat "$RESPONSE")" || return
  jq -e '.status.code == 400' "$RESPONSE" >/dev/null ||
    fail "expected status.code 400:" "$(cat "$RESPONSE")" || return
  local output
  output=$(jq -r '.status.message // ""' "$RESPONSE")
  for text in "$@"; do
    assert_output --partial "$text" || return
  done
  assert_no_patch
}

# apply_json_patch DOCUMENT PATCH: prints DOCUMENT with the RFC 6902 PATCH applied, by the
# jsonpatch package's CLI (PyPI, as scripts/demo.sh); a patch that does not apply fails.
apply_json_patch() {
  jsonpatch "$1" "$2"
}

# apply_response_patch: allowed with a JSON patch that applies to the request's pod;
# writes the patch to $PATCH and the patched pod to $POD.
apply_response_patch() {
  local original="$BATS_TEST_TMPDIR/original.json"
  jq -e '.allowed == true and .patchType == "JSONPatch" and (.patch | type) == "string"' \
    "$RESPONSE" >/dev/null || fail "expected a JSONPatch mutation:" "$(cat "$RESPONSE")" || return
  decoded_patch >"$PATCH" || fail "the patch is not base64" || return
  jq -e 'type == "array" and length > 0' "$PATCH" >/dev/null ||
    fail "the patch is not a non-empty list of operations:" "$(cat "$PATCH")" || return
  jq .request.object "$LAST_REQUEST" >"$original" || return
  apply_json_patch "$original" "$PATCH" >"$POD" || fail "the patch does not apply to the pod" ||
    return
  assert_warnings_recorded
}

# assert_warnings_recorded: the pod ($POD) records the response's warnings in
# iamra.aws/warnings, one a line, exactly as the response has them; without warnings it
# has no record (no fixture comes with one).
assert_warnings_recorded() {
  local recorded
  recorded=$(pod_query '.metadata.annotations["iamra.aws/warnings"] // empty')
  [[ $recorded == "$(warnings)" ]] ||
    fail "the pod records the warnings:" "$recorded" "the response has:" "$(warnings)"
}

# assert_only_warnings_recorded: allowed with a patch that records the response's
# warnings on the pod and changes nothing else.
assert_only_warnings_recorded() {
  apply_response_patch || return
  [[ -n $(warnings) ]] || fail "a patch without warnings to record:" "$(decoded_patch)" || return
  jq -e --slurpfile pod "$POD" '.request.object == ($pod[0]
      | del(.metadata.annotations["iamra.aws/warnings"])
      | if .metadata.annotations == {} then del(.metadata.annotations) else . end)' \
    "$LAST_REQUEST" >/dev/null || fail "the patch changes more than iamra.aws/warnings:" "$(decoded_patch)"
}

# assert_mutated: apply_response_patch, then the pod's invariants (assert_pod_ok).
assert_mutated() {
  apply_response_patch && assert_pod_ok
}

# --- checking a pod ($POD) ----------------------------------------------------------

# pod_query JQ_FILTER [jq args...]: the filter's raw output on $POD.
pod_query() {
  local filter=$1
  shift
  jq -r "$@" "$filter" "$POD"
}

# pod_check DESCRIPTION JQ_FILTER [jq args...]: fails with DESCRIPTION unless the
# filter is true on $POD.
pod_check() {
  local description=$1 filter=$2
  shift 2
  jq -e "$@" "$filter" "$POD" >/dev/null || fail "$description" "$(jq -c . "$POD")"
}

# A jq definition: every container of the pod, init containers first.
JQ_CONTAINERS='def containers: (.spec.initContainers // []) + (.spec.containers // []);'

# assert_pod_ok: the invariants of every injected pod.
assert_pod_ok() {
  assert_sidecar_once && assert_certificate_only_in_sidecar && assert_unique_names &&
    assert_pod_schema_valid
}

assert_sidecar_once() {
  pod_check "the sidecar $SIDECAR is not there exactly once" \
    "$JQ_CONTAINERS [containers[] | select(.name == \$s)] | length == 1" --arg s "$SIDECAR" || return
  pod_check "the sidecar does not mount $CERT_VOLUME" \
    "$JQ_CONTAINERS containers[] | select(.name == \$s) | any(.volumeMounts[]?; .name == \$v)" \
    --arg s "$SIDECAR" --arg v "$CERT_VOLUME" || return
  pod_check "there is not exactly one $CSI_DRIVER volume $CERT_VOLUME" \
    '[.spec.volumes[]? | select(.name == $v)] | length == 1 and .[0].csi.driver == $d' \
    --arg v "$CERT_VOLUME" --arg d "$CSI_DRIVER"
}

# No container but the sidecar mounts the certificate volume, or any csi.cert-manager.io
# volume the policy added.
assert_certificate_only_in_sidecar() {
  pod_check "a container other than the sidecar mounts the certificate" \
    "$JQ_CONTAINERS [containers[] | select(.name != \$s) | .volumeMounts[]?
      | select(.name == \$v)] | length == 0" --arg s "$SIDECAR" --arg v "$CERT_VOLUME"
}

# Container names are unique across both lists, volume names within volumes, env names
# within each container.
assert_unique_names() {
  pod_check "container names are not unique" \
    "$JQ_CONTAINERS [containers[].name] | length == (unique | length)" || return
  pod_check "volume names are not unique" \
    '[.spec.volumes[]?.name] | length == (unique | length)' || return
  pod_check "a container sets an env variable twice" \
    "$JQ_CONTAINERS all(containers[]; [.env[]?.name] | length == (unique | length))"
}

# assert_pod_schema_valid: $POD against each of K8S_SCHEMA_VERSIONS, strictly (no field
# the schema lacks). Set POD_SCHEMA_FILTER to a jq filter to strip fields a test made up.
assert_pod_schema_valid() {
  local file="$BATS_TEST_TMPDIR/pod-for-schema.json" version output
  jq "${POD_SCHEMA_FILTER:-.}" "$POD" >"$file" || return
  for version in $K8S_SCHEMA_VERSIONS; do
    output=$(python3 -m kubernetes_validate --strict --quiet -k "$version" "$file" 2>&1) ||
      fail "the pod is not valid for Kubernetes $version:" "$output" || return
  done
}

# container NAME: the container's JSON, from either list.
container() {
  pod_query "$JQ_CONTAINERS containers[] | select(.name == \$n)" --arg n "$1"
}

# env_of CONTAINER VARIABLE: the variable's value in that container (empty if unset).
env_of() {
  pod_query "$JQ_CONTAINERS containers[] | select(.name == \$n) | .env[]?
    | select(.name == \$v) | .value // empty" --arg n "$1" --arg v "$2"
}

# assert_env CONTAINER VARIABLE VALUE: the variable is set once, to VALUE.
assert_env() {
  pod_check "container $1 does not set $2 exactly once" \
    "$JQ_CONTAINERS [containers[] | select(.name == \$n) | .env[]? | select(.name == \$v)]
      | length == 1" --arg n "$1" --arg v "$2" || return
  assert_equal "$(env_of "$1" "$2")" "$3"
}

assert_no_env() {
  pod_check "container $1 sets $2" \
    "$JQ_CONTAINERS all(containers[] | select(.name == \$n); all(.env[]?; .name != \$v))" \
    --arg n "$1" --arg v "$2"
}

# assert_wired CONTAINER [PORT]: the container reaches the sidecar's endpoint.
assert_wired() {
  assert_env "$1" AWS_EC2_METADATA_SERVICE_ENDPOINT "http://127.0.0.1:${2:-9911}" &&
    assert_env "$1" AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE IPv4
}

# assert_all_wired [PORT]: every container but the sidecar is wired.
assert_all_wired() {
  local name
  for name in $(pod_query "$JQ_CONTAINERS containers[] | select(.name != \$s) | .name" \
    --arg s "$SIDECAR"); do
    assert_wired "$name" "${1:-9911}" || return
  done
}

# container_names LIST: the names in spec.LIST, space-separated, in order.
container_names() {
  pod_query "[.spec.$1[]?.name] | join(\" \")"
}

# sidecar_arg FLAG: the value after FLAG in the sidecar's args.
sidecar_arg() {
  pod_query "$JQ_CONTAINERS containers[] | select(.name == \$s) | .args as \$a
    | (\$a | index([\$f])) as \$i | if \$i == null then empty else \$a[\$i + 1] end" \
    --arg s "$SIDECAR" --arg f "$1"
}

annotation() {
  pod_query '.metadata.annotations[$k] // empty' --arg k "$1"
}

# assert_injected_annotations: the bookkeeping annotations every injection writes.
assert_injected_annotations() {
  assert_equal "$(annotation iamra.aws/injected)" true || return
  assert_regex "$(annotation iamra.aws/config-hash)" '^[0-9a-f]{16}$' || return
  # $SIDECAR among the comma-separated names
  assert_regex ",$(annotation eks.amazonaws.com/skip-containers)," ",$SIDECAR,"
}

# assert_original_kept JQ_PATH: the value at JQ_PATH is the same in the request's pod and
# in $POD (a field the policy must not touch).
assert_original_kept() {
  local before after
  before=$(jq -cS ".request.object | $1" "$LAST_REQUEST")
  after=$(jq -cS "$1" "$POD")
  assert_equal "$after" "$before"
}
