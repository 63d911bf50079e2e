//! The guard's rules: no pod, Certificate or CertificateRequest may mint a workload
//! identity it is not entitled to. The guard mode applies all of them; inject mode
//! applies the pod rule to the pods it injects.

use crate::identity::{
    attr, describe, is_workload_issuer, uri_san_template, COMMON_NAME_TEMPLATE, CSI_DRIVER,
};
use crate::pod;
use crate::problem::{Problem, Problems};
use crate::settings::Settings;
use serde_json::{Map, Value};

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

/// The guard's pod rule: a csi volume from the workload issuer must request exactly
/// the canonical identity, which the node fills in from the pod itself.
pub fn check_pod_volumes(pod: &Value, settings: &Settings, problems: &mut Problems) {
    let csi_volumes = pod::list(pod, pod::VOLUMES).iter().filter_map(|volume| {
        let csi = volume
            .get("csi")
            .filter(|c| c.get("driver").and_then(Value::as_str) == Some(CSI_DRIVER))?;
        Some((volume, csi))
    });
    let mut canonical = None;
    for (volume, csi) in csi_volumes {
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
        let issuer = &settings.certificate.issuer;
        if !is_workload_issuer(
            get("issuer-name"),
            get("issuer-kind"),
            get("issuer-group"),
            issuer,
        ) {
            continue;
        }
        let canonical = canonical.get_or_insert_with(|| {
            [
                (attr("uri-sans"), uri_san_template(settings)),
                (attr("common-name"), COMMON_NAME_TEMPLATE.to_owned()),
            ]
        });
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_identity(name, attrs, canonical, settings, problems);
    }
}

/// One workload-issuer volume's attributes against the canonical identity.
fn check_identity(
    name: &str,
    attrs: &Map<String, Value>,
    canonical: &[(String, String); 2],
    settings: &Settings,
    problems: &mut Problems,
) {
    let issuer = describe(&settings.certificate.issuer);
    for (key, expected) in canonical {
        let found = attrs.get(key).and_then(Value::as_str);
        if found != Some(expected.as_str()) {
            problems.error(Problem::pod(format!(
                "volume {name:?} requests a certificate from the workload issuer {issuer} with {key} {}; \
                 only the identity this policy injects is allowed: {key} {expected:?}",
                found.map_or("unset".to_owned(), |f| format!("{f:?}")),
            )));
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
        problems.error(Problem::pod(format!(
            "volume {name:?} requests a certificate from the workload issuer {issuer} with {}, which \
             would add to or change the workload identity; remove them",
            extra.join(", ")
        )));
    }
}

/// The cert-manager kinds the guard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Certificate,
    CertificateRequest,
}

/// The guard's rule for cert-manager `Certificate`s and `CertificateRequest`s: only the
/// csi-driver (the settings' `allowedRequesters`) may request workload certificates,
/// and no `Certificate` may name the workload issuer.
pub fn check_certificate_resource(
    kind: CertKind,
    object: &Value,
    username: &str,
    settings: &Settings,
) -> Option<Problem> {
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
    let message = match kind {
        CertKind::Certificate => format!(
            "Certificate {name:?} names the workload issuer {}: workload certificates are issued \
             only to pods, through the csi-driver volume this policy injects",
            describe(issuer)
        ),
        _ if settings.allowed_requesters.iter().any(|u| u == username) => return None,
        CertKind::CertificateRequest => format!(
            "CertificateRequest {name:?} from {username:?} names the workload issuer {}: only {} \
             may request workload certificates",
            describe(issuer),
            settings.allowed_requesters.join(", ")
        ),
    };
    Some(Problem::pod(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::volume_attributes;
    use crate::testutil::settings;
    use serde_json::json;

    fn check_pod_volumes(pod: &Value, settings: &Settings) -> Vec<String> {
        let mut problems = Problems::default();
        super::check_pod_volumes(pod, settings, &mut problems);
        problems.errors()
    }

    fn check_certificate_resource(
        kind: CertKind,
        object: &Value,
        user: &str,
        settings: &Settings,
    ) -> Option<String> {
        super::check_certificate_resource(kind, object, user, settings).map(|p| p.to_string())
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
            CertKind::Certificate,
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
            CertKind::Certificate,
            &cert_object(no_group),
            "alice",
            &settings()
        )
        .is_some());
        let namespaced = json!({"name": "iamra-workload"});
        assert!(check_certificate_resource(
            CertKind::Certificate,
            &cert_object(namespaced),
            "alice",
            &settings()
        )
        .is_none());
    }

    #[rstest::rstest]
    #[case::a_user("alice", false)]
    #[case::a_pods_service_account("system:serviceaccount:payments:default", false)]
    #[case::the_csi_driver(crate::settings::CSI_DRIVER_USER, true)]
    fn certificate_requests_come_only_from_the_csi_driver(
        #[case] user: &str,
        #[case] allowed: bool,
    ) {
        let verdict = check_certificate_resource(
            CertKind::CertificateRequest,
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
