//! The pod's ServiceAccount: reading its annotations through the host, and choosing
//! between IAM Roles Anywhere and IRSA for the pod.
//!
//! # Which credentials a pod gets
//!
//! With `readServiceAccounts: false` only the pod's annotations count (no IRSA, no
//! ServiceAccount-level IAM Roles Anywhere) and the host is never called. Otherwise the
//! ServiceAccount (`spec.serviceAccountName`, else `default`, in the request's namespace)
//! is read on every Pod CREATE in inject mode; a missing ServiceAccount or a failed
//! lookup rejects the pod with a message that names it. Then, with *pod* and *account*
//! standing for "carries `<annotationPrefix>/role-arn` or `<annotationPrefix>/signing-profile-arn`",
//! *irsa* for "the ServiceAccount carries `<irsa.annotationPrefix>/role-arn`" and *skip*
//! for "the pod has the label `<irsa.annotationPrefix>/skip-pod-identity-webhook`":
//!
//! | pod | account | irsa | skip | result |
//! |-----|---------|------|------|--------|
//! | yes | any     | any  | any  | IAM Roles Anywhere (a warning when IRSA is set and not skipped) |
//! | no  | yes     | no   | any  | IAM Roles Anywhere |
//! | no  | yes     | yes  | yes  | IAM Roles Anywhere |
//! | no  | yes     | yes  | no   | rejected: ambiguous, the message says how to choose |
//! | no  | no      | yes  | no   | IRSA |
//! | no  | no      | yes  | yes  | nothing |
//! | no  | no      | no   | any  | nothing |
//!
//! IAM Roles Anywhere reads the ServiceAccount's `<annotationPrefix>/*` annotations
//! with the pod's over them, key by key (a pod may set only `session-name`, or only
//! `role-arn`, and take the rest from its ServiceAccount). The bookkeeping annotations
//! (`injected`, `config-hash`) only ever come from the pod.
//!
//! A KubeVirt virt-launcher pod never gets IAM Roles Anywhere: its IAM Roles Anywhere
//! annotations count as absent (with a warning, see `kubevirt`), so it gets IRSA or
//! nothing by the same table.

use crate::iamra::ask as iamra;
use crate::irsa::ask as irsa;
use crate::json::Json;
use crate::kubevirt::{self, Instead};
use crate::names;
use crate::pod::{self, Account, Annotations, Sources};
use crate::problem::{cut, Kind, Problem, Problems, Source};
use crate::settings::Settings;

/// Reads a ServiceAccount's annotations, given its namespace and name: the host's lookup
/// (`from_host`) in the module, a closure in the tests and benchmarks.
pub type Lookup<'a> = &'a dyn Fn(&str, &str) -> Result<Annotations, String>;

/// The credentials the pod gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing asks for credentials.
    None,
    RolesAnywhere(iamra::Ask),
    /// IRSA, from the ServiceAccount's annotations; `irsa::read` reads them once the pod
    /// is known to be editable.
    Irsa {
        /// `<namespace>/<name>`, for messages.
        account: String,
        annotations: Annotations,
    },
}

/// The ServiceAccount object as far as this policy reads it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Object {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Metadata {
    #[serde(default)]
    annotations: Option<Annotations>,
}

/// The ServiceAccount's annotations, through the Kubewarden host (`contextAwareResources`
/// must grant `v1/ServiceAccount`).
#[cfg(target_arch = "wasm32")]
pub fn from_host(namespace: &str, name: &str) -> Result<Annotations, String> {
    use kubewarden_policy_sdk::host_capabilities::kubernetes::{get_resource, GetResourceRequest};
    let request = GetResourceRequest {
        api_version: "v1".to_owned(),
        kind: "ServiceAccount".to_owned(),
        name: name.to_owned(),
        namespace: Some(namespace.to_owned()),
        disable_cache: false,
        field_masks: None,
    };
    let object: Object = get_resource(&request).map_err(|e| e.to_string())?;
    Ok(object.metadata.annotations.unwrap_or_default())
}

/// Native builds (tests, benchmarks) have no Kubewarden host.
#[cfg(not(target_arch = "wasm32"))]
pub fn from_host(_namespace: &str, _name: &str) -> Result<Annotations, String> {
    Err("this native build has no Kubewarden host to ask".to_owned())
}

