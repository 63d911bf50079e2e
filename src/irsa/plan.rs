//! The IRSA edits for one pod: the token volume, its mounts and the web identity
//! variables. Planning only reads the pod; `Patch::apply` writes it.

use super::ask::Ask;
use crate::json::Json;
use crate::patch::{env_var, ContainerPatch, Patch};
use crate::pod::{self, ContainerList, ContainerRef};
use crate::problem::{quote, Kind, Problem, Problems};
use serde_json::{json, Value};

pub const VOLUME_NAME: &str = "aws-iam-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const TOKEN_PATH: &str = "token";

pub const ROLE_ARN_VAR: &str = "AWS_ROLE_ARN";
pub const TOKEN_FILE_VAR: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const STS_VAR: &str = "AWS_STS_REGIONAL_ENDPOINTS";
const REGION_VARS: [&str; 2] = ["AWS_DEFAULT_REGION", "AWS_REGION"];

/// The webhook's variable groups by name, whatever the settings add.
const GROUPS: [&[&str]; 3] = [&[ROLE_ARN_VAR, TOKEN_FILE_VAR], &REGION_VARS, &[STS_VAR]];

/// The token file as the pod's containers see it: under `C:` on Windows nodes.
fn token_file(pod_value: &Json) -> String {
    let path = format!("{MOUNT_PATH}/{TOKEN_PATH}");
    if pod::is_windows(pod_value) {
        format!("C:{}", path.replace('/', "\\"))
    } else {
        path
    }
}

/// The variable groups, in the webhook's order.
fn groups(request: &Ask, token_file: String) -> Vec<Vec<(&'static str, String)>> {
    let mut groups = Vec::new();
    if request.regional_sts {
        groups.push(vec![(STS_VAR, "regional".to_owned())]);
    }
    if let Some(region) = &request.region {
        groups.push(REGION_VARS.map(|var| (var, region.clone())).to_vec());
    }
    groups.push(vec![
        (ROLE_ARN_VAR, request.role_arn.clone()),
        (TOKEN_FILE_VAR, token_file),
    ]);
    groups
}

fn field<'a>(entry: &'a Json<'a>, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Json::as_str)
}

/// The change for one container; empty when it already has everything, or when it sets
/// a variable of every group (web identity, region, STS): pod-identity-webhook then
/// leaves it alone, mount included, even where the settings would add nothing.
fn container_change(
    container: &Json,
    at: ContainerRef,
    groups: &[Vec<(&str, String)>],
    problems: &mut Problems,
) -> ContainerPatch {
    let mut change = ContainerPatch::new(at);
    let env = pod::env_of(container);
    let sets = |var: &&str| env.iter().any(|e| field(e, "name") == Some(var));
    if GROUPS.iter().all(|group| group.iter().any(sets)) {
        return change;
    }
    change.append = env_change(container, groups, problems);
    match mount(container) {
        Ok(mount) => change.mounts.extend(mount),
        Err(e) => problems.error(e),
    }
    change
}

/// The variables to append: every group the container sets none of.
fn env_change(
    container: &Json,
    groups: &[Vec<(&str, String)>],
    problems: &mut Problems,
) -> Vec<Json<'static>> {
    let name = quote(pod::name_of(container));
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
        } else if let [(ROLE_ARN_VAR, role), (TOKEN_FILE_VAR, token_file)] = group.as_slice() {
            let value = |var: &str| set(var).map(|e| field(e, "value"));
            if let Some((what, so)) =
                preset_web_identity(value(ROLE_ARN_VAR), value(TOKEN_FILE_VAR), role, token_file)
            {
                problems.warn(Problem::pod(
                    Kind::Conflicting,
                    format!(
                        "container {name} {what}; {ROLE_ARN_VAR} and {TOKEN_FILE_VAR} are left \
                         as written, as pod-identity-webhook does, so {so}"
                    ),
                ));
            }
        }
    }
    append
}

