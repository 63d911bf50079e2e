#!/usr/bin/env bats
# Real AWS SDKs against the patched pods, with the real credential helper. For IAM Roles
# Anywhere, tools/sdk_check.py runs the sidecar as patched: aws_signing_helper serve
# (tools/go/signing-helper) on a certificate volume shaped as the chart's issuer chain
# makes it (tools/pki.py), calling a loopback CreateSession stand-in that checks what IAM
# Roles Anywhere checks (tools/rolesanywhere_standin.py); then botocore, aws-sdk-go-v2
# (tools/go/sdk-go) or the JavaScript SDK v3 (sdk/js) runs with an app container's
# environment exactly as patched, only the endpoint's port moved with the helper's. For
# IRSA the projected token is written under a temporary root and STS is answered in
# botocore's process, never sent. botocore may connect to loopback only (an audit hook);
# the Go and JavaScript SDKs are only ever given loopback endpoints and proxies.

load helpers

# inject.bats and irsa.bats check these pods against the schema; here the SDKs' view counts.
K8S_SCHEMA_VERSIONS=""

IRSA="$FIXTURES/irsa"
IRSA_ROLE=arn:aws:iam::123456789012:role/orders
SDK="$BATS_TEST_TMPDIR/sdk.json"

setup_file() {
  annotate_policy
  local root bin
  root="$E2E_DIR/.."
  # Builds once per wrapper version (cached); the first build takes minutes.
  if bin=$("$root/scripts/go-tools.sh" signing-helper); then
    export SIGNING_HELPER="$bin/aws_signing_helper"
  else
    export NO_HELPER="the real aws_signing_helper could not be built (scripts/go-tools.sh signing-helper: Go missing or the build failed)"
    echo "# SKIPPING the IAM Roles Anywhere SDK cases: $NO_HELPER" >&3
  fi
  if bin=$("$root/scripts/go-tools.sh" sdk-go); then
    export SDK_PROBE_GO="$bin/sdk-probe-go"
  else
    export NO_GO_SDK="aws-sdk-go-v2's probe could not be built (scripts/go-tools.sh sdk-go: Go missing or the build failed)"
    echo "# SKIPPING the Go SDK cases: $NO_GO_SDK" >&3
  fi
  if ! command -v node >/dev/null; then
    export NO_JS_SDK="node is not installed"
  elif [[ ! -d $E2E_DIR/sdk/js/node_modules/@aws-sdk/credential-providers ]]; then
    export NO_JS_SDK="e2e-tests/sdk/js has no node_modules (make test-deps runs npm ci there)"
  fi
  [[ -z ${NO_JS_SDK:-} ]] || echo "# SKIPPING the JavaScript SDK cases: $NO_JS_SDK" >&3
}

# require SDK...: skips the test, saying why, unless the helper and these SDKs are here.
require() {
  local sdk
  [[ -z ${NO_HELPER:-} ]] || skip "$NO_HELPER"
  for sdk in "$@"; do
    case $sdk in
      go) [[ -z ${NO_GO_SDK:-} ]] || skip "$NO_GO_SDK" ;;
      js) [[ -z ${NO_JS_SDK:-} ]] || skip "$NO_JS_SDK" ;;
    esac
  done
}

ALL_SDKS=(botocore go js)

# sdk SDK CONTAINER [sdk_check.py options]...: SDK's default chain with CONTAINER's
# environment from $POD, the helper on the chart's root + intermediate chain; the report
# in $SDK.
sdk() {
  local sdk=$1 name=$2
  shift 2
  python3 "$TOOLS/sdk_check.py" "$POD" "$name" --sdk "$sdk" --trust-anchor "$TRUST_ANCHOR" \
    --profile "$PROFILE" --role "$ROLE" "$@" >"$SDK" || fail "sdk_check.py failed on $sdk $name $*"
}

# sdk_check DESCRIPTION JQ_FILTER [jq args...]: fails with DESCRIPTION and the report
# unless the filter is true on $SDK.
sdk_check() {
  local description=$1 filter=$2
  shift 2
  jq -e "$@" "$filter" "$SDK" >/dev/null || fail "$description" "$(cat "$SDK")"
}

# assert_sidecar_credentials: the SDK got exactly the credentials that IAM Roles
# Anywhere (the stand-in) issued to the helper for the pod's role, one session, the
# chain sent with the pod certificate; botocore also touched nothing but loopback.
assert_sidecar_credentials() {
  sdk_check "the SDK did not get the credentials CreateSession issued to the helper" \
    '.error == null and (.blocked // []) == []
      and ([.sessions[] | select(.status == 200)] | length) == 1
      and (.sessions[-1] | .status == 200 and .roleArn == $role and .chain == 2
        and .algorithm == "AWS4-X509-ECDSA-SHA256")
      and .credentials == {access_key: .sessions[-1].issued.accessKeyId,
        secret_key: .sessions[-1].issued.secretAccessKey, token: .sessions[-1].issued.sessionToken}' \
    --arg role "$ROLE"
}

