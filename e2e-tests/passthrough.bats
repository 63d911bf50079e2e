#!/usr/bin/env bats
# Requests the policy does not act on are allowed unchanged: no patch, no warning.

load helpers

@test "a pod without the annotations is allowed unchanged" {
  evaluate "$(with_annotations "$FIXTURES/pod-plain.json" \
    '{"iamra.aws/role-arn": null, "iamra.aws/signing-profile-arn": null}')"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "a Deployment whose pod template opts in is allowed unchanged (its pods are injected)" {
  evaluate "$FIXTURES/deployment.json"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "a pod UPDATE is allowed unchanged" {
  evaluate "$FIXTURES/pod-update.json"
  assert_accepted_unchanged
  assert_no_warnings
}

@test "a pod UPDATE is allowed even when the pod would be refused on CREATE" {
  evaluate "$(request_from "$FIXTURES/pod-update.json" '.request.object.spec.hostNetwork = true')"
  assert_accepted_unchanged
}

@test "a pod DELETE is allowed unchanged" {
  evaluate "$(request_from "$FIXTURES/pod-update.json" \
    '.request.operation = "DELETE" | .request.oldObject = .request.object | .request.object = null
     | .request.options = {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"}')"
  assert_accepted_unchanged
}

@test "a request for a pod subresource (subResource set) is allowed unchanged" {
  evaluate "$(request_from "$FIXTURES/pod-plain.json" '.request.subResource = "ephemeralcontainers"')"
  assert_accepted_unchanged
}
