//! The guard's rules: no pod, Certificate or CertificateRequest may mint a workload
//! identity it is not entitled to. The guard mode applies all of them; inject mode
//! applies the pod rule to the pods it injects.

use crate::csr;
use crate::identity::{csi_key, describe, is_workload_issuer, Identity, CSI_DRIVER};
use crate::json::{Json, NULL};
use crate::pod;
use crate::problem::{quote, Kind, Problem, Problems};
use crate::settings::{Binding, Settings};
use crate::validation;

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
pub fn check_pod_volumes(pod: &Json, settings: &Settings, problems: &mut Problems) {
    let csi_volumes = pod::list(pod, pod::VOLUMES).iter().filter_map(|volume| {
        let csi = volume
            .get("csi")
            .filter(|c| c.get("driver").and_then(Json::as_str) == Some(CSI_DRIVER))?;
        Some((volume, csi))
    });
    let mut canonical = None;
    for (volume, csi) in csi_volumes {
        let attrs = csi.get("volumeAttributes").unwrap_or(&NULL);
        let get = |k: &str| {
            attrs
                .get(&csi_key(k))
                .and_then(Json::as_str)
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
        let canonical = canonical
            .get_or_insert_with(|| Identity::of_any_pod(&settings.cluster_name).csi_attributes());
        let name = volume
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        check_identity(name, attrs, canonical, settings, problems);
    }
}

/// One workload-issuer volume's attributes against the canonical identity.
fn check_identity(
    name: &str,
    attrs: &Json,
    canonical: &[(String, String); 2],
    settings: &Settings,
    problems: &mut Problems,
) {
    let issuer = describe(&settings.certificate.issuer);
    for (key, expected) in canonical {
        let found = attrs.get(key).and_then(Json::as_str);
        if found != Some(expected.as_str()) {
            let message = format!(
                "volume {name:?} requests a certificate from the workload issuer {issuer} with {key} {}; \
                 only the identity this policy injects is allowed: {key} {expected:?}",
                found.map_or("unset".to_owned(), |f| format!("{f:?}")),
            );
            problems.error(Problem::pod(Kind::Forbidden, message));
        }
    }
    let mut extra: Vec<&str> = attrs
        .keys()
        .filter(|k| !canonical.iter().any(|(c, _)| c == k))
        .filter(|k| {
            k.strip_prefix(CSI_DRIVER)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|a| !NEUTRAL_ATTRIBUTES.contains(&a))
        })
        .collect();
    // In key order, as they were listed when the pod was a `serde_json::Value`.
    extra.sort_unstable();
    if !extra.is_empty() {
        let message = format!(
            "volume {name:?} requests a certificate from the workload issuer {issuer} with {}, which \
             would add to or change the workload identity; remove them",
            extra.join(", ")
        );
        problems.error(Problem::pod(Kind::Forbidden, message));
    }
}

/// The cert-manager kinds the guard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Certificate,
    CertificateRequest,
}

/// Who makes an admission request, as the API server authenticated it, and the namespace
/// the object is created in.
pub struct Requester<'a> {
    pub username: &'a str,
    pub namespace: &'a str,
}

/// The guard's rule for cert-manager `Certificate`s and `CertificateRequest`s: no
/// `Certificate` may name the workload issuer, and a `CertificateRequest` for it must come
/// from an allowed requester (see [`Binding`]) and ask for an identity of the scheme.
pub fn check_certificate_resource(
    kind: CertKind,
    object: &Json,
    requester: &Requester,
    settings: &Settings,
    problems: &mut Problems,
) {
    let issuer_ref = object.get("spec").and_then(|s| s.get("issuerRef"));
    let get = |k: &str| {
        issuer_ref
            .and_then(|r| r.get(k))
            .and_then(Json::as_str)
            .unwrap_or_default()
    };
    let issuer = &settings.certificate.issuer;
    if !is_workload_issuer(get("name"), get("kind"), get("group"), issuer) {
        return;
    }
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Json::as_str)
        .unwrap_or_default();
    match kind {
        CertKind::Certificate => {
            let message = format!(
                "Certificate {name:?} names the workload issuer {}: workload certificates are \
                 issued only to pods, through the csi-driver volume this policy injects",
                describe(issuer)
            );
            problems.error(Problem::pod(Kind::Forbidden, message));
        }
        CertKind::CertificateRequest => {
            let request = WorkloadRequest {
                name,
                spec: object.get("spec").unwrap_or(&NULL),
                requester,
                settings,
            };
            request.check(problems);
        }
    }
}

