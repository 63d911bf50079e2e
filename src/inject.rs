//! Plans the IAM Roles Anywhere injection for one pod: the sidecar, its certificate
//! volume, the env wiring of every other container and the bookkeeping annotations.
//! Building a [`Plan`] only reads the pod; `pod::apply` writes it.

use crate::annotations::{self, Request};
use crate::identity;
use crate::pod::{self, ContainerRef};
use crate::settings::{LogLevel, PullPolicy, Settings};
use serde_json::{json, Value};

pub const SIDECAR_NAME: &str = "iamra-credential-helper";
pub const VOLUME_NAME: &str = "iamra-credentials";
pub const MOUNT_PATH: &str = "/var/run/secrets/iamra.aws";
const HELPER_BINARY: &str = "/usr/local/bin/aws_signing_helper";

pub const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
pub const ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";

/// Variables that make the AWS SDKs use other credentials than the sidecar's.
const CREDENTIAL_OVERRIDES: [&str; 10] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_SHARED_CREDENTIALS_FILE",
];
const PROXIES: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];

/// Env and volume mount changes for one container.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvChange {
    pub container: ContainerRef,
    /// Entries appended to `env`.
    pub append: Vec<Value>,
    /// Existing `env` entries replaced in place, by index.
    pub replace: Vec<(usize, Value)>,
    /// Entries appended to `volumeMounts`.
    pub mounts: Vec<Value>,
}

/// What to add to one pod. Both modes fill it: IAM Roles Anywhere with a sidecar and
/// its certificate volume, IRSA (`crate::irsa`) with a token volume and mounts only.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub sidecar: Option<Value>,
    /// A native sidecar goes first in `initContainers`, a classic one last in `containers`.
    pub native: bool,
    /// Volumes appended to `spec.volumes`.
    pub volumes: Vec<Value>,
    pub env: Vec<EnvChange>,
    /// Annotations to set, with their full keys.
    pub annotations: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub config_hash: String,
}

impl Plan {
    /// Nothing to add: the pod already has it all.
    pub fn changes_nothing(&self) -> bool {
        self.sidecar.is_none()
            && self.volumes.is_empty()
            && self.annotations.is_empty()
            && self
                .env
                .iter()
                .all(|c| c.append.is_empty() && c.replace.is_empty() && c.mounts.is_empty())
    }
}

pub(crate) fn env_var(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn sidecar(request: &Request, settings: &Settings, region: &str) -> Value {
    let s = &settings.sidecar;
    let file = |name: &str| format!("{MOUNT_PATH}/{name}");
    let session_name = request
        .session_name
        .clone()
        .unwrap_or_else(|| "$(POD_NAME)".to_owned());
    let mut args: Vec<String> = [
        "serve",
        "--certificate",
        &file("tls.crt"),
        "--private-key",
        &file("tls.key"),
        "--trust-anchor-arn",
        &settings.trust_anchor_arn,
        "--profile-arn",
        &request.profile_arn,
        "--role-arn",
        &request.role_arn,
        "--region",
        region,
        "--port",
        &s.port.to_string(),
        "--session-duration",
        &request.session_seconds.to_string(),
        "--role-session-name",
        &session_name,
    ]
    .map(str::to_owned)
    .to_vec();
    if request.log_level == LogLevel::Debug {
        args.push("--debug".into());
    }
    let pull_policy = match s.image_pull_policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    };
    let mut container = json!({
        "name": SIDECAR_NAME,
        "image": s.image,
        "imagePullPolicy": pull_policy,
        "args": args,
        "resources": s.resources,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": identity::HELPER_UID,
            "runAsGroup": identity::HELPER_UID,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        // The helper listens on 127.0.0.1 only, which kubelet's TCP and HTTP probes
        // (sent to the pod IP) cannot reach; the image has no shell. The probe runs the
        // helper itself: it passes once the certificate is issued and readable by the
        // helper's user, so the app starts only then.
        "startupProbe": {
            "exec": {"command": [HELPER_BINARY, "read-certificate-data", "--certificate", file("tls.crt")]},
            "periodSeconds": 1,
            "failureThreshold": 60,
            "timeoutSeconds": 5,
        },
        "volumeMounts": [{"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true}],
    });
    if request.session_name.is_none() {
        // A pod made by a controller has no name at admission: read it at run time.
        container["env"] = json!([{
            "name": "POD_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
        }]);
    }
    if settings.sidecar.native {
        container["restartPolicy"] = json!("Always");
    }
    container
}

/// The variables every other container gets.
fn app_env(request: &Request, settings: &Settings) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        (
            ENDPOINT,
            format!("http://127.0.0.1:{}", settings.sidecar.port),
        ),
        (ENDPOINT_MODE, "IPv4".to_owned()),
    ];
    if let Some(region) = &request.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars
}

