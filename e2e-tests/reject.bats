#!/usr/bin/env bats
# Opted-in pods the policy cannot serve are refused (allowed: false, code 400) with a
# message naming the annotation or field; nothing is patched. Each request is the plain
# pod with one change.

load helpers

# rejected_with_annotations ANNOTATIONS_JSON TEXT...: the plain pod with these
# annotations (null removes one) is refused with a message containing every TEXT.
rejected_with_annotations() {
  local annotations=$1
  shift
  evaluate "$(with_annotations "$FIXTURES/pod-plain.json" "$annotations")"
  assert_rejected "$@"
}

# rejected_with_spec JQ_FILTER TEXT...: the same for a change of the pod's spec.
rejected_with_spec() {
  local filter=$1
  shift
  evaluate "$(with_spec "$FIXTURES/pod-plain.json" "$filter")"
  assert_rejected "$@"
}

@test "role ARN without a signing profile" {
  rejected_with_annotations '{"iamra.aws/signing-profile-arn": null}' \
    "annotation iamra.aws/role-arn needs iamra.aws/signing-profile-arn too"
}

@test "signing profile without a role ARN" {
  rejected_with_annotations '{"iamra.aws/role-arn": null}' \
    "annotation iamra.aws/signing-profile-arn needs iamra.aws/role-arn too"
}

@test "malformed role ARN" {
  rejected_with_annotations '{"iamra.aws/role-arn": "app"}' \
    'annotation iamra.aws/role-arn: "app" is not an IAM role ARN'
}

@test "role ARN of another service" {
  rejected_with_annotations '{"iamra.aws/role-arn": "arn:aws:s3:::payments-bucket"}' \
    "annotation iamra.aws/role-arn"
}

@test "role in another partition than the trust anchor" {
  rejected_with_annotations '{"iamra.aws/role-arn": "arn:aws-cn:iam::123456789012:role/app"}' \
    "annotation iamra.aws/role-arn" 'partition "aws-cn"'
}

@test "malformed signing profile ARN" {
  rejected_with_annotations '{"iamra.aws/signing-profile-arn": "profile/x"}' \
    'annotation iamra.aws/signing-profile-arn: "profile/x" is not an IAM Roles Anywhere profile ARN'
}

@test "a trust anchor ARN given as the signing profile" {
  rejected_with_annotations \
    "{\"iamra.aws/signing-profile-arn\": \"$TRUST_ANCHOR\"}" \
    "annotation iamra.aws/signing-profile-arn"
}

@test "signing profile in another region than the trust anchor" {
  rejected_with_annotations \
    '{"iamra.aws/signing-profile-arn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70"}' \
    "annotation iamra.aws/signing-profile-arn" "aws/us-east-1" "aws/eu-west-1"
}

@test "token duration that is not a duration" {
  rejected_with_annotations '{"iamra.aws/token-duration": "soon"}' \
    'annotation iamra.aws/token-duration: "soon" is not a duration'
}

@test "token duration under 900 seconds" {
  rejected_with_annotations '{"iamra.aws/token-duration": "899"}' \
    'annotation iamra.aws/token-duration: "899" is 899s' "between 900s (15m) and 43200s (12h)"
}

@test "token duration over 12 hours" {
  rejected_with_annotations '{"iamra.aws/token-duration": "12h1s"}' \
    "annotation iamra.aws/token-duration" "43201s"
}

@test "unknown log level" {
  rejected_with_annotations '{"iamra.aws/log-level": "trace"}' \
    'annotation iamra.aws/log-level: "trace" is not debug or info (aws_signing_helper has only --debug)'
}

@test "log levels the helper cannot honour (warn, error) are refused" {
  rejected_with_annotations '{"iamra.aws/log-level": "warn"}' \
    'annotation iamra.aws/log-level: "warn" is not debug or info'
}

@test "session name with spaces" {
  rejected_with_annotations '{"iamra.aws/session-name": "payments api"}' \
    'annotation iamra.aws/session-name: "payments api" is not a role session name'
}

@test "session name of one character" {
  rejected_with_annotations '{"iamra.aws/session-name": "x"}' "annotation iamra.aws/session-name"
}

@test "region that is not an AWS region" {
  rejected_with_annotations '{"iamra.aws/region": "mars-1"}' \
    'annotation iamra.aws/region: "mars-1" is not an AWS region name'
}

@test "every annotation problem is reported at once" {
  rejected_with_annotations '{"iamra.aws/region": "mars-1", "iamra.aws/log-level": "loud"}' \
    "annotation iamra.aws/region" "annotation iamra.aws/log-level"
}

@test "an app container named like the sidecar" {
  rejected_with_spec '.containers[0].name = "iamra-credential-helper"' \
    'container "iamra-credential-helper" already exists' "reserved for the credentials sidecar"
}

@test "an init container named like the sidecar" {
  rejected_with_spec '.initContainers = [{"name": "iamra-credential-helper", "image": "busybox"}]' \
    'container "iamra-credential-helper" already exists'
}

@test "an app container using the sidecar's port 9911" {
  rejected_with_spec '.containers[0].ports += [{"containerPort": 9911}]' \
    'container "app" uses port 9911' "sidecar.port"
}

@test "an init container using the sidecar's port 9911" {
  rejected_with_spec '.initContainers = [{"name": "setup", "image": "busybox", "ports": [{"containerPort": 9911}]}]' \
    'container "setup" uses port 9911'
}

@test "the port check follows sidecar.port" {
  evaluate "$(with_spec "$FIXTURES/pod-plain.json" '.containers[0].ports = [{"containerPort": 9920}]')" \
    "$(settings_with '{"sidecar": {"port": 9920}}')"
  assert_rejected 'container "app" uses port 9920'
}

@test "hostNetwork: true" {
  rejected_with_spec '.hostNetwork = true' "spec.hostNetwork is true"
}

@test "Windows pod by spec.os.name" {
  rejected_with_spec '.os = {"name": "windows"}' "the pod runs on Windows"
}

@test "Windows pod by nodeSelector kubernetes.io/os" {
  rejected_with_spec '.nodeSelector = {"kubernetes.io/os": "windows"}' "the pod runs on Windows"
}

@test "a volume that already uses the certificate volume's name" {
  rejected_with_spec '.volumes = [{"name": "iamra-credentials", "emptyDir": {}}]' \
    'volume "iamra-credentials" already exists'
}

@test "a service account name too long for the certificate's common name" {
  rejected_with_spec '.serviceAccountName = "a-very-long-service-account-name-for-the-payments-api"' \
    "over X.509's limit of 64"
}

@test "a generateName too long to be a role session name, without iamra.aws/session-name" {
  evaluate "$(request_from "$FIXTURES/pod-generated-name.json" \
    '.request.object.metadata.generateName = ("p" * 70 + "-")')"
  assert_rejected "set annotation iamra.aws/session-name"
}

@test "a pod without containers" {
  rejected_with_spec '.containers = []' "spec.containers must be a non-empty list"
}
