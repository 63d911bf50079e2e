//! The workload identity a pod's certificate carries, and the cert-manager csi-driver
//! volume attributes that request it. The node fills in the namespace and service
//! account from the pod itself, so a pod cannot choose another identity through us.

use crate::emit::{decimal, Sink};
use crate::problem::quote;
use crate::settings::{IssuerRef, KeyAlgorithm, Settings};
use std::borrow::Cow;

pub const CSI_DRIVER: &str = "csi.cert-manager.io";
/// The helper's user and group in AWS's image; the key file is made readable to it.
pub const HELPER_UID: u64 = 65532;
/// The same, as the csi-driver's `fs-group` attribute writes it.
const HELPER_UID_TEXT: &str = "65532";

/// A csi-driver volume attribute's key.
pub fn csi_key(name: &str) -> String {
    [CSI_DRIVER, "/", name].concat()
}

/// A workload identity: who a pod's certificate names. This is the one place that
/// knows how an identity is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub account: &'a str,
}

impl<'a> Identity<'a> {
    /// The identity of every pod, as csi-driver's variables: the node fills them in
    /// from the pod itself.
    pub fn of_any_pod(cluster: &'a str) -> Self {
        Identity {
            cluster,
            namespace: "${POD_NAMESPACE}",
            account: "${SERVICE_ACCOUNT_NAME}",
        }
    }

    /// The common name: the same path as the URI SAN, short enough for X.509's
    /// 64-character limit in most clusters.
    pub fn common_name(&self) -> String {
        ["ns/", self.namespace, "/sa/", self.account].concat()
    }

    /// The URI SAN, `spiffe://<cluster>/ns/<namespace>/sa/<account>`.
    pub fn uri(&self) -> String {
        ["spiffe://", self.cluster, "/", &self.common_name()].concat()
    }

    /// The account a URI SAN names, when it is an identity of this cluster and
    /// namespace (the account of `self` is not read).
    pub fn account_in<'u>(&self, uri: &'u str) -> Option<&'u str> {
        let prefix = Identity {
            account: "",
            ..*self
        }
        .uri();
        uri.strip_prefix(prefix.as_str())
    }

    /// The csi volume attributes that request this identity.
    pub fn csi_attributes(&self) -> [(String, String); 2] {
        [
            (csi_key("uri-sans"), self.uri()),
            (csi_key("common-name"), self.common_name()),
        ]
    }

    /// X.509 limits a subject common name to 64 characters (RFC 5280 ub-common-name).
    pub fn check_common_name(&self) -> Result<(), String> {
        let cn = self.common_name();
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
}

/// A csi-driver volume attribute's key, as a constant.
macro_rules! csi_key {
    ($name:literal) => {
        concat!("csi.cert-manager.io/", $name)
    };
}

/// The csi volume attributes for the pod's client certificate, in key order.
pub fn volume_attributes(settings: &Settings) -> [(&'static str, Cow<'_, str>); 12] {
    let cert = &settings.certificate;
    let algorithm = match cert.key_algorithm {
        KeyAlgorithm::Ecdsa => "ECDSA",
        KeyAlgorithm::Rsa => "RSA",
    };
    let identity = Identity::of_any_pod(&settings.cluster_name);
    let text = |s: &'static str| Cow::Borrowed(s);
    [
        (csi_key!("common-name"), Cow::Owned(identity.common_name())),
        (csi_key!("duration"), Cow::Borrowed(cert.duration.as_str())),
        (csi_key!("fs-group"), text(HELPER_UID_TEXT)),
        (
            csi_key!("issuer-group"),
            Cow::Borrowed(cert.issuer.group.as_str()),
        ),
        (
            csi_key!("issuer-kind"),
            Cow::Borrowed(cert.issuer.kind.as_str()),
        ),
        (
            csi_key!("issuer-name"),
            Cow::Borrowed(cert.issuer.name.as_str()),
        ),
        (csi_key!("key-algorithm"), text(algorithm)),
        // The helper reads PKCS#8 for both key types.
        (csi_key!("key-encoding"), text("PKCS8")),
        (
            csi_key!("key-size"),
            Cow::Owned(decimal(u64::from(cert.key_size), &mut [0; 20]).to_owned()),
        ),
        // IAM Roles Anywhere verifies a signature made with the key: digital signature.
        (
            csi_key!("key-usages"),
            text("digital signature,client auth"),
        ),
        (
            csi_key!("renew-before"),
            Cow::Borrowed(cert.renew_before.as_str()),
        ),
        (csi_key!("uri-sans"), Cow::Owned(identity.uri())),
    ]
}

/// The pod volume that holds the certificate, key and CA, with these
/// [`volume_attributes`].
pub fn volume<S: Sink>(s: &mut S, name: &str, attributes: &[(&'static str, Cow<str>)]) {
    s.object(2, |s| {
        s.key("csi");
        s.object(3, |s| {
            s.entry("driver", CSI_DRIVER);
            s.key("readOnly");
            s.bool(true);
            s.key("volumeAttributes");
            s.object(attributes.len(), |s| {
                attributes.iter().for_each(|(k, v)| s.entry(k, v));
            });
        });
        s.entry("name", name);
    });
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
        let get = |k: &str| {
            let key = csi_key(k);
            a.iter()
                .find(|(found, _)| **found == key)
                .unwrap()
                .1
                .to_string()
        };
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

    /// The volume is written and hashed as a `Value`'s map holds it: keys in order, once.
    #[test]
    fn attributes_are_in_key_order_and_helper_uid_text_is_the_uid() {
        let s = settings();
        let a = volume_attributes(&s);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(a.iter().all(|(k, _)| k.starts_with(&csi_key(""))));
        assert_eq!(HELPER_UID_TEXT, HELPER_UID.to_string());
    }

    #[test]
    fn rsa_keys_are_requested_when_configured() {
        let mut s = settings();
        s.certificate.key_algorithm = KeyAlgorithm::Rsa;
        s.certificate.key_size = 3072;
        let a = volume_attributes(&s);
        let get = |k: &str| {
            a.iter()
                .find(|(found, _)| *found == csi_key(k))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("key-algorithm"), "RSA");
        assert_eq!(get("key-size"), "3072");
    }

    fn payments(account: &str) -> Identity<'_> {
        Identity {
            cluster: "prod",
            namespace: "payments",
            account,
        }
    }

    #[test]
    fn an_identity_reads_as_its_uri_and_common_name() {
        let id = payments("api");
        assert_eq!(id.uri(), "spiffe://prod/ns/payments/sa/api");
        assert_eq!(id.common_name(), "ns/payments/sa/api");
        assert_eq!(
            id.account_in("spiffe://prod/ns/payments/sa/web"),
            Some("web")
        );
        assert_eq!(id.account_in("spiffe://prod/ns/billing/sa/web"), None);
        assert_eq!(id.account_in("spiffe://test/ns/payments/sa/web"), None);
    }

    #[test]
    fn common_name_length_is_checked() {
        assert!(payments("payments-api").check_common_name().is_ok());
        let account = "a".repeat(60);
        let err = payments(&account).check_common_name().unwrap_err();
        assert_eq!(
            err,
            format!(
                "the certificate's common name \"ns/payments/sa/{account}\" would be 75 characters, \
                 over X.509's limit of 64; use a shorter service account name"
            )
        );
    }
}
