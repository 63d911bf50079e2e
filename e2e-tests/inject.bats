#!/usr/bin/env bats
# Pods that opt in get the credentials sidecar. Every test applies the returned patch
# to the request's pod and checks the result (assert_mutated: the sidecar once, the
# certificate only in the sidecar, unique names, valid against the Kubernetes schema).

load helpers

@test "plain pod: native sidecar first in initContainers, app wired, annotations set" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  assert_no_warnings
  [[ $(container_names initContainers) == "$SIDECAR" ]]
  [[ $(container_names containers) == app ]]
  [[ $(pod_query '.spec.initContainers[0].restartPolicy') == Always ]]
  assert_wired app
  assert_no_env app AWS_REGION
  assert_injected_annotations
  [[ $(sidecar_arg --role-arn) == "$ROLE" ]]
  [[ $(sidecar_arg --profile-arn) == "$PROFILE" ]]
  [[ $(sidecar_arg --trust-anchor-arn) == "$TRUST_ANCHOR" ]]
  [[ $(sidecar_arg --region) == eu-west-1 ]]
  [[ $(sidecar_arg --port) == 9911 ]]
  assert_original_kept '.spec.containers[0] | del(.env)'
  assert_original_kept '.metadata.labels'
}

@test "plain pod: the certificate volume asks the configured issuer for the pod's identity" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  pod_check "unexpected csi volume attributes" '.spec.volumes[] | select(.name == $v) | .csi
    | .readOnly == true
    and .volumeAttributes["csi.cert-manager.io/issuer-name"] == "iamra-workload"
    and .volumeAttributes["csi.cert-manager.io/issuer-kind"] == "ClusterIssuer"
    and .volumeAttributes["csi.cert-manager.io/common-name"] == "ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"
    and .volumeAttributes["csi.cert-manager.io/uri-sans"] == "spiffe://cluster/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"' \
    --arg v "$CERT_VOLUME"
  [[ $(container app | jq '.volumeMounts // [] | length') == 0 ]]
}

@test "generateName pod without a name: session name read from metadata.name at run time" {
  evaluate "$FIXTURES/pod-generated-name.json"
  assert_mutated
  assert_no_warnings
  [[ $(pod_query '.metadata.name // "none"') == none ]]
  [[ $(sidecar_arg --role-session-name) == '$(POD_NAME)' ]]
  [[ $(container "$SIDECAR" | jq -r '.env[] | select(.name == "POD_NAME") | .valueFrom.fieldRef.fieldPath') == metadata.name ]]
  assert_wired app
  assert_original_kept '.metadata.ownerReferences'
  assert_original_kept '.metadata.generateName'
}

@test "init containers: native sidecar goes before them, and every init and app container is wired" {
  evaluate "$FIXTURES/pod-init-containers.json"
  assert_mutated
  assert_no_warnings
  [[ $(container_names initContainers) == "$SIDECAR migrate wait-for-db" ]]
  [[ $(container_names containers) == "app metrics" ]]
  assert_all_wired
  assert_wired migrate
  assert_wired wait-for-db
  # Variables already there stay first, in order.
  [[ $(container wait-for-db | jq -r '.env[0].name') == DB_HOST ]]
  [[ $(container app | jq -r '.env[0].name') == LOG_FORMAT ]]
  assert_original_kept '.spec.volumes[0]'
  [[ $(pod_query '[.spec.volumes[].name] | join(" ")') == "work $CERT_VOLUME" ]]
}

@test "classic mode (sidecar.native: false): sidecar appended to containers, no initContainers" {
  evaluate "$FIXTURES/pod-plain.json" "$FIXTURES/settings-classic.yaml"
  assert_mutated
  assert_no_warnings
  [[ $(container_names containers) == "app $SIDECAR" ]]
  [[ $(pod_query '.spec.initContainers // "absent"') == absent ]]
  [[ $(container "$SIDECAR" | jq -r '.restartPolicy // "unset"') == unset ]]
  assert_wired app
}

