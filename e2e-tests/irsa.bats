#!/usr/bin/env bats
# IRSA (aws/amazon-eks-pod-identity-webhook's contract) and ServiceAccount-level IAM
# Roles Anywhere. The policy reads the pod's ServiceAccount (payments/api) through the
# host; here kwctl (or the runner) replays it from a session file in fixtures/irsa
# (kwctl's --record-host-capabilities-interactions format), with --allow-context-aware
# on a module annotated with metadata.yml.

load helpers

IRSA="$FIXTURES/irsa"
POD_REQUEST="$IRSA/pod.json"
ROLE=arn:aws:iam::123456789012:role/orders
TOKEN_VOLUME=aws-iam-token
TOKEN_DIR=/var/run/secrets/eks.amazonaws.com/serviceaccount
TOKEN_FILE=$TOKEN_DIR/token
ANCHOR=arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f

setup_file() {
  annotate_policy
}

setup() {
  use_context_aware
}

# evaluate_as SESSION REQUEST [SETTINGS]: evaluate with ServiceAccount payments/api as
# recorded in fixtures/irsa/SESSION.
evaluate_as() {
  SESSION="$IRSA/$1"
  evaluate "$2" "${3:-$IRSA/settings.yaml}"
}

# assert_irsa_mutated: the patch applies; the pod has unique names, is valid against the
# schema and has no credentials sidecar. (helpers' assert_pod_ok expects the sidecar;
# bats runs each test in its own process, so this redefinition stays in the test.)
assert_irsa_mutated() {
  assert_pod_ok() {
    assert_unique_names && assert_pod_schema_valid &&
      pod_check "an IRSA pod got the credentials sidecar" \
        "$JQ_CONTAINERS all(containers[]; .name != \$s)" --arg s "$SIDECAR"
  }
  assert_mutated
}

# assert_irsa_wired CONTAINER [TOKEN_FILE]: the role, the token file and the read-only
# token mount, each once.
assert_irsa_wired() {
  assert_env "$1" AWS_ROLE_ARN "$ROLE" &&
    assert_env "$1" AWS_WEB_IDENTITY_TOKEN_FILE "${2:-$TOKEN_FILE}" &&
    pod_check "container $1 does not mount $TOKEN_VOLUME once, read-only, at $TOKEN_DIR" \
      "$JQ_CONTAINERS [containers[] | select(.name == \$n) | .volumeMounts[]?
        | select(.name == \$v)] == [{name: \$v, mountPath: \$d, readOnly: true}]" \
      --arg n "$1" --arg v "$TOKEN_VOLUME" --arg d "$TOKEN_DIR"
}

assert_irsa_untouched() {
  assert_no_env "$1" AWS_ROLE_ARN && assert_no_env "$1" AWS_WEB_IDENTITY_TOKEN_FILE &&
    pod_check "container $1 mounts $TOKEN_VOLUME" \
      "$JQ_CONTAINERS all(containers[] | select(.name == \$n); all(.volumeMounts[]?; .name != \$v))" \
      --arg n "$1" --arg v "$TOKEN_VOLUME"
}

# assert_token_volume AUDIENCE EXPIRATION: the one projected service account token volume.
assert_token_volume() {
  pod_check "expected one $TOKEN_VOLUME volume with audience $1 and expiration $2" \
    '[.spec.volumes[]? | select(.name == $v)] == [{name: $v, projected: {sources: [
      {serviceAccountToken: {audience: $a, expirationSeconds: ($e | tonumber), path: "token"}}]}}]' \
    --arg v "$TOKEN_VOLUME" --arg a "$1" --arg e "$2"
}

env_names() {
  pod_query "$JQ_CONTAINERS containers[] | select(.name == \$n) | [.env[]?.name] | join(\" \")" \
    --arg n "$1"
}

# --- IRSA ---------------------------------------------------------------------------

@test "irsa: every container and init container gets the role, the token file and the mount" {
  evaluate_as sa-irsa.yml "$POD_REQUEST"
  assert_irsa_mutated
  assert_no_warnings
  for name in migrate app metrics; do
    assert_irsa_wired "$name"
    [[ $(env_names "$name") == "AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE" ]]
  done
  assert_token_volume sts.amazonaws.com 86400
  [[ $(container_names initContainers) == migrate ]]
  [[ $(container_names containers) == "app metrics" ]]
  assert_original_kept '.metadata'
}