/// What is wrong with a preset web identity, given each variable's entry (`None`: not
/// set; `Some(None)`: set from `valueFrom`), and its consequence; `None` when it is IRSA's.
fn preset_web_identity(
    role: Option<Option<&str>>,
    token_file: Option<Option<&str>>,
    ours_role: &str,
    ours_token_file: &str,
) -> Option<(String, &'static str)> {
    match (role, token_file) {
        (Some(r), _) if r != Some(ours_role) => Some((
            format!("sets {ROLE_ARN_VAR} to another value than the ServiceAccount's role"),
            "it may use another role",
        )),
        (Some(_), None) => Some((
            format!("sets {ROLE_ARN_VAR} without {TOKEN_FILE_VAR}"),
            "the AWS SDKs find no web identity token",
        )),
        (None, _) => Some((
            format!("sets {TOKEN_FILE_VAR} without {ROLE_ARN_VAR}"),
            "the AWS SDKs do not use a web identity",
        )),
        (Some(_), Some(t)) if t != Some(ours_token_file) => Some((
            format!("sets {TOKEN_FILE_VAR} to another file than IRSA's token"),
            "it does not read the token IRSA mounts",
        )),
        _ => None,
    }
}

/// The token mount, unless the container has it; an error when another volume is there.
fn mount(container: &Json) -> Result<Option<Value>, Problem> {
    let name = quote(pod::name_of(container));
    let mounts = container
        .get("volumeMounts")
        .and_then(Json::as_array)
        .unwrap_or_default();
    if mounts.iter().any(|m| field(m, "name") == Some(VOLUME_NAME)) {
        return Ok(None);
    }
    if let Some(other) = mounts
        .iter()
        .find(|m| field(m, "mountPath") == Some(MOUNT_PATH))
    {
        return Err(Problem::pod(
            Kind::Conflicting,
            format!(
                "container {name} already mounts volume {} at {MOUNT_PATH}, where IRSA mounts \
                 its token; mount it elsewhere or skip the container with annotation \
                 skip-containers",
                quote(field(other, "name").unwrap_or_default())
            ),
        ));
    }
    Ok(Some(
        json!({"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true}),
    ))
}

/// Plans IRSA for `pod_value`. Pure: reads the pod, returns what to change; an empty
/// patch when the pod already has it all.
pub fn plan(pod_value: &Json, ask: &Ask, added: Option<Value>, problems: &mut Problems) -> Patch {
    let groups = groups(ask, token_file(pod_value));
    let apps = pod::list(pod_value, ContainerList::App.key()).len();
    let added: Vec<Value> = added.into_iter().collect();
    let views: Vec<Json> = added.iter().map(Json::view).collect();
    // A planned container (the VM's token server) gets IRSA as any other, at the index
    // `Patch::apply` appends it to.
    let planned = views.iter().enumerate().map(|(i, c)| {
        let at = ContainerRef {
            list: ContainerList::App,
            index: apps + i,
        };
        (at, c)
    });
    let containers = pod::containers(pod_value)
        .chain(planned)
        .filter(|(_, c)| !ask.skip.contains(pod::name_of(c)))
        .map(|(at, c)| container_change(c, at, &groups, problems))
        .filter(|change| !change.is_empty())
        .collect();
    drop(views);
    Patch {
        volumes: token_volume(pod_value, ask, problems)
            .into_iter()
            .map(Json::made)
            .collect(),
        containers,
        added,
        ..Patch::default()
    }
}

/// The projected token volume, unless the pod has one of that name.
fn token_volume(pod_value: &Json, ask: &Ask, problems: &mut Problems) -> Option<Value> {
    let Some(existing) = pod::volume(pod_value, VOLUME_NAME) else {
        return Some(json!({
            "name": VOLUME_NAME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": ask.audience,
                "expirationSeconds": ask.expiration,
                "path": TOKEN_PATH,
            }}]},
        }));
    };
    let first_source = existing
        .get("projected")
        .and_then(|p| p.get("sources")?.as_array()?.first());
    if first_source
        .and_then(|s| s.get("serviceAccountToken"))
        .is_none()
    {
        problems.warn(Problem::pod(
            Kind::Conflicting,
            format!(
                "volume {VOLUME_NAME} already exists and is not a projected service account \
                 token; left as written, so the token file may be missing"
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irsa::ask::{is_requested, is_skipped, read};
    use crate::pod::{Account, Annotations, ContainerList};
    use crate::problem::Source;
    use crate::settings::Settings;
    use crate::testutil::{appended_env, doc, settings, value, ROLE};
    use rstest::rstest;

    /// A plan with its warnings.
    #[derive(Debug)]
    struct P {
        patch: Patch,
        warnings: Vec<String>,
        warning_kinds: Vec<(Source, Kind)>,
        env: Vec<ContainerPatch>,
        volumes: Vec<Value>,
    }

    impl P {
        fn changes_nothing(&self) -> bool {
            self.patch.is_empty()
        }
    }

    /// Reads the ask and plans, as admission does; the problems when there are errors.
    fn plan(
        pod_value: &Value,
        sa: &Annotations,
        account: &str,
        s: &Settings,
    ) -> Result<P, Problems> {
        let pod_value = &doc(pod_value.clone());
        let mut problems = Problems::default();
        let account = Account {
            name: account,
            annotations: sa,
        };
        let Some(ask) = read(pod_value, account, s, &mut problems) else {
            return Err(problems);
        };
        let patch = super::plan(pod_value, &ask, None, &mut problems);
        if problems.has_errors() {
            return Err(problems);
        }
        Ok(P {
            warnings: problems.warnings(),
            warning_kinds: problems.warning_kinds(),
            env: patch.containers.clone(),
            volumes: patch.volumes.iter().map(value).collect(),
            patch,
        })
    }

    /// The names and values appended to the `i`th container's env.
    fn env(p: &P, i: usize) -> Vec<(String, String)> {
        appended_env(&p.env[i])
    }

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

    fn planned(pod_value: &Value, sa: &Annotations) -> P {
        plan(pod_value, sa, ACCOUNT, &settings()).unwrap()
    }

    /// The plan for a pod with one container "a", under these settings.
    fn one_container(sa: &Annotations, s: &Settings) -> P {
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

    fn token(plan: &P) -> &Value {
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
        assert!(p.patch.sidecar.is_none());
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
                list: ContainerList::Init,
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
    #[case::sts_regional_endpoints_true(&[("eks.amazonaws.com/sts-regional-endpoints", "true")], true)]
    #[case::sts_regional_endpoints_true_2(&[("eks.amazonaws.com/sts-regional-endpoints", "True")], true)]
    #[case::sts_regional_endpoints_false(&[("eks.amazonaws.com/sts-regional-endpoints", "false")], false)]
    #[case::no_annotation(&[], false)]
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
    #[case::sts_amazonaws_com(json!({}), &[], json!(86400), "sts.amazonaws.com")]
    #[case::token_expiration_3600_sts_amazonaws_com(json!({}), &[("eks.amazonaws.com/token-expiration", "3600")], json!(3600), "sts.amazonaws.com")]
    #[case::pod_expiration_over_the_accounts(json!({"eks.amazonaws.com/token-expiration": "7200"}), &[("eks.amazonaws.com/token-expiration", "3600")], json!(7200), "sts.amazonaws.com")]
    #[case::token_expiration_900_sts_amazonaws_com(json!({"eks.amazonaws.com/token-expiration": " 900 "}), &[], json!(900), "sts.amazonaws.com")]
    #[case::audience_example_com_aud_example_com_aud(json!({}), &[("eks.amazonaws.com/audience", "example.com/aud")], json!(86400), "example.com/aud")]
    #[case::iamra_audience_over_the_accounts(json!({"iamra.aws/audience": "pod.example"}), &[("eks.amazonaws.com/audience", "example.com/aud")], json!(86400), "pod.example")]
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
        let at = Source::PodAnnotation("eks.amazonaws.com/token-expiration".into());
        assert_eq!(p.warning_kinds, [(at, Kind::OutOfRange)]);
        assert!(
            p.warnings[0]
                .contains("annotation eks.amazonaws.com/token-expiration on the pod: 60 seconds"),
            "{:?}",
            p.warnings
        );
    }

    fn on_account(key: &str) -> Source {
        Source::Account {
            key: key.into(),
            account: ACCOUNT.into(),
        }
    }

    #[rstest]
    #[case::role_not_an_arn(json!({}), &[("eks.amazonaws.com/role-arn", "my-role")], on_account("eks.amazonaws.com/role-arn"), Kind::Malformed)]
    #[case::role_blank(json!({}), &[("eks.amazonaws.com/role-arn", " ")], on_account("eks.amazonaws.com/role-arn"), Kind::Malformed)]
    #[case::audience_with_a_space(json!({}), &[("eks.amazonaws.com/audience", "two words")], on_account("eks.amazonaws.com/audience"), Kind::Malformed)]
    #[case::iamra_audience_blank(json!({"iamra.aws/audience": " "}), &[], Source::Annotation("iamra.aws/audience".into()), Kind::Malformed)]
    #[case::sts_regional_endpoints_yes(json!({}), &[("eks.amazonaws.com/sts-regional-endpoints", "yes")], on_account("eks.amazonaws.com/sts-regional-endpoints"), Kind::Malformed)]
    #[case::expiration_as_a_duration(json!({}), &[("eks.amazonaws.com/token-expiration", "1h")], on_account("eks.amazonaws.com/token-expiration"), Kind::Malformed)]
    #[case::expiration_negative_on_the_pod(json!({"eks.amazonaws.com/token-expiration": "-1"}), &[], Source::PodAnnotation("eks.amazonaws.com/token-expiration".into()), Kind::Malformed)]
    #[case::expiration_over_the_limit(json!({"eks.amazonaws.com/token-expiration": "99999999999"}), &[], Source::PodAnnotation("eks.amazonaws.com/token-expiration".into()), Kind::OutOfRange)]
    fn malformed_values_are_rejected_by_name(
        #[case] pod_annotations: Value,
        #[case] pairs: &[(&str, &str)],
        #[case] at: Source,
        #[case] kind: Kind,
    ) {
        let problems = plan(
            &annotated(pod_annotations),
            &account(pairs),
            ACCOUNT,
            &settings(),
        )
        .unwrap_err();
        assert_eq!(problems.error_kinds(), [(at, kind)]);
    }

    #[rstest]
    #[case::skip_containers_b(json!({"eks.amazonaws.com/skip-containers": "b"}), &[])]
    #[case::skip_containers_b_other(json!({"eks.amazonaws.com/skip-containers": " b , other"}), &[])]
    #[case::skip_containers_b_2(json!({}), &[("eks.amazonaws.com/skip-containers", "b")])]
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
    #[case::windows_by_node_selector(json!({"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}))]
    #[case::windows_by_beta_node_selector(json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}))]
    #[case::os_name_windows_containers_name_a(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}))]
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
    #[case::role_arn_preset(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/other"}]), &[], true)]
    #[case::token_file_preset(json!([{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/token"}]), &[], true)]
    #[case::region_preset(json!([{"name": "AWS_REGION", "value": "us-east-1"}]), &["AWS_DEFAULT_REGION", "AWS_REGION"], false)]
    #[case::default_region_preset(json!([{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]), &["AWS_DEFAULT_REGION", "AWS_REGION"], false)]
    #[case::sts_endpoints_preset(json!([{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "legacy"}]), &[STS_VAR], false)]
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
        let kinds = Vec::from_iter(warns.then_some((Source::Pod, Kind::Conflicting)));
        assert_eq!(p.warning_kinds, kinds);
        assert_eq!(
            p.warnings.iter().any(|w| w.contains("are left as written")),
            warns,
            "{:?}",
            p.warnings
        );
    }

    /// pod-identity-webhook's `addEnvToContainer`: one variable of every group set, and
    /// the container gets nothing, not even the token mount.
    #[rstest]
    #[case::every_group(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/own"}, {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "legacy"}]), true)]
    #[case::token_file_region_and_sts(json!([{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"}, {"name": "AWS_REGION", "value": "us-east-1"}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]), true)]
    #[case::without_sts(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/own"}, {"name": "AWS_REGION", "value": "us-east-1"}]), false)]
    #[case::without_a_region(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/own"}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]), false)]
    fn a_container_that_sets_every_group_is_left_alone_mount_included(
        #[case] preset: Value,
        #[case] left_alone: bool,
    ) {
        let p = planned(
            &plain(json!({"containers": [{"name": "a", "env": preset}, {"name": "b"}]})),
            &account(&[]),
        );
        let touched: Vec<usize> = p.env.iter().map(|c| c.container.index).collect();
        assert_eq!(touched, if left_alone { vec![1] } else { vec![0, 1] });
        if !left_alone {
            assert_eq!(p.env[0].mounts.len(), 1);
        }
        assert_eq!(p.volumes.len(), 1);
    }

    #[rstest]
    #[case::role_without_token_file(json!([{"name": "AWS_ROLE_ARN", "value": ROLE}]), Some("container \"a\" sets AWS_ROLE_ARN without AWS_WEB_IDENTITY_TOKEN_FILE; AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are left as written, as pod-identity-webhook does, so the AWS SDKs find no web identity token"))]
    #[case::another_role(json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/own"}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}]), Some("container \"a\" sets AWS_ROLE_ARN to another value than the ServiceAccount's role; AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are left as written, as pod-identity-webhook does, so it may use another role"))]
    #[case::token_file_without_role(json!([{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}]), Some("container \"a\" sets AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN; AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are left as written, as pod-identity-webhook does, so the AWS SDKs do not use a web identity"))]
    #[case::another_token_file(json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine"}]), Some("container \"a\" sets AWS_WEB_IDENTITY_TOKEN_FILE to another file than IRSA's token; AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are left as written, as pod-identity-webhook does, so it does not read the token IRSA mounts"))]
    #[case::irsas_own(json!([{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}]), None)]
    fn a_preset_web_identity_warns_for_what_it_is(
        #[case] preset: Value,
        #[case] warning: Option<&str>,
    ) {
        let p = planned(
            &plain(json!({"containers": [{"name": "a", "env": preset}]})),
            &account(&[]),
        );
        assert_eq!(p.warnings.first().map(String::as_str), warning);
        let kinds = warning.map(|_| (Source::Pod, Kind::Conflicting));
        assert_eq!(p.warning_kinds, Vec::from_iter(kinds));
    }

    #[test]
    fn a_mutated_pod_is_not_mutated_again() {
        let original = plain(json!({"containers": [{"name": "a"}]}));
        let first = planned(&original, &account(&[]));
        let mut mutated = doc(original);
        first.patch.apply(&mut mutated).unwrap();
        let mutated = value(&mutated);
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
        assert_eq!(foreign.warning_kinds, [(Source::Pod, Kind::Conflicting)]);
        assert!(foreign.warnings[0].contains("is not a projected service account token"));
    }

    #[test]
    fn another_volume_at_the_mount_path_is_rejected() {
        let problems = plan(
            &plain(json!({"containers": [{"name": "a", "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}]})),
            &account(&[]),
            ACCOUNT,
            &settings(),
        )
        .unwrap_err();
        assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Conflicting)]);
        assert!(
            problems
                .error_message()
                .starts_with("container \"a\" already mounts volume \"mine\""),
            "{problems:?}"
        );
    }

    #[test]
    fn the_prefix_comes_from_settings() {
        let mut s = settings();
        s.irsa.annotation_prefix = "irsa.example.com".into();
        let sa: Annotations = [("irsa.example.com/role-arn".to_owned(), ROLE.to_owned())].into();
        assert!(is_requested(&sa, &s));
        assert!(!is_requested(&account(&[]), &s));
        let labelled = doc(pod(
            json!({"labels": {"irsa.example.com/skip-pod-identity-webhook": "false"}}),
            json!({}),
        ));
        assert!(is_skipped(&labelled, &s));
        assert!(!is_skipped(&labelled, &settings()));
    }
}