/// A CertificateRequest for the workload issuer.
struct WorkloadRequest<'a> {
    name: &'a str,
    spec: &'a Json<'a>,
    requester: &'a Requester<'a>,
    settings: &'a Settings,
}

/// Whose identity a requester may ask for.
enum Entitled<'a> {
    /// An allowed requester (the csi-driver): any ServiceAccount's, which the CSR names.
    AnyAccount,
    /// A ServiceAccount: its own.
    OwnAccount(&'a str),
}

impl<'a> WorkloadRequest<'a> {
    fn check(&self, problems: &mut Problems) {
        match self.entitled() {
            Err(message) => self.error(problems, Kind::Forbidden, message),
            Ok(entitled) => {
                let account = match entitled {
                    Entitled::AnyAccount => None,
                    Entitled::OwnAccount(account) => {
                        // Only here: the driver's account also serves hand-written
                        // volumes, whose duration and key usages the pod rule leaves to
                        // them.
                        self.spec_errors(problems);
                        Some(account)
                    }
                };
                self.judge_csr(account, problems);
            }
        }
    }

    /// The requester's entitlement under the settings' binding, or why it has none.
    fn entitled(&self) -> Result<Entitled<'a>, String> {
        let Requester {
            username,
            namespace,
        } = *self.requester;
        match self.settings.certificate_requests.binding {
            Binding::AllowedRequesters => {
                let allowed = &self.settings.allowed_requesters;
                if allowed.iter().any(|u| u == username) {
                    Ok(Entitled::AnyAccount)
                } else {
                    Err(format!(
                        "only {} may request workload certificates",
                        allowed.join(", ")
                    ))
                }
            }
            Binding::Requester => own_account(username, namespace)
                .map(Entitled::OwnAccount)
                .ok_or_else(|| {
                    format!(
                        "only a ServiceAccount of namespace {namespace:?} may request a \
                         workload certificate there, for its own identity \
                         (certificateRequests.binding: requester)"
                    )
                }),
        }
    }

    /// The CSR against the identity it may name: `account`'s, or any account's.
    fn judge_csr(&self, account: Option<&str>, problems: &mut Problems) {
        let request = self
            .spec
            .get("request")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let (kind, errors) = match csr::parse(request) {
            Ok(csr) => {
                let expected = csr::Expected {
                    cluster: &self.settings.cluster_name,
                    namespace: self.requester.namespace,
                    service_account: account,
                };
                (Kind::Forbidden, csr::identity_errors(&csr, &expected))
            }
            Err(e) => (Kind::Malformed, vec![e]),
        };
        for e in errors {
            self.error(problems, kind, format!("its spec.request {e}"));
        }
    }

    fn error(&self, problems: &mut Problems, kind: Kind, message: String) {
        problems.error(Problem::pod(
            kind,
            format!(
                "CertificateRequest {:?} from {:?} for the workload issuer {}: {message}",
                self.name,
                self.requester.username,
                describe(&self.settings.certificate.issuer)
            ),
        ));
    }

    /// The request's own fields, as the csi-driver sets them from the injected volume.
    fn spec_errors(&self, problems: &mut Problems) {
        if self
            .spec
            .get("isCA")
            .and_then(Json::as_bool)
            .unwrap_or(false)
        {
            let message = "its spec.isCA is true; expected false".into();
            self.error(problems, Kind::Forbidden, message);
        }
        let usages: Vec<&str> = self
            .spec
            .get("usages")
            .and_then(Json::as_array)
            .map(|u| u.iter().map(|v| v.as_str().unwrap_or_default()).collect())
            .unwrap_or_default();
        let expected = ["digital signature", "client auth"];
        if usages.len() != 2 || !expected.iter().all(|u| usages.contains(u)) {
            let usages: Vec<String> = usages.iter().map(|u| quote(u)).collect();
            self.error(
                problems,
                Kind::Forbidden,
                format!(
                    "its spec.usages are [{}]; expected [\"digital signature\", \"client auth\"]",
                    usages.join(", ")
                ),
            );
        }
        let limit = &self.settings.certificate.duration;
        let duration = self.spec.get("duration").and_then(Json::as_str);
        let within = |d: &str| {
            let seconds = validation::duration_seconds(d).ok();
            let max = validation::duration_seconds(limit).ok();
            seconds
                .zip(max)
                .is_some_and(|(s, max)| (3600..=max).contains(&s))
        };
        if !duration.is_some_and(within) {
            self.error(
                problems,
                Kind::OutOfRange,
                format!(
                    "its spec.duration is {}; expected 1h to certificate.duration {limit:?}",
                    duration.map_or("unset".to_owned(), quote)
                ),
            );
        }
    }
}