@test "irsa: a pod that already has the token volume and variables is not mutated again" {
  evaluate_as sa-irsa.yml "$POD_REQUEST"
  assert_irsa_mutated
  evaluate_as sa-irsa.yml "$(resubmission_request)"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "irsa: the ServiceAccount's audience, token expiration, regional STS and skip-containers" {
  evaluate_as sa-irsa-options.yml "$POD_REQUEST"
  assert_irsa_mutated
  assert_no_warnings
  assert_token_volume sts.example.com 3600
  for name in migrate app; do
    assert_irsa_wired "$name"
    assert_env "$name" AWS_STS_REGIONAL_ENDPOINTS regional
  done
  assert_irsa_untouched metrics
  assert_no_env metrics AWS_STS_REGIONAL_ENDPOINTS
}

@test "irsa: the region setting adds AWS_DEFAULT_REGION and AWS_REGION, in the webhook's order" {
  evaluate_as sa-irsa-options.yml "$POD_REQUEST" \
    "{\"trustAnchorArn\": \"$ANCHOR\", \"region\": \"eu-west-1\", \"irsa\": {\"region\": \"eu-central-1\"}}"
  assert_irsa_mutated
  [[ $(env_names app) == "AWS_STS_REGIONAL_ENDPOINTS AWS_DEFAULT_REGION AWS_REGION AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE" ]]
  assert_env app AWS_REGION eu-central-1
  assert_env app AWS_DEFAULT_REGION eu-central-1
}

@test "irsa: the pod's skip-containers annotation" {
  evaluate_as sa-irsa.yml "$(with_annotations "$POD_REQUEST" '{"eks.amazonaws.com/skip-containers": "migrate,metrics"}')"
  assert_irsa_mutated
  assert_irsa_wired app
  assert_irsa_untouched migrate
  assert_irsa_untouched metrics
  assert_token_volume sts.amazonaws.com 86400
}

@test "irsa: a Windows pod reads the token under C:" {
  evaluate_as sa-irsa.yml "$(with_spec "$POD_REQUEST" '.nodeSelector = {"kubernetes.io/os": "windows"}')"
  assert_irsa_mutated
  assert_irsa_wired app 'C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token'
  assert_irsa_wired migrate 'C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token'
}

@test "irsa: the pod's token-expiration wins over the ServiceAccount's" {
  evaluate_as sa-irsa-options.yml "$(with_annotations "$POD_REQUEST" '{"eks.amazonaws.com/token-expiration": "7200"}')"
  assert_irsa_mutated
  assert_token_volume sts.example.com 7200
}

@test "irsa: an expiration under 600 seconds is raised to 600, with a warning" {
  evaluate_as sa-irsa.yml "$(with_annotations "$POD_REQUEST" '{"eks.amazonaws.com/token-expiration": "60"}')"
  assert_irsa_mutated
  assert_token_volume sts.amazonaws.com 600
  assert_warning "annotation eks.amazonaws.com/token-expiration on the pod: 60 seconds is under Kubernetes' minimum"
  # Sent again (the API server reinvokes the webhook after another one's change): the
  # pod records that warning already, so nothing changes.
  evaluate_as sa-irsa.yml "$(resubmission_request)"
  assert_accepted_unchanged
  assert_warning "annotation eks.amazonaws.com/token-expiration on the pod: 60 seconds is under Kubernetes' minimum"
}

@test "irsa: a malformed token-expiration is rejected by name" {
  evaluate_as sa-irsa.yml "$(with_annotations "$POD_REQUEST" '{"eks.amazonaws.com/token-expiration": "1h"}')"
  assert_rejected 'annotation eks.amazonaws.com/token-expiration on the pod: "1h" is not a whole number of seconds'
}

@test "irsa: variables a container already sets are kept by group, as the webhook does" {
  evaluate_as sa-irsa.yml "$(with_spec "$POD_REQUEST" '
    .containers[0].env = [{"name": "AWS_REGION", "value": "us-east-1"}]
    | .containers[1].env = [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/other"}]')" \
    "{\"trustAnchorArn\": \"$ANCHOR\", \"region\": \"eu-west-1\", \"irsa\": {\"region\": \"eu-central-1\"}}"
  assert_irsa_mutated
  # app: its region group stays as written; the role group is added.
  [[ $(env_names app) == "AWS_REGION AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE" ]]
  assert_env app AWS_REGION us-east-1
  # metrics: its role group stays as written (no token file either), with a warning.
  [[ $(env_names metrics) == "AWS_ROLE_ARN AWS_DEFAULT_REGION AWS_REGION" ]]
  assert_env metrics AWS_ROLE_ARN arn:aws:iam::123456789012:role/other
  assert_warning 'container "metrics" sets AWS_ROLE_ARN to another value than the ServiceAccount'"'"'s role'
  [[ $(warnings | grep -c '"app"') == 0 ]]
}

@test "irsa: the skip-pod-identity-webhook label leaves the pod alone" {
  evaluate_as sa-irsa.yml "$(request_from "$POD_REQUEST" \
    '.request.object.metadata.labels["eks.amazonaws.com/skip-pod-identity-webhook"] = "true"')"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "irsa: a role annotation that is not an ARN is rejected, naming the ServiceAccount" {
  evaluate_as sa-irsa-malformed.yml "$POD_REQUEST"
  assert_rejected 'annotation eks.amazonaws.com/role-arn on ServiceAccount payments/api: "orders" is not an IAM role ARN'
}

# --- IAM Roles Anywhere from the ServiceAccount ---------------------------------------

@test "service account: its IAM Roles Anywhere annotations inject the sidecar" {
  evaluate_as sa-iamra.yml "$POD_REQUEST"
  assert_mutated
  assert_no_warnings
  [[ $(sidecar_arg --role-arn) == "$ROLE" ]]
  [[ $(sidecar_arg --role-session-name) == orders-from-sa ]]
  assert_all_wired
  assert_injected_annotations
}

@test "service account: the pod's annotations override it key by key" {
  evaluate_as sa-iamra.yml "$(with_annotations "$POD_REQUEST" \
    '{"iamra.aws/role-arn": "arn:aws:iam::123456789012:role/orders-admin"}')"
  assert_mutated
  [[ $(sidecar_arg --role-arn) == arn:aws:iam::123456789012:role/orders-admin ]]
  [[ $(sidecar_arg --role-session-name) == orders-from-sa ]]
  [[ $(sidecar_arg --profile-arn) == arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70 ]]
}

@test "service account: an injected pod is not injected again" {
  evaluate_as sa-iamra.yml "$POD_REQUEST"
  assert_mutated
  evaluate_as sa-iamra.yml "$(resubmission_request)"
  assert_accepted_unchanged
}

@test "service account: errors in its annotations say where they come from" {
  evaluate_as sa-iamra.yml "$(with_annotations "$POD_REQUEST" '{"iamra.aws/session-name": "has spaces"}')"
  assert_rejected 'annotation iamra.aws/session-name: "has spaces"'
}

# --- both on one pod ----------------------------------------------------------------

@test "both: a ServiceAccount with both and a pod that does not choose is rejected, saying how to choose" {
  evaluate_as sa-both.yml "$POD_REQUEST"
  assert_rejected "ServiceAccount payments/api asks for both IAM Roles Anywhere" \
    "set iamra.aws/role-arn on the pod or label it eks.amazonaws.com/skip-pod-identity-webhook=true" \
    "remove the iamra.aws/ annotations from the ServiceAccount"
}

@test "both: the pod's own IAM Roles Anywhere annotation chooses it, with a warning" {
  evaluate_as sa-both.yml "$(with_annotations "$POD_REQUEST" "{\"iamra.aws/role-arn\": \"$ROLE\"}")"
  assert_mutated
  [[ $(sidecar_arg --role-arn) == "$ROLE" ]]
  assert_irsa_untouched app
  assert_warning "ServiceAccount payments/api also carries eks.amazonaws.com/role-arn" "IRSA is not injected"
}

@test "both: the skip label chooses IAM Roles Anywhere" {
  evaluate_as sa-both.yml "$(request_from "$POD_REQUEST" \
    '.request.object.metadata.labels["eks.amazonaws.com/skip-pod-identity-webhook"] = "true"')"
  assert_mutated
  assert_no_warnings
  assert_irsa_untouched app
  assert_all_wired
}

# --- lookups ------------------------------------------------------------------------

@test "lookup: a ServiceAccount without IAM annotations leaves the pod alone" {
  evaluate_as sa-plain.yml "$POD_REQUEST"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "lookup: a missing ServiceAccount is rejected by name, with the host's error" {
  evaluate_as sa-missing.yml "$POD_REQUEST"
  assert_rejected "cannot read ServiceAccount payments/api, which the pod runs as:" \
    "Cannot find v1/ServiceAccount named 'api'"
}

@test "lookup: without --allow-context-aware the pod is rejected by ServiceAccount, not trapped" {
  CONTEXT_AWARE=false
  evaluate_as sa-irsa.yml "$POD_REQUEST"
  assert_rejected "cannot read ServiceAccount payments/api" "readServiceAccounts: false"
}

@test "lookup: readServiceAccounts: false never calls the host (no session needed)" {
  CONTEXT_AWARE=false
  SESSION=""
  evaluate "$POD_REQUEST" "{\"trustAnchorArn\": \"$ANCHOR\", \"region\": \"eu-west-1\", \"readServiceAccounts\": false}"
  assert_accepted_unchanged
  evaluate "$(with_annotations "$POD_REQUEST" "{\"iamra.aws/role-arn\": \"$ROLE\", \"iamra.aws/signing-profile-arn\": \"arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70\"}")" \
    "{\"trustAnchorArn\": \"$ANCHOR\", \"region\": \"eu-west-1\", \"readServiceAccounts\": false}"
  assert_mutated
}

@test "lookup: requests other than a pod CREATE never read the ServiceAccount" {
  # The empty session fails any lookup, so acceptance shows that none was made.
  SESSION="$IRSA/no-lookups.yml"
  evaluate "$(request_from "$POD_REQUEST" '.request.operation = "UPDATE" | .request.oldObject = .request.object')" \
    "$IRSA/settings.yaml"
  assert_accepted_unchanged
}
