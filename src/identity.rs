//! The workload identity a pod's certificate carries, and the cert-manager csi-driver
//! volume attributes that request it. The node fills in the namespace and service
//! account from the pod itself, so a pod cannot choose another identity through us.

use crate::problem::quote;
use crate::settings::{IssuerRef, KeyAlgorithm, Settings};
use crate::value::object;
use serde_json::{Map, Value};

pub const CSI_DRIVER: &str = "csi.cert-manager.io";
/// The helper's user and group in AWS's image; the key file is made readable to it.
pub const HELPER_UID: i64 = 65532;

pub fn attr(name: &str) -> String {
    [CSI_DRIVER, "/", name].concat()
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

/// X.509 limits a subject common name to 64 characters (RFC 5280 ub-common-name).
pub fn check_common_name(namespace: &str, service_account: &str) -> Result<(), String> {
    let cn = common_name(namespace, service_account);
    if cn.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "the certificate's common name {} would be {} characters, over X.509's limit of 64; \
             use a shorter service account name",
            quote(&cn),
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
    object([
        ("name", name.into()),
        (
            "csi",
            object([
                ("driver", CSI_DRIVER.into()),
                ("readOnly", true.into()),
                ("volumeAttributes", volume_attributes(settings).into()),
            ]),
        ),
    ])
}

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

pub fn describe(issuer: &IssuerRef) -> String {
    format!("{}/{} ({})", issuer.kind, issuer.name, issuer.group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::settings;

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
}
