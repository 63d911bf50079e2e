//! The policy's decision for one admission request, as a pure function of the request,
//! the settings and the pod's ServiceAccount (read through a [`Lookup`]).

use crate::identity;
use crate::inject::{self, Plan};
use crate::irsa;
use crate::pod;
use crate::service_account::{self, Credentials, Lookup};
use crate::settings::{Mode, Settings};
use kubewarden_policy_sdk::request::KubernetesAdmissionRequest;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Accept {
        warnings: Vec<String>,
    },
    Mutate {
        object: Value,
        warnings: Vec<String>,
    },
    Reject {
        message: String,
    },
}

impl Decision {
    fn accept() -> Self {
        Decision::Accept {
            warnings: Vec::new(),
        }
    }

    /// A rejection listing `errors`; an acceptance when there are none.
    fn reject(errors: Vec<String>) -> Self {
        if errors.is_empty() {
            return Decision::accept();
        }
        Decision::Reject {
            message: errors.join("; "),
        }
    }
}

fn is_pod_create(request: &KubernetesAdmissionRequest) -> bool {
    request.kind.kind == "Pod"
        && request.kind.group.is_empty()
        && request.operation == "CREATE"
        && request.sub_resource.is_empty()
}

/// The guard mode: validate only, never mutate.
fn guard(request: &KubernetesAdmissionRequest, settings: &Settings) -> Decision {
    let kind = request.kind.kind.as_str();
    let op = request.operation.as_str();
    let certificate = request.kind.group == "cert-manager.io"
        && matches!(
            (kind, op),
            ("Certificate", "CREATE" | "UPDATE") | ("CertificateRequest", "CREATE")
        );
    if certificate {
        let verdict = identity::check_certificate_resource(
            kind,
            &request.object,
            &request.user_info.username,
            settings,
        );
        return verdict.map_or_else(Decision::accept, |e| Decision::reject(vec![e]));
    }
    if is_pod_create(request) {
        return Decision::reject(identity::check_pod_volumes(&request.object, settings));
    }
    Decision::accept()
}

/// Decides what to do with one request. `lookup` reads the pod's ServiceAccount
/// (`service_account::from_host` in the module); only Pod CREATE requests in inject
/// mode, with `readServiceAccounts` on, call it.
pub fn evaluate(
    request: &KubernetesAdmissionRequest,
    settings: &Settings,
    lookup: Lookup,
) -> Decision {
    if settings.mode == Mode::Guard {
        return guard(request, settings);
    }
    if !is_pod_create(request) {
        return Decision::accept();
    }
    let pod_value = &request.object;
    // The guard's pod rule holds in inject mode too: no forged volume beside ours.
    let forged = identity::check_pod_volumes(pod_value, settings);
    if !forged.is_empty() {
        return Decision::reject(forged);
    }
    let namespace = pod_namespace(request);
    let parsed = match service_account::resolve(pod_value, &namespace, settings, lookup) {
        Ok(Credentials::RolesAnywhere(parsed)) => parsed,
        Ok(Credentials::Irsa {
            account,
            annotations,
            warnings,
        }) => return irsa_decision(pod_value, &annotations, &account, settings, warnings),
        Err(errors) => return Decision::reject(errors),
    };
    let Some(wanted) = parsed.request else {
        return Decision::Accept {
            warnings: parsed.warnings,
        };
    };
    if let Err(e) = pod::check_shape(pod_value) {
        return Decision::reject(vec![e]);
    }
    let plan = inject::plan(pod_value, &wanted, settings);
    if pod::is_injected(pod_value, &settings.annotation_prefix, &plan) {
        return Decision::accept();
    }
    let conflicts = inject::conflicts(pod_value, &wanted, settings, &namespace);
    if !conflicts.is_empty() {
        return Decision::reject(conflicts);
    }
    mutate(pod_value, &plan, parsed.warnings)
}

/// IRSA, as pod-identity-webhook does it; no change for a pod that already has it.
fn irsa_decision(
    pod_value: &Value,
    service_account: &crate::annotations::Annotations,
    account: &str,
    settings: &Settings,
    warnings: Vec<String>,
) -> Decision {
    if let Err(e) = pod::check_shape(pod_value) {
        return Decision::reject(vec![e]);
    }
    match irsa::plan(pod_value, service_account, account, settings) {
        Err(errors) => Decision::reject(errors),
        Ok(plan) if plan.changes_nothing() => Decision::Accept {
            warnings: warnings.into_iter().chain(plan.warnings).collect(),
        },
        Ok(plan) => mutate(pod_value, &plan, warnings),
    }
}

