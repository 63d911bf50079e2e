//! The policy's decision for one admission request, as a pure function of the request,
//! the settings and the pod's ServiceAccount (read through a [`Lookup`]): the guard for
//! guard mode, the injection for a Pod CREATE in inject mode, and nothing otherwise.

use crate::arena;
use crate::credentials::{self, Credentials, Lookup};
use crate::guard::{self, CertKind};
use crate::iamra;
use crate::irsa;
use crate::json::Json;
use crate::kubevirt::{self, Token};
use crate::names;
use crate::patch::Patch;
use crate::pod::{self, Account, Annotations};
use crate::problem::Problems;
use crate::request::Request;
use crate::settings::{Mode, Settings};

#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    Accept {
        warnings: Vec<String>,
    },
    Mutate {
        object: Json<'a>,
        warnings: Vec<String>,
    },
    Reject {
        message: String,
    },
}

impl Decision<'_> {
    fn accept() -> Self {
        Decision::Accept {
            warnings: Vec::new(),
        }
    }

    /// A rejection listing the errors of `problems`, which has some.
    fn reject(problems: &Problems) -> Self {
        Decision::Reject {
            message: problems.error_message(),
        }
    }
}

/// The settings, with what the injection builds from them alone: `lib.rs` makes one
/// per settings text, so that requests only fill in what is their own.
#[derive(Debug)]
pub struct Policy {
    pub settings: Settings,
    iamra: iamra::plan::Template,
}

impl From<Settings> for Policy {
    fn from(settings: Settings) -> Self {
        Policy {
            iamra: iamra::plan::Template::new(&settings),
            settings,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Settings::default().into()
    }
}

/// What a request is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    PodCreate,
    /// A cert-manager resource the guard reads (created or, for a `Certificate`, updated).
    Certificate(CertKind),
    Other,
}

impl Target {
    fn of(request: &Request) -> Self {
        let (group, kind) = (request.kind.group.as_str(), request.kind.kind.as_str());
        match (group, kind, request.operation.as_str()) {
            ("", "Pod", "CREATE") if request.sub_resource.is_empty() => Target::PodCreate,
            ("cert-manager.io", "Certificate", "CREATE" | "UPDATE") => {
                Target::Certificate(CertKind::Certificate)
            }
            ("cert-manager.io", "CertificateRequest", "CREATE") => {
                Target::Certificate(CertKind::CertificateRequest)
            }
            _ => Target::Other,
        }
    }
}

/// The guard mode: validate only, never mutate.
fn guard(target: Target, request: &Request, settings: &Settings) -> Decision<'static> {
    let mut problems = Problems::default();
    match target {
        Target::Certificate(kind) => {
            let requester = guard::Requester {
                username: &request.user_info.username,
                namespace: &request.namespace,
            };
            guard::check_certificate_resource(
                kind,
                &request.object,
                &requester,
                settings,
                &mut problems,
            );
        }
        Target::PodCreate => guard::check_pod_volumes(&request.object, settings, &mut problems),
        Target::Other => {}
    }
    if problems.has_errors() {
        return Decision::reject(&problems);
    }
    Decision::accept()
}

/// Decides what to do with one request. `lookup` reads the pod's ServiceAccount
/// (`credentials::from_host` in the module); only Pod CREATE requests in inject
/// mode, with `readServiceAccounts` on, call it.
pub fn evaluate<'a>(mut request: Request<'a>, policy: &Policy, lookup: Lookup) -> Decision<'a> {
    let decision = decide(&mut request, policy, lookup);
    // What the decision did not take: all of the request but an edited pod. Dropped, a
    // tree is walked node by node: 2.4 k instructions for a 1-container pod let pass.
    arena::discard(request);
    decision
}

fn decide<'a>(request: &mut Request<'a>, policy: &Policy, lookup: Lookup) -> Decision<'a> {
    let settings = &policy.settings;
    let target = Target::of(request);
    if settings.mode == Mode::Guard {
        return guard(target, request, settings);
    }
    if target != Target::PodCreate {
        return Decision::accept();
    }
    let namespace = pod_namespace(request).to_owned();
    inject(&mut request.object, &namespace, policy, lookup)
}