@test "classic mode with init containers: wired, and a warning that they get no credentials" {
  evaluate "$FIXTURES/pod-init-containers.json" "$FIXTURES/settings-classic.yaml"
  assert_mutated
  [[ $(container_names initContainers) == "migrate wait-for-db" ]]
  [[ $(container_names containers) == "app metrics $SIDECAR" ]]
  assert_all_wired
  assert_warning "init containers run before a classic sidecar starts"
}

@test "settings as inline JSON: sidecar.port moves the endpoint and the sidecar's port" {
  evaluate "$FIXTURES/pod-plain.json" "$(settings_with '{"sidecar": {"port": 9920}}')"
  assert_mutated
  assert_wired app 9920
  [[ $(sidecar_arg --port) == 9920 ]]
}

@test "iamra.aws/region: AWS_REGION and AWS_DEFAULT_REGION in every container, sidecar keeps the anchor's region" {
  evaluate "$FIXTURES/pod-region.json"
  assert_mutated
  assert_no_warnings
  assert_wired app
  assert_env app AWS_REGION us-west-2
  assert_env app AWS_DEFAULT_REGION us-west-2
  [[ $(sidecar_arg --region) == eu-west-1 ]]
  assert_no_env "$SIDECAR" AWS_REGION
}

@test "variables the user already set are kept as written, with a warning naming the container" {
  evaluate "$FIXTURES/pod-env-preset.json"
  assert_mutated
  assert_env app AWS_EC2_METADATA_SERVICE_ENDPOINT http://169.254.169.254
  assert_env app AWS_REGION eu-central-1
  assert_env app AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE IPv4
  # The two region variables are one group: a container that sets either keeps both.
  assert_no_env app AWS_DEFAULT_REGION
  assert_warning 'container "app" already sets AWS_EC2_METADATA_SERVICE_ENDPOINT' \
    'container "app" already sets AWS_REGION'
  [[ $(warnings | grep -c reporter) == 0 ]]
  assert_wired reporter
  assert_env reporter AWS_REGION us-west-2
}

@test "a variable already set to the injected value is neither duplicated nor warned about" {
  request=$(with_spec "$FIXTURES/pod-plain.json" \
    '.containers[0].env = [{"name": "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "value": "IPv4"}]')
  evaluate "$request"
  assert_mutated
  assert_no_warnings
  assert_wired app
}

@test "static credentials in a container are kept, with a warning" {
  request=$(with_spec "$FIXTURES/pod-plain.json" \
    '.containers[0].env = [{"name": "AWS_ACCESS_KEY_ID", "value": "AKIAEXAMPLE"}]')
  evaluate "$request"
  assert_mutated
  assert_warning 'container "app" sets AWS_ACCESS_KEY_ID'
  assert_env app AWS_ACCESS_KEY_ID AKIAEXAMPLE
}

@test "a proxied container gets NO_PROXY for the loopback endpoint" {
  request=$(with_spec "$FIXTURES/pod-plain.json" \
    '.containers[0].env = [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}, {"name": "NO_PROXY", "value": ".svc"}]')
  evaluate "$request"
  assert_mutated
  assert_env app NO_PROXY .svc,127.0.0.1
  assert_env app HTTPS_PROXY http://proxy:3128
}

@test "fields the policy's Kubernetes types do not know survive, and an existing native sidecar keeps restartPolicy" {
  evaluate "$FIXTURES/pod-unknown-fields.json"
  POD_SCHEMA_FILTER='del(.spec.futureSchedulingHints, .spec.containers[].futureResizeHint)' \
    assert_mutated
  assert_original_kept '.spec.futureSchedulingHints'
  assert_original_kept '.spec.containers[0].futureResizeHint'
  [[ $(container_names initContainers) == "$SIDECAR istio-proxy" ]]
  [[ $(container istio-proxy | jq -cS 'del(.env)') == \
    "$(jq -cS '.request.object.spec.initContainers[0]' "$FIXTURES/pod-unknown-fields.json")" ]]
  assert_wired istio-proxy
  assert_wired app
  # The made-up fields really are unknown to the schema: the filter above matters.
  run assert_pod_schema_valid
  [[ $status -ne 0 && $output == *future*"was unexpected"* ]] || fail "strict schema accepted it: $output"
}