/// Applies `plan`, with its warnings after `warnings`.
fn mutate(pod_value: &Value, plan: &Plan, mut warnings: Vec<String>) -> Decision {
    warnings.extend(plan.warnings.iter().cloned());
    match pod::apply(pod_value.clone(), plan) {
        Ok(object) => Decision::Mutate { object, warnings },
        Err(e) => Decision::reject(vec![e]),
    }
}

/// The request's namespace; the pod's own field when the request lacks one.
fn pod_namespace(request: &KubernetesAdmissionRequest) -> String {
    if !request.namespace.is_empty() {
        return request.namespace.clone();
    }
    request
        .object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::tests::{settings, PROFILE, ROLE};
    use crate::annotations::Annotations;
    use crate::inject::SIDECAR_NAME;
    use rstest::rstest;
    use serde_json::json;

    /// Most tests below are about pod annotations: ServiceAccounts without annotations.
    fn evaluate(request: &KubernetesAdmissionRequest, settings: &Settings) -> Decision {
        super::evaluate(request, settings, &|_, _| Ok(Default::default()))
    }

    /// Evaluates with a ServiceAccount that carries `account`.
    fn with_account(request: &KubernetesAdmissionRequest, account: &[(&str, &str)]) -> Decision {
        let account: Annotations = account
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::evaluate(request, &settings(), &|_, _| Ok(account.clone()))
    }

    const IRSA: [(&str, &str); 1] = [("eks.amazonaws.com/role-arn", ROLE)];

    #[test]
    fn an_irsa_service_account_gets_the_token_and_env_once() {
        let Decision::Mutate { object, warnings } = with_account(
            &request(pod(json!({}), json!({"containers": [{"name": "app"}]}))),
            &IRSA,
        ) else {
            panic!("expected a mutation")
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(object["spec"]["volumes"][0]["name"], "aws-iam-token");
        let app = &object["spec"]["containers"][0];
        assert_eq!(
            app["env"][0],
            json!({"name": "AWS_ROLE_ARN", "value": ROLE})
        );
        assert_eq!(app["volumeMounts"][0]["name"], "aws-iam-token");
        assert!(
            object["spec"].get("initContainers").is_none(),
            "no sidecar for IRSA"
        );
        assert!(object["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .is_empty());
        assert_eq!(with_account(&request(object), &IRSA), Decision::accept());
    }

    #[test]
    fn irsa_rejects_a_malformed_role_by_service_account() {
        let Decision::Reject { message } = with_account(
            &request(pod(json!({}), json!({"containers": [{"name": "app"}]}))),
            &[("eks.amazonaws.com/role-arn", "app-role")],
        ) else {
            panic!("expected a rejection")
        };
        assert!(
            message.starts_with(
                "annotation eks.amazonaws.com/role-arn on ServiceAccount payments/default:"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_failed_lookup_rejects_the_pod_by_service_account() {
        let r = request(pod(
            json!({}),
            json!({"serviceAccountName": "api", "containers": [{"name": "app"}]}),
        ));
        let Decision::Reject { message } =
            super::evaluate(&r, &settings(), &|_, _| Err("not found".into()))
        else {
            panic!("expected a rejection")
        };
        assert!(
            message.starts_with(
                "cannot read ServiceAccount payments/api, which the pod runs as: not found"
            ),
            "{message}"
        );
    }

    #[rstest]
    #[case("UPDATE", "Pod", "", Mode::Inject)]
    #[case("CREATE", "Deployment", "apps", Mode::Inject)]
    #[case("CREATE", "Pod", "", Mode::Guard)]
    fn only_pod_creates_in_inject_mode_read_the_service_account(
        #[case] op: &str,
        #[case] kind: &str,
        #[case] group: &str,
        #[case] mode: Mode,
    ) {
        let mut r = request(pod(json!({}), json!({"containers": [{"name": "app"}]})));
        r.operation = op.into();
        r.kind.kind = kind.into();
        r.kind.group = group.into();
        let mut s = settings();
        s.mode = mode;
        let never =
            |_: &str, _: &str| -> Result<Annotations, String> { panic!("the host was asked") };
        assert_eq!(super::evaluate(&r, &s, &never), Decision::accept());
    }

    fn request(object: Value) -> KubernetesAdmissionRequest {
        serde_json::from_value(json!({
            "uid": "1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "payments",
            "object": object,
        }))
        .unwrap()
    }

    fn pod(annotations: Value, spec: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "api", "namespace": "payments", "annotations": annotations},
            "spec": spec,
        })
    }

    fn opted_in(spec: Value) -> Value {
        pod(
            json!({"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}),
            spec,
        )
    }

    fn mutated(object: Value) -> (Value, Vec<String>) {
        match evaluate(&request(object), &settings()) {
            Decision::Mutate { object, warnings } => (object, warnings),
            other => panic!("expected a mutation, got {other:?}"),
        }
    }

    #[test]
    fn an_opted_in_pod_gets_the_sidecar_and_wiring() {
        let (pod, warnings) = mutated(opted_in(
            json!({"containers": [{"name": "app", "image": "app"}]}),
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let init = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init.len(), 1);
        assert_eq!(init[0]["name"], SIDECAR_NAME);
        let app = &pod["spec"]["containers"][0];
        assert_eq!(app["env"][0]["name"], "AWS_EC2_METADATA_SERVICE_ENDPOINT");
        assert!(
            app.get("volumeMounts").is_none(),
            "app containers never see the certificate"
        );
        assert_eq!(
            pod["spec"]["volumes"][0]["csi"]["driver"],
            "csi.cert-manager.io"
        );
        assert_eq!(pod["metadata"]["annotations"]["iamra.aws/injected"], "true");
    }

    #[test]
    fn the_native_sidecar_goes_before_other_init_containers() {
        let (pod, _) = mutated(opted_in(json!({
            "initContainers": [{"name": "migrate"}],
            "containers": [{"name": "app"}]
        })));
        let init = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init[0]["name"], SIDECAR_NAME);
        assert_eq!(init[1]["name"], "migrate");
        assert_eq!(init[1]["env"][0]["value"], "http://127.0.0.1:9911");
    }

    #[test]
    fn classic_mode_appends_to_containers() {
        let mut s = settings();
        s.sidecar.native = false;
        let Decision::Mutate { object, .. } = evaluate(
            &request(opted_in(json!({"containers": [{"name": "app"}]}))),
            &s,
        ) else {
            panic!("expected a mutation")
        };
        let containers = object["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers[1]["name"], SIDECAR_NAME);
        assert!(object["spec"].get("initContainers").is_none());
    }

    #[test]
    fn unknown_fields_survive() {
        let (pod, _) = mutated(opted_in(json!({
            "futureField": {"x": 1},
            "containers": [{"name": "app", "futureContainerField": true}],
            "initContainers": [{"name": "proxy", "restartPolicy": "Always", "futureProbe": {}}],
        })));
        assert_eq!(pod["spec"]["futureField"], json!({"x": 1}));
        assert_eq!(pod["spec"]["containers"][0]["futureContainerField"], true);
        assert_eq!(pod["spec"]["initContainers"][1]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["initContainers"][1]["futureProbe"], json!({}));
    }

    #[test]
    fn re_evaluating_an_injected_pod_changes_nothing() {
        let (injected, _) = mutated(opted_in(json!({"containers": [{"name": "app"}]})));
        assert_eq!(
            evaluate(&request(injected), &settings()),
            Decision::accept()
        );
    }

    #[test]
    fn a_pod_injected_under_another_configuration_is_rejected_by_name() {
        let (injected, _) = mutated(opted_in(json!({"containers": [{"name": "app"}]})));
        let mut s = settings();
        s.sidecar.port = 9912;
        let Decision::Reject { message } = evaluate(&request(injected), &s) else {
            panic!("expected a rejection")
        };
        assert!(
            message.contains("reserved for the credentials sidecar"),
            "{message}"
        );
    }

    #[rstest]
    #[case(json!({"containers": [{"name": "app"}]}))]
    fn pods_without_annotations_are_untouched(#[case] spec: Value) {
        assert_eq!(
            evaluate(&request(pod(json!({}), spec)), &settings()),
            Decision::accept()
        );
    }

    #[rstest]
    #[case("UPDATE", "Pod", "")]
    #[case("CREATE", "Deployment", "apps")]
    #[case("DELETE", "Pod", "")]
    fn other_requests_are_accepted_unchanged(
        #[case] op: &str,
        #[case] kind: &str,
        #[case] group: &str,
    ) {
        let mut r = request(opted_in(json!({"containers": [{"name": "app"}]})));
        r.operation = op.into();
        r.kind.kind = kind.into();
        r.kind.group = group.into();
        assert_eq!(evaluate(&r, &settings()), Decision::accept());
    }

    #[rstest]
    #[case(json!({"iamra.aws/role-arn": ROLE}), json!({"containers": [{"name": "a"}]}), "needs iamra.aws/signing-profile-arn")]
    #[case(json!({"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}), json!({"containers": []}), "spec.containers must be a non-empty list")]
    #[case(json!({"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}), json!({"hostNetwork": true, "containers": [{"name": "a"}]}), "spec.hostNetwork is true")]
    fn rejections_name_the_field(
        #[case] annotations: Value,
        #[case] spec: Value,
        #[case] message: &str,
    ) {
        let Decision::Reject { message: got } =
            evaluate(&request(pod(annotations, spec)), &settings())
        else {
            panic!("expected a rejection")
        };
        assert!(got.contains(message), "{got}");
    }

    #[rstest]
    #[case(json!(null))]
    #[case(json!("a pod"))]
    #[case(json!({"metadata": {"annotations": {"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}}}))]
    #[case(json!({"metadata": "x", "spec": 1}))]
    fn malformed_objects_never_panic(#[case] object: Value) {
        let _ = evaluate(&request(object), &settings());
    }

    fn guard_settings() -> Settings {
        let mut s = settings();
        s.mode = Mode::Guard;
        s
    }

    #[test]
    fn guard_mode_accepts_the_injected_pod_without_mutating() {
        let (injected, _) = mutated(opted_in(json!({"containers": [{"name": "app"}]})));
        assert_eq!(
            evaluate(&request(injected), &guard_settings()),
            Decision::accept()
        );
        let fresh = opted_in(json!({"containers": [{"name": "app"}]}));
        assert_eq!(
            evaluate(&request(fresh), &guard_settings()),
            Decision::accept()
        );
    }

    fn forged_volume() -> Value {
        json!({"name": "stolen", "csi": {"driver": "csi.cert-manager.io", "volumeAttributes": {
            "csi.cert-manager.io/issuer-name": "iamra-workload",
            "csi.cert-manager.io/issuer-kind": "ClusterIssuer",
            "csi.cert-manager.io/uri-sans": "spiffe://cluster/ns/payments/sa/payments-api",
            "csi.cert-manager.io/common-name": "ns/payments/sa/payments-api",
        }}})
    }

    #[test]
    fn guard_mode_rejects_a_forged_volume_in_any_pod() {
        let p = pod(
            json!({}),
            json!({"containers": [{"name": "app"}], "volumes": [forged_volume()]}),
        );
        let Decision::Reject { message } = evaluate(&request(p), &guard_settings()) else {
            panic!("expected a rejection")
        };
        assert!(message.contains("volume \"stolen\""), "{message}");
    }

    #[test]
    fn inject_mode_rejects_a_forged_volume_beside_the_injected_one() {
        let p = opted_in(json!({"containers": [{"name": "app"}], "volumes": [forged_volume()]}));
        let Decision::Reject { message } = evaluate(&request(p), &settings()) else {
            panic!("expected a rejection")
        };
        assert!(message.contains("volume \"stolen\""), "{message}");
    }

    fn cert_manager_request(kind: &str, op: &str, user: &str) -> KubernetesAdmissionRequest {
        let mut r = request(
            json!({"metadata": {"name": "x"}, "spec": {"issuerRef": {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}),
        );
        r.kind.group = "cert-manager.io".into();
        r.kind.kind = kind.into();
        r.operation = op.into();
        r.user_info.username = user.into();
        r
    }

    #[rstest]
    #[case("Certificate", "CREATE", "alice", false)]
    #[case("Certificate", "UPDATE", "alice", false)]
    #[case("Certificate", "DELETE", "alice", true)]
    #[case("CertificateRequest", "CREATE", "alice", false)]
    #[case("CertificateRequest", "CREATE", crate::settings::CSI_DRIVER_USER, true)]
    fn guard_mode_covers_cert_manager_resources(
        #[case] kind: &str,
        #[case] op: &str,
        #[case] user: &str,
        #[case] allowed: bool,
    ) {
        let decision = evaluate(&cert_manager_request(kind, op, user), &guard_settings());
        assert_eq!(decision == Decision::accept(), allowed, "{decision:?}");
    }

    #[test]
    fn inject_mode_leaves_cert_manager_resources_to_the_guard() {
        let decision = evaluate(
            &cert_manager_request("Certificate", "CREATE", "alice"),
            &settings(),
        );
        assert_eq!(decision, Decision::accept());
    }
}
