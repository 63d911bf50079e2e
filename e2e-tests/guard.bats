#!/usr/bin/env bats
# The identity guard (settings `mode: guard`): nobody mints a workload certificate with
# somebody else's identity, through a pod's csi volume, a Certificate or a
# CertificateRequest. Inject mode applies the same pod rule.

load helpers

GUARD='{"mode": "guard"}'
REQUESTER='{"mode": "guard", "certificateRequests": {"binding": "requester"}}'
CSI_DRIVER_USER=system:serviceaccount:cert-manager:cert-manager-csi-driver
OWN_ACCOUNT=system:serviceaccount:payments:payments-api

setup_file() {
  # The CSRs of the CertificateRequest tests, made fresh for this run.
  python3 "$TOOLS/make_csrs.py" "$BATS_FILE_TMPDIR/csr"
}

# certificate_request CSR USER [JQ_FILTER]: a CertificateRequest for the workload issuer
# in namespace payments, as the csi-driver creates it from the injected volume, with
# the CSR of make_csrs.py case CSR, made by USER, and JQ_FILTER applied to the review.
certificate_request() {
  request_from "$FIXTURES/guard/certificaterequest.json" \
    '.request.namespace = "payments" | .request.object.metadata.namespace = "payments"
     | .request.userInfo.username = $user
     | .request.object.spec += {request: $csr, duration: "24h0m0s", usages: ["digital signature", "client auth"]}
     | '"${3:-.}" \
    --arg user "$2" --arg csr "$(base64 -w0 "$BATS_FILE_TMPDIR/csr/$1.pem")"
}

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
  evaluate "$(certificate_request good-p256 "$CSI_DRIVER_USER")" "$GUARD"
  assert_accepted_unchanged
}

@test "guard: allowedRequesters replaces the csi-driver" {
  evaluate "$(certificate_request good-p256 mallory@example.com)" '{"mode": "guard", "allowedRequesters": ["mallory@example.com"]}'
  assert_accepted_unchanged
}

@test "guard: even the csi-driver gets only CSRs of the identity scheme" {
  evaluate "$(certificate_request extra-dns "$CSI_DRIVER_USER")" "$GUARD"
  assert_rejected "CertificateRequest \"payments-api-x7k2p\" from \"$CSI_DRIVER_USER\"" \
    'its spec.request asks for DNS SAN "api.payments.svc"; expected no SAN but the URI SAN'
  evaluate "$(certificate_request mixed-identity "$CSI_DRIVER_USER")" "$GUARD"
  assert_rejected 'its spec.request has subject' 'expected only CN="ns/payments/sa/payments-api"'
  evaluate "$FIXTURES/guard/certificaterequest.json" '{"mode": "guard", "allowedRequesters": ["mallory@example.com"]}'
  assert_rejected 'its spec.request is not one PEM block of type CERTIFICATE REQUEST'
}

@test "guard: an empty allowedRequesters is refused unless requests are bound to their requester" {
  settings_rejected '{"mode": "guard", "allowedRequesters": []}' \
    'allowedRequesters: is empty, so the guard would refuse every workload certificate'
  evaluate "$(certificate_request good-p256 "$OWN_ACCOUNT")" \
    '{"mode": "guard", "allowedRequesters": [], "certificateRequests": {"binding": "requester"}}'
  assert_accepted_unchanged
}

@test "guard, binding requester: a ServiceAccount gets its own identity, with any accepted key" {
  local csr
  for csr in good-p256 good-p384 good-rsa2048; do
    evaluate "$(certificate_request "$csr" "$OWN_ACCOUNT")" "$REQUESTER"
    assert_accepted_unchanged
  done
}

@test "guard, binding requester: the requester must be a ServiceAccount of the request's namespace" {
  local user
  for user in "$CSI_DRIVER_USER" mallory@example.com system:serviceaccount:billing:payments-api; do
    evaluate "$(certificate_request good-p256 "$user")" "$REQUESTER"
    assert_rejected "from \"$user\"" 'only a ServiceAccount of namespace "payments" may request'
  done
}

@test "guard, binding requester: another namespace's or ServiceAccount's identity is rejected" {
  evaluate "$(certificate_request other-namespace "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'has URI SANs ["spiffe://cluster/ns/billing/sa/payments-api"]; expected exactly one, "spiffe://cluster/ns/payments/sa/payments-api"' \
    'has subject [CN (2.5.4.3)="ns/billing/sa/payments-api"]'
  evaluate "$(certificate_request other-account "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'has URI SANs ["spiffe://cluster/ns/payments/sa/admin"]'
}

@test "guard, binding requester: extra DNS, IP and URI SANs are rejected" {
  evaluate "$(certificate_request extra-dns "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'asks for DNS SAN "api.payments.svc"'
  evaluate "$(certificate_request extra-ip "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'asks for IP SAN 10.0.0.7'
  evaluate "$(certificate_request extra-uri "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected '"spiffe://cluster/ns/payments/sa/admin"]; expected exactly one'
}

@test "guard, binding requester: a CA request is rejected" {
  evaluate "$(certificate_request good-p256 "$OWN_ACCOUNT" '.request.object.spec.isCA = true')" "$REQUESTER"
  assert_rejected 'its spec.isCA is true; expected false'
  evaluate "$(certificate_request ca-extension "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'requests extension basicConstraints (2.5.29.19); expected only the subjectAltName extension'
}

@test "guard, binding requester: keys IAM Roles Anywhere does not accept are rejected" {
  evaluate "$(certificate_request rsa1024 "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'has a 1024-bit RSA key; IAM Roles Anywhere accepts ECDSA P-256 or P-384, or RSA of at least 2048 bits'
  evaluate "$(certificate_request ed25519 "$OWN_ACCOUNT")" "$REQUESTER"
  assert_rejected 'has a key of algorithm Ed25519 (1.3.101.112)'
}

@test "guard, binding requester: garbage in spec.request is rejected" {
  evaluate "$(certificate_request good-p256 "$OWN_ACCOUNT" '.request.object.spec.request = "bm90IGEgQ1NS"')" "$REQUESTER"
  assert_rejected 'its spec.request is not one PEM block of type CERTIFICATE REQUEST'
}

@test "guard, binding requester: usages and duration are the injected ones" {
  evaluate "$(certificate_request good-p256 "$OWN_ACCOUNT" \
    '.request.object.spec += {usages: ["digital signature", "server auth"], duration: "2160h"}')" "$REQUESTER"
  assert_rejected 'its spec.usages are ["digital signature", "server auth"]; expected ["digital signature", "client auth"]' \
    'its spec.duration is "2160h"; expected 1h to certificate.duration "24h"'
}

@test "guard, binding requester: requests for other issuers pass untouched" {
  evaluate "$(certificate_request extra-dns mallory@example.com '.request.object.spec.issuerRef.name = "letsencrypt"')" "$REQUESTER"
  assert_accepted_unchanged
}

@test "inject mode leaves Certificates to the guard" {
  evaluate "$FIXTURES/guard/certificate.json"
  assert_accepted_unchanged
}