# assert_refused REFUSAL: CreateSession refused every call with REFUSAL (a substring) and
# the SDK got no usable credentials. The helper still answers 200 with empty keys (it
# ignores the failure), which Go and JavaScript return as credentials with an empty
# access key id and botocore fails on; none of them gets a key.
assert_refused() {
  sdk_check "CreateSession was not refused with \"$1\", or the SDK got a key" \
    '(.sessions | length) > 0 and all(.sessions[]; .status != 200 and (.refusal | contains($r)))
      and (.credentials == null or .credentials.access_key == "")' --arg r "$1"
}

# free_port: a loopback port that nothing listens on.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# with_app_env ENV_JSON: a request for pod-plain.json with the app container's env set
# to ENV_JSON; prints its path.
with_app_env() {
  request_from "$FIXTURES/pod-plain.json" '.request.object.spec.containers[0].env = $env' \
    --argjson env "$1"
}

# --- the real helper and the CreateSession stand-in ---------------------------------

@test "sdk: the real helper answers IMDSv2 only, with the credentials CreateSession issued" {
  require
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  sdk imds app
  # No token: 401; a token request via a proxy: 400; a forged token: 401; then role, keys.
  sdk_check "the helper did not answer as IMDSv2 does" \
    '[.imds[] | [.method, .path, .status]] == [
        ["GET", "/latest/meta-data/iam/security-credentials/", 401],
        ["PUT", "/latest/api/token", 400],
        ["PUT", "/latest/api/token", 200],
        ["GET", "/latest/meta-data/iam/security-credentials/", 401],
        ["GET", "/latest/meta-data/iam/security-credentials/", 200],
        ["GET", "/latest/meta-data/iam/security-credentials/app", 200]]
      and .role == "app" and .imds_served.Code == "Success"
      and .imds_served.AccessKeyId == .sessions[-1].issued.accessKeyId
      and .imds_served.Token == .sessions[-1].issued.sessionToken'
  # What the helper sent: the patched ARNs, session duration and session name.
  sdk_check "CreateSession did not carry the sidecar's ARNs, duration and session name" \
    '.sessions[-1] | .trustAnchorArn == $ta and .profileArn == $p and .roleArn == $r
      and .durationSeconds == 900 and .roleSessionName == "payments-api"' \
    --arg ta "$TRUST_ANCHOR" --arg p "$PROFILE" --arg r "$ROLE"
}

@test "sdk: the stand-in: the helper's own CreateSession passes; the same request with its role, duration or chain altered fails the signature" {
  require
  # The helper signs; each replay changes one signed part of what it sent.
  run python3 - "$TOOLS" "$SIGNING_HELPER" "$TRUST_ANCHOR" "$PROFILE" "$ROLE" <<'PYTHON'
import http.client, subprocess, sys, tempfile, urllib.parse
sys.path.insert(0, sys.argv[1])
import pki
from rolesanywhere_standin import RolesAnywhereStandIn

helper, anchor, profile, role = sys.argv[2:6]
other = role.rsplit("/", 1)[0] + "/other"
with tempfile.TemporaryDirectory() as volume:
    root = pki.write_volume(volume)
    with RolesAnywhereStandIn({anchor: root}, {profile: [role, other]}, anchor.split(":")[3]) as standin:
        subprocess.run([helper, "credential-process", "--certificate", volume + "/tls.crt",
                        "--private-key", volume + "/tls.key", "--intermediates", volume + "/tls.crt",
                        "--trust-anchor-arn", anchor, "--profile-arn", profile, "--role-arn", role,
                        "--endpoint", standin.endpoint], check=True, capture_output=True, timeout=60)
        method, path, headers, body = standin.raw[0]
        headers.pop("Content-Length", None)  # http.client sets it for the body sent
        host = urllib.parse.urlsplit(standin.endpoint)

        def replay(name, path=path, headers=headers, body=body):
            c = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
            c.request(method, path, body=body, headers=headers)
            c.getresponse().read()
            print(name, standin.sessions[-1]["status"], standin.sessions[-1]["refusal"])

        print("helper", standin.sessions[0]["status"], standin.sessions[0]["refusal"])
        replay("as-sent")
        replay("other-role", path=path.replace(urllib.parse.quote(role, safe=""), urllib.parse.quote(other, safe="")))
        replay("longer", body=body.replace(b'"durationSeconds":3600', b'"durationSeconds":43200'))
        replay("no-chain", headers={k: v for k, v in headers.items() if k.lower() != "x-amz-x509-chain"})
PYTHON
  [[ $status == 0 ]] || fail "$output" || return
  mismatch="AccessDeniedException: The request signature we calculated does not match the signature you provided"
  expected="helper 200 None
as-sent 200 None
other-role 403 $mismatch
longer 403 $mismatch
no-chain 403 $mismatch"
  [[ $output == "$expected" ]] || fail "the stand-in answered otherwise:" "$output"
}

