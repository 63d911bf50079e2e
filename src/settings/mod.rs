//! The policy's settings: what a platform team configures once, in the
//! ClusterAdmissionPolicy. Unknown keys are rejected so that a typo in a chart value
//! does not silently fall back to a default.

use crate::json::{self, Json};
use crate::problem::{cut, quote, Flaw, Kind, Problem, Problems, Source};
use crate::validation::{self, REGION_FORM};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod check;
pub use check::session_seconds;

/// AWS's official credential helper image, pinned to a multi-arch release whose `serve`
/// re-reads the certificate files on every refresh (cert-manager rotates them in place)
/// and reports a failed refresh as an error instead of serving stale credentials.
pub const DEFAULT_SIDECAR_IMAGE: &str = "public.ecr.aws/rolesanywhere/credential-helper:1.8.5";

/// The cert-manager csi-driver's service account: it creates the CertificateRequests
/// for the pods' volumes.
pub const CSI_DRIVER_USER: &str = "system:serviceaccount:cert-manager:cert-manager-csi-driver";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mutate opted-in pods, and apply the guard's pod rule to them.
    #[default]
    Inject,
    /// Validate only: pods, Certificates and CertificateRequests that would mint a
    /// workload identity they are not entitled to.
    Guard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The name serde reads and writes.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The helper's logging: `aws_signing_helper serve` has one switch, `--debug`; without
/// it the helper logs at info. Other levels would have no effect, so none is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
}

impl LogLevel {
    pub const NAMES: &str = "debug or info (aws_signing_helper has only --debug)";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    #[default]
    #[serde(rename = "ECDSA")]
    Ecdsa,
    #[serde(rename = "RSA")]
    Rsa,
}

/// Reads settings from a read tree (see `json::de`); a failure's place is counted in
/// `text`, which holds the settings' text.
pub fn from_tree(settings: &Json, text: &str) -> Result<Settings, json::Failure> {
    object(settings).map_err(|e| e.within(text))
}

/// Reads a settings object only from a JSON object: serde's derived structs also take
/// an array, by position, so that `[...]` would pass for settings.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(from: D) -> Result<T, D::Error> {
    T::deserialize(Object(from))
}

/// A deserializer that reads every value as a map.
struct Object<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Object<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub mode: Mode,
    pub trust_anchor_arn: String,
    pub region: String,
    pub annotation_prefix: String,
    pub cluster_name: String,
    #[serde(deserialize_with = "object")]
    pub sidecar: Sidecar,
    #[serde(deserialize_with = "object")]
    pub defaults: Defaults,
    #[serde(deserialize_with = "object")]
    pub certificate: Certificate,
    pub allowed_requesters: Vec<String>,
    #[serde(deserialize_with = "object")]
    pub certificate_requests: CertificateRequests,
    #[serde(deserialize_with = "object")]
    pub irsa: Irsa,
    /// Read the pod's ServiceAccount (IRSA and ServiceAccount-level IAM Roles Anywhere
    /// annotations). `false`: pod annotations only, the policy never calls the host.
    pub read_service_accounts: bool,
    pub kubevirt: Kubevirt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    pub image: String,
    pub image_pull_policy: PullPolicy,
    pub port: u32,
    pub native: bool,
    #[serde(deserialize_with = "object")]
    pub resources: Resources,
    pub log_level: LogLevel,
}

/// The sidecar's resources: Kubernetes quantities by resource name. Only `limits` and
/// `requests`: a typo such as `limit` is refused, not read as "no resources".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    pub session_duration: String,
    pub audience: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerRef {
    pub name: String,
    pub kind: String,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    #[serde(deserialize_with = "object")]
    pub issuer: IssuerRef,
    pub duration: String,
    pub renew_before: String,
    pub key_algorithm: KeyAlgorithm,
    pub key_size: u32,
}