/// The env change for one container, and the warnings it raises.
fn container_env(
    container: &Value,
    at: ContainerRef,
    vars: &[(&str, String)],
    warnings: &mut Vec<String>,
) -> EnvChange {
    let name = pod::name_of(container);
    let env = pod::env_of(container);
    let find = |var: &str| {
        env.iter()
            .position(|e| e.get("name").and_then(Value::as_str) == Some(var))
    };
    let mut change = EnvChange {
        container: at,
        append: Vec::new(),
        replace: Vec::new(),
        mounts: Vec::new(),
    };
    for (var, value) in vars {
        match find(var) {
            None => change.append.push(env_var(var, value)),
            Some(i) if env[i].get("value").and_then(Value::as_str) == Some(value) => {}
            Some(_) => {
                let consequence = if var.starts_with("AWS_EC2_METADATA") {
                    "it may not use the credentials sidecar"
                } else {
                    "the pod's region annotation does not apply to it"
                };
                warnings.push(format!(
                    "container {name:?} already sets {var}; left as written, so {consequence}"
                ));
            }
        }
    }
    let overrides: Vec<&str> = CREDENTIAL_OVERRIDES
        .into_iter()
        .filter(|v| find(v).is_some())
        .collect();
    if !overrides.is_empty() {
        warnings.push(format!(
            "container {name:?} sets {}, which the AWS SDKs prefer over the credentials sidecar",
            overrides.join(", ")
        ));
    }
    if PROXIES.iter().any(|p| find(p).is_some()) {
        // Without this the SDK sends its metadata calls to the proxy.
        let existing = find("NO_PROXY").map(|i| (i, &env[i]));
        let lower = find("no_proxy").and_then(|i| env[i].get("value")?.as_str());
        match existing {
            Some((i, entry)) => match entry.get("value").and_then(Value::as_str) {
                Some(v) if v.split(',').any(|h| h.trim() == "127.0.0.1") => {}
                Some(v) => change
                    .replace
                    .push((i, env_var("NO_PROXY", &join_hosts(v, "127.0.0.1")))),
                None => warnings.push(format!(
                    "container {name:?} sets NO_PROXY from a reference; add 127.0.0.1 to it, or \
                     the AWS SDK sends its credential requests to the proxy"
                )),
            },
            None => change.append.push(env_var(
                "NO_PROXY",
                &join_hosts(lower.unwrap_or_default(), "127.0.0.1"),
            )),
        }
    }
    change
}

fn join_hosts(list: &str, host: &str) -> String {
    if list.trim().is_empty() {
        host.to_owned()
    } else {
        format!("{list},{host}")
    }
}

