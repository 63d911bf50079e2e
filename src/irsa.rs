//! IRSA (IAM roles for service accounts) with the contract of
//! aws/amazon-eks-pod-identity-webhook: a ServiceAccount annotated
//! `<irsa.annotationPrefix>/role-arn` gives its pods a projected service account token
//! and the variables the AWS SDKs read for a web identity. Planning only reads the pod
//! and the ServiceAccount's annotations; `pod::apply` writes the [`Plan`].
//!
//! Like the webhook: the same volume, mount path, token path (under `C:` on Windows),
//! variables and order; a container that already sets one variable of a group (role and
//! token file; the two region variables; the STS endpoint) keeps that group as written;
//! containers named in `<prefix>/skip-containers` are left alone; a pod that already
//! has the `aws-iam-token` volume, mounts and variables is not changed again.
//! Unlike the webhook: a malformed value is rejected with a message that names the
//! annotation (the webhook logs and falls back), and `skip-containers` is read from the
//! ServiceAccount too.

use crate::annotations::{self, Annotations};
use crate::inject::{env_var, EnvChange, Plan};
use crate::pod::{self, ContainerRef};
use crate::settings::Settings;
use crate::validation;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub const VOLUME_NAME: &str = "aws-iam-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const TOKEN_PATH: &str = "token";
/// The API server's floor for a projected token's lifetime; shorter asks are raised to it.
pub const MIN_TOKEN_EXPIRATION: u64 = 600;
/// The API server's ceiling: 2^32 seconds.
const MAX_TOKEN_EXPIRATION: u64 = 1 << 32;

/// Annotation names under `irsa.annotationPrefix` (`role-arn` and `audience` are shared
/// with [`annotations`]).
pub const STS_REGIONAL_ENDPOINTS: &str = "sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "token-expiration";
pub const SKIP_CONTAINERS: &str = "skip-containers";
/// A pod label: its presence, whatever its value, keeps IRSA away from the pod, as the
/// webhook's `objectSelector` (`DoesNotExist`) does.
pub const SKIP_LABEL: &str = "skip-pod-identity-webhook";

pub const ROLE_ARN_VAR: &str = "AWS_ROLE_ARN";
pub const TOKEN_FILE_VAR: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const STS_VAR: &str = "AWS_STS_REGIONAL_ENDPOINTS";

/// What the ServiceAccount, the pod and the settings ask for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub role_arn: String,
    pub audience: String,
    pub expiration: u64,
    pub regional_sts: bool,
    pub region: Option<String>,
    /// Container names from `skip-containers` on the pod and on the ServiceAccount.
    pub skip: BTreeSet<String>,
}

/// Whether the ServiceAccount asks for IRSA.
pub fn is_requested(service_account: &Annotations, settings: &Settings) -> bool {
    service_account.contains_key(&annotations::key(
        &settings.irsa.annotation_prefix,
        annotations::ROLE_ARN,
    ))
}

/// Whether the pod carries the skip label.
pub fn is_skipped(pod_value: &Value, settings: &Settings) -> bool {
    let label = annotations::key(&settings.irsa.annotation_prefix, SKIP_LABEL);
    pod_value
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(&label))
        .is_some()
}