/// Whom the guard lets request a workload certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Binding {
    /// The users of `allowedRequesters` (the csi-driver), for any ServiceAccount's identity.
    #[default]
    AllowedRequesters,
    /// Each ServiceAccount for its own identity only (the csi-driver's
    /// `--use-token-request` mode).
    Requester,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateRequests {
    pub binding: Binding,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Irsa {
    pub annotation_prefix: String,
    pub token_expiration: u64,
    pub sts_regional_endpoints: bool,
    pub region: String,
}

/// KubeVirt virt-launcher pods (see `kubevirt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Kubevirt {
    /// Append a virtiofsd container that serves the IRSA token to the VM's guest.
    pub share_token_with_guest: bool,
    /// Its image; empty: the `compute` container's, which ships virtiofsd.
    pub virtiofs_image: String,
    /// Pass `--translate-uid=host:107:0:1` (virtiofsd 1.13+, virt-launcher 1.5+).
    pub translate_uid: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            trust_anchor_arn: String::new(),
            region: String::new(),
            annotation_prefix: "iamra.aws".into(),
            cluster_name: "cluster".into(),
            sidecar: Sidecar::default(),
            defaults: Defaults::default(),
            certificate: Certificate::default(),
            allowed_requesters: vec![CSI_DRIVER_USER.into()],
            certificate_requests: CertificateRequests::default(),
            irsa: Irsa::default(),
            read_service_accounts: true,
            kubevirt: Kubevirt::default(),
        }
    }
}

impl Default for Kubevirt {
    fn default() -> Self {
        Self {
            share_token_with_guest: false,
            virtiofs_image: String::new(),
            translate_uid: true,
        }
    }
}

impl Default for Sidecar {
    fn default() -> Self {
        let quantities = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        Self {
            image: DEFAULT_SIDECAR_IMAGE.into(),
            image_pull_policy: PullPolicy::default(),
            port: 9911,
            native: true,
            resources: Resources {
                requests: quantities(&[("cpu", "10m"), ("memory", "32Mi")]),
                limits: quantities(&[("memory", "64Mi")]),
            },
            log_level: LogLevel::default(),
        }
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            session_duration: "900s".into(),
            audience: "sts.amazonaws.com".into(),
        }
    }
}

impl Default for IssuerRef {
    fn default() -> Self {
        Self {
            name: "iamra-workload".into(),
            kind: "ClusterIssuer".into(),
            group: "cert-manager.io".into(),
        }
    }
}

impl Default for Certificate {
    fn default() -> Self {
        Self {
            issuer: IssuerRef::default(),
            duration: "24h".into(),
            renew_before: "8h".into(),
            key_algorithm: KeyAlgorithm::default(),
            key_size: 256,
        }
    }
}

