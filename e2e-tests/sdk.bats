#!/usr/bin/env bats
# A real AWS SDK against the patched pods: botocore's default credential chain runs with
# an app container's environment exactly as the policy patched it (tools/sdk_check.py).
# For IAM Roles Anywhere a stand-in for `aws_signing_helper serve` (tools/imds_standin.py)
# answers IMDSv2 on loopback, and only the endpoint's port is rewritten to reach it; for
# IRSA the projected token is written under a temporary root (the variable's path is
# prefixed with it) and AssumeRoleWithWebIdentity is answered in process, never sent.
# The SDK may connect to loopback only: anything else is refused and reported.

load helpers

# inject.bats and irsa.bats check these pods against the schema; here the SDK's view counts.
K8S_SCHEMA_VERSIONS=""

IRSA="$FIXTURES/irsa"
IRSA_ROLE=arn:aws:iam::123456789012:role/orders
SDK="$BATS_TEST_TMPDIR/sdk.json"

setup_file() {
  annotate_policy
}

# sdk CONTAINER [--without VAR]...: botocore's default chain with CONTAINER's environment
# from $POD; the report in $SDK.
sdk() {
  python3 "$TOOLS/sdk_check.py" "$POD" "$@" >"$SDK" || fail "sdk_check.py failed on $*"
}

# sdk_check DESCRIPTION JQ_FILTER [jq args...]: fails with DESCRIPTION and the report
# unless the filter is true on $SDK.
sdk_check() {
  local description=$1 filter=$2
  shift 2
  jq -e "$@" "$filter" "$SDK" >/dev/null || fail "$description" "$(cat "$SDK")"
}

# assert_sidecar_credentials: botocore got the stand-in's credentials from its instance
# metadata provider, over IMDSv2 only: a token first, then the role and its credentials
# with that token, and no other request or connection.
assert_sidecar_credentials() {
  sdk_check "botocore did not get the sidecar's credentials over IMDSv2" \
    '.error == null and .method == "iam-role" and .blocked == []
      and .credentials == {access_key: .imds_served.AccessKeyId,
        secret_key: .imds_served.SecretAccessKey, token: .imds_served.Token}
      and [.imds[] | [.method, .path, .token, .status]] == [
        ["PUT", "/latest/api/token", "none", 200],
        ["GET", "/latest/meta-data/iam/security-credentials/", "valid", 200],
        ["GET", "/latest/meta-data/iam/security-credentials/\($role)", "valid", 200]]' \
    --arg role "${ROLE##*/}"
}