/// A Pod CREATE in inject mode. The pod is edited in place, and taken into the decision
/// only when edited.
fn inject<'a>(
    pod: &mut Json<'a>,
    namespace: &str,
    policy: &Policy,
    lookup: Lookup,
) -> Decision<'a> {
    let settings = &policy.settings;
    let mut problems = Problems::default();
    // The guard's pod rule holds in inject mode too: no forged volume beside ours.
    guard::check_pod_volumes(pod, settings, &mut problems);
    if problems.has_errors() {
        return Decision::reject(&problems);
    }
    let Some(credentials) = credentials::resolve(pod, namespace, settings, lookup, &mut problems)
    else {
        return Decision::reject(&problems);
    };
    // Only a pod that gets credentials must have the shape their edits assume.
    if credentials != Credentials::None {
        if let Err(e) = pod::check_shape(pod) {
            problems.error(e);
            return Decision::reject(&problems);
        }
    }
    match credentials {
        Credentials::None => guest_share_only(pod, settings, problems),
        Credentials::RolesAnywhere(ask) => roles_anywhere(pod, &ask, namespace, policy, problems),
        Credentials::Irsa {
            account,
            annotations,
        } => irsa(pod, &account, &annotations, settings, problems),
    }
}

/// IAM Roles Anywhere into a pod of the right shape; no change for a pod injected with
/// the same configuration.
fn roles_anywhere<'a>(
    pod: &mut Json<'a>,
    ask: &iamra::ask::Ask,
    namespace: &str,
    policy: &Policy,
    mut problems: Problems,
) -> Decision<'a> {
    let settings = &policy.settings;
    let planned = iamra::plan::plan(pod, ask, &policy.iamra, settings, &mut problems);
    if iamra::plan::is_injected(pod, &policy.iamra, &planned.config_hash) {
        return Decision::accept();
    }
    iamra::plan::conflicts(pod, ask, settings, namespace, &mut problems);
    mutate(pod, planned.patch, problems, settings)
}

/// IRSA into a pod of the right shape, as pod-identity-webhook does it; no change for a
/// pod that already has it.
fn irsa<'a>(
    pod: &mut Json<'a>,
    account: &str,
    annotations: &Annotations,
    settings: &Settings,
    mut problems: Problems,
) -> Decision<'a> {
    let account = Account {
        name: account,
        annotations,
    };
    let Some(ask) = irsa::ask::read(pod, account, settings, &mut problems) else {
        return Decision::reject(&problems);
    };
    // The plan gives the VM's token server IRSA as any container.
    let added = kubevirt::share_token(pod, Token::Injected, settings, &mut problems);
    let patch = irsa::plan::plan(pod, &ask, added, &mut problems);
    mutate(pod, patch, problems, settings)
}

/// No credentials from us: a VM's pod that already has an IRSA token (from
/// pod-identity-webhook) may still share it with the guest.
fn guest_share_only<'a>(
    pod: &mut Json<'a>,
    settings: &Settings,
    mut problems: Problems,
) -> Decision<'a> {
    let server = kubevirt::share_token(pod, Token::Existing, settings, &mut problems);
    let patch = Patch {
        added: server.into_iter().collect(),
        ..Patch::default()
    };
    mutate(pod, patch, problems, settings)
}

/// Applies `patch` to the pod with the warnings recorded on it, unless `problems` holds
/// errors; accepts the pod as it is when there is nothing to write.
fn mutate<'a>(
    pod: &mut Json<'a>,
    mut patch: Patch,
    problems: Problems,
    settings: &Settings,
) -> Decision<'a> {
    if problems.has_errors() {
        return Decision::reject(&problems);
    }
    let warnings = problems.into_warnings();
    patch.annotations.extend(recorded(pod, &warnings, settings));
    if patch.is_empty() {
        return Decision::Accept { warnings };
    }
    match patch.apply(pod) {
        Ok(()) => Decision::Mutate {
            object: std::mem::take(pod),
            warnings,
        },
        Err(e) => Decision::Reject {
            message: e.to_string(),
        },
    }
}

/// The annotation `<annotationPrefix>/warnings` with the warnings, one per line: the
/// controller that creates a pod (a ReplicaSet, a Job) drops an admission response's
/// warnings, so the pod keeps them. Every pod gets it, not only a controller's, for
/// whoever reads it later. `None` without warnings, when the pod already holds these
/// (the policy is invoked again on the pod it mutated), or when the pod is not one the
/// injection can edit (no API server sends such a pod).
fn recorded(pod: &Json, warnings: &[String], settings: &Settings) -> Option<(String, String)> {
    if warnings.is_empty() || pod::check_shape(pod).is_err() {
        return None;
    }
    let key = names::key(&settings.annotation_prefix, names::WARNINGS);
    let text = warnings.join("\n");
    (pod::annotation(pod, &key) != Some(text.as_str())).then_some((key, text))
}