@test "sdk: the sidecar as patched sends the chain: CreateSession accepts it with the chart's root + intermediate, and with a single CA" {
  require
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  # The helper signs with the first certificate of --certificate and sends every
  # certificate of --intermediates (tls.crt: the pod's, then the intermediate's) as the chain.
  [[ $(sidecar_arg --intermediates) == /var/run/secrets/iamra.aws/tls.crt ]] \
    || fail "the sidecar does not pass --intermediates on tls.crt"
  sdk botocore app
  sdk_check "with root + intermediate, the args as patched did not get credentials" \
    '.error == null and .sessions[-1].status == 200 and .sessions[-1].chain == 2
      and .credentials.access_key == .sessions[-1].issued.accessKeyId'
  # The chart's shape before the intermediate: the root signs pod certificates.
  sdk botocore app --pki single-ca
  sdk_check "with a single CA, the args as patched did not get credentials" \
    '.error == null and .sessions[-1].status == 200 and .sessions[-1].chain == 1
      and .credentials.access_key == .sessions[-1].issued.accessKeyId'
}

@test "sdk: botocore, aws-sdk-go-v2 and the JavaScript SDK get the sidecar's credentials" {
  require "${ALL_SDKS[@]}"
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  for sdk in "${ALL_SDKS[@]}"; do
    sdk "$sdk" app
    assert_sidecar_credentials || return
    sdk_check "$sdk: the endpoint was not the sidecar's, with the port rewritten" \
      '.endpoint.patched == "http://127.0.0.1:9911" and (.endpoint.used | test("^http://127\\.0\\.0\\.1:[0-9]+$"))
        and .endpoint.used != .endpoint.patched' || return
    sdk_check "$sdk: the app got a region without iamra.aws/region" '.region == null' || return
  done
}

@test "sdk: an expired pod certificate, a chain to another root or a key that is not the certificate's: refused, and no SDK gets a key" {
  require "${ALL_SDKS[@]}"
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  for sdk in "${ALL_SDKS[@]}"; do
    sdk "$sdk" app --pki expired
    assert_refused "cert is not valid at validation time (encountered processing <Certificate(subject=<Name(CN=ns/payments/sa/payments-api)>" || return
    sdk "$sdk" app --pki wrong-chain
    assert_refused "Untrusted signing certificate" || return
    sdk "$sdk" app --pki wrong-key
    assert_refused "signature we calculated does not match" || return
  done
}

@test "sdk: a role that the profile does not list is refused" {
  require
  evaluate "$(with_annotations "$FIXTURES/pod-plain.json" '{"iamra.aws/role-arn": "arn:aws:iam::123456789012:role/other"}')"
  assert_mutated
  sdk botocore app
  assert_refused "Role is not associated with the profile"
}

@test "sdk: without the endpoint variables botocore goes to EC2's metadata address, not the sidecar" {
  # The control for every test here: the credentials come from the injected wiring.
  # Only botocore: its audit hook stops the call to 169.254.169.254 before it leaves.
  require
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  sdk botocore app --without AWS_EC2_METADATA_SERVICE_ENDPOINT
  sdk_check "botocore found credentials" '.credentials == null'
  sdk_check "botocore did not head for 169.254.169.254" '.blocked | any(. == "lookup 169.254.169.254")'
}

# --- regions ------------------------------------------------------------------------

# region_of SDK [--without VAR]: the region SDK resolves in the app container of $POD.
region_of() {
  sdk "$@" >/dev/null || return
  jq -r '.region // "none"' "$SDK"
}