assert_no_credentials() {
  sdk_check "botocore found credentials" '.credentials == null and .imds == []'
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

# --- the stand-in -------------------------------------------------------------------

@test "sdk: the stand-in answers as aws_signing_helper serve does, and refuses IMDSv1" {
  # Each line: status, method, path and the headers sent; then what an answer carried.
  run python3 - "$TOOLS" <<'PYTHON'
import http.client, json, sys
sys.path.insert(0, sys.argv[1])
from imds_standin import ImdsStandIn

creds = "/latest/meta-data/iam/security-credentials/"
with ImdsStandIn("app") as standin:
    def call(method, path, **headers):
        c = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read().decode()
        print(r.status, method, path, ",".join(f"{k}={v}" for k, v in headers.items()))
        return r, body
    call("GET", creds)
    call("GET", creds + "app")
    call("GET", creds + "app", **{"X-aws-ec2-metadata-token": "forged"})
    call("PUT", "/latest/api/token", **{"X-Forwarded-For": "10.0.0.1"})
    call("PUT", "/latest/api/token", **{"X-aws-ec2-metadata-token-ttl-seconds": "0"})
    call("PUT", "/latest/api/token", **{"X-aws-ec2-metadata-token-ttl-seconds": "21601"})
    call("GET", "/latest/api/token")
    r, token = call("PUT", "/latest/api/token", **{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    print("ttl", r.getheader("X-aws-ec2-metadata-token-ttl-seconds"), "token length", len(token))
    auth = {"X-aws-ec2-metadata-token": token}
    print("role", call("GET", creds, **auth)[1])
    call("GET", creds + "other", **auth)
    call("PUT", creds + "app", **auth)
    call("GET", "/latest/meta-data/placement/availability-zone", **auth)
    served = json.loads(call("GET", creds + "app", **auth)[1])
    print("fields", *served, served["Code"], served["Type"], served == standin.credentials)
PYTHON
  [[ $status == 0 ]] || fail "$output" || return
  expected='401 GET /latest/meta-data/iam/security-credentials/ 
401 GET /latest/meta-data/iam/security-credentials/app 
401 GET /latest/meta-data/iam/security-credentials/app X-aws-ec2-metadata-token=forged
400 PUT /latest/api/token X-Forwarded-For=10.0.0.1
400 PUT /latest/api/token X-aws-ec2-metadata-token-ttl-seconds=0
400 PUT /latest/api/token X-aws-ec2-metadata-token-ttl-seconds=21601
405 GET /latest/api/token 
200 PUT /latest/api/token X-aws-ec2-metadata-token-ttl-seconds=60
ttl 60 token length 100
200 GET /latest/meta-data/iam/security-credentials/ X-aws-ec2-metadata-token=TOKEN
role app
404 GET /latest/meta-data/iam/security-credentials/other X-aws-ec2-metadata-token=TOKEN
405 PUT /latest/meta-data/iam/security-credentials/app X-aws-ec2-metadata-token=TOKEN
404 GET /latest/meta-data/placement/availability-zone X-aws-ec2-metadata-token=TOKEN
200 GET /latest/meta-data/iam/security-credentials/app X-aws-ec2-metadata-token=TOKEN
fields AccessKeyId SecretAccessKey Token Code Type Expiration LastUpdated Success AWS-HMAC True'
  got=$(sed -E 's/(X-aws-ec2-metadata-token=)[^ ]{100}$/\1TOKEN/' <<<"$output")
  [[ $got == "$expected" ]] || fail "the stand-in answered otherwise:" "$got"
}

# --- IAM Roles Anywhere -------------------------------------------------------------

@test "sdk: botocore's default chain gets the sidecar's credentials over IMDSv2" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  sdk app
  assert_sidecar_credentials
  sdk_check "the endpoint was not the sidecar's, with the port rewritten" \
    '.endpoint.patched == "http://127.0.0.1:9911" and (.endpoint.used | test("^http://127\\.0\\.0\\.1:[0-9]+$"))
      and .endpoint.used != .endpoint.patched'
  sdk_check "the app got a region without iamra.aws/region" '.region == null'
}

@test "sdk: without the endpoint variables the SDK goes to EC2's metadata address, not the sidecar" {
  # The control for every test here: the credentials come from the injected wiring.
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  sdk app --without AWS_EC2_METADATA_SERVICE_ENDPOINT
  assert_no_credentials
  sdk_check "botocore did not head for 169.254.169.254" '.blocked | any(. == "lookup 169.254.169.254")'
}

@test "sdk: iamra.aws/region sets the SDK's region; the credentials still come from the sidecar" {
  evaluate "$FIXTURES/pod-region.json"
  assert_mutated
  sdk app
  assert_sidecar_credentials
  sdk_check "the SDK's region is not the annotation's" '.region == "us-west-2"'
}

@test "sdk: init containers, a classic sidecar and another port get the credentials too" {
  evaluate "$FIXTURES/pod-init-containers.json" "$FIXTURES/settings-classic.yaml"
  assert_mutated
  for name in migrate wait-for-db app metrics; do
    sdk "$name"
    assert_sidecar_credentials
  done
  evaluate "$FIXTURES/pod-plain.json" "$(settings_with '{"sidecar": {"port": 15001}}')"
  assert_mutated
  sdk app
  assert_sidecar_credentials
  sdk_check "the endpoint is not on the sidecar's port" '.endpoint.patched == "http://127.0.0.1:15001"'
}

# evaluate_behind_dead_proxy VAR[=VALUE]...: pod-plain.json with these variables in the
# app container, each without a value set to a dead proxy's URL; evaluated and patched.
evaluate_behind_dead_proxy() {
  local proxy env
  proxy="http://127.0.0.1:$(free_port)"
  env=$(jq -cn --arg proxy "$proxy" '[$ARGS.positional[] | capture("^(?<name>[^=]+)(=(?<value>.*))?$")
    | .value //= $proxy]' --args "$@")
  evaluate "$(with_app_env "$env")"
  assert_mutated
}

@test "sdk: with HTTP_PROXY and HTTPS_PROXY at a dead proxy, the credentials still arrive (NO_PROXY)" {
  evaluate_behind_dead_proxy HTTP_PROXY HTTPS_PROXY
  sdk app
  assert_sidecar_credentials
  # The control: without the injected NO_PROXY the SDK's calls go to the dead proxy.
  sdk app --without NO_PROXY
  assert_no_credentials
  sdk_check "botocore did not fail on the proxy" '.error | test("ProxyConnectionError")'
}

@test "sdk: lowercase http_proxy and https_proxy with a preset NO_PROXY: the credentials still arrive" {
  evaluate_behind_dead_proxy http_proxy https_proxy NO_PROXY=.svc
  sdk app
  assert_sidecar_credentials
}

@test "sdk: a preset lowercase no_proxy: the credentials still arrive" {
  evaluate_behind_dead_proxy http_proxy no_proxy=.svc
  sdk app
  assert_sidecar_credentials
}

@test "sdk: a container that presets static keys keeps them, with the documented warning" {
  evaluate "$(with_app_env '[{"name": "AWS_ACCESS_KEY_ID", "value": "AKIAIOSFODNN7EXAMPLE"},
    {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}]')"
  assert_mutated
  assert_warning 'container "app" sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, which the AWS SDKs prefer over the credentials sidecar'
  sdk app
  sdk_check "botocore did not keep the preset static keys" \
    '.error == null and .method == "env" and .imds == [] and .blocked == []
      and .credentials == {access_key: "AKIAIOSFODNN7EXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token: null}'
  # The control: without the keys the same container is wired to the sidecar.
  sdk app --without AWS_ACCESS_KEY_ID --without AWS_SECRET_ACCESS_KEY
  assert_sidecar_credentials
}

@test "sdk: a container that presets the endpoint keeps it, as the warning says; the others use the sidecar" {
  evaluate "$FIXTURES/pod-env-preset.json"
  assert_mutated
  assert_warning 'container "app" already sets AWS_EC2_METADATA_SERVICE_ENDPOINT; left as written, so it may not use the credentials sidecar'
  sdk app
  assert_no_credentials
  sdk_check "botocore did not head for the preset endpoint" '.blocked | any(. == "lookup 169.254.169.254")'
  sdk reporter
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
    '.error == null and .method == "assume-role-with-web-identity" and .imds == [] and .blocked == []
      and (.sts | length) == 1 and .sts[0].params.Action == "AssumeRoleWithWebIdentity"
      and .sts[0].params.RoleArn == $role and .sts[0].params.WebIdentityToken == .token
      and .credentials == {access_key: .sts_served.AccessKeyId,
        secret_key: .sts_served.SecretAccessKey, token: .sts_served.Token}' \
    --arg role "$IRSA_ROLE"
}

@test "sdk: irsa: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE select botocore's web identity provider" {
  evaluate_irsa sa-irsa.yml
  for name in migrate app metrics; do
    sdk "$name"
    assert_web_identity_credentials
  done
}

@test "sdk: irsa: the region setting and regional STS reach the SDK; skipped containers get nothing" {
  evaluate_irsa sa-irsa-options.yml \
    "$(settings_with '{"readServiceAccounts": true, "irsa": {"region": "eu-central-1"}}')"
  sdk app
  assert_web_identity_credentials
  sdk_check "the SDK's region or STS endpoint is not the regional one" \
    '.region == "eu-central-1" and .sts[0].url == "https://sts.eu-central-1.amazonaws.com/"'
  sdk metrics
  assert_no_credentials
  sdk_check "a skipped container got the web identity wiring" '.method == null and .sts == []'
}