/// Go's `strconv.ParseBool`, which the webhook uses for `sts-regional-endpoints`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn skip_list(value: Option<&String>) -> impl Iterator<Item = String> + '_ {
    value
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Reads the request. `account` is `<namespace>/<name>`, for messages.
pub fn request(
    pod_value: &Value,
    service_account: &Annotations,
    account: &str,
    settings: &Settings,
) -> Result<(Request, Vec<String>), Vec<String>> {
    let irsa = &settings.irsa;
    let key = |name: &str| annotations::key(&irsa.annotation_prefix, name);
    let on_account = |name: &str| format!("annotation {} on ServiceAccount {account}", key(name));
    let from_account = |name: &str| service_account.get(&key(name)).map(|v| v.trim());
    let pod_annotations = pod::annotations(pod_value);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let role_arn = from_account(annotations::ROLE_ARN)
        .unwrap_or_default()
        .to_owned();
    if let Err(e) = validation::role_arn(&role_arn) {
        errors.push(format!("{}: {e}", on_account(annotations::ROLE_ARN)));
    }

    // The pod's `<annotationPrefix>/audience`, then the ServiceAccount's, then the setting.
    let pod_audience_key = annotations::key(&settings.annotation_prefix, annotations::AUDIENCE);
    let (audience, audience_source) = match pod_annotations.get(&pod_audience_key).map(|v| v.trim())
    {
        Some(a) => (a.to_owned(), format!("annotation {pod_audience_key}")),
        None => (
            from_account(annotations::AUDIENCE)
                .unwrap_or(&settings.defaults.audience)
                .to_owned(),
            on_account(annotations::AUDIENCE),
        ),
    };
    if let Err(e) = validation::audience(&audience) {
        errors.push(format!("{audience_source}: {e}"));
    }

    let regional_sts = match from_account(STS_REGIONAL_ENDPOINTS) {
        None => irsa.sts_regional_endpoints,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            errors.push(format!(
                "{}: {v:?} is not true or false",
                on_account(STS_REGIONAL_ENDPOINTS)
            ));
            false
        }),
    };

    // The pod's annotation, then the ServiceAccount's, then the setting.
    let from_pod = pod_annotations
        .get(&key(TOKEN_EXPIRATION))
        .map(|v| v.trim());
    let expiration = match (from_pod, from_account(TOKEN_EXPIRATION)) {
        (Some(v), _) => Some((
            v,
            format!("annotation {} on the pod", key(TOKEN_EXPIRATION)),
        )),
        (None, Some(v)) => Some((v, on_account(TOKEN_EXPIRATION))),
        (None, None) => None,
    };
    let expiration = match expiration {
        None => irsa.token_expiration,
        Some((v, at)) => match v.parse::<u64>() {
            Ok(n) if n > MAX_TOKEN_EXPIRATION => {
                errors.push(format!(
                    "{at}: {v:?} is over Kubernetes' limit of {MAX_TOKEN_EXPIRATION} seconds"
                ));
                0
            }
            Ok(n) if n < MIN_TOKEN_EXPIRATION => {
                warnings.push(format!(
                    "{at}: {n} seconds is under Kubernetes' minimum; the token lives {MIN_TOKEN_EXPIRATION} seconds"
                ));
                MIN_TOKEN_EXPIRATION
            }
            Ok(n) => n,
            Err(_) => {
                errors.push(format!(
                    "{at}: {v:?} is not a whole number of seconds such as 86400 (at least {MIN_TOKEN_EXPIRATION})"
                ));
                0
            }
        },
    };

    let skip = skip_list(pod_annotations.get(&key(SKIP_CONTAINERS)))
        .chain(skip_list(service_account.get(&key(SKIP_CONTAINERS))))
        .collect();

    if !errors.is_empty() {
        return Err(errors);
    }
    let region = Some(irsa.region.clone()).filter(|r| !r.is_empty());
    Ok((
        Request {
            role_arn,
            audience,
            expiration,
            regional_sts,
            region,
            skip,
        },
        warnings,
    ))
}

/// The token file as the pod's containers see it: under `C:` on Windows nodes.
fn token_file(pod_value: &Value) -> String {
    let path = format!("{MOUNT_PATH}/{TOKEN_PATH}");
    if pod::is_windows(pod_value) {
        format!("C:{}", path.replace('/', "\\"))
    } else {
        path
    }
}

/// The variable groups, in the webhook's order.
fn groups(request: &Request, token_file: String) -> Vec<Vec<(&'static str, String)>> {
    let mut groups = Vec::new();
    if request.regional_sts {
        groups.push(vec![(STS_VAR, "regional".to_owned())]);
    }
    if let Some(region) = &request.region {
        groups.push(vec![
            ("AWS_DEFAULT_REGION", region.clone()),
            ("AWS_REGION", region.clone()),
        ]);
    }
    groups.push(vec![
        (ROLE_ARN_VAR, request.role_arn.clone()),
        (TOKEN_FILE_VAR, token_file),
    ]);
    groups
}

fn field<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Value::as_str)
}