@test "sdk: iamra.aws/region reaches every SDK: botocore reads AWS_DEFAULT_REGION, JavaScript AWS_REGION, Go both" {
  require "${ALL_SDKS[@]}"
  evaluate "$FIXTURES/pod-region.json"
  assert_mutated
  local sdk got=()
  for sdk in "${ALL_SDKS[@]}"; do
    sdk "$sdk" app
    assert_sidecar_credentials || return
    got+=("$sdk:$(jq -r '.region // "none"' "$SDK"),$(region_of "$sdk" app --without AWS_REGION),$(region_of "$sdk" app --without AWS_DEFAULT_REGION)")
  done
  # Each: as patched, without AWS_REGION, without AWS_DEFAULT_REGION.
  [[ ${got[*]} == "botocore:us-west-2,us-west-2,none go:us-west-2,us-west-2,us-west-2 js:us-west-2,none,us-west-2" ]] ||
    fail "the SDKs read the region variables otherwise:" "${got[@]}"
}

# --- proxies ------------------------------------------------------------------------

# evaluate_behind_dead_proxy VAR[=VALUE]...: pod-plain.json with these variables in the
# app container, each without a value set to a dead loopback proxy's URL; evaluated and
# patched.
evaluate_behind_dead_proxy() {
  local proxy env
  proxy="http://127.0.0.1:$(free_port)"
  env=$(jq -cn --arg proxy "$proxy" '[$ARGS.positional[] | capture("^(?<name>[^=]+)(=(?<value>.*))?$")
    | .value //= $proxy]' --args "$@")
  evaluate "$(with_app_env "$env")"
  assert_mutated
}

# proxy_outcomes [--without VAR]: per SDK, "SDK:ok" when it got the sidecar's
# credentials, else "SDK:no".
proxy_outcomes() {
  local sdk out=()
  for sdk in "${ALL_SDKS[@]}"; do
    sdk "$sdk" app "$@" || return
    if assert_sidecar_credentials 2>/dev/null; then out+=("$sdk:ok"); else out+=("$sdk:no"); fi
  done
  echo "${out[*]}"
}

# assert_bypassed VAR VALUE: the app container's VAR is VALUE as patched, and every SDK
# gets the sidecar's credentials past the dead proxy.
assert_bypassed() {
  local got
  got=$(env_of app "$1")
  [[ $got == "$2" ]] || fail "$1 is \"$got\", expected \"$2\"" || return
  got=$(proxy_outcomes) || return
  [[ $got == "botocore:ok go:ok js:ok" ]] || fail "as patched: $got"
}

@test "sdk: HTTP_PROXY and HTTPS_PROXY at a dead proxy: every SDK gets the credentials (NO_PROXY); without it only botocore fails" {
  require "${ALL_SDKS[@]}"
  evaluate_behind_dead_proxy HTTP_PROXY HTTPS_PROXY
  assert_bypassed NO_PROXY 127.0.0.1
  local got
  # The control: Go never proxies a loopback address, and the JavaScript SDK's Node
  # HTTP handler reads no proxy variables; botocore alone needs NO_PROXY.
  got=$(proxy_outcomes --without NO_PROXY) || return
  [[ $got == "botocore:no go:ok js:ok" ]] || fail "without NO_PROXY: $got"
  sdk botocore app --without NO_PROXY
  sdk_check "botocore did not fail on the proxy" '.error | test("ProxyConnectionError")'
}

@test "sdk: lowercase http_proxy and https_proxy with a preset no_proxy: extended, every SDK gets the credentials" {
  require "${ALL_SDKS[@]}"
  evaluate_behind_dead_proxy http_proxy https_proxy no_proxy=.svc
  assert_bypassed no_proxy .svc,127.0.0.1
}

@test "sdk: a preset uppercase NO_PROXY with a lowercase http_proxy: extended, every SDK gets the credentials" {
  require "${ALL_SDKS[@]}"
  evaluate_behind_dead_proxy http_proxy NO_PROXY=.svc
  assert_bypassed NO_PROXY .svc,127.0.0.1
}

@test "sdk: preset NO_PROXY and no_proxy that differ: both extended, as botocore reads the lowercase one first" {
  require "${ALL_SDKS[@]}"
  evaluate_behind_dead_proxy HTTP_PROXY NO_PROXY=.svc no_proxy=.internal
  [[ $(env_of app NO_PROXY) == .svc,127.0.0.1 ]] || fail "NO_PROXY was not extended"
  assert_bypassed no_proxy .internal,127.0.0.1
  local got
  # The controls: only NO_PROXY extended, botocore goes to the proxy; only no_proxy
  # extended, it does not.
  got=$(proxy_outcomes --set no_proxy=.internal) || return
  [[ $got == "botocore:no go:ok js:ok" ]] || fail "no_proxy as preset: $got"
  got=$(proxy_outcomes --set NO_PROXY=.svc) || return
  [[ $got == "botocore:ok go:ok js:ok" ]] || fail "NO_PROXY as preset: $got"
}

# --- other containers, presets ------------------------------------------------------

@test "sdk: init containers, a classic sidecar and another port get the credentials too" {
  require
  evaluate "$FIXTURES/pod-init-containers.json" "$FIXTURES/settings-classic.yaml"
  assert_mutated
  for name in migrate wait-for-db app metrics; do
    sdk botocore "$name"
    assert_sidecar_credentials || return
  done
  evaluate "$FIXTURES/pod-plain.json" "$(settings_with '{"sidecar": {"port": 15001}}')"
  assert_mutated
  sdk botocore app
  assert_sidecar_credentials
  sdk_check "the endpoint is not on the sidecar's port" '.endpoint.patched == "http://127.0.0.1:15001"'
}

@test "sdk: a container that presets static keys keeps them, with the documented warning" {
  require
  evaluate "$(with_app_env '[{"name": "AWS_ACCESS_KEY_ID", "value": "AKIAIOSFODNN7EXAMPLE"},
    {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}]')"
  assert_mutated
  assert_warning 'container "app" sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, which the AWS SDKs prefer over the credentials sidecar'
  sdk botocore app
  sdk_check "botocore did not keep the preset static keys" \
    '.error == null and .method == "env" and .blocked == []
      and .credentials == {access_key: "AKIAIOSFODNN7EXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token: null}'
  # The control: without the keys the same container is wired to the sidecar.
  sdk botocore app --without AWS_ACCESS_KEY_ID --without AWS_SECRET_ACCESS_KEY
  assert_sidecar_credentials
}

@test "sdk: a container that presets the endpoint keeps it, as the warning says; the others use the sidecar" {
  require
  evaluate "$FIXTURES/pod-env-preset.json"
  assert_mutated
  assert_warning 'container "app" already sets AWS_EC2_METADATA_SERVICE_ENDPOINT; left as written, so it may not use the credentials sidecar'
  sdk botocore app
  sdk_check "botocore found credentials" '.credentials == null'
  sdk_check "botocore did not head for the preset endpoint" '.blocked | any(. == "lookup 169.254.169.254")'
  sdk botocore reporter
  assert_sidecar_credentials
  sdk_check "the SDK's region is not the annotation's" '.region == "us-west-2"'
}

# --- IRSA ---------------------------------------------------------------------------

# evaluate_irsa SESSION [SETTINGS]: fixtures/irsa/pod.json with ServiceAccount payments/api
# as recorded in fixtures/irsa/SESSION; the patched pod in $POD.
evaluate_irsa() {
  SESSION="$IRSA/$1" REAL_KWCTL=$KWCTL KWCTL=kwctl_with_session CONTEXT_AWARE=true \
    POLICY="$BATS_FILE_TMPDIR/annotated-policy.wasm" evaluate "$IRSA/pod.json" "${2:-$IRSA/settings.yaml}"
  # An IRSA pod has no sidecar: of assert_mutated's checks only the schema applies.
  assert_pod_ok() { assert_pod_schema_valid; }
  assert_mutated
}

# assert_web_identity_credentials: botocore chose the web identity provider, which read
# the token written at the mounted path and asked STS for the IRSA role with it.
assert_web_identity_credentials() {
  sdk_check "botocore did not assume the role with the mounted web identity token" \
    '.error == null and .method == "assume-role-with-web-identity" and .blocked == []
      and (.sts | length) == 1 and .sts[0].params.Action == "AssumeRoleWithWebIdentity"
      and .sts[0].params.RoleArn == $role and .sts[0].params.WebIdentityToken == .token
      and .credentials == {access_key: .sts_served.accessKeyId,
        secret_key: .sts_served.secretAccessKey, token: .sts_served.sessionToken}' \
    --arg role "$IRSA_ROLE"
}

@test "sdk: irsa: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE select botocore's web identity provider" {
  evaluate_irsa sa-irsa.yml
  for name in migrate app metrics; do
    sdk botocore "$name"
    assert_web_identity_credentials
  done
}

@test "sdk: irsa: the region setting and regional STS reach the SDK; skipped containers get nothing" {
  evaluate_irsa sa-irsa-options.yml \
    "$(settings_with '{"readServiceAccounts": true, "irsa": {"region": "eu-central-1"}}')"
  sdk botocore app
  assert_web_identity_credentials
  sdk_check "the SDK's region or STS endpoint is not the regional one" \
    '.region == "eu-central-1" and .sts[0].url == "https://sts.eu-central-1.amazonaws.com/"'
  sdk botocore metrics
  sdk_check "botocore found credentials" ".credentials == null"
  sdk_check "a skipped container got the web identity wiring" '.method == null and .sts == []'
}
