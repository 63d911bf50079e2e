//! The workload identity a pod's certificate carries, and the cert-manager csi-driver
//! volume attributes that request it. The node fills in the namespace and service
//! account from the pod itself, so a pod cannot choose another identity through us.

use crate::settings::{IssuerRef, KeyAlgorithm, Settings};
use serde_json::{json, Map, Value};

pub const CSI_DRIVER: &str = "csi.cert-manager.io";
/// The helper's user and group in AWS's image; the key file is made readable to it.
pub const HELPER_UID: i64 = 65532;

pub fn attr(name: &str) -> String {
    format!("{CSI_DRIVER}/{name}")
}

/// `spiffe://<cluster>/ns/<ns>/sa/<sa>` with csi-driver's variables.
pub fn uri_san_template(settings: &Settings) -> String {
    format!(
        "spiffe://{}/ns/${{POD_NAMESPACE}}/sa/${{SERVICE_ACCOUNT_NAME}}",
        settings.cluster_name
    )
}

/// The common name carries the same path as the URI SAN, short enough for X.509's
/// 64-character limit in most clusters.
pub const COMMON_NAME_TEMPLATE: &str = "ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}";

/// The identity as it will read once the node expands the templates.
pub fn common_name(namespace: &str, service_account: &str) -> String {
    format!("ns/{namespace}/sa/{service_account}")
}

pub fn uri_san(settings: &Settings, namespace: &str, service_account: &str) -> String {
    format!(
        "spiffe://{}/ns/{namespace}/sa/{service_account}",
        settings.cluster_name
    )
}

/// X.509 limits a subject common name to 64 characters (RFC 5280 ub-common-name).
pub fn check_common_name(namespace: &str, service_account: &str) -> Result<(), String> {
    let cn = common_name(namespace, service_account);
    if cn.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "the certificate's common name {cn:?} would be {} characters, over X.509's limit of 64; \
             use a shorter service account name",
            cn.len()
        ))
    }
}