/// The rejection when the ServiceAccount cannot be read.
fn lookup_failed(account: &str, error: &str) -> Problem {
    // Host errors can carry a cause chain or a backtrace over many lines: an admission
    // message keeps the first.
    let cause = cut(error.lines().next().unwrap_or_default().trim_end());
    let message = format!(
        "cannot read ServiceAccount {account}, which the pod runs as: {cause}. The policy reads \
         its IRSA and IAM Roles Anywhere annotations: check that it exists and that the \
         PolicyServer's ServiceAccount is granted `get` on `serviceaccounts`, or set \
         readServiceAccounts: false to turn the lookup off"
    );
    Problem::pod(Kind::Missing, message)
}

/// Decides which credentials the pod gets; see the module documentation for the rules.
/// `None` when `problems` then holds the reasons to reject the pod.
pub fn resolve(
    pod_value: &Json,
    namespace: &str,
    settings: &Settings,
    lookup: Lookup,
    problems: &mut Problems,
) -> Option<Credentials> {
    if !settings.read_service_accounts {
        let sources = Sources::new(pod_value, None);
        return roles_anywhere(pod_value, &sources, settings, problems);
    }
    let name = pod::service_account(pod_value);
    let account = format!("{namespace}/{}", cut(name));
    let annotations = lookup(namespace, name)
        .map_err(|e| problems.error(lookup_failed(&account, &e)))
        .ok()?;
    choose(pod_value, account, annotations, settings, problems)
}

