#!/usr/bin/env bats
# The identity guard (settings `mode: guard`): nobody mints a workload certificate with
# somebody else's identity, through a pod's csi volume, a Certificate or a
# CertificateRequest. Inject mode applies the same pod rule.

load helpers

GUARD='{"mode": "guard"}'

# The volume attributes the injection writes, as JSON.
canonical_attributes() {
  jq -n '{
    "csi.cert-manager.io/issuer-name": "iamra-workload",
    "csi.cert-manager.io/issuer-kind": "ClusterIssuer",
    "csi.cert-manager.io/issuer-group": "cert-manager.io",
    "csi.cert-manager.io/uri-sans": "spiffe://cluster/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}",
    "csi.cert-manager.io/common-name": "ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"
  }'
}

# pod_with_volume JQ_FILTER: the plain pod with a csi volume "stolen" whose attributes are
# the canonical ones with JQ_FILTER applied.
pod_with_volume() {
  request_from "$FIXTURES/pod-plain.json" \
    '.request.object.spec.volumes = [{name: "stolen", csi: {driver: "csi.cert-manager.io",
       volumeAttributes: ($attrs | '"$1"')}}]' \
    --argjson attrs "$(canonical_attributes)"
}

@test "guard: the injected pod is accepted unchanged" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_mutated
  evaluate "$(resubmission_request)" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: an opted-in pod is never mutated in guard mode" {
  evaluate "$FIXTURES/pod-plain.json" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: the canonical identity in a volume of the pod's own is accepted" {
  evaluate "$(pod_with_volume '.')" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: a forged literal URI SAN is rejected" {
  evaluate "$(pod_with_volume '.["csi.cert-manager.io/uri-sans"] = "spiffe://cluster/ns/payments/sa/payments-api"')" "$GUARD"
  assert_rejected 'volume "stolen"' 'csi.cert-manager.io/uri-sans "spiffe://cluster/ns/payments/sa/payments-api"' \
    'only the identity this policy injects is allowed'
}

@test "guard: an extra URI SAN beside the canonical one is rejected" {
  evaluate "$(pod_with_volume '.["csi.cert-manager.io/uri-sans"] += ",spiffe://cluster/ns/payments/sa/payments-api"')" "$GUARD"
  assert_rejected 'volume "stolen"' 'csi.cert-manager.io/uri-sans'
}

@test "guard: a forged common name is rejected" {
  evaluate "$(pod_with_volume '.["csi.cert-manager.io/common-name"] = "ns/payments/sa/payments-api"')" "$GUARD"
  assert_rejected 'volume "stolen"' 'csi.cert-manager.io/common-name "ns/payments/sa/payments-api"'
}

@test "guard: other identity attributes (dns-names, literal-subject, is-ca) are rejected" {
  evaluate "$(pod_with_volume '. + {"csi.cert-manager.io/dns-names": "api.payments.svc",
    "csi.cert-manager.io/literal-subject": "CN=x", "csi.cert-manager.io/is-ca": "true"}')" "$GUARD"
  assert_rejected 'csi.cert-manager.io/dns-names' 'csi.cert-manager.io/is-ca' 'csi.cert-manager.io/literal-subject'
}

@test "guard: an empty issuer group means cert-manager.io, so the forgery is still caught" {
  evaluate "$(pod_with_volume 'del(.["csi.cert-manager.io/issuer-group"]) | .["csi.cert-manager.io/uri-sans"] = "spiffe://x"')" "$GUARD"
  assert_rejected 'volume "stolen"'
}

@test "guard: a same-named namespaced Issuer is another issuer and is accepted" {
  evaluate "$(pod_with_volume '.["csi.cert-manager.io/issuer-kind"] = "Issuer"
    | .["csi.cert-manager.io/uri-sans"] = "spiffe://cluster/ns/payments/sa/payments-api"')" "$GUARD"
  assert_accepted_unchanged
}

@test "inject mode: a forged volume beside the injected one is rejected" {
  evaluate "$(pod_with_volume '.["csi.cert-manager.io/uri-sans"] = "spiffe://cluster/ns/payments/sa/admin"')"
  assert_rejected 'volume "stolen"'
}

@test "guard: a Certificate for the workload issuer is rejected on CREATE and UPDATE" {
  evaluate "$FIXTURES/guard/certificate.json" "$GUARD"
  assert_rejected 'Certificate "payments-api" names the workload issuer ClusterIssuer/iamra-workload'
  evaluate "$(request_from "$FIXTURES/guard/certificate.json" '.request.operation = "UPDATE"
    | .request.oldObject = .request.object')" "$GUARD"
  assert_rejected 'Certificate "payments-api"'
}

@test "guard: a Certificate for another issuer is accepted" {
  evaluate "$(request_from "$FIXTURES/guard/certificate.json" '.request.object.spec.issuerRef.name = "letsencrypt"')" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: a CertificateRequest from an ordinary user is rejected" {
  evaluate "$FIXTURES/guard/certificaterequest.json" "$GUARD"
  assert_rejected 'CertificateRequest "payments-api-x7k2p" from "mallory@example.com"' \
    'only system:serviceaccount:cert-manager:cert-manager-csi-driver may request workload certificates'
}

@test "guard: a CertificateRequest from the csi-driver is accepted" {
  evaluate "$(request_from "$FIXTURES/guard/certificaterequest.json" \
    '.request.userInfo.username = "system:serviceaccount:cert-manager:cert-manager-csi-driver"')" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: allowedRequesters replaces the csi-driver" {
  evaluate "$FIXTURES/guard/certificaterequest.json" '{"mode": "guard", "allowedRequesters": ["mallory@example.com"]}'
  assert_accepted_unchanged
}

@test "inject mode leaves Certificates to the guard" {
  evaluate "$FIXTURES/guard/certificate.json"
  assert_accepted_unchanged
}