/// The change for one container; `None` when it already has everything.
fn container_change(
    container: &Value,
    at: ContainerRef,
    groups: &[Vec<(&str, String)>],
    warnings: &mut Vec<String>,
) -> Result<Option<EnvChange>, String> {
    let name = pod::name_of(container);
    let env = pod::env_of(container);
    let set = |var: &str| env.iter().find(|e| field(e, "name") == Some(var));
    let mut append = Vec::new();
    for group in groups {
        let preset: Vec<&str> = group
            .iter()
            .map(|(var, _)| *var)
            .filter(|var| set(var).is_some())
            .collect();
        if preset.is_empty() {
            append.extend(group.iter().map(|(var, value)| env_var(var, value)));
        } else if group[0].0 == ROLE_ARN_VAR
            && group
                .iter()
                .any(|(var, value)| set(var).and_then(|e| field(e, "value")) != Some(value))
        {
            warnings.push(format!(
                "container {name:?} already sets {}; {ROLE_ARN_VAR} and {TOKEN_FILE_VAR} are left as written, \
                 so it may not use the ServiceAccount's role",
                preset.join(", ")
            ));
        }
    }
    let mounts = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut mount = Vec::new();
    if !mounts.iter().any(|m| field(m, "name") == Some(VOLUME_NAME)) {
        if let Some(other) = mounts
            .iter()
            .find(|m| field(m, "mountPath") == Some(MOUNT_PATH))
        {
            return Err(format!(
                "container {name:?} already mounts volume {:?} at {MOUNT_PATH}, where IRSA mounts its token; \
                 mount it elsewhere or skip the container with annotation skip-containers",
                field(other, "name").unwrap_or_default()
            ));
        }
        mount.push(json!({"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true}));
    }
    Ok(
        (!append.is_empty() || !mount.is_empty()).then(|| EnvChange {
            container: at,
            append,
            replace: Vec::new(),
            mounts: mount,
        }),
    )
}

/// Plans IRSA for `pod_value`. Pure: reads the pod, returns what to change; an empty
/// plan when the pod already has it all.
pub fn plan(
    pod_value: &Value,
    service_account: &Annotations,
    account: &str,
    settings: &Settings,
) -> Result<Plan, Vec<String>> {
    let (request, mut warnings) = request(pod_value, service_account, account, settings)?;
    let groups = groups(&request, token_file(pod_value));
    let mut errors = Vec::new();
    let env = pod::containers(pod_value)
        .filter(|(_, c)| !request.skip.contains(pod::name_of(c)))
        .filter_map(|(at, c)| {
            container_change(c, at, &groups, &mut warnings)
                .map_err(|e| errors.push(e))
                .ok()?
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }

    let existing = pod::volume(pod_value, VOLUME_NAME);
    let volumes = match existing {
        None => vec![json!({
            "name": VOLUME_NAME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": request.audience,
                "expirationSeconds": request.expiration,
                "path": TOKEN_PATH,
            }}]},
        })],
        Some(v) => {
            let token = v.pointer("/projected/sources/0/serviceAccountToken");
            if token.is_none() {
                warnings.push(format!(
                    "volume {VOLUME_NAME} already exists and is not a projected service account token; \
                     left as written, so the token file may be missing"
                ));
            }
            Vec::new()
        }
    };
    Ok(Plan {
        sidecar: None,
        native: false,
        volumes,
        env,
        annotations: Vec::new(),
        warnings,
        config_hash: String::new(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::annotations::tests::{settings, ROLE};
    use crate::inject::tests::env_of as env;
    use rstest::rstest;

    const ACCOUNT: &str = "payments/api";

    pub fn account(pairs: &[(&str, &str)]) -> Annotations {
        [("eks.amazonaws.com/role-arn", ROLE)]
            .iter()
            .chain(pairs)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(meta: Value, spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }

    fn plain(spec: Value) -> Value {
        pod(json!({"name": "api"}), spec)
    }

    fn planned(pod_value: &Value, sa: &Annotations) -> Plan {
        plan(pod_value, sa, ACCOUNT, &settings()).unwrap()
    }

    /// The plan for a pod with one container "a", under these settings.
    fn one_container(sa: &Annotations, s: &Settings) -> Plan {
        plan(
            &plain(json!({"containers": [{"name": "a"}]})),
            sa,
            ACCOUNT,
            s,
        )
        .unwrap()
    }

    /// A pod with one container and these annotations.
    fn annotated(pod_annotations: Value) -> Value {
        pod(
            json!({"annotations": pod_annotations}),
            json!({"containers": [{"name": "a"}]}),
        )
    }

    fn token(plan: &Plan) -> &Value {
        &plan.volumes[0]["projected"]["sources"][0]["serviceAccountToken"]
    }

    const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    #[test]
    fn every_container_gets_the_role_token_and_mount() {
        let p = planned(
            &plain(
                json!({"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]}),
            ),
            &account(&[]),
        );
        assert!(p.sidecar.is_none());
        assert_eq!(p.env.len(), 3);
        for i in 0..3 {
            assert_eq!(
                env(&p, i),
                vec![
                    (ROLE_ARN_VAR.into(), ROLE.into()),
                    (TOKEN_FILE_VAR.into(), TOKEN_FILE.into())
                ]
            );
            assert_eq!(
                p.env[i].mounts,
                vec![json!({"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true})]
            );
        }
        assert_eq!(
            p.env[0].container,
            ContainerRef {
                list: pod::INIT_CONTAINERS,
                index: 0
            }
        );
        assert_eq!(p.volumes.len(), 1);
        assert_eq!(p.volumes[0]["name"], VOLUME_NAME);
        assert_eq!(
            *token(&p),
            json!({"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"})
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn sts_and_region_come_first_in_the_webhooks_order() {
        let mut s = settings();
        s.irsa.region = "eu-central-1".into();
        s.irsa.sts_regional_endpoints = true;
        let p = one_container(&account(&[]), &s);
        let names: Vec<String> = env(&p, 0).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                STS_VAR,
                "AWS_DEFAULT_REGION",
                "AWS_REGION",
                ROLE_ARN_VAR,
                TOKEN_FILE_VAR
            ]
        );
        assert_eq!(env(&p, 0)[0].1, "regional");
        assert_eq!(env(&p, 0)[2].1, "eu-central-1");
    }

    #[rstest]
    #[case(&[("eks.amazonaws.com/sts-regional-endpoints", "true")], true)]
    #[case(&[("eks.amazonaws.com/sts-regional-endpoints", "True")], true)]
    #[case(&[("eks.amazonaws.com/sts-regional-endpoints", "false")], false)]
    #[case(&[], false)]
    fn the_service_account_turns_regional_sts_on(#[case] pairs: &[(&str, &str)], #[case] on: bool) {
        let p = planned(
            &plain(json!({"containers": [{"name": "a"}]})),
            &account(pairs),
        );
        assert_eq!(
            env(&p, 0)
                .iter()
                .any(|(n, v)| n == STS_VAR && v == "regional"),
            on
        );
    }

    #[test]
    fn the_service_account_turns_regional_sts_off_over_the_setting() {
        let mut s = settings();
        s.irsa.sts_regional_endpoints = true;
        let sa = account(&[("eks.amazonaws.com/sts-regional-endpoints", "0")]);
        let p = one_container(&sa, &s);
        assert!(!env(&p, 0).iter().any(|(n, _)| n == STS_VAR));
    }

    #[rstest]
    #[case(json!({}), &[], json!(86400), "sts.amazonaws.com")]
    #[case(json!({}), &[("eks.amazonaws.com/token-expiration", "3600")], json!(3600), "sts.amazonaws.com")]
    #[case(json!({"eks.amazonaws.com/token-expiration": "7200"}), &[("eks.amazonaws.com/token-expiration", "3600")], json!(7200), "sts.amazonaws.com")]
    #[case(json!({"eks.amazonaws.com/token-expiration": " 900 "}), &[], json!(900), "sts.amazonaws.com")]
    #[case(json!({}), &[("eks.amazonaws.com/audience", "example.com/aud")], json!(86400), "example.com/aud")]
    #[case(json!({"iamra.aws/audience": "pod.example"}), &[("eks.amazonaws.com/audience", "example.com/aud")], json!(86400), "pod.example")]
    fn expiration_and_audience(
        #[case] pod_annotations: Value,
        #[case] pairs: &[(&str, &str)],
        #[case] expiration: Value,
        #[case] audience: &str,
    ) {
        let p = planned(&annotated(pod_annotations), &account(pairs));
        assert_eq!(token(&p)["expirationSeconds"], expiration);
        assert_eq!(token(&p)["audience"], audience);
    }

    #[test]
    fn settings_give_the_defaults() {
        let mut s = settings();
        s.irsa.token_expiration = 1800;
        s.defaults.audience = "irsa.example".into();
        let p = one_container(&account(&[]), &s);
        assert_eq!(
            *token(&p),
            json!({"audience": "irsa.example", "expirationSeconds": 1800, "path": "token"})
        );
    }

    #[test]
    fn a_short_expiration_is_raised_to_the_minimum_with_a_warning() {
        let p = planned(
            &annotated(json!({"eks.amazonaws.com/token-expiration": "60"})),
            &account(&[]),
        );
        assert_eq!(token(&p)["expirationSeconds"], 600);
        assert!(
            p.warnings[0]
                .contains("annotation eks.amazonaws.com/token-expiration on the pod: 60 seconds"),
            "{:?}",
            p.warnings
        );
    }

    #[rstest]
    #[case(json!({}), &[("eks.amazonaws.com/role-arn", "my-role")], "annotation eks.amazonaws.com/role-arn on ServiceAccount payments/api: \"my-role\" is not an IAM role ARN of the form")]
    #[case(json!({}), &[("eks.amazonaws.com/role-arn", " ")], "annotation eks.amazonaws.com/role-arn on ServiceAccount payments/api: \"\" is not an IAM role ARN")]
    #[case(json!({}), &[("eks.amazonaws.com/audience", "two words")], "annotation eks.amazonaws.com/audience on ServiceAccount payments/api:")]
    #[case(json!({"iamra.aws/audience": " "}), &[], "annotation iamra.aws/audience: \"\" is not an audience")]
    #[case(json!({}), &[("eks.amazonaws.com/sts-regional-endpoints", "yes")], "annotation eks.amazonaws.com/sts-regional-endpoints on ServiceAccount payments/api: \"yes\" is not true or false")]
    #[case(json!({}), &[("eks.amazonaws.com/token-expiration", "1h")], "annotation eks.amazonaws.com/token-expiration on ServiceAccount payments/api: \"1h\" is not a whole number of seconds")]
    #[case(json!({"eks.amazonaws.com/token-expiration": "-1"}), &[], "annotation eks.amazonaws.com/token-expiration on the pod: \"-1\" is not a whole number")]
    #[case(json!({"eks.amazonaws.com/token-expiration": "99999999999"}), &[], "is over Kubernetes' limit")]
    fn malformed_values_are_rejected_by_name(
        #[case] pod_annotations: Value,
        #[case] pairs: &[(&str, &str)],
        #[case] message: &str,
    ) {
        let errors = plan(
            &annotated(pod_annotations),
            &account(pairs),
            ACCOUNT,
            &settings(),
        )
        .unwrap_err();
        assert!(errors.iter().any(|e| e.contains(message)), "{errors:?}");
    }

    #[rstest]
    #[case(json!({"eks.amazonaws.com/skip-containers": "b"}), &[])]
    #[case(json!({"eks.amazonaws.com/skip-containers": " b , other"}), &[])]
    #[case(json!({}), &[("eks.amazonaws.com/skip-containers", "b")])]
    fn skipped_containers_are_left_alone(
        #[case] pod_annotations: Value,
        #[case] pairs: &[(&str, &str)],
    ) {
        let p = planned(
            &pod(
                json!({"annotations": pod_annotations}),
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            ),
            &account(pairs),
        );
        assert_eq!(p.env.len(), 1);
        assert_eq!(p.env[0].container.index, 0);
        assert_eq!(p.volumes.len(), 1);
    }

    #[rstest]
    #[case(json!({"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}))]
    #[case(json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}))]
    #[case(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}))]
    fn windows_pods_read_the_token_under_c(#[case] spec: Value) {
        let p = planned(&plain(spec), &account(&[]));
        assert_eq!(
            env(&p, 0)[1],
            (
                TOKEN_FILE_VAR.into(),
                r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token".into()
            )
        );
        assert_eq!(p.env[0].mounts[0]["mountPath"], MOUNT_PATH);
    }

    #[rstest]
    #[case(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/other"}]), &[], true)]
    #[case(json!([{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/token"}]), &[], true)]
    #[case(json!([{"name": "AWS_REGION", "value": "us-east-1"}]), &["AWS_DEFAULT_REGION", "AWS_REGION"], false)]
    #[case(json!([{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]), &["AWS_DEFAULT_REGION", "AWS_REGION"], false)]
    #[case(json!([{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "legacy"}]), &[STS_VAR], false)]
    fn a_preset_group_is_kept_whole(
        #[case] preset: Value,
        #[case] kept: &[&str],
        #[case] warns: bool,
    ) {
        let mut s = settings();
        s.irsa.region = "eu-central-1".into();
        s.irsa.sts_regional_endpoints = true;
        let p = plan(
            &plain(json!({"containers": [{"name": "a", "env": preset}]})),
            &account(&[]),
            ACCOUNT,
            &s,
        )
        .unwrap();
        let names: Vec<String> = env(&p, 0).into_iter().map(|(n, _)| n).collect();
        let credentials = [ROLE_ARN_VAR, TOKEN_FILE_VAR];
        let gone: Vec<&str> = if warns {
            credentials.to_vec()
        } else {
            kept.to_vec()
        };
        for var in [
            STS_VAR,
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            ROLE_ARN_VAR,
            TOKEN_FILE_VAR,
        ] {
            assert_eq!(
                names.contains(&var.to_owned()),
                !gone.contains(&var),
                "{var}: {names:?}"
            );
        }
        assert_eq!(
            p.warnings.iter().any(|w| w.contains("are left as written")),
            warns,
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_mutated_pod_is_not_mutated_again() {
        let original = plain(json!({"containers": [{"name": "a"}]}));
        let first = planned(&original, &account(&[]));
        let mutated = pod::apply(original, &first).unwrap();
        assert!(mutated["metadata"].get("annotations").is_none());
        let again = planned(&mutated, &account(&[]));
        assert!(again.changes_nothing(), "{again:?}");
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    }

    #[test]
    fn an_existing_token_volume_is_kept() {
        let p = planned(
            &plain(json!({
                "volumes": [{"name": VOLUME_NAME, "projected": {"sources": [{"serviceAccountToken": {"audience": "x", "path": "token"}}]}}],
                "containers": [{"name": "a"}],
            })),
            &account(&[]),
        );
        assert!(p.volumes.is_empty());
        assert!(p.warnings.is_empty());
        let foreign = planned(
            &plain(
                json!({"volumes": [{"name": VOLUME_NAME, "emptyDir": {}}], "containers": [{"name": "a"}]}),
            ),
            &account(&[]),
        );
        assert!(foreign.volumes.is_empty());
        assert!(foreign.warnings[0].contains("is not a projected service account token"));
    }

    #[test]
    fn another_volume_at_the_mount_path_is_rejected() {
        let errors = plan(
            &plain(json!({"containers": [{"name": "a", "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}]})),
            &account(&[]),
            ACCOUNT,
            &settings(),
        )
        .unwrap_err();
        assert!(
            errors[0].contains("container \"a\" already mounts volume \"mine\""),
            "{errors:?}"
        );
    }

    #[test]
    fn the_prefix_comes_from_settings() {
        let mut s = settings();
        s.irsa.annotation_prefix = "irsa.example.com".into();
        let sa: Annotations = [("irsa.example.com/role-arn".to_owned(), ROLE.to_owned())].into();
        assert!(is_requested(&sa, &s));
        assert!(!is_requested(&account(&[]), &s));
        let labelled = pod(
            json!({"labels": {"irsa.example.com/skip-pod-identity-webhook": "false"}}),
            json!({}),
        );
        assert!(is_skipped(&labelled, &s));
        assert!(!is_skipped(&labelled, &settings()));
    }
}