/// The csi volume attributes for the pod's client certificate.
pub fn volume_attributes(settings: &Settings) -> Map<String, Value> {
    let cert = &settings.certificate;
    let algorithm = match cert.key_algorithm {
        KeyAlgorithm::Ecdsa => "ECDSA",
        KeyAlgorithm::Rsa => "RSA",
    };
    [
        ("issuer-name", cert.issuer.name.clone()),
        ("issuer-kind", cert.issuer.kind.clone()),
        ("issuer-group", cert.issuer.group.clone()),
        ("common-name", COMMON_NAME_TEMPLATE.to_owned()),
        ("uri-sans", uri_san_template(settings)),
        ("duration", cert.duration.clone()),
        ("renew-before", cert.renew_before.clone()),
        // IAM Roles Anywhere verifies a signature made with the key: digital signature.
        ("key-usages", "digital signature,client auth".to_owned()),
        ("key-algorithm", algorithm.to_owned()),
        ("key-size", cert.key_size.to_string()),
        // The helper reads PKCS#8 for both key types.
        ("key-encoding", "PKCS8".to_owned()),
        ("fs-group", HELPER_UID.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (attr(k), Value::String(v)))
    .collect()
}

/// The pod volume that holds the certificate, key and CA.
pub fn volume(name: &str, settings: &Settings) -> Value {
    json!({
        "name": name,
        "csi": {
            "driver": CSI_DRIVER,
            "readOnly": true,
            "volumeAttributes": volume_attributes(settings),
        }
    })
}

/// Attributes a workload-issuer volume may carry besides the identity: none of them
/// changes who the certificate names.
const NEUTRAL_ATTRIBUTES: [&str; 14] = [
    "issuer-name",
    "issuer-kind",
    "issuer-group",
    "duration",
    "renew-before",
    "key-usages",
    "key-algorithm",
    "key-size",
    "key-encoding",
    "fs-group",
    "certificate-file",
    "privatekey-file",
    "ca-file",
    "reuse-private-key",
];

/// An issuer reference as cert-manager resolves it: an empty kind is `Issuer`, an empty
/// group `cert-manager.io`.
fn resolved(name: &str, kind: &str, group: &str) -> (String, String, String) {
    let or = |v: &str, default: &str| if v.is_empty() { default } else { v }.to_owned();
    (
        name.to_owned(),
        or(kind, "Issuer"),
        or(group, "cert-manager.io"),
    )
}

/// Whether a reference names the workload issuer of the settings. A namespaced
/// `Issuer` of the same name is another issuer than a `ClusterIssuer`.
pub fn is_workload_issuer(name: &str, kind: &str, group: &str, issuer: &IssuerRef) -> bool {
    resolved(name, kind, group) == resolved(&issuer.name, &issuer.kind, &issuer.group)
}

fn describe(issuer: &IssuerRef) -> String {
    format!("{}/{} ({})", issuer.kind, issuer.name, issuer.group)
}

/// The guard's pod rule: a csi volume from the workload issuer must request exactly
/// the canonical identity, which the node fills in from the pod itself.
pub fn check_pod_volumes(pod: &Value, settings: &Settings) -> Vec<String> {
    let issuer = &settings.certificate.issuer;
    let canonical = [
        (attr("uri-sans"), uri_san_template(settings)),
        (attr("common-name"), COMMON_NAME_TEMPLATE.to_owned()),
    ];
    let mut errors = Vec::new();
    for volume in crate::pod::list(pod, crate::pod::VOLUMES) {
        let Some(csi) = volume
            .get("csi")
            .filter(|c| c.get("driver").and_then(Value::as_str) == Some(CSI_DRIVER))
        else {
            continue;
        };
        let empty = Map::new();
        let attrs = csi
            .get("volumeAttributes")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let get = |k: &str| {
            attrs
                .get(&attr(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if !is_workload_issuer(
            get("issuer-name"),
            get("issuer-kind"),
            get("issuer-group"),
            issuer,
        ) {
            continue;
        }
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for (key, expected) in &canonical {
            let found = attrs.get(key).and_then(Value::as_str);
            if found != Some(expected.as_str()) {
                errors.push(format!(
                    "volume {name:?} requests a certificate from the workload issuer {} with {key} {}; \
                     only the identity this policy injects is allowed: {key} {expected:?}",
                    describe(issuer),
                    found.map_or("unset".to_owned(), |f| format!("{f:?}")),
                ));
            }
        }
        let extra: Vec<&str> = attrs
            .keys()
            .filter(|k| !canonical.iter().any(|(c, _)| c == *k))
            .filter(|k| {
                k.strip_prefix(CSI_DRIVER)
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(|a| !NEUTRAL_ATTRIBUTES.contains(&a))
            })
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            errors.push(format!(
                "volume {name:?} requests a certificate from the workload issuer {} with {}, which \
                 would add to or change the workload identity; remove them",
                describe(issuer),
                extra.join(", ")
            ));
        }
    }
    errors
}

/// The guard's rule for cert-manager `Certificate`s and `CertificateRequest`s: only the
/// csi-driver (the settings' `allowedRequesters`) may request workload certificates,
/// and no `Certificate` may name the workload issuer.
pub fn check_certificate_resource(
    kind: &str,
    object: &Value,
    username: &str,
    settings: &Settings,
) -> Option<String> {
    let issuer_ref = object.get("spec").and_then(|s| s.get("issuerRef"));
    let get = |k: &str| {
        issuer_ref
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let issuer = &settings.certificate.issuer;
    if !is_workload_issuer(get("name"), get("kind"), get("group"), issuer) {
        return None;
    }
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "Certificate" => Some(format!(
            "Certificate {name:?} names the workload issuer {}: workload certificates are issued \
             only to pods, through the csi-driver volume this policy injects",
            describe(issuer)
        )),
        _ if settings.allowed_requesters.iter().any(|u| u == username) => None,
        _ => Some(format!(
            "CertificateRequest {name:?} from {username:?} names the workload issuer {}: only {} \
             may request workload certificates",
            describe(issuer),
            settings.allowed_requesters.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::tests::settings;

    #[test]
    fn attributes_request_the_canonical_identity_from_the_configured_issuer() {
        let mut s = settings();
        s.cluster_name = "prod".into();
        s.certificate.issuer.name = "pca".into();
        s.certificate.issuer.kind = "AWSPCAClusterIssuer".into();
        s.certificate.issuer.group = "awspca.cert-manager.io".into();
        let a = volume_attributes(&s);
        let get = |k: &str| a[&attr(k)].as_str().unwrap().to_owned();
        assert_eq!(get("issuer-name"), "pca");
        assert_eq!(get("issuer-kind"), "AWSPCAClusterIssuer");
        assert_eq!(get("issuer-group"), "awspca.cert-manager.io");
        assert_eq!(
            get("uri-sans"),
            "spiffe://prod/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"
        );
        assert_eq!(
            get("common-name"),
            "ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"
        );
        assert_eq!(get("duration"), "24h");
        assert_eq!(get("renew-before"), "8h");
        assert_eq!(get("key-usages"), "digital signature,client auth");
        assert_eq!(
            (get("key-algorithm"), get("key-size")),
            ("ECDSA".into(), "256".into())
        );
        assert_eq!(get("fs-group"), "65532");
    }

    #[test]
    fn rsa_keys_are_requested_when_configured() {
        let mut s = settings();
        s.certificate.key_algorithm = KeyAlgorithm::Rsa;
        s.certificate.key_size = 3072;
        let a = volume_attributes(&s);
        assert_eq!(a[&attr("key-algorithm")], "RSA");
        assert_eq!(a[&attr("key-size")], "3072");
    }

    #[test]
    fn common_name_length_is_checked() {
        assert!(check_common_name("payments", "payments-api").is_ok());
        let err = check_common_name("payments", &"a".repeat(60)).unwrap_err();
        assert!(err.contains("over X.509's limit of 64"), "{err}");
    }

    fn pod_with(attrs: Value) -> Value {
        json!({"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "cert", "csi": {"driver": CSI_DRIVER, "volumeAttributes": attrs}},
        ]}})
    }

    fn canonical() -> Value {
        Value::Object(volume_attributes(&settings()))
    }

    fn with(mut attrs: Value, key: &str, value: &str) -> Value {
        attrs[attr(key)] = json!(value);
        attrs
    }

    #[test]
    fn the_injected_volume_passes_the_guard() {
        assert!(check_pod_volumes(&pod_with(canonical()), &settings()).is_empty());
        assert!(check_pod_volumes(&json!({"spec": {}}), &settings()).is_empty());
    }

    #[rstest::rstest]
    #[case::forged_literal_san(
        with(
            canonical(),
            "uri-sans",
            "spiffe://cluster/ns/payments/sa/payments-api"
        ),
        "with csi.cert-manager.io/uri-sans \"spiffe://cluster/ns/payments/sa/payments-api\""
    )]
    #[case::extra_san(with(canonical(), "uri-sans", "spiffe://cluster/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME},spiffe://cluster/ns/payments/sa/api"), "csi.cert-manager.io/uri-sans")]
    #[case::forged_common_name(
        with(canonical(), "common-name", "ns/payments/sa/payments-api"),
        "csi.cert-manager.io/common-name \"ns/payments/sa/payments-api\""
    )]
    #[case::missing_identity(json!({"csi.cert-manager.io/issuer-name": "iamra-workload", "csi.cert-manager.io/issuer-kind": "ClusterIssuer"}), "csi.cert-manager.io/uri-sans unset")]
    #[case::dns_names(
        with(canonical(), "dns-names", "api.payments.svc"),
        "with csi.cert-manager.io/dns-names, which"
    )]
    #[case::ip_sans(
        with(canonical(), "ip-sans", "10.0.0.1"),
        "csi.cert-manager.io/ip-sans"
    )]
    #[case::literal_subject(
        with(canonical(), "literal-subject", "CN=ns/payments/sa/payments-api"),
        "csi.cert-manager.io/literal-subject"
    )]
    #[case::organizations(
        with(canonical(), "organizations", "payments"),
        "csi.cert-manager.io/organizations"
    )]
    #[case::is_ca(with(canonical(), "is-ca", "true"), "csi.cert-manager.io/is-ca")]
    #[case::default_group(
        with(with(canonical(), "issuer-group", ""), "uri-sans", "spiffe://x"),
        "uri-sans \"spiffe://x\""
    )]
    fn forged_volumes_are_rejected(#[case] attrs: Value, #[case] message: &str) {
        let errors = check_pod_volumes(&pod_with(attrs), &settings());
        assert!(
            errors
                .iter()
                .any(|e| e.contains(message) && e.contains("\"cert\"")),
            "{errors:?}"
        );
    }

    #[rstest::rstest]
    #[case::namespaced_issuer_of_the_same_name(with(
        with(canonical(), "issuer-kind", "Issuer"),
        "uri-sans",
        "spiffe://x"
    ))]
    #[case::empty_kind_means_issuer(with(
        with(canonical(), "issuer-kind", ""),
        "uri-sans",
        "spiffe://x"
    ))]
    #[case::another_issuer(with(
        with(canonical(), "issuer-name", "web"),
        "dns-names",
        "web.example"
    ))]
    #[case::another_group(with(
        with(canonical(), "issuer-group", "awspca.cert-manager.io"),
        "uri-sans",
        "spiffe://x"
    ))]
    fn other_issuers_are_not_the_guards_business(#[case] attrs: Value) {
        assert!(check_pod_volumes(&pod_with(attrs), &settings()).is_empty());
    }

    fn cert_object(issuer_ref: Value) -> Value {
        json!({"metadata": {"name": "stolen"}, "spec": {"issuerRef": issuer_ref}})
    }

    const CLUSTER_ISSUER: fn() -> Value =
        || json!({"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"});

    #[test]
    fn certificates_for_the_workload_issuer_are_rejected() {
        let err = check_certificate_resource(
            "Certificate",
            &cert_object(CLUSTER_ISSUER()),
            "alice",
            &settings(),
        )
        .unwrap();
        assert!(
            err.contains(
                "Certificate \"stolen\" names the workload issuer ClusterIssuer/iamra-workload"
            ),
            "{err}"
        );
        let no_group = json!({"name": "iamra-workload", "kind": "ClusterIssuer"});
        assert!(check_certificate_resource(
            "Certificate",
            &cert_object(no_group),
            "alice",
            &settings()
        )
        .is_some());
        let namespaced = json!({"name": "iamra-workload"});
        assert!(check_certificate_resource(
            "Certificate",
            &cert_object(namespaced),
            "alice",
            &settings()
        )
        .is_none());
    }

    #[rstest::rstest]
    #[case("alice", false)]
    #[case("system:serviceaccount:payments:default", false)]
    #[case(crate::settings::CSI_DRIVER_USER, true)]
    fn certificate_requests_come_only_from_the_csi_driver(
        #[case] user: &str,
        #[case] allowed: bool,
    ) {
        let verdict = check_certificate_resource(
            "CertificateRequest",
            &cert_object(CLUSTER_ISSUER()),
            user,
            &settings(),
        );
        assert_eq!(verdict.is_none(), allowed, "{verdict:?}");
        if let Some(err) = verdict {
            assert!(
                err.contains(&format!("from {user:?}"))
                    && err.contains(
                        "only system:serviceaccount:cert-manager:cert-manager-csi-driver"
                    ),
                "{err}"
            );
        }
    }
}