/// The choice between IAM Roles Anywhere and IRSA once the ServiceAccount is read: the
/// module's table, one arm per row.
fn choose(
    pod_value: &Json,
    account: String,
    annotations: Annotations,
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Credentials> {
    let on_account = Account {
        name: &account,
        annotations: &annotations,
    };
    let sources = Sources::new(pod_value, Some(on_account));
    let vm = kubevirt::is_virt_launcher(pod_value);
    // A virt-launcher pod's IAM Roles Anywhere annotations count as absent (`kubevirt`).
    let (on_pod, on_account) = if vm {
        (false, false)
    } else {
        (
            iamra::pod_asks(&sources, settings),
            iamra::asks(&sources, settings),
        )
    };
    let irsa = irsa::is_requested(&annotations, settings);
    let skip = irsa::is_skipped(pod_value, settings);
    let read = |problems: &mut Problems| roles_anywhere(pod_value, &sources, settings, problems);
    // `on_account` reads "the pod or its ServiceAccount asks": the rows where it
    // matters have the pod not asking.
    let (credentials, irsa_passed_over) = match (on_pod, on_account, irsa, skip) {
        (true, _, irsa, skip) => (read(problems), irsa && !skip),
        (false, true, false, _) => (read(problems), false),
        (false, true, true, true) => (read(problems), false),
        (false, true, true, false) => {
            problems.error(ambiguous(&account, settings));
            return None;
        }
        (false, false, true, false) => {
            if vm && iamra::asks(&sources, settings) {
                let role = irsa_role(settings);
                problems.warn(kubevirt::roles_anywhere_set_aside(&role, Instead::Irsa));
            }
            let irsa = Credentials::Irsa {
                account: account.clone(),
                annotations: annotations.clone(),
            };
            (Some(irsa), false)
        }
        // Nothing, though an unknown annotation still has its warning.
        (false, false, true, true) | (false, false, false, _) => (read(problems), false),
    };
    warn_pod_irsa_role(pod_value, settings, problems);
    if irsa_passed_over {
        problems.warn(Problem::pod(
            Kind::Conflicting,
            format!(
                "ServiceAccount {account} also carries {}; the pod's IAM Roles Anywhere \
                 annotations take precedence, so IRSA is not injected",
                irsa_role(settings)
            ),
        ));
    }
    credentials
}

fn roles_anywhere(
    pod_value: &Json,
    sources: &Sources,
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Credentials> {
    if kubevirt::is_virt_launcher(pod_value) {
        if iamra::asks(sources, settings) {
            let role = irsa_role(settings);
            problems.warn(kubevirt::roles_anywhere_set_aside(&role, Instead::Nothing));
        }
        return Some(Credentials::None);
    }
    match iamra::read(sources, settings, problems) {
        Some(ask) => Some(Credentials::RolesAnywhere(ask)),
        None if problems.has_errors() => None,
        None => Some(Credentials::None),
    }
}

fn irsa_role(settings: &Settings) -> String {
    names::key(&settings.irsa.annotation_prefix, names::ROLE_ARN)
}

/// IRSA's role annotation belongs on the ServiceAccount.
fn warn_pod_irsa_role(pod_value: &Json, settings: &Settings, problems: &mut Problems) {
    let key = irsa_role(settings);
    if pod::annotation(pod_value, &key).is_some() {
        problems.warn(Problem::sentence(
            Source::PodAnnotation(key),
            Kind::Unsupported,
            "is ignored: IRSA reads the role from the ServiceAccount, as pod-identity-webhook does",
        ));
    }
}

fn ambiguous(account: &str, settings: &Settings) -> Problem {
    let prefix = &settings.annotation_prefix;
    Problem::pod(
        Kind::Conflicting,
        format!(
            "ServiceAccount {account} asks for both IAM Roles Anywhere ({prefix}/role-arn, \
             {prefix}/signing-profile-arn) and IRSA ({}), and the pod does not choose: \
             for IAM Roles Anywhere set {prefix}/role-arn on the pod or label it {}=true; for \
             IRSA remove the {prefix}/ annotations from the ServiceAccount",
            irsa_role(settings),
            names::key(&settings.irsa.annotation_prefix, names::SKIP_LABEL)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{doc, map, settings, PROFILE, ROLE};
    use rstest::rstest;
    use serde_json::{json, Value};
    use std::cell::RefCell;

    const IRSA_ROLE: &str = "arn:aws:iam::123456789012:role/irsa";

    /// What IAM Roles Anywhere resolved to, and the warnings.
    #[derive(Debug, Default, PartialEq)]
    struct Parsed {
        request: Option<iamra::Ask>,
        warnings: Vec<String>,
        warning_kinds: Vec<(Source, Kind)>,
    }

    #[derive(Debug)]
    enum Resolved {
        RolesAnywhere(Parsed),
        Irsa {
            account: String,
            annotations: Annotations,
            warnings: Vec<String>,
        },
    }

    fn resolve(
        pod_value: &Value,
        namespace: &str,
        settings: &Settings,
        lookup: Lookup,
    ) -> Result<Resolved, Problems> {
        let pod_value = &doc(pod_value.clone());
        let mut problems = Problems::default();
        let credentials = super::resolve(pod_value, namespace, settings, lookup, &mut problems);
        if problems.has_errors() {
            return Err(problems);
        }
        let warnings = problems.warnings();
        let warning_kinds = problems.warning_kinds();
        Ok(match credentials.expect("credentials without errors") {
            Credentials::None => Resolved::RolesAnywhere(Parsed {
                request: None,
                warnings,
                warning_kinds,
            }),
            Credentials::RolesAnywhere(ask) => Resolved::RolesAnywhere(Parsed {
                request: Some(ask),
                warnings,
                warning_kinds,
            }),
            Credentials::Irsa {
                account,
                annotations,
            } => Resolved::Irsa {
                account,
                annotations,
                warnings,
            },
        })
    }

    fn pod(annotations: &[(&str, &str)], labels: Value) -> Value {
        json!({
            "metadata": {"name": "api", "annotations": map(annotations), "labels": labels},
            "spec": {"serviceAccountName": "api", "containers": [{"name": "app"}]},
        })
    }

    fn resolve_with(pod_value: &Value, sa: &[(&str, &str)]) -> Result<Resolved, Problems> {
        let sa = map(sa);
        resolve(pod_value, "payments", &settings(), &|_, _| Ok(sa.clone()))
    }

    fn roles_anywhere(result: Result<Resolved, Problems>) -> Parsed {
        match result {
            Ok(Resolved::RolesAnywhere(parsed)) => parsed,
            other => panic!("expected IAM Roles Anywhere, got {other:?}"),
        }
    }

    const IAMRA: [(&str, &str); 2] = [
        ("iamra.aws/role-arn", ROLE),
        ("iamra.aws/signing-profile-arn", PROFILE),
    ];
    const IRSA: [(&str, &str); 1] = [("eks.amazonaws.com/role-arn", IRSA_ROLE)];

    #[test]
    fn the_lookup_asks_for_the_pods_service_account_in_the_namespace() {
        let asked = RefCell::new(Vec::new());
        let lookup = |ns: &str, name: &str| {
            asked.borrow_mut().push(format!("{ns}/{name}"));
            Ok(Annotations::new())
        };
        let mut p = pod(&[], json!({}));
        resolve(&p, "payments", &settings(), &lookup).unwrap();
        p["spec"] = json!({"containers": [{"name": "app"}]});
        resolve(&p, "team-a", &settings(), &lookup).unwrap();
        assert_eq!(*asked.borrow(), ["payments/api", "team-a/default"]);
    }

    #[test]
    fn without_reads_the_host_is_never_asked() {
        let mut s = settings();
        s.read_service_accounts = false;
        let never =
            |_: &str, _: &str| -> Result<Annotations, String> { panic!("the host was asked") };
        let parsed = roles_anywhere(resolve(&pod(&IAMRA, json!({})), "payments", &s, &never));
        assert_eq!(parsed.request.unwrap().role_arn, ROLE);
        assert_eq!(
            roles_anywhere(resolve(&pod(&[], json!({})), "payments", &s, &never)),
            Parsed::default()
        );
    }

    #[test]
    fn a_failed_lookup_names_the_service_account_and_the_hosts_error() {
        let failing =
            |_: &str, _: &str| Err("Cannot find v1/ServiceAccount named 'api'".to_owned());
        let problems =
            resolve(&pod(&[], json!({})), "payments", &settings(), &failing).unwrap_err();
        assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Missing)]);
        let errors = problems.errors();
        assert!(errors[0].starts_with("cannot read ServiceAccount payments/api, which the pod runs as: Cannot find v1/ServiceAccount named 'api'"), "{errors:?}");
        assert!(errors[0].contains("readServiceAccounts: false"));
    }

    #[test]
    fn a_host_error_is_cut_to_its_first_line_and_names_the_missing_grant() {
        // policy-server without a reachable API server answers like this.
        let failing = |_: &str, _: &str| {
            Err("kube::Client was not initialized properly\n\nStack backtrace:\n   0: policy_server::main".to_owned())
        };
        let errors = resolve(&pod(&[], json!({})), "payments", &settings(), &failing)
            .unwrap_err()
            .errors();
        let message = &errors[0];
        assert!(
            message.starts_with("cannot read ServiceAccount payments/api, which the pod runs as: kube::Client was not initialized properly. "),
            "{message}"
        );
        assert!(
            !message.contains('\n') && !message.contains("backtrace"),
            "{message}"
        );
        assert!(
            message.contains("PolicyServer's ServiceAccount is granted `get` on `serviceaccounts`"),
            "{message}"
        );
    }

    #[test]
    fn a_service_account_without_annotations_changes_nothing() {
        let parsed = roles_anywhere(resolve_with(
            &pod(&[], json!({})),
            &[("example.com/other", "x")],
        ));
        assert_eq!(parsed, Parsed::default());
    }

    #[test]
    fn service_account_roles_anywhere_applies_with_pod_overrides_key_by_key() {
        let sa = [
            IAMRA[0],
            IAMRA[1],
            ("iamra.aws/session-name", "from-sa"),
            ("iamra.aws/log-level", "debug"),
        ];
        let request = roles_anywhere(resolve_with(&pod(&[], json!({})), &sa))
            .request
            .unwrap();
        assert_eq!(
            (request.role_arn.as_str(), request.session_name.as_deref()),
            (ROLE, Some("from-sa"))
        );
        let other = "arn:aws:iam::123456789012:role/other";
        let overridden = pod(
            &[
                ("iamra.aws/role-arn", other),
                ("iamra.aws/session-name", "from-pod"),
            ],
            json!({}),
        );
        let request = roles_anywhere(resolve_with(&overridden, &sa))
            .request
            .unwrap();
        assert_eq!(request.role_arn, other);
        assert_eq!(request.profile_arn, PROFILE);
        assert_eq!(request.session_name.as_deref(), Some("from-pod"));
        assert_eq!(request.log_level, crate::settings::LogLevel::Debug);
    }

    #[test]
    fn bookkeeping_and_other_prefixes_on_the_service_account_are_not_inherited() {
        let parsed = roles_anywhere(resolve_with(
            &pod(&[IAMRA[1]], json!({})),
            &[
                IAMRA[0],
                ("iamra.aws/injected", "true"),
                ("iamra.aws/config-hash", "x"),
                ("iamra.awsx/y", "z"),
                ("iamra.aws/typo", "z"),
            ],
        ));
        assert_eq!(parsed.request.unwrap().role_arn, ROLE);
        let typo = Source::Inherited {
            key: "iamra.aws/typo".into(),
            account: "payments/api".into(),
        };
        assert_eq!(parsed.warning_kinds, [(typo, Kind::Unknown)]);
        assert_eq!(
            parsed.warnings,
            ["annotation iamra.aws/typo (on ServiceAccount payments/api) is not one this policy \
              reads (known: role-arn, signing-profile-arn, session-name, token-duration, audience, \
              log-level, region)"]
        );
    }

    #[test]
    fn errors_from_service_account_annotations_say_so() {
        let problems = resolve_with(
            &pod(&[], json!({})),
            &[IAMRA[0], ("iamra.aws/signing-profile-arn", "nope")],
        )
        .unwrap_err();
        let inherited = Source::Inherited {
            key: "iamra.aws/signing-profile-arn".into(),
            account: "payments/api".into(),
        };
        assert_eq!(problems.error_kinds(), [(inherited, Kind::Malformed)]);
        let errors = problems.errors();
        assert!(
            errors[0].starts_with("annotation iamra.aws/signing-profile-arn (on ServiceAccount payments/api): \"nope\""),
            "{errors:?}"
        );
        let problems = resolve_with(
            &pod(&[("iamra.aws/signing-profile-arn", "nope")], json!({})),
            &IAMRA,
        )
        .unwrap_err();
        let on_pod = Source::Annotation("iamra.aws/signing-profile-arn".into());
        assert_eq!(problems.error_kinds(), [(on_pod, Kind::Malformed)]);
        let errors = problems.errors();
        assert!(
            errors[0].starts_with("annotation iamra.aws/signing-profile-arn: \"nope\""),
            "{errors:?}"
        );
    }

    #[test]
    fn an_irsa_service_account_gives_irsa() {
        match resolve_with(&pod(&[], json!({})), &IRSA) {
            Ok(Resolved::Irsa {
                account,
                annotations,
                warnings,
            }) => {
                assert_eq!(account, "payments/api");
                assert_eq!(annotations, map(&IRSA));
                assert!(warnings.is_empty());
            }
            other => panic!("expected IRSA, got {other:?}"),
        }
    }

    #[test]
    fn the_skip_label_turns_irsa_off() {
        let labelled = pod(
            &[],
            json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}),
        );
        assert_eq!(
            roles_anywhere(resolve_with(&labelled, &IRSA)),
            Parsed::default()
        );
    }

    /// What `choose` decided, in the documented table's words.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        RolesAnywhere,
        /// IAM Roles Anywhere, with the warning that IRSA is not injected.
        RolesAnywhereOverIrsa,
        Rejected,
        Irsa,
        Nothing,
    }

    fn outcome(result: Result<Resolved, Problems>) -> Outcome {
        match result {
            Err(_) => Outcome::Rejected,
            Ok(Resolved::Irsa { .. }) => Outcome::Irsa,
            Ok(Resolved::RolesAnywhere(Parsed { request: None, .. })) => Outcome::Nothing,
            Ok(Resolved::RolesAnywhere(Parsed { warnings, .. })) => {
                if warnings.iter().any(|w| w.contains("IRSA is not injected")) {
                    Outcome::RolesAnywhereOverIrsa
                } else {
                    Outcome::RolesAnywhere
                }
            }
        }
    }

    /// The module's table, one case per row, columns in its order: the pod asks, the
    /// ServiceAccount asks, the ServiceAccount has IRSA's role, the pod has the skip label.
    #[rstest]
    #[case::the_pod_asks(true, true, true, false, Outcome::RolesAnywhereOverIrsa)]
    #[case::the_account_asks_without_irsa(false, true, false, false, Outcome::RolesAnywhere)]
    #[case::the_account_asks_irsa_skipped(false, true, true, true, Outcome::RolesAnywhere)]
    #[case::the_account_asks_for_both(false, true, true, false, Outcome::Rejected)]
    #[case::irsa_alone(false, false, true, false, Outcome::Irsa)]
    #[case::irsa_skipped(false, false, true, true, Outcome::Nothing)]
    #[case::nothing_asks(false, false, false, true, Outcome::Nothing)]
    fn choose_follows_the_documented_table(
        #[case] pod_asks: bool,
        #[case] account_asks: bool,
        #[case] irsa: bool,
        #[case] skip: bool,
        #[case] expected: Outcome,
    ) {
        let on_pod: &[(&str, &str)] = if pod_asks { &IAMRA } else { &[] };
        let labels = if skip {
            json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"})
        } else {
            json!({})
        };
        let mut sa: Vec<(&str, &str)> = Vec::new();
        if account_asks {
            sa.extend(IAMRA);
        }
        if irsa {
            sa.extend(IRSA);
        }
        let result = resolve_with(&pod(on_pod, labels), &sa);
        assert_eq!(outcome(result), expected);
    }

    #[rstest]
    #[case::role_and_profile_on_the_pod(&[IAMRA[0], IAMRA[1]], json!({}))]
    #[case::role_on_the_pod_profile_inherited(&[IAMRA[0]], json!({}))]
    #[case::skip_label_silences_the_warning(&[IAMRA[0], IAMRA[1]], json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}))]
    fn the_pods_roles_anywhere_annotations_win_over_irsa(
        #[case] on_pod: &[(&str, &str)],
        #[case] labels: Value,
    ) {
        let sa = [IRSA[0], IAMRA[1]];
        let parsed = roles_anywhere(resolve_with(&pod(on_pod, labels.clone()), &sa));
        assert_eq!(parsed.request.unwrap().role_arn, ROLE);
        let warned = parsed
            .warnings
            .iter()
            .any(|w| w.contains("IRSA is not injected"));
        let unlabelled = labels.as_object().unwrap().is_empty();
        assert_eq!(warned, unlabelled, "{:?}", parsed.warnings);
        let kinds = Vec::from_iter(unlabelled.then_some((Source::Pod, Kind::Conflicting)));
        assert_eq!(parsed.warning_kinds, kinds);
    }

    #[test]
    fn a_service_account_with_both_is_ambiguous_unless_the_pod_chooses() {
        let both = [IAMRA[0], IAMRA[1], IRSA[0]];
        let problems = resolve_with(&pod(&[], json!({})), &both).unwrap_err();
        assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Conflicting)]);
        let message = &problems.errors()[0];
        for part in [
            "ServiceAccount payments/api asks for both IAM Roles Anywhere",
            "IRSA (eks.amazonaws.com/role-arn)",
            "set iamra.aws/role-arn on the pod or label it eks.amazonaws.com/skip-pod-identity-webhook=true",
            "remove the iamra.aws/ annotations from the ServiceAccount",
        ] {
            assert!(message.contains(part), "{message}");
        }
        let labelled = pod(
            &[],
            json!({"eks.amazonaws.com/skip-pod-identity-webhook": ""}),
        );
        assert_eq!(
            roles_anywhere(resolve_with(&labelled, &both))
                .request
                .unwrap()
                .role_arn,
            ROLE
        );
    }

    #[test]
    fn the_hosts_answer_is_read_for_its_annotations() {
        let full = br#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"api","namespace":"payments","annotations":{"eks.amazonaws.com/role-arn":"r"}},"secrets":[]}"#;
        let object: Object = serde_json::from_slice(full).unwrap();
        assert_eq!(
            object.metadata.annotations.unwrap(),
            map(&[("eks.amazonaws.com/role-arn", "r")])
        );
        let bare: Object = serde_json::from_slice(br#"{"metadata":{"name":"default"}}"#).unwrap();
        assert_eq!(bare.metadata.annotations, None);
    }

    /// Unknown `<prefix>/*` annotations by the thousand on both the pod and its
    /// ServiceAccount (within the API server's 256 KiB): each is read a bounded number
    /// of times, never once per other annotation.
    #[test]
    fn reading_annotations_is_linear_in_their_number() {
        let n = 2000;
        let names: Vec<(String, String)> = (0..n)
            .map(|i| (format!("iamra.aws/unknown-{i}"), "x".to_owned()))
            .collect();
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let on_pod = pod(&pairs, json!({}));
        let sa: Vec<(&str, &str)> = IAMRA
            .iter()
            .copied()
            .chain(pairs.iter().map(|(k, _)| (&k[..], "y")))
            .collect();
        crate::pod::VISITS.with(|v| v.set(0));
        let parsed = roles_anywhere(resolve_with(&on_pod, &sa));
        let visits = crate::pod::VISITS.with(|v| v.get());
        assert_eq!(parsed.request.unwrap().role_arn, ROLE);
        assert!(visits <= 2 * n, "{visits} visits of {n} pod annotations");
    }

    #[test]
    fn a_role_arn_annotation_on_the_pod_is_not_irsa() {
        let parsed = roles_anywhere(resolve_with(&pod(&IRSA, json!({})), &[]));
        assert!(parsed.request.is_none());
        let on_pod = Source::PodAnnotation("eks.amazonaws.com/role-arn".into());
        assert_eq!(parsed.warning_kinds, [(on_pod, Kind::Unsupported)]);
        assert!(parsed.warnings[0]
            .contains("annotation eks.amazonaws.com/role-arn on the pod is ignored"));
    }
}