@test "a long-mantissa float elsewhere in the pod is not touched by the patch" {
  evaluate "$FIXTURES/pod-long-floats.json"
  POD_SCHEMA_FILTER='del(.spec.futureTuning)' assert_mutated
  # A number parsed one ULP off would come back as a replace of its path.
  jq -e 'all(.[]; (.path | startswith("/spec/futureTuning") | not) and .path != "/spec")' \
    "$PATCH" >/dev/null || fail "the patch touches the floats:" "$(cat "$PATCH")"
}

@test "an existing eks.amazonaws.com/skip-containers list is extended, not replaced" {
  request=$(with_annotations "$FIXTURES/pod-plain.json" '{"eks.amazonaws.com/skip-containers": "istio-proxy"}')
  evaluate "$request"
  assert_mutated
  [[ $(annotation eks.amazonaws.com/skip-containers) == "istio-proxy,$SIDECAR" ]]
}

@test "token duration forms 900, 900s, 15m and 1h are accepted and passed in seconds" {
  local value seconds
  for pair in 900:900 900s:900 15m:900 1h:3600 12h:43200; do
    value=${pair%%:*} seconds=${pair#*:}
    evaluate "$(with_annotations "$FIXTURES/pod-plain.json" "{\"iamra.aws/token-duration\": \"$value\"}")"
    assert_mutated
    [[ $(sidecar_arg --session-duration) == "$seconds" ]] ||
      fail "token-duration $value gave $(sidecar_arg --session-duration)"
  done
}

@test "session name and debug log level shape the sidecar" {
  request=$(with_annotations "$FIXTURES/pod-plain.json" \
    '{"iamra.aws/session-name": "payments-api", "iamra.aws/log-level": "debug"}')
  evaluate "$request"
  assert_mutated
  [[ $(sidecar_arg --role-session-name) == payments-api ]]
  container "$SIDECAR" | jq -e '.args | index(["--debug"]) != null' >/dev/null
  [[ $(container "$SIDECAR" | jq '.env // [] | length') == 0 ]]
}

@test "an unknown annotation under iamra.aws/ is a warning, not a rejection" {
  request=$(with_annotations "$FIXTURES/pod-plain.json" '{"iamra.aws/role_arn": "typo"}')
  evaluate "$request"
  assert_mutated
  assert_warning "annotation iamra.aws/role_arn is not one this policy reads"
}

@test "a ReplicaSet's pod with nothing to inject records its warnings, and nothing else changes" {
  # A Deployment's pod template with both annotations misspelt: the ReplicaSet controller
  # drops the admission response's warnings, so the pod keeps them.
  evaluate "$FIXTURES/pod-replicaset-typos.json"
  assert_only_warnings_recorded
  assert_warning "annotations iamra.aws/profile-arn, iamra.aws/role are not ones this policy reads"
  evaluate "$(resubmission_request)"
  assert_accepted_unchanged
  assert_warning "annotations iamra.aws/profile-arn, iamra.aws/role are not ones this policy reads"
}

@test "re-evaluating the injected pod (native) returns no patch" {
  evaluate "$FIXTURES/pod-init-containers.json"
  assert_mutated
  evaluate "$(resubmission_request)"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "re-evaluating the injected pod (classic) returns no patch" {
  evaluate "$FIXTURES/pod-env-preset.json" "$FIXTURES/settings-classic.yaml"
  assert_mutated
  evaluate "$(resubmission_request)" "$FIXTURES/settings-classic.yaml"
  assert_accepted_unchanged
}

@test "a pod injected under other settings is refused, not injected twice" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  evaluate "$(resubmission_request)" "$FIXTURES/settings-classic.yaml"
  assert_rejected "container \"$SIDECAR\" already exists"
}