impl Default for Irsa {
    fn default() -> Self {
        Self {
            annotation_prefix: "eks.amazonaws.com".into(),
            token_expiration: 86400,
            sts_regional_endpoints: false,
            region: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewarden_policy_sdk::settings::Validatable;
    use rstest::rstest;
    use serde_json::json;

    pub const TRUST_ANCHOR: &str =
        "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f";

    /// Settings read from `text` as `validate_settings` reads them.
    fn read(text: &str) -> Result<Settings, String> {
        let tree = Json::parse(text)?;
        from_tree(&tree, text).map_err(|e| e.describe(text))
    }

    /// The tree reads settings as serde_json reads their text: the same values, or the
    /// same message at the same line and column, but where serde_json's is less clear.
    #[rstest]
    #[case::chart(include_str!("../../charts/tests/policy-settings.json"))]
    #[case::minimal(r#"{"trustAnchorArn": "x", "region": "eu-west-1"}"#)]
    #[case::empty("{}")]
    #[case::nulls(r#"{"sidecar": {"resources": {"limits": null}}, "mode": "guard"}"#)]
    #[case::unknown_field(r#"{"sidecar": {"nativ": false}}"#)]
    #[case::unknown_top_field(r#"{"trustAnchroArn": "x"}"#)]
    #[case::string_for_number(r#"{"sidecar": {"port": "high"}}"#)]
    #[case::negative(r#"{"sidecar": {"port": -1}}"#)]
    #[case::fraction(r#"{"sidecar": {"port": 1.5}}"#)]
    #[case::exponent(r#"{"certificate": {"keySize": 2e3}}"#)]
    #[case::beyond_u64(r#"{"irsa": {"tokenExpiration": 18446744073709551616}}"#)]
    #[case::negative_zero(r#"{"irsa": {"tokenExpiration": -0}}"#)]
    #[case::unknown_variant(r#"{"mode": "audit"}"#)]
    #[case::null_for_string(r#"{"region": null}"#)]
    #[case::object_for_string(r#"{"region": {}}"#)]
    #[case::array_for_object(r#"{"sidecar": []}"#)]
    #[case::string_for_object(r#"{"sidecar": "x"}"#)]
    #[case::escaped_key(r#"{"regi\u006fn": "eu-west-1"}"#)]
    #[case::escaped_value(r#"{"region": "eu-\u0077est-1"}"#)]
    #[case::lines("{\n  \"sidecar\": {\n    \"port\": \"x\"\n  }\n}")]
    #[case::mixed_list(r#"{"allowedRequesters": ["a", 1]}"#)]
    #[case::number_quantity(r#"{"sidecar": {"resources": {"requests": {"cpu": 1}}}}"#)]
    #[case::not_an_object(r#"["inject"]"#)]
    #[case::null(r#"null"#)]
    fn the_tree_reads_settings_as_serde_json_reads_their_text(#[case] text: &str) {
        let serde = object(&mut serde_json::Deserializer::from_str(text));
        assert_eq!(
            read(text),
            serde.map_err(|e: serde_json::Error| e.to_string())
        );
    }

    /// Where serde_json says only "expected value", the tree says what it expected.
    #[test]
    fn a_number_for_a_variant_says_what_was_expected() {
        assert_eq!(
            read(r#"{"mode": 1}"#).unwrap_err(),
            "invalid type: integer `1`, expected enum Mode at line 1 column 10"
        );
    }

    fn base() -> serde_json::Value {
        json!({"trustAnchorArn": TRUST_ANCHOR, "region": "eu-west-1"})
    }

    /// Merges `patch` into the minimal valid settings and validates the result.
    fn check(patch: serde_json::Value) -> Result<(), String> {
        let mut value = base();
        merge(&mut value, patch);
        let settings = read(&value.to_string())?;
        settings.validate()
    }

    fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
        match (target, patch) {
            (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    merge(t.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (t, p) => *t = p,
        }
    }

    #[test]
    fn pull_policy_names_are_serde_names() {
        for p in [
            PullPolicy::Always,
            PullPolicy::IfNotPresent,
            PullPolicy::Never,
        ] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let s: Settings = serde_json::from_value(base()).unwrap();
        assert_eq!(s.mode, Mode::Inject);
        assert_eq!(s.annotation_prefix, "iamra.aws");
        assert_eq!(s.cluster_name, "cluster");
        assert!(s
            .sidecar
            .image
            .starts_with("public.ecr.aws/rolesanywhere/credential-helper:"));
        assert!(!s.sidecar.image.ends_with(":latest"));
        assert_eq!(s.sidecar.image_pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(s.sidecar.port, 9911);
        assert!(s.sidecar.native);
        assert_eq!(s.sidecar.log_level, LogLevel::Info);
        assert!(s.sidecar.resources.requests.is_some() && s.sidecar.resources.limits.is_some());
        assert_eq!(s.defaults.session_duration, "900s");
        assert_eq!(s.defaults.audience, "sts.amazonaws.com");
        assert_eq!(
            s.certificate.issuer,
            IssuerRef {
                name: "iamra-workload".into(),
                kind: "ClusterIssuer".into(),
                group: "cert-manager.io".into()
            }
        );
        assert_eq!(
            (
                s.certificate.duration.as_str(),
                s.certificate.renew_before.as_str()
            ),
            ("24h", "8h")
        );
        assert_eq!(
            (s.certificate.key_algorithm, s.certificate.key_size),
            (KeyAlgorithm::Ecdsa, 256)
        );
        assert_eq!(s.allowed_requesters, vec![CSI_DRIVER_USER.to_string()]);
        assert_eq!(s.certificate_requests.binding, Binding::AllowedRequesters);
        assert_eq!(s.irsa.annotation_prefix, "eks.amazonaws.com");
        assert_eq!(s.irsa.token_expiration, 86400);
        assert!(s.read_service_accounts);
        assert!(!s.kubevirt.share_token_with_guest);
        assert_eq!(s.kubevirt.virtiofs_image, "");
        assert!(s.kubevirt.translate_uid);
        assert_eq!(s.validate(), Ok(()));
    }

    #[rstest]
    #[case::china_partition(json!({"region": "cn-north-1", "trustAnchorArn": "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"}))]
    #[case::govcloud_partition(json!({"region": "us-gov-west-1", "trustAnchorArn": "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"}))]
    #[case::annotationprefix_example_com(json!({"annotationPrefix": "example.com"}))]
    #[case::sidecar_pull_port_native_log_level(json!({"sidecar": {"imagePullPolicy": "Always", "port": 1024, "native": false, "logLevel": "debug"}}))]
    #[case::sidecar_highest_port_and_digest_image(json!({"sidecar": {"port": 65535, "image": "registry.example/helper@sha256:abc"}}))]
    #[case::sidecar_decimal_quantities(json!({"sidecar": {"resources": {"requests": {"cpu": "0.5", "memory": "1e3"}}}}))]
    #[case::defaults_sessionduration_12h(json!({"defaults": {"sessionDuration": "12h"}}))]
    #[case::defaults_sessionduration_3600(json!({"defaults": {"sessionDuration": "3600"}}))]
    #[case::aws_pca_cluster_issuer(json!({"certificate": {"issuer": {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}}}))]
    #[case::certificate_duration_2h_renewbefore_1h30m(json!({"certificate": {"duration": "2h", "renewBefore": "1h30m"}}))]
    #[case::certificate_keyalgorithm_rsa_keysize(json!({"certificate": {"keyAlgorithm": "RSA", "keySize": 2048}}))]
    #[case::certificate_keyalgorithm_ecdsa_keysize(json!({"certificate": {"keyAlgorithm": "ECDSA", "keySize": 384}}))]
    #[case::clustername_prod_eu_1(json!({"clusterName": "prod-eu-1"}))]
    #[case::mode_guard_trustanchorarn_region(json!({"mode": "guard", "trustAnchorArn": "", "region": ""}))]
    #[case::irsa_defaults(json!({"irsa": {"tokenExpiration": 600, "stsRegionalEndpoints": true, "region": "us-east-1"}}))]
    #[case::readserviceaccounts(json!({"readServiceAccounts": false}))]
    #[case::kubevirt_all_set(json!({"kubevirt": {"shareTokenWithGuest": true, "virtiofsImage": "quay.io/kubevirt/virt-launcher:v1.9.0", "translateUid": false}}))]
    #[case::binding_requester(json!({"certificateRequests": {"binding": "requester"}}))]
    #[case::binding_requester_without_requesters(json!({"certificateRequests": {"binding": "requester"}, "allowedRequesters": []}))]
    fn accepts(#[case] patch: serde_json::Value) {
        assert_eq!(check(patch), Ok(()));
    }

    /// Where each problem of the settings merged with `patch` is, and its kind.
    fn found(patch: serde_json::Value) -> Vec<(Source, Kind)> {
        let mut value = base();
        merge(&mut value, patch);
        let settings = read(&value.to_string()).expect("settings that deserialize");
        settings.problems().error_kinds()
    }

    #[rstest]
    #[case::trust_anchor_empty(json!({"trustAnchorArn": ""}), &[("trustAnchorArn", Kind::Missing)])]
    #[case::trust_anchor_arn_of_a_profile(json!({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"}), &[("trustAnchorArn", Kind::Malformed)])]
    #[case::region_empty(json!({"region": ""}), &[("region", Kind::Missing)])]
    #[case::region_not_aws(json!({"region": "europe"}), &[("region", Kind::Conflicting), ("region", Kind::Malformed)])]
    #[case::region_other_than_the_anchors(json!({"region": "eu-west-2"}), &[("region", Kind::Conflicting)])]
    #[case::annotation_prefix_with_a_space(json!({"annotationPrefix": "Not Valid"}), &[("annotationPrefix", Kind::Malformed)])]
    #[case::sidecar_image_empty(json!({"sidecar": {"image": ""}}), &[("sidecar.image", Kind::Malformed)])]
    #[case::port_below_1024(json!({"sidecar": {"port": 80}}), &[("sidecar.port", Kind::OutOfRange)])]
    #[case::port_over_65535(json!({"sidecar": {"port": 70000}}), &[("sidecar.port", Kind::OutOfRange)])]
    #[case::memory_not_a_quantity(json!({"sidecar": {"resources": {"limits": {"memory": "lots"}}}}), &[("sidecar.resources", Kind::Malformed)])]
    #[case::session_too_short(json!({"defaults": {"sessionDuration": "5m"}}), &[("defaults.sessionDuration", Kind::OutOfRange)])]
    #[case::session_too_long(json!({"defaults": {"sessionDuration": "13h"}}), &[("defaults.sessionDuration", Kind::OutOfRange)])]
    #[case::session_not_a_duration(json!({"defaults": {"sessionDuration": "soon"}}), &[("defaults.sessionDuration", Kind::Malformed)])]
    #[case::audience_blank(json!({"defaults": {"audience": " "}}), &[("defaults.audience", Kind::Malformed)])]
    #[case::issuer_name_empty(json!({"certificate": {"issuer": {"name": ""}}}), &[("certificate.issuer.name", Kind::Malformed)])]
    #[case::issuer_kind_empty(json!({"certificate": {"issuer": {"kind": ""}}}), &[("certificate.issuer.kind", Kind::Malformed)])]
    #[case::issuer_group_not_a_group(json!({"certificate": {"issuer": {"group": "not a group"}}}), &[("certificate.issuer.group", Kind::Malformed)])]
    #[case::renewal_not_before_expiry(json!({"certificate": {"duration": "8h", "renewBefore": "8h"}}), &[("certificate.renewBefore", Kind::Conflicting)])]
    #[case::certificate_under_an_hour(json!({"certificate": {"duration": "30m", "renewBefore": "10m"}}), &[("certificate.duration", Kind::OutOfRange)])]
    #[case::certificate_duration_not_a_duration(json!({"certificate": {"duration": "a day"}}), &[("certificate.duration", Kind::Malformed)])]
    #[case::rsa_key_too_small(json!({"certificate": {"keyAlgorithm": "RSA", "keySize": 1024}}), &[("certificate.keySize", Kind::OutOfRange)])]
    #[case::ecdsa_curve_p521(json!({"certificate": {"keySize": 521}}), &[("certificate.keySize", Kind::OutOfRange)])]
    #[case::cluster_name_not_a_dns_label(json!({"clusterName": "Prod_Cluster"}), &[("clusterName", Kind::Malformed)])]
    #[case::allowed_requester_empty(json!({"allowedRequesters": [""]}), &[("allowedRequesters", Kind::Malformed)])]
    #[case::allowed_requesters_none(json!({"allowedRequesters": []}), &[("allowedRequesters", Kind::Missing)])]
    #[case::irsa_expiration_too_short(json!({"irsa": {"tokenExpiration": 300}}), &[("irsa.tokenExpiration", Kind::OutOfRange)])]
    #[case::irsa_region_not_aws(json!({"irsa": {"region": "moon-1"}}), &[("irsa.region", Kind::Malformed)])]
    #[case::irsa_annotation_prefix_empty(json!({"irsa": {"annotationPrefix": ""}}), &[("irsa.annotationPrefix", Kind::Malformed)])]
    #[case::virtiofs_image_with_spaces(json!({"kubevirt": {"virtiofsImage": "virt launcher"}}), &[("kubevirt.virtiofsImage", Kind::Malformed)])]
    #[case::virtiofs_image_blank(json!({"kubevirt": {"virtiofsImage": " "}}), &[("kubevirt.virtiofsImage", Kind::Malformed)])]
    #[case::every_error_at_once(json!({"trustAnchorArn": "", "region": "", "sidecar": {"port": 1}}), &[("trustAnchorArn", Kind::Missing), ("region", Kind::Missing), ("sidecar.port", Kind::OutOfRange)])]
    fn rejects(#[case] patch: serde_json::Value, #[case] expected: &[(&'static str, Kind)]) {
        let expected: Vec<(Source, Kind)> = expected
            .iter()
            .map(|(field, kind)| (Source::Setting(field), *kind))
            .collect();
        assert_eq!(found(patch), expected);
    }

    /// One message in full per kind the settings' checks report.
    #[rstest]
    #[case::malformed(json!({"clusterName": "Prod_Cluster"}), "clusterName: \"Prod_Cluster\" is not a DNS label (lowercase letters, digits and '-', at most 63)")]
    #[case::out_of_range(json!({"sidecar": {"port": 80}}), "sidecar.port: 80 is out of range; use an unprivileged port 1024..65535")]
    #[case::missing(json!({"region": ""}), "region is required: an AWS region name such as us-east-1, eu-west-3 or us-gov-west-1")]
    #[case::conflicting(json!({"region": "eu-west-2"}), "region: \"eu-west-2\" differs from the trust anchor's region \"eu-west-1\"; IAM Roles Anywhere serves a trust anchor only in its own region")]
    fn messages_in_full(#[case] patch: serde_json::Value, #[case] message: &str) {
        assert_eq!(check(patch), Err(message.to_owned()));
    }

    /// What serde refuses before any check runs: its own words.
    #[rstest]
    #[case::pull_policy_unknown(json!({"sidecar": {"imagePullPolicy": "Sometimes"}}), "unknown variant `Sometimes`")]
    #[case::log_level_unknown(json!({"sidecar": {"logLevel": "trace"}}), "unknown variant `trace`")]
    #[case::sidecar_loglevel_warn_has_no_effect(json!({"sidecar": {"logLevel": "warn"}}), "unknown variant `warn`, expected `debug` or `info`")]
    #[case::sidecar_loglevel_error_has_no_effect(json!({"sidecar": {"logLevel": "error"}}), "unknown variant `error`")]
    #[case::sidecar_resources_unknown_key(json!({"sidecar": {"resources": {"limit": {"memory": "64Mi"}}}}), "unknown field `limit`, expected `limits` or `requests`")]
    #[case::sidecar_resources_claims(json!({"sidecar": {"resources": {"claims": []}}}), "unknown field `claims`")]
    #[case::sidecar_as_an_array(json!({"sidecar": ["img", "Always", 9911]}), "invalid type: sequence, expected struct Sidecar")]
    #[case::resources_as_an_array(json!({"sidecar": {"resources": [{"memory": "1Gi"}]}}), "invalid type: sequence, expected struct Resources")]
    #[case::issuer_as_an_array(json!({"certificate": {"issuer": ["a", "Issuer", "cert-manager.io"]}}), "invalid type: sequence, expected struct IssuerRef")]
    #[case::irsa_as_an_array(json!({"irsa": ["eks.amazonaws.com"]}), "invalid type: sequence")]
    #[case::defaults_as_an_array(json!({"defaults": ["900s"]}), "invalid type: sequence")]
    #[case::key_algorithm_unknown(json!({"certificate": {"keyAlgorithm": "Ed25519"}}), "unknown variant `Ed25519`")]
    #[case::mode_audit(json!({"mode": "audit"}), "unknown variant `audit`")]
    #[case::binding_unknown(json!({"certificateRequests": {"binding": "pod"}}), "unknown variant `pod`")]
    #[case::read_service_accounts_not_a_boolean(json!({"readServiceAccounts": "no"}), "invalid type: string \"no\", expected a boolean")]
    #[case::misspelt_key(json!({"trustAnchroArn": "typo"}), "unknown field `trustAnchroArn`")]
    #[case::sidecar_misspelt_key(json!({"sidecar": {"nativ": true}}), "unknown field `nativ`")]
    #[case::kubevirt_unknown_key(json!({"kubevirt": {"shareToken": true}}), "unknown field `shareToken`")]
    fn serde_refuses(#[case] patch: serde_json::Value, #[case] message: &str) {
        let err = check(patch).unwrap_err();
        assert!(err.contains(message), "{err:?} should contain {message:?}");
    }

    /// The settings contract: the policy's defaults, every field included, as the chart
    /// tests read them. Regenerate with
    /// `UPDATE_SETTINGS_CONTRACT=1 cargo test -p iamra-sidecar-policy settings_contract`.
    #[test]
    fn settings_contract_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/charts/tests/policy-settings.json"
        );
        let current = serde_json::to_string_pretty(&Settings::default()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SETTINGS_CONTRACT").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "{path} is stale; regenerate it with \
             UPDATE_SETTINGS_CONTRACT=1 cargo test -p iamra-sidecar-policy settings_contract"
        );
    }
}
