#!/usr/bin/env bats
# KubeVirt virt-launcher pods (fixtures/kubevirt: pods built from KubeVirt's launcher
# template, see the README's "KubeVirt virtual machines"). Their ServiceAccount,
# vms/example-sa, is replayed from the session files there, as in irsa.bats.

load helpers

KUBEVIRT="$FIXTURES/kubevirt"
SHARE="$KUBEVIRT/settings-share.yaml"
ROLE=arn:aws:iam::123456789012:role/vm
TOKEN_DIR=/var/run/secrets/eks.amazonaws.com/serviceaccount
SERVER=virtiofs-aws-iam-token
SOCKET=/var/run/kubevirt/virtiofs-containers/aws-iam-token.sock

setup_file() {
  annotate_policy
}

setup() {
  use_context_aware
}

# evaluate_as SESSION FIXTURE [SETTINGS]: FIXTURE (a request file, or a name under
# fixtures/kubevirt) with vms/example-sa as recorded in fixtures/kubevirt/SESSION.
evaluate_as() {
  local request=$2
  [[ -f $request ]] || request="$KUBEVIRT/$request.json"
  SESSION="$KUBEVIRT/$1"
  evaluate "$request" "${3:-$SHARE}"
}

# assert_vm_mutated: the patch applies; names are unique, the pod is valid against the
# schema, every mount names a volume of the pod, compute is still the first container of
# a virt-launcher pod and no IAM Roles Anywhere sidecar or endpoint is there.
assert_vm_mutated() {
  assert_pod_ok() {
    assert_unique_names && assert_pod_schema_valid &&
      pod_check "a volume mount names no volume of the pod" \
        "$JQ_CONTAINERS [.spec.volumes[]?.name] as \$v
          | all(containers[]; all(.volumeMounts[]?; .name as \$n | \$v | index([\$n]) != null))" &&
      pod_check "compute is not the first container of the virt-launcher pod" \
        '.metadata.labels["kubevirt.io"] != "virt-launcher" or .spec.containers[0].name == "compute"' &&
      pod_check "the pod got IAM Roles Anywhere" \
        "$JQ_CONTAINERS all(containers[]; .name != \$s
          and all(.env[]?; .name != \"AWS_EC2_METADATA_SERVICE_ENDPOINT\"))" --arg s "$SIDECAR"
  }
  assert_mutated
}

# assert_irsa_everywhere: every container has the role, the token file and the token
# mount, once each.
assert_irsa_everywhere() {
  local name
  for name in $(pod_query "$JQ_CONTAINERS containers[].name"); do
    assert_env "$name" AWS_ROLE_ARN "$ROLE" || return
    assert_env "$name" AWS_WEB_IDENTITY_TOKEN_FILE "$TOKEN_DIR/token" || return
    pod_check "container $name does not mount aws-iam-token once at $TOKEN_DIR" \
      "$JQ_CONTAINERS [containers[] | select(.name == \$n) | .volumeMounts[]?
        | select(.name == \"aws-iam-token\")] | length == 1 and .[0].mountPath == \$d" \
      --arg n "$name" --arg d "$TOKEN_DIR" || return
  done
}

servers() {
  pod_query "$JQ_CONTAINERS [containers[] | select(.name == \$s)] | length" --arg s "$SERVER"
}

# server_query JQ_FILTER: the filter's raw output on the token server container.
server_query() {
  pod_query ".spec.containers[] | select(.name == \$s) | $1" --arg s "$SERVER"
}

@test "kubevirt: a Burstable VM gets IRSA in every container and one token server, last" {
  evaluate_as sa-irsa.yml vm-burstable
  assert_vm_mutated
  assert_no_warnings
  [[ $(container_names containers) == "compute virtiofs-serviceaccount-fs hook-sidecar-0 $SERVER" ]]
  [[ $(container_names initContainers) == guest-console-log ]]
  assert_irsa_everywhere
  [[ $(server_query '.image') == quay.io/kubevirt/virt-launcher:v1.9.0 ]]
  [[ $(server_query '.command | join(" ")') == /usr/libexec/virtiofsd ]]
  [[ $(server_query '.args | join(" ")') == "--socket-path=$SOCKET --shared-dir=$TOKEN_DIR --sandbox=none --cache=auto --migration-on-error=guest-error --migration-mode=find-paths --translate-uid=host:107:0:1" ]]
  [[ $(server_query '.resources == {requests: {cpu: "10m", memory: "1M"}, limits: {cpu: "100m", memory: "80M"}}') == true ]]
  [[ $(server_query '.securityContext | [.runAsUser, .runAsNonRoot, .allowPrivilegeEscalation, .readOnlyRootFilesystem, .seccompProfile.type, (.capabilities.drop | join(","))] | join(" ")') == "107 true false true RuntimeDefault ALL" ]]
  assert_original_kept '.metadata'
  assert_original_kept '.spec.containers[0] | del(.env, .volumeMounts)'
}

@test "kubevirt: the injected VM pod is not mutated again (a migration target gets the same)" {
  evaluate_as sa-irsa.yml vm-burstable
  assert_vm_mutated
  cp "$POD" "$BATS_TEST_TMPDIR/first.json"
  evaluate_as sa-irsa.yml "$(resubmission_request)"
  assert_accepted_unchanged
  assert_no_warnings
  evaluate_as sa-irsa.yml vm-burstable
  assert_vm_mutated
  cmp -s "$POD" "$BATS_TEST_TMPDIR/first.json" || fail "a second CREATE of the same pod got another mutation"
}

@test "kubevirt: a Guaranteed VM's token server has requests equal to limits" {
  evaluate_as sa-irsa.yml vm-guaranteed
  assert_vm_mutated
  [[ $(servers) == 1 ]]
  [[ $(server_query '.resources.requests == .resources.limits') == true ]]
  [[ $(server_query '.resources.limits == {cpu: "100m", memory: "80M"}') == true ]]
}

@test "kubevirt: without a virtiofs filesystem, IRSA only and a warning saying what to add" {
  evaluate_as sa-irsa.yml vm-no-virtiofs
  assert_vm_mutated
  [[ $(servers) == 0 ]]
  assert_irsa_everywhere
  assert_warning "the pod has no volume virtiofs-containers because its VMI declares no virtiofs filesystem" \
    "spec.domain.devices.filesystems"
}

@test "kubevirt: a VM without a hook sidecar is shared too" {
  evaluate_as sa-irsa.yml vm-no-hook
  assert_vm_mutated
  [[ $(container_names containers) == "compute virtiofs-serviceaccount-fs $SERVER" ]]
  assert_irsa_everywhere
}

@test "kubevirt: an existing token server is kept, not doubled, and gets the token" {
  evaluate_as sa-irsa.yml vm-shared
  assert_vm_mutated
  [[ $(servers) == 1 ]]
  [[ $(server_query '.image') == quay.io/kubevirt/virt-launcher:v1.5.1 ]]
  assert_irsa_everywhere
  evaluate_as sa-irsa.yml "$(resubmission_request)"
  assert_accepted_unchanged
}

@test "kubevirt: sharing is off by default: IRSA only" {
  evaluate_as sa-irsa.yml vm-burstable "$FIXTURES/irsa/settings.yaml"
  assert_vm_mutated
  assert_no_warnings
  [[ $(servers) == 0 ]]
  assert_irsa_everywhere
}

@test "kubevirt: the image and --translate-uid follow the settings" {
  evaluate_as sa-irsa.yml vm-burstable "{\"trustAnchorArn\": \"$TRUST_ANCHOR\", \"region\": \"eu-west-1\",
    \"kubevirt\": {\"shareTokenWithGuest\": true, \"virtiofsImage\": \"registry.example/virt-launcher:v1.7.0\", \"translateUid\": false}}"
  assert_vm_mutated
  [[ $(server_query '.image') == registry.example/virt-launcher:v1.7.0 ]]
  [[ $(server_query '[.args[] | select(startswith("--translate-uid"))] | length') == 0 ]]
}

@test "kubevirt: a token from pod-identity-webhook is shared without IRSA from the policy" {
  evaluate_as sa-plain.yml "$(with_spec "$KUBEVIRT/vm-burstable.json" '.volumes += [{"name": "aws-iam-token",
    "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}]')"
  assert_vm_mutated
  [[ $(servers) == 1 ]]
  assert_no_env compute AWS_ROLE_ARN
}

@test "kubevirt: IAM Roles Anywhere annotations on a VM's pod are set aside with a warning" {
  evaluate_as sa-plain.yml vm-iamra
  assert_only_warnings_recorded
  assert_warning "this KubeVirt virt-launcher pod does not get IAM Roles Anywhere" \
    "annotate its ServiceAccount with eks.amazonaws.com/role-arn"
}

@test "kubevirt: IAM Roles Anywhere annotations on a VM's ServiceAccount are set aside with a warning" {
  evaluate_as sa-iamra.yml vm-burstable
  assert_only_warnings_recorded
  assert_warning "does not get IAM Roles Anywhere"
}

@test "kubevirt: a VM whose ServiceAccount has IRSA too gets IRSA, with a warning" {
  evaluate_as sa-both.yml vm-iamra
  assert_vm_mutated
  assert_irsa_everywhere
  assert_warning "its IAM Roles Anywhere annotations are ignored, the ServiceAccount's eks.amazonaws.com/role-arn applies instead"
}

@test "kubevirt: a hotplug-disk pod is any pod: IRSA, no token server" {
  evaluate_as sa-irsa.yml hotplug-disk
  assert_vm_mutated
  assert_no_warnings
  [[ $(servers) == 0 ]]
  assert_irsa_everywhere
}