/// The request's namespace; the pod's own field when the request lacks one.
fn pod_namespace<'r>(request: &'r Request) -> &'r str {
    if !request.namespace.is_empty() {
        return &request.namespace;
    }
    request
        .object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Json::as_str)
        .unwrap_or("default")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iamra::plan::SIDECAR_NAME;
    use crate::testutil::{self, settings, value, PROFILE, ROLE};
    use rstest::rstest;
    use serde_json::{json, Value};

    /// Most tests below are about pod annotations: ServiceAccounts without annotations.
    fn evaluate(request: &Request<'static>, settings: &Settings) -> Decision<'static> {
        super::evaluate(request.clone(), &settings.clone().into(), &|_, _| {
            Ok(Default::default())
        })
    }

    /// Evaluates with a ServiceAccount that carries `account`.
    fn with_account(request: &Request<'static>, account: &[(&str, &str)]) -> Decision<'static> {
        let account: Annotations = account
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::evaluate(request.clone(), &settings().into(), &|_, _| {
            Ok(account.clone())
        })
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
        let object = value(&object);
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
            super::evaluate(r.clone(), &settings().into(), &|_, _| {
                Err("not found".into())
            })
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
    #[case::update_pod("UPDATE", "Pod", "", Mode::Inject)]
    #[case::create_deployment_apps("CREATE", "Deployment", "apps", Mode::Inject)]
    #[case::create_pod("CREATE", "Pod", "", Mode::Guard)]
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
        assert_eq!(
            super::evaluate(r.clone(), &s.into(), &never),
            Decision::accept()
        );
    }

    fn request(object: Value) -> Request<'static> {
        testutil::request(json!({
            "uid": "1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "payments",
            "object": object,
        }))
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
            Decision::Mutate { object, warnings } => (value(&object), warnings),
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
        assert_eq!(recorded(&pod), None, "no warnings, no record");
    }

    /// The warnings the pod records.
    fn recorded(pod: &Value) -> Option<&str> {
        pod["metadata"]["annotations"]["iamra.aws/warnings"].as_str()
    }

    #[rstest]
    #[case::roles_anywhere_beside_a_preset_variable(opted_in(json!({"containers": [{"name": "app", "env": [{"name": "AWS_EC2_METADATA_SERVICE_ENDPOINT", "value": "http://169.254.169.254"}]}]})), &[])]
    #[case::two_warnings_one_per_line(opted_in(json!({"containers": [{"name": "a", "env": [{"name": "AWS_ACCESS_KEY_ID", "value": "x"}]}, {"name": "b", "env": [{"name": "AWS_PROFILE", "value": "x"}]}]})), &[])]
    #[case::irsa_with_a_short_token(pod(json!({"eks.amazonaws.com/token-expiration": "60"}), json!({"containers": [{"name": "app"}]})), &IRSA)]
    #[case::nothing_but_an_unknown_annotation(pod(json!({"iamra.aws/rol-arn": ROLE}), json!({"containers": [{"name": "app"}]})), &[])]
    #[case::a_record_of_other_warnings_is_replaced(pod(json!({"iamra.aws/rol-arn": ROLE, "iamra.aws/warnings": "an older warning"}), json!({"containers": [{"name": "app"}]})), &[])]
    fn warnings_are_recorded_on_the_pod_one_per_line(
        #[case] object: Value,
        #[case] account: &[(&str, &str)],
    ) {
        let Decision::Mutate { object, warnings } = with_account(&request(object), account) else {
            panic!("expected a mutation")
        };
        let object = value(&object);
        assert!(!warnings.is_empty());
        assert_eq!(recorded(&object), Some(warnings.join("\n").as_str()));
        // The policy is invoked again on the pod it mutated: the record is there already.
        assert!(matches!(
            with_account(&request(object), account),
            Decision::Accept { .. }
        ));
    }

    #[test]
    fn warnings_alone_are_the_only_change() {
        let original = pod(
            json!({"iamra.aws/rol-arn": ROLE}),
            json!({"containers": [{"name": "app"}]}),
        );
        let (mut pod, warnings) = mutated(original.clone());
        assert_eq!(
            warnings,
            [
                "annotation iamra.aws/rol-arn is not one this policy reads (known: role-arn, \
              signing-profile-arn, session-name, token-duration, audience, log-level, region)"
            ]
        );
        let annotations = pod["metadata"]["annotations"].as_object_mut().unwrap();
        assert_eq!(
            annotations.remove("iamra.aws/warnings"),
            Some(json!(warnings[0]))
        );
        assert_eq!(pod, original);
    }

    #[test]
    fn the_record_is_under_the_settings_prefix() {
        let mut s = settings();
        s.annotation_prefix = "example.com".into();
        let object = pod(
            json!({"example.com/rol-arn": ROLE}),
            json!({"containers": [{"name": "app"}]}),
        );
        let Decision::Mutate { object, warnings } = evaluate(&request(object), &s) else {
            panic!("expected a mutation")
        };
        let object = value(&object);
        let record = &object["metadata"]["annotations"]["example.com/warnings"];
        assert_eq!(record.as_str(), Some(warnings[0].as_str()));
    }

    /// Accepted as they are, with the warnings in the response alone: a pod without
    /// warnings keeps a record it came with, and a pod the injection cannot edit takes
    /// none.
    #[rstest]
    #[case::a_record_from_another_pod_without_warnings_now(pod(json!({"iamra.aws/warnings": "a warning"}), json!({"containers": [{"name": "app"}]})), false)]
    #[case::a_pod_the_injection_cannot_edit(json!({"metadata": {"annotations": {"iamra.aws/rol-arn": ROLE}}}), true)]
    fn some_pods_are_left_as_they_are(#[case] object: Value, #[case] warned: bool) {
        let Decision::Accept { warnings } = evaluate(&request(object), &settings()) else {
            panic!("expected the pod accepted as it is")
        };
        assert_eq!(!warnings.is_empty(), warned, "{warnings:?}");
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
        let object = value(&object);
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
    #[case::containers_name_app(json!({"containers": [{"name": "app"}]}))]
    fn pods_without_annotations_are_untouched(#[case] spec: Value) {
        assert_eq!(
            evaluate(&request(pod(json!({}), spec)), &settings()),
            Decision::accept()
        );
    }

    #[rstest]
    #[case::update_pod("UPDATE", "Pod", "")]
    #[case::create_deployment_apps("CREATE", "Deployment", "apps")]
    #[case::delete_pod("DELETE", "Pod", "")]
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
    #[case::role_without_profile(json!({"iamra.aws/role-arn": ROLE}), json!({"containers": [{"name": "a"}]}), "needs iamra.aws/signing-profile-arn")]
    #[case::no_containers(json!({"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}), json!({"containers": []}), "spec.containers must be a non-empty list")]
    #[case::host_network(json!({"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}), json!({"hostNetwork": true, "containers": [{"name": "a"}]}), "spec.hostNetwork is true")]
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
    #[case::json_null(json!(null))]
    #[case::a_pod(json!("a pod"))]
    #[case::annotations_only(json!({"metadata": {"annotations": {"iamra.aws/role-arn": ROLE, "iamra.aws/signing-profile-arn": PROFILE}}}))]
    #[case::metadata_x_spec(json!({"metadata": "x", "spec": 1}))]
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

    fn cert_manager_request(kind: &str, op: &str, user: &str) -> Request<'static> {
        let mut r = request(
            json!({"metadata": {"name": "x"}, "spec": {"issuerRef": {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"},
                "request": crate::csr::tests::request("good-p256")}}),
        );
        r.namespace = "payments".into();
        r.kind.group = "cert-manager.io".into();
        r.kind.kind = kind.into();
        r.operation = op.into();
        r.user_info.username = user.into();
        r
    }

    #[rstest]
    #[case::certificate_create_alice("Certificate", "CREATE", "alice", false)]
    #[case::certificate_update_alice("Certificate", "UPDATE", "alice", false)]
    #[case::certificate_delete_alice("Certificate", "DELETE", "alice", true)]
    #[case::certificaterequest_create_alice("CertificateRequest", "CREATE", "alice", false)]
    #[case::certificaterequest_create(
        "CertificateRequest",
        "CREATE",
        crate::settings::CSI_DRIVER_USER,
        true
    )]
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