/// FNV-1a: a stable, dependency-free hash; this is a change marker, not a security check.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Plans the injection into `pod`. Pure: reads the pod, returns what to change.
pub fn plan(pod_value: &Value, request: &Request, settings: &Settings) -> Plan {
    let region = settings.region.as_str();
    let sidecar = sidecar(request, settings, region);
    let volume = identity::volume(VOLUME_NAME, settings);
    let vars = app_env(request, settings);
    let config_hash = format!(
        "{:016x}",
        fnv1a(json!([sidecar, volume, vars]).to_string().as_bytes())
    );

    let mut warnings = Vec::new();
    let env = pod::containers(pod_value)
        .filter(|(_, c)| pod::name_of(c) != SIDECAR_NAME)
        .map(|(at, c)| container_env(c, at, &vars, &mut warnings))
        .collect();
    if !settings.sidecar.native && !pod::list(pod_value, pod::INIT_CONTAINERS).is_empty() {
        warnings.push(
            "init containers run before a classic sidecar starts and get no credentials; \
             enable sidecar.native (Kubernetes 1.29+) for them"
                .to_owned(),
        );
    }

    let prefix = &settings.annotation_prefix;
    let skip_key = annotations::key(
        &settings.irsa.annotation_prefix,
        crate::irsa::SKIP_CONTAINERS,
    );
    let skip = pod::annotation(pod_value, &skip_key).unwrap_or_default();
    let mut annotations = vec![
        (
            annotations::key(prefix, annotations::INJECTED),
            "true".to_owned(),
        ),
        (
            annotations::key(prefix, annotations::CONFIG_HASH),
            config_hash.clone(),
        ),
    ];
    if !skip.split(',').any(|c| c.trim() == SIDECAR_NAME) {
        // On EKS, keeps pod-identity-webhook from handing the sidecar a web identity.
        annotations.push((skip_key, join_hosts(&skip, SIDECAR_NAME)));
    }

    Plan {
        sidecar: Some(sidecar),
        native: settings.sidecar.native,
        volumes: vec![volume],
        env,
        annotations,
        warnings,
        config_hash,
    }
}