/// The ServiceAccount name of `system:serviceaccount:<namespace>:<name>`, for `namespace`
/// only.
fn own_account<'a>(username: &'a str, namespace: &str) -> Option<&'a str> {
    let (ns, account) = username
        .strip_prefix("system:serviceaccount:")?
        .split_once(':')?;
    (ns == namespace && !namespace.is_empty() && !account.is_empty()).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::volume_attributes;
    use crate::problem::Source;
    use crate::testutil::{doc, settings};
    use serde_json::{json, Value};

    fn check_pod_volumes(pod: &Value, settings: &Settings) -> Problems {
        let mut problems = Problems::default();
        super::check_pod_volumes(&doc(pod.clone()), settings, &mut problems);
        problems
    }

    /// There are errors, each of `kind`: the guard reports about the object itself, whose
    /// part the message names.
    fn assert_every_error_is(problems: &Problems, kind: Kind) {
        let errors = problems.errors().len().max(1);
        assert_eq!(problems.error_kinds(), vec![(Source::Pod, kind); errors]);
    }

    /// The guard's verdict on a cert-manager object created in namespace payments.
    fn check_certificate_resource(
        kind: CertKind,
        object: &Value,
        user: &str,
        settings: &Settings,
    ) -> Problems {
        let mut problems = Problems::default();
        let requester = Requester {
            username: user,
            namespace: "payments",
        };
        let object = doc(object.clone());
        super::check_certificate_resource(kind, &object, &requester, settings, &mut problems);
        problems
    }

    fn pod_with(attrs: Value) -> Value {
        json!({"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "cert", "csi": {"driver": CSI_DRIVER, "volumeAttributes": attrs}},
        ]}})
    }

    fn canonical() -> Value {
        let s = settings();
        let attributes = volume_attributes(&s);
        Value::Object(
            attributes
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect(),
        )
    }

    fn with(mut attrs: Value, key: &str, value: &str) -> Value {
        attrs[csi_key(key)] = json!(value);
        attrs
    }

    #[test]
    fn the_injected_volume_passes_the_guard() {
        assert!(!check_pod_volumes(&pod_with(canonical()), &settings()).has_errors());
        assert!(!check_pod_volumes(&json!({"spec": {}}), &settings()).has_errors());
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
        let problems = check_pod_volumes(&pod_with(attrs), &settings());
        assert_every_error_is(&problems, Kind::Forbidden);
        let errors = problems.errors();
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
        assert!(!check_pod_volumes(&pod_with(attrs), &settings()).has_errors());
    }

    fn cert_object(issuer_ref: Value) -> Value {
        json!({"metadata": {"name": "stolen"}, "spec": {"issuerRef": issuer_ref}})
    }

    const CLUSTER_ISSUER: fn() -> Value =
        || json!({"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"});

    #[test]
    fn certificates_for_the_workload_issuer_are_rejected() {
        let problems = check_certificate_resource(
            CertKind::Certificate,
            &cert_object(CLUSTER_ISSUER()),
            "alice",
            &settings(),
        );
        assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Forbidden)]);
        let err = problems.error_message();
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
        .has_errors());
        let namespaced = json!({"name": "iamra-workload"});
        assert!(!check_certificate_resource(
            CertKind::Certificate,
            &cert_object(namespaced),
            "alice",
            &settings()
        )
        .has_errors());
    }

    /// A CertificateRequest as the csi-driver creates it from the injected volume, with
    /// the CSR of a fixture and `patch` merged into its spec.
    fn certificate_request(csr_case: &str, patch: Value) -> Value {
        let mut object = cert_object(CLUSTER_ISSUER());
        let spec = object["spec"].as_object_mut().unwrap();
        spec.insert(
            "request".into(),
            json!(crate::csr::tests::request(csr_case)),
        );
        spec.insert("usages".into(), json!(["digital signature", "client auth"]));
        spec.insert("duration".into(), json!("24h0m0s"));
        spec.extend(patch.as_object().unwrap().clone());
        object
    }

    const OWN_ACCOUNT: &str = "system:serviceaccount:payments:payments-api";

    fn binding_requester() -> Settings {
        let mut s = settings();
        s.certificate_requests.binding = Binding::Requester;
        s
    }

    #[rstest::rstest]
    #[case::a_user("alice", false)]
    #[case::a_pods_service_account(OWN_ACCOUNT, false)]
    #[case::the_csi_driver(crate::settings::CSI_DRIVER_USER, true)]
    fn certificate_requests_come_only_from_the_csi_driver(
        #[case] user: &str,
        #[case] allowed: bool,
    ) {
        let problems = check_certificate_resource(
            CertKind::CertificateRequest,
            &certificate_request("good-p256", json!({})),
            user,
            &settings(),
        );
        assert_eq!(!problems.has_errors(), allowed, "{problems:?}");
        if !allowed {
            assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Forbidden)]);
            let err = problems.error_message();
            assert!(
                err.contains(&format!("from {user:?}"))
                    && err.contains(
                        "only system:serviceaccount:cert-manager:cert-manager-csi-driver"
                    ),
                "{err}"
            );
        }
    }

    #[rstest::rstest]
    #[case::mixed_identity(
        "mixed-identity",
        "has subject [CN (2.5.4.3)=\"ns/payments/sa/admin\"]"
    )]
    #[case::extra_dns("extra-dns", "its spec.request asks for DNS SAN \"api.payments.svc\"")]
    #[case::bad_key("ed25519", "Ed25519")]
    fn the_csi_drivers_requests_are_checked_too(#[case] csr_case: &str, #[case] message: &str) {
        let user = crate::settings::CSI_DRIVER_USER;
        let problems = check_certificate_resource(
            CertKind::CertificateRequest,
            &certificate_request(csr_case, json!({})),
            user,
            &settings(),
        );
        assert_every_error_is(&problems, Kind::Forbidden);
        let err = problems.error_message();
        assert!(
            err.contains(message) && err.contains("CertificateRequest \"stolen\" from"),
            "{err}"
        );
    }

    #[rstest::rstest]
    #[case::p256("good-p256", json!({}))]
    #[case::rsa("good-rsa2048", json!({"usages": ["client auth", "digital signature"]}))]
    #[case::shorter("good-p384", json!({"duration": "1h", "isCA": false}))]
    fn a_service_account_may_request_its_own_identity(
        #[case] csr_case: &str,
        #[case] patch: Value,
    ) {
        let problems = check_certificate_resource(
            CertKind::CertificateRequest,
            &certificate_request(csr_case, patch),
            OWN_ACCOUNT,
            &binding_requester(),
        );
        assert_eq!(problems, Problems::default());
    }

    #[rstest::rstest]
    #[case::the_csi_driver(crate::settings::CSI_DRIVER_USER, "good-p256", json!({}), "only a ServiceAccount of namespace \"payments\" may request", Kind::Forbidden)]
    #[case::a_user("alice", "good-p256", json!({}), "from \"alice\"", Kind::Forbidden)]
    #[case::an_account_of_another_namespace("system:serviceaccount:billing:payments-api", "good-p256", json!({}), "only a ServiceAccount of namespace", Kind::Forbidden)]
    #[case::another_namespace(OWN_ACCOUNT, "other-namespace", json!({}), "expected exactly one, \"spiffe://cluster/ns/payments/sa/payments-api\"", Kind::Forbidden)]
    #[case::another_account(OWN_ACCOUNT, "other-account", json!({}), "expected exactly one, \"spiffe://cluster/ns/payments/sa/payments-api\"", Kind::Forbidden)]
    #[case::extra_dns(OWN_ACCOUNT, "extra-dns", json!({}), "DNS SAN", Kind::Forbidden)]
    #[case::extra_ip(OWN_ACCOUNT, "extra-ip", json!({}), "IP SAN 10.0.0.7", Kind::Forbidden)]
    #[case::extra_uri(OWN_ACCOUNT, "extra-uri", json!({}), "has URI SANs [", Kind::Forbidden)]
    #[case::ca_csr(OWN_ACCOUNT, "ca-extension", json!({}), "basicConstraints", Kind::Forbidden)]
    #[case::ca_request(OWN_ACCOUNT, "good-p256", json!({"isCA": true}), "its spec.isCA is true; expected false", Kind::Forbidden)]
    #[case::bad_key(OWN_ACCOUNT, "rsa1024", json!({}), "1024-bit RSA key", Kind::Forbidden)]
    #[case::garbage(OWN_ACCOUNT, "good-p256", json!({"request": "bm90IGEgQ1NS"}), "its spec.request is not one PEM block", Kind::Malformed)]
    #[case::no_request(OWN_ACCOUNT, "good-p256", json!({"request": null}), "its spec.request is not one PEM block", Kind::Malformed)]
    #[case::server_auth(OWN_ACCOUNT, "good-p256", json!({"usages": ["digital signature", "server auth"]}), "its spec.usages are [\"digital signature\", \"server auth\"]; expected", Kind::Forbidden)]
    #[case::no_usages(OWN_ACCOUNT, "good-p256", json!({"usages": null}), "its spec.usages are []", Kind::Forbidden)]
    #[case::too_long(OWN_ACCOUNT, "good-p256", json!({"duration": "2160h"}), "its spec.duration is \"2160h\"; expected 1h to certificate.duration \"24h\"", Kind::OutOfRange)]
    #[case::too_short(OWN_ACCOUNT, "good-p256", json!({"duration": "30m"}), "its spec.duration is \"30m\"", Kind::OutOfRange)]
    #[case::no_duration(OWN_ACCOUNT, "good-p256", json!({"duration": null}), "its spec.duration is unset", Kind::OutOfRange)]
    fn forged_requests_are_rejected_with_the_binding(
        #[case] user: &str,
        #[case] csr_case: &str,
        #[case] patch: Value,
        #[case] message: &str,
        #[case] kind: Kind,
    ) {
        let problems = check_certificate_resource(
            CertKind::CertificateRequest,
            &certificate_request(csr_case, patch),
            user,
            &binding_requester(),
        );
        assert_every_error_is(&problems, kind);
        let err = problems.error_message();
        assert!(err.contains(message), "{err}");
    }

    #[test]
    fn requests_for_other_issuers_pass_untouched() {
        let mut object = certificate_request("extra-dns", json!({"isCA": true}));
        object["spec"]["issuerRef"]["name"] = json!("web");
        for s in [settings(), binding_requester()] {
            let problems =
                check_certificate_resource(CertKind::CertificateRequest, &object, "alice", &s);
            assert_eq!(problems, Problems::default());
        }
    }

    #[rstest::rstest]
    #[case::own("system:serviceaccount:payments:api", "payments", Some("api"))]
    #[case::other_namespace("system:serviceaccount:billing:api", "payments", None)]
    #[case::no_name("system:serviceaccount:payments:", "payments", None)]
    #[case::a_user("payments:api", "payments", None)]
    #[case::cluster_scoped("system:serviceaccount::api", "", None)]
    fn own_accounts_are_read_from_the_user_name(
        #[case] user: &str,
        #[case] namespace: &str,
        #[case] account: Option<&str>,
    ) {
        assert_eq!(own_account(user, namespace), account);
    }
}