/// Reasons a pod cannot take the sidecar; empty when it can.
pub fn conflicts(
    pod_value: &Value,
    request: &Request,
    settings: &Settings,
    namespace: &str,
) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = pod_value.get("spec");
    if spec
        .and_then(|s| s.get("hostNetwork"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        errors.push(
            "spec.hostNetwork is true: the credentials sidecar's loopback port would be shared by \
             the whole node; run the pod without hostNetwork"
                .to_owned(),
        );
    }
    if pod::is_windows(pod_value) {
        errors.push(
            "the pod runs on Windows (spec.os.name or an os nodeSelector): the credentials \
             sidecar is a Linux container"
                .to_owned(),
        );
    }
    if pod::volume(pod_value, VOLUME_NAME).is_some() {
        errors.push(format!(
            "volume {VOLUME_NAME:?} already exists: that name is reserved for the credentials \
             sidecar's certificate"
        ));
    }
    let port = i64::from(settings.sidecar.port);
    for (_, c) in pod::containers(pod_value) {
        let name = pod::name_of(c);
        if name == SIDECAR_NAME {
            errors.push(format!(
                "container {name:?} already exists: that name is reserved for the credentials sidecar"
            ));
        }
        let ports = c
            .get("ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if ports
            .iter()
            .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(port))
        {
            errors.push(format!(
                "container {name:?} uses port {port}, where the credentials sidecar listens; \
                 free the port or change the policy's sidecar.port"
            ));
        }
    }
    if let Some(name) =
        pod::pod_name_for_session(pod_value).filter(|_| request.session_name.is_none())
    {
        if let Err(e) = crate::validation::session_name(&name) {
            errors.push(format!(
                "the pod's name becomes the role session name, but {e}; set annotation {}",
                annotations::key(&settings.annotation_prefix, annotations::SESSION_NAME)
            ));
        }
    }
    if let Err(e) = identity::check_common_name(namespace, &pod::service_account(pod_value)) {
        errors.push(e);
    }
    errors
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::annotations::tests::{annotations, settings, PROFILE, ROLE};
    use rstest::rstest;

    fn request(extra: &[(&str, &str)]) -> Request {
        crate::annotations::parse(&annotations(extra), &settings())
            .unwrap()
            .request
            .unwrap()
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"}, "spec": spec})
    }

    fn the_sidecar(plan: &Plan) -> &Value {
        plan.sidecar
            .as_ref()
            .expect("an IAM Roles Anywhere plan has a sidecar")
    }

    fn args(plan: &Plan) -> Vec<String> {
        serde_json::from_value(the_sidecar(plan)["args"].clone()).unwrap()
    }

    fn flag(plan: &Plan, name: &str) -> Option<String> {
        let a = args(plan);
        a.iter().position(|x| x == name).map(|i| a[i + 1].clone())
    }

    #[test]
    fn sidecar_serves_the_requested_role() {
        let p = plan(
            &pod(json!({"containers": [{"name": "app"}]})),
            &request(&[]),
            &settings(),
        );
        assert_eq!(args(&p)[0], "serve");
        assert_eq!(flag(&p, "--role-arn").as_deref(), Some(ROLE));
        assert_eq!(flag(&p, "--profile-arn").as_deref(), Some(PROFILE));
        assert_eq!(
            flag(&p, "--trust-anchor-arn"),
            Some(settings().trust_anchor_arn)
        );
        assert_eq!(flag(&p, "--region").as_deref(), Some("eu-west-1"));
        assert_eq!(flag(&p, "--port").as_deref(), Some("9911"));
        assert_eq!(flag(&p, "--session-duration").as_deref(), Some("900"));
        assert_eq!(
            flag(&p, "--role-session-name").as_deref(),
            Some("$(POD_NAME)")
        );
        assert_eq!(
            flag(&p, "--certificate").as_deref(),
            Some("/var/run/secrets/iamra.aws/tls.crt")
        );
        assert_eq!(
            flag(&p, "--private-key").as_deref(),
            Some("/var/run/secrets/iamra.aws/tls.key")
        );
        assert!(!args(&p).contains(&"--debug".to_owned()));
        assert_eq!(
            the_sidecar(&p)["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert_eq!(the_sidecar(&p)["restartPolicy"], "Always");
        assert!(p.native);
    }

    #[rstest]
    #[case(&[("iamra.aws/session-name", "payments")], "--role-session-name", Some("payments"))]
    #[case(&[("iamra.aws/token-duration", "1h")], "--session-duration", Some("3600"))]
    #[case(&[("iamra.aws/region", "us-west-2")], "--region", Some("eu-west-1"))]
    fn annotations_shape_the_sidecar(
        #[case] extra: &[(&str, &str)],
        #[case] name: &str,
        #[case] value: Option<&str>,
    ) {
        let p = plan(
            &pod(json!({"containers": [{"name": "app"}]})),
            &request(extra),
            &settings(),
        );
        assert_eq!(flag(&p, name).as_deref(), value);
    }

    #[test]
    fn a_given_session_name_needs_no_downward_api() {
        let p = plan(
            &pod(json!({"containers": [{"name": "app"}]})),
            &request(&[("iamra.aws/session-name", "payments")]),
            &settings(),
        );
        assert!(the_sidecar(&p).get("env").is_none());
    }

    #[test]
    fn debug_log_level_turns_on_debug() {
        let p = plan(
            &pod(json!({"containers": [{"name": "app"}]})),
            &request(&[("iamra.aws/log-level", "debug")]),
            &settings(),
        );
        assert!(args(&p).contains(&"--debug".to_owned()));
    }

    #[test]
    fn sidecar_is_hardened_for_the_restricted_profile() {
        let p = plan(
            &pod(json!({"containers": [{"name": "app"}]})),
            &request(&[]),
            &settings(),
        );
        let sc = &the_sidecar(&p)["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(the_sidecar(&p)["resources"]["limits"]["memory"], "64Mi");
        assert!(the_sidecar(&p)["startupProbe"]["exec"]["command"].is_array());
        assert_eq!(the_sidecar(&p)["volumeMounts"][0]["readOnly"], true);
    }

    #[test]
    fn classic_mode_has_no_restart_policy_and_warns_about_init_containers() {
        let mut s = settings();
        s.sidecar.native = false;
        let p = plan(
            &pod(json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]})),
            &request(&[]),
            &s,
        );
        assert!(the_sidecar(&p).get("restartPolicy").is_none());
        assert!(!p.native);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("init containers run before a classic sidecar")));
    }

    /// The names and values appended to the `i`th container's env.
    pub(crate) fn env_of(p: &Plan, i: usize) -> Vec<(String, String)> {
        p.env[i]
            .append
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().into(),
                    e["value"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    #[test]
    fn every_other_container_gets_only_the_endpoint() {
        let p = plan(
            &pod(
                json!({"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]}),
            ),
            &request(&[]),
            &settings(),
        );
        assert_eq!(p.env.len(), 3);
        for i in 0..3 {
            assert_eq!(
                env_of(&p, i),
                vec![
                    (ENDPOINT.into(), "http://127.0.0.1:9911".into()),
                    (ENDPOINT_MODE.into(), "IPv4".into())
                ]
            );
        }
    }

    #[test]
    fn a_region_override_reaches_the_app() {
        let p = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[("iamra.aws/region", "us-west-2")]),
            &settings(),
        );
        let env = env_of(&p, 0);
        assert!(env.contains(&("AWS_REGION".into(), "us-west-2".into())));
        assert!(env.contains(&("AWS_DEFAULT_REGION".into(), "us-west-2".into())));
    }

    #[test]
    fn a_preset_variable_is_kept_and_warned_about() {
        let p = plan(
            &pod(
                json!({"containers": [{"name": "a", "env": [{"name": ENDPOINT, "value": "http://169.254.169.254"}]}]}),
            ),
            &request(&[]),
            &settings(),
        );
        assert_eq!(env_of(&p, 0), vec![(ENDPOINT_MODE.into(), "IPv4".into())]);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("\"a\" already sets AWS_EC2_METADATA_SERVICE_ENDPOINT")));
    }

    #[test]
    fn a_preset_region_is_kept_and_the_warning_says_what_it_means() {
        let p = plan(
            &pod(
                json!({"containers": [{"name": "a", "env": [{"name": "AWS_REGION", "value": "us-east-1"}]}]}),
            ),
            &request(&[("iamra.aws/region", "us-west-2")]),
            &settings(),
        );
        assert!(
            p.warnings.iter().any(|w| w.contains(
                "already sets AWS_REGION; left as written, so the pod's region annotation does not apply"
            )),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn the_same_value_already_set_raises_no_warning() {
        let p = plan(
            &pod(
                json!({"containers": [{"name": "a", "env": [{"name": ENDPOINT_MODE, "value": "IPv4"}]}]}),
            ),
            &request(&[]),
            &settings(),
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[rstest]
    #[case("AWS_ACCESS_KEY_ID")]
    #[case("AWS_ROLE_ARN")]
    #[case("AWS_WEB_IDENTITY_TOKEN_FILE")]
    #[case("AWS_PROFILE")]
    fn static_keys_and_irsa_variables_warn(#[case] var: &str) {
        let p = plan(
            &pod(json!({"containers": [{"name": "a", "env": [{"name": var, "value": "x"}]}]})),
            &request(&[]),
            &settings(),
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains(var) && w.contains("prefer")),
            "{:?}",
            p.warnings
        );
    }

    #[rstest]
    #[case(json!([{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]), None, Some("127.0.0.1"))]
    #[case(json!([{"name": "http_proxy", "value": "http://proxy:3128"}, {"name": "no_proxy", "value": ".svc"}]), None, Some(".svc,127.0.0.1"))]
    #[case(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "localhost,.svc"}]), Some("localhost,.svc,127.0.0.1"), None)]
    #[case(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "127.0.0.1"}]), None, None)]
    #[case(json!([{"name": "NO_PROXY", "value": "x"}]), None, None)]
    fn proxies_bypass_the_loopback_endpoint(
        #[case] env: Value,
        #[case] replaced: Option<&str>,
        #[case] appended: Option<&str>,
    ) {
        let p = plan(
            &pod(json!({"containers": [{"name": "a", "env": env}]})),
            &request(&[]),
            &settings(),
        );
        let change = &p.env[0];
        assert_eq!(
            change
                .replace
                .first()
                .map(|(_, v)| v["value"].as_str().unwrap()),
            replaced
        );
        let no_proxy = change.append.iter().find(|e| e["name"] == "NO_PROXY");
        assert_eq!(no_proxy.map(|e| e["value"].as_str().unwrap()), appended);
    }

    #[test]
    fn annotations_mark_the_pod_and_skip_the_webhook() {
        let p = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[]),
            &settings(),
        );
        let get = |k: &str| {
            p.annotations
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("iamra.aws/injected"), Some("true"));
        assert_eq!(get("iamra.aws/config-hash"), Some(p.config_hash.as_str()));
        assert_eq!(get("eks.amazonaws.com/skip-containers"), Some(SIDECAR_NAME));
        let mut existing = pod(json!({"containers": [{"name": "a"}]}));
        existing["metadata"]["annotations"] =
            json!({"eks.amazonaws.com/skip-containers": "istio-proxy"});
        let p = plan(&existing, &request(&[]), &settings());
        let skip = p
            .annotations
            .iter()
            .find(|(k, _)| k == "eks.amazonaws.com/skip-containers")
            .unwrap();
        assert_eq!(skip.1, format!("istio-proxy,{SIDECAR_NAME}"));
    }

    #[test]
    fn the_config_hash_follows_what_shaped_the_injection() {
        let base = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[]),
            &settings(),
        );
        let again = plan(
            &pod(json!({"containers": [{"name": "b"}, {"name": "c"}]})),
            &request(&[]),
            &settings(),
        );
        assert_eq!(base.config_hash, again.config_hash);
        let other = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[("iamra.aws/token-duration", "1h")]),
            &settings(),
        );
        assert_ne!(base.config_hash, other.config_hash);
        let mut s = settings();
        s.sidecar.image = "example/helper:2".into();
        let new_image = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[]),
            &s,
        );
        assert_ne!(base.config_hash, new_image.config_hash);
    }

    #[rstest]
    #[case(json!({"hostNetwork": true, "containers": [{"name": "a"}]}), "spec.hostNetwork is true")]
    #[case(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}), "the pod runs on Windows")]
    #[case(json!({"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}), "the pod runs on Windows")]
    #[case(json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}), "the pod runs on Windows")]
    #[case(json!({"containers": [{"name": SIDECAR_NAME}]}), "is reserved for the credentials sidecar")]
    #[case(json!({"containers": [{"name": "a"}], "volumes": [{"name": VOLUME_NAME, "emptyDir": {}}]}), "volume \"iamra-credentials\" already exists")]
    #[case(json!({"initContainers": [{"name": "i", "ports": [{"containerPort": 9911}]}], "containers": [{"name": "a"}]}), "container \"i\" uses port 9911")]
    #[case(json!({"serviceAccountName": "a-very-long-service-account-name-for-the-payments-api", "containers": [{"name": "a"}]}), "over X.509's limit of 64")]
    fn conflicting_pods_are_named(#[case] spec: Value, #[case] message: &str) {
        let errors = conflicts(&pod(spec), &request(&[]), &settings(), "payments");
        assert!(errors.iter().any(|e| e.contains(message)), "{errors:?}");
    }

    #[test]
    fn long_pod_names_need_a_session_name() {
        let mut p = pod(json!({"containers": [{"name": "a"}]}));
        p["metadata"] = json!({"generateName": format!("{}-", "x".repeat(60))});
        let errors = conflicts(&p, &request(&[]), &settings(), "ns");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("set annotation iamra.aws/session-name")),
            "{errors:?}"
        );
        assert!(conflicts(
            &p,
            &request(&[("iamra.aws/session-name", "ok-name")]),
            &settings(),
            "ns"
        )
        .is_empty());
    }

    #[test]
    fn an_ordinary_pod_has_no_conflicts() {
        let p = pod(json!({"containers": [{"name": "a", "ports": [{"containerPort": 8080}]}]}));
        assert!(conflicts(&p, &request(&[]), &settings(), "payments").is_empty());
    }
}
