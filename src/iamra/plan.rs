//! Plans the IAM Roles Anywhere injection for one pod: the sidecar, its certificate
//! volume, the env wiring of every other container and the bookkeeping annotations.
//! Planning only reads the pod; `Patch::apply` writes it.

use super::ask::Ask;
use super::env::{container_env, join_hosts};
use crate::emit::{decimal, Sink, Text};
use crate::hash::Hasher;
use crate::identity;
use crate::json::Json;
use crate::names;
use crate::patch::{Patch, Placement, Sidecar};
use crate::pod::{self, ContainerList};
use crate::problem::{quote, Kind, Problem, Problems};
use crate::settings::{LogLevel, Resources, Settings};
use crate::validation;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

pub const SIDECAR_NAME: &str = "iamra-credential-helper";
pub const VOLUME_NAME: &str = "iamra-credentials";
/// Where the certificate volume is mounted, or a file in it: literals, not joined at
/// each request.
macro_rules! mounted {
    () => {
        "/var/run/secrets/iamra.aws"
    };
    ($file:literal) => {
        concat!(mounted!(), "/", $file)
    };
}
pub const MOUNT_PATH: &str = mounted!();
const HELPER_BINARY: &str = "/usr/local/bin/aws_signing_helper";

pub const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
pub const ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";

/// The helper's command line up to its first argument the settings or the pod shape.
const ARGS_HEAD: [&str; 8] = [
    "serve",
    "--certificate",
    mounted!("tls.crt"),
    "--private-key",
    mounted!("tls.key"),
    // The helper sends only the first certificate of --certificate; --intermediates
    // sends every certificate of tls.crt (the pod's and the intermediate CA's) in
    // X-Amz-X509-Chain, so IAM Roles Anywhere reaches the root in the trust anchor.
    "--intermediates",
    mounted!("tls.crt"),
    "--trust-anchor-arn",
];
/// [`ARGS_HEAD`] as JSON text, items of the args array.
const ARGS_HEAD_TEXT: &str = concat!(
    r#""serve","--certificate",""#,
    mounted!("tls.crt"),
    r#"","--private-key",""#,
    mounted!("tls.key"),
    r#"","--intermediates",""#,
    mounted!("tls.crt"),
    r#"","--trust-anchor-arn""#,
);

/// The helper's command line after [`ARGS_HEAD`], borrowed (its numbers written in
/// `digits`): copying each argument cost a fresh request more than writing it.
fn args<'a>(ask: &'a Ask, settings: &'a Settings, digits: &'a mut [[u8; 20]; 2]) -> Vec<&'a str> {
    let session_name = ask.session_name.as_deref().unwrap_or("$(POD_NAME)");
    let [port, seconds] = digits;
    let mut args = [
        settings.trust_anchor_arn.as_str(),
        "--profile-arn",
        &ask.profile_arn,
        "--role-arn",
        &ask.role_arn,
        "--region",
        &settings.region,
        "--port",
        decimal(u64::from(settings.sidecar.port), port),
        "--session-duration",
        decimal(ask.session_seconds, seconds),
        "--role-session-name",
        session_name,
    ]
    .to_vec();
    if ask.log_level == LogLevel::Debug {
        args.push("--debug");
    }
    args
}

/// How many entries [`sidecar_base`] sends.
fn base_len(settings: &Settings) -> usize {
    7 + usize::from(settings.sidecar.native)
}

/// The sidecar's last entries, which nothing shapes, as JSON text.
const SIDECAR_TAIL: &str = concat!(
    r#""securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"#,
    r#""readOnlyRootFilesystem":true,"runAsGroup":65532,"runAsNonRoot":true,"runAsUser":65532,"#,
    r#""seccompProfile":{"type":"RuntimeDefault"}},"#,
    r#""startupProbe":{"exec":{"command":["/usr/local/bin/aws_signing_helper","#,
    r#""read-certificate-data","--certificate",""#,
    mounted!("tls.crt"),
    r#""]},"failureThreshold":60,"periodSeconds":1,"timeoutSeconds":5},"#,
    r#""volumeMounts":[{"mountPath":""#,
    mounted!(),
    r#"","name":"iamra-credentials","readOnly":true}]"#,
);

/// The sidecar's entries that the settings alone shape, in key order: all but its
/// arguments and env, whose keys come before them.
fn sidecar_base<S: Sink>(s: &mut S, settings: &Settings) {
    let c = &settings.sidecar;
    s.entry("image", &c.image);
    s.entry("imagePullPolicy", c.image_pull_policy.as_str());
    s.entry("name", SIDECAR_NAME);
    s.key("resources");
    resources(s, &c.resources);
    if c.native {
        s.entry("restartPolicy", "Always");
    }
    s.fixed(SIDECAR_TAIL, |s| {
        s.key("securityContext");
        s.object(7, |s| {
            s.key("allowPrivilegeEscalation");
            s.bool(false);
            s.key("capabilities");
            s.object(1, |s| {
                s.key("drop");
                s.strs(&["ALL"]);
            });
            s.key("readOnlyRootFilesystem");
            s.bool(true);
            s.key("runAsGroup");
            s.uint(identity::HELPER_UID);
            s.key("runAsNonRoot");
            s.bool(true);
            s.key("runAsUser");
            s.uint(identity::HELPER_UID);
            s.key("seccompProfile");
            s.object(1, |s| s.entry("type", "RuntimeDefault"));
        });
        // The helper listens on 127.0.0.1 only, which kubelet's TCP and HTTP probes (sent
        // to the pod IP) cannot reach; the image has no shell. The probe runs the helper
        // itself: it passes once the certificate is issued and readable by the helper's
        // user, so the app starts only then.
        s.key("startupProbe");
        s.object(4, |s| {
            s.key("exec");
            s.object(1, |s| {
                s.key("command");
                s.strs(&[
                    HELPER_BINARY,
                    "read-certificate-data",
                    "--certificate",
                    mounted!("tls.crt"),
                ]);
            });
            s.key("failureThreshold");
            s.uint(60);
            s.key("periodSeconds");
            s.uint(1);
            s.key("timeoutSeconds");
            s.uint(5);
        });
        s.key("volumeMounts");
        s.array(1, |s| {
            s.object(3, |s| {
                s.entry("mountPath", MOUNT_PATH);
                s.entry("name", VOLUME_NAME);
                s.key("readOnly");
                s.bool(true);
            });
        });
    });
}

/// The sidecar: its arguments ([`ARGS_HEAD`], then `args`), its env when it has one,
/// and the rest.
fn sidecar<S: Sink>(s: &mut S, settings: &Settings, args: &[&str], env: bool) {
    s.object(1 + usize::from(env) + base_len(settings), |s| {
        s.key("args");
        s.array(ARGS_HEAD.len() + args.len(), |s| {
            s.fixed(ARGS_HEAD_TEXT, |s| ARGS_HEAD.iter().for_each(|a| s.str(a)));
            args.iter().for_each(|a| s.str(a));
        });
        if env {
            s.key("env");
            sidecar_env(s);
        }
        sidecar_base(s, settings);
    });
}

/// The sidecar's env when the pod has no session name: a pod made by a controller has
/// no name at admission, so the helper reads the pod's name at run time.
fn sidecar_env<S: Sink>(s: &mut S) {
    const TEXT: &str = concat!(
        r#"[{"name":"POD_NAME","#,
        r#""valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}]"#
    );
    s.fixed(TEXT, |s| {
        s.array(1, |s| {
            s.object(2, |s| {
                s.entry("name", "POD_NAME");
                s.key("valueFrom");
                s.object(1, |s| {
                    s.key("fieldRef");
                    s.object(2, |s| {
                        s.entry("apiVersion", "v1");
                        s.entry("fieldPath", "metadata.name");
                    });
                });
            });
        })
    });
}

/// The sidecar's resources as the pod spec writes them.
fn resources<S: Sink>(s: &mut S, r: &Resources) {
    fn quantities<S: Sink>(s: &mut S, key: &'static str, m: &BTreeMap<String, String>) {
        s.key(key);
        s.object(m.len(), |s| {
            m.iter().for_each(|(k, q)| {
                s.input_key(k);
                s.str(q);
            })
        });
    }
    let len = usize::from(r.limits.is_some()) + usize::from(r.requests.is_some());
    s.object(len, |s| {
        if let Some(limits) = &r.limits {
            quantities(s, "limits", limits);
        }
        if let Some(requests) = &r.requests {
            quantities(s, "requests", requests);
        }
    });
}

/// The variables every other container gets.
fn app_env(ask: &Ask, template: &Template) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        (ENDPOINT, template.endpoint.clone()),
        (ENDPOINT_MODE, "IPv4".to_owned()),
    ];
    if let Some(region) = &ask.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars
}

/// What the injection takes from the settings alone, kept with them (see
/// `admission::Policy`).
#[derive(Debug)]
pub struct Template {
    placement: Placement,
    endpoint: String,
    /// Of the sidecar's settings-shaped entries and the volume, taken on the first
    /// request that plans an injection.
    base_hash: Cell<Option<Hasher>>,
    injected_key: String,
    hash_key: String,
    skip_key: String,
}

impl Template {
    pub fn new(settings: &Settings) -> Self {
        let prefix = &settings.annotation_prefix;
        Template {
            placement: placement(settings),
            endpoint: [
                "http://127.0.0.1:",
                decimal(u64::from(settings.sidecar.port), &mut [0; 20]),
            ]
            .concat(),
            base_hash: Cell::new(None),
            injected_key: names::key(prefix, names::INJECTED),
            hash_key: names::key(prefix, names::CONFIG_HASH),
            skip_key: names::key(&settings.irsa.annotation_prefix, names::SKIP_CONTAINERS),
        }
    }

    fn base_hash(&self, settings: &Settings, attributes: &[(&'static str, Cow<str>)]) -> Hasher {
        if let Some(hash) = self.base_hash.get() {
            return hash;
        }
        let mut hash = Hasher(0);
        hash.object(base_len(settings), |h| sidecar_base(h, settings));
        identity::volume(&mut hash, VOLUME_NAME, attributes);
        self.base_hash.set(Some(hash));
        hash
    }
}

/// The hash of what shapes the injection: the template, the sidecar's arguments and
/// env, and the apps' vars.
fn config_hash(mut hasher: Hasher, args: &[&str], env: bool, vars: &[(&str, String)]) -> String {
    hasher.word((ARGS_HEAD.len() + args.len()) as u64);
    ARGS_HEAD.iter().chain(args).for_each(|a| hasher.text(a));
    if env {
        sidecar_env(&mut hasher);
    } else {
        hasher.word(0);
    }
    for (name, value) in vars {
        hasher.text(name);
        hasher.text(value);
    }
    hasher.hex()
}

/// The injection planned for one pod.
#[derive(Debug)]
pub struct Planned {
    pub patch: Patch,
    pub config_hash: String,
}

/// Plans the injection into `pod`. Pure: reads the pod, returns what to change.
pub fn plan(
    pod_value: &Json,
    ask: &Ask,
    template: &Template,
    settings: &Settings,
    problems: &mut Problems,
) -> Planned {
    let mut digits = [[0; 20]; 2];
    let args = args(ask, settings, &mut digits);
    let env = ask.session_name.is_none();
    let vars = app_env(ask, template);
    // Built once for the hash and the text: the common name and URI are formatted.
    let attributes = identity::volume_attributes(settings);
    let base_hash = template.base_hash(settings, &attributes);
    let config_hash = config_hash(base_hash, &args, env, &vars);
    let mut container = Text::with_capacity(2048);
    sidecar(&mut container, settings, &args, env);
    let container = container.finish();
    let mut volume = Text::with_capacity(1024);
    identity::volume(&mut volume, VOLUME_NAME, &attributes);
    let volume = volume.finish();
    let containers = pod::containers(pod_value)
        .filter(|(_, c)| pod::name_of(c) != SIDECAR_NAME)
        .map(|(at, c)| container_env(c, at, &vars, problems))
        .collect();
    let placement = template.placement;
    if placement == Placement::LastApp
        && !pod::list(pod_value, ContainerList::Init.key()).is_empty()
    {
        problems.warn(Problem::pod(
            Kind::Unsupported,
            "init containers run before a classic sidecar starts and get no credentials; \
             enable sidecar.native (Kubernetes 1.29+) for them",
        ));
    }
    Planned {
        patch: Patch {
            sidecar: Some(Sidecar {
                container: Json::rendered(container),
                placement,
            }),
            volumes: vec![Json::rendered(volume)],
            containers,
            added: Vec::new(),
            annotations: bookkeeping(pod_value, template, &config_hash),
        },
        config_hash,
    }
}

fn placement(settings: &Settings) -> Placement {
    if settings.sidecar.native {
        Placement::FirstInit
    } else {
        Placement::LastApp
    }
}

/// The annotations that mark the pod, and keep pod-identity-webhook off the sidecar.
fn bookkeeping(pod_value: &Json, template: &Template, config_hash: &str) -> Vec<(String, String)> {
    let skip = pod::annotation(pod_value, &template.skip_key).unwrap_or_default();
    let mut annotations = vec![
        (template.injected_key.clone(), "true".to_owned()),
        (template.hash_key.clone(), config_hash.to_owned()),
    ];
    if !skip.split(',').any(|c| c.trim() == SIDECAR_NAME) {
        // On EKS, keeps pod-identity-webhook from handing the sidecar a web identity.
        annotations.push((template.skip_key.clone(), join_hosts(skip, SIDECAR_NAME)));
    }
    annotations
}

/// An injected pod whose configuration has not changed: re-evaluating it changes nothing.
pub fn is_injected(pod_value: &Json, template: &Template, config_hash: &str) -> bool {
    let list = match template.placement {
        Placement::FirstInit => ContainerList::Init,
        Placement::LastApp => ContainerList::App,
    };
    pod::annotation(pod_value, &template.injected_key) == Some("true")
        && pod::annotation(pod_value, &template.hash_key) == Some(config_hash)
        && pod::list(pod_value, list.key())
            .iter()
            .any(|c| pod::name_of(c) == SIDECAR_NAME)
}

/// Records the reasons a pod cannot take the sidecar.
pub fn conflicts(
    pod_value: &Json,
    ask: &Ask,
    settings: &Settings,
    namespace: &str,
    problems: &mut Problems,
) {
    let host_network = pod_value.get("spec").and_then(|s| s.get("hostNetwork"));
    if host_network.and_then(Json::as_bool) == Some(true) {
        problems.error(Problem::pod(
            Kind::Forbidden,
            "spec.hostNetwork is true: the credentials sidecar's loopback port would be shared by \
             the whole node; run the pod without hostNetwork",
        ));
    }
    if pod::is_windows(pod_value) {
        problems.error(Problem::pod(
            Kind::Unsupported,
            "the pod runs on Windows (spec.os.name or an os nodeSelector): the credentials \
             sidecar is a Linux container",
        ));
    }
    if pod::volume(pod_value, VOLUME_NAME).is_some() {
        problems.error(Problem::pod(
            Kind::Conflicting,
            format!(
                "volume {VOLUME_NAME:?} already exists: that name is reserved for the \
                 credentials sidecar's certificate"
            ),
        ));
    }
    container_conflicts(pod_value, settings, problems);
    if let Some(name) = pod::pod_name_for_session(pod_value).filter(|_| ask.session_name.is_none())
    {
        if let Err(e) = validation::session_name(&name) {
            problems.error(Problem::pod(
                e.kind,
                format!(
                    "the pod's name becomes the role session name, but {}; set annotation {}",
                    e.message,
                    names::key(&settings.annotation_prefix, names::SESSION_NAME)
                ),
            ));
        }
    }
    let identity = identity::Identity {
        cluster: &settings.cluster_name,
        namespace,
        account: pod::service_account(pod_value),
    };
    if let Err(e) = identity.check_common_name() {
        problems.error(Problem::pod(Kind::OutOfRange, e));
    }
}

/// Containers that take the sidecar's name or port.
fn container_conflicts(pod_value: &Json, settings: &Settings, problems: &mut Problems) {
    let port = i64::from(settings.sidecar.port);
    for (_, c) in pod::containers(pod_value) {
        let name = pod::name_of(c);
        if name == SIDECAR_NAME {
            problems.error(Problem::pod(
                Kind::Conflicting,
                format!(
                    "container {name:?} already exists: that name is reserved for the \
                     credentials sidecar"
                ),
            ));
        }
        let ports = c.get("ports").and_then(Json::as_array).unwrap_or_default();
        if ports
            .iter()
            .any(|p| p.get("containerPort").and_then(Json::as_i64) == Some(port))
        {
            problems.error(Problem::pod(
                Kind::Conflicting,
                format!(
                    "container {} uses port {port}, where the credentials sidecar listens; \
                     free the port or change the policy's sidecar.port",
                    quote(name)
                ),
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::iamra::ask::tests::ask as request;
    use crate::patch::ContainerPatch;
    use crate::problem::Source;
    use crate::testutil::{appended_env, doc, settings, value, PROFILE, ROLE};
    use rstest::rstest;
    use serde_json::{json, Value};

    /// A plan with its warnings, as the old tests read it.
    struct P {
        patch: Patch,
        config_hash: String,
        warnings: Vec<String>,
        warning_kinds: Vec<(Source, Kind)>,
        native: bool,
        env: Vec<ContainerPatch>,
    }

    impl P {
        fn annotations(&self) -> &[(String, String)] {
            &self.patch.annotations
        }
    }

    fn plan(pod_value: &Value, ask: &Ask, settings: &Settings) -> P {
        let pod_value = &doc(pod_value.clone());
        let mut problems = Problems::default();
        let template = Template::new(settings);
        let planned = super::plan(pod_value, ask, &template, settings, &mut problems);
        let sidecar = planned
            .patch
            .sidecar
            .as_ref()
            .expect("an IAM Roles Anywhere plan has a sidecar");
        P {
            native: sidecar.placement == Placement::FirstInit,
            env: planned.patch.containers.clone(),
            warnings: problems.warnings(),
            warning_kinds: problems.warning_kinds(),
            config_hash: planned.config_hash,
            patch: planned.patch,
        }
    }

    fn conflicts(pod_value: &Value, ask: &Ask, settings: &Settings, namespace: &str) -> Problems {
        let pod_value = &doc(pod_value.clone());
        let mut problems = Problems::default();
        super::conflicts(pod_value, ask, settings, namespace, &mut problems);
        problems
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"}, "spec": spec})
    }

    /// The sidecar as the answer writes it, read back.
    fn the_sidecar(plan: &P) -> Value {
        value(&plan.patch.sidecar.as_ref().unwrap().container)
    }

    fn args(plan: &P) -> Vec<String> {
        serde_json::from_value(the_sidecar(plan)["args"].clone()).unwrap()
    }

    fn flag(plan: &P, name: &str) -> Option<String> {
        let a = args(plan);
        a.iter().position(|x| x == name).map(|i| a[i + 1].clone())
    }

    /// Each fixed part's text is what its description writes, in each shape the sidecar
    /// takes.
    #[rstest]
    #[case::native_with_env(true, true)]
    #[case::classic_without_env(false, false)]
    fn the_sidecars_fixed_texts_are_their_descriptions(#[case] native: bool, #[case] env: bool) {
        let mut s = settings();
        s.sidecar.native = native;
        let args = ["--profile-arn", PROFILE];
        let (mut fixed, mut described) = (Text::with_capacity(0), Text::expanding(0));
        sidecar(&mut fixed, &s, &args, env);
        sidecar(&mut described, &s, &args, env);
        assert_eq!(
            String::from_utf8(fixed.out).unwrap(),
            String::from_utf8(described.out).unwrap()
        );
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
        assert_eq!(
            flag(&p, "--intermediates").as_deref(),
            Some("/var/run/secrets/iamra.aws/tls.crt")
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
    #[case::session_name(&[("iamra.aws/session-name", "payments")], "--role-session-name", Some("payments"))]
    #[case::token_duration_1h_session_duration_3600(&[("iamra.aws/token-duration", "1h")], "--session-duration", Some("3600"))]
    #[case::region_us_west_2_region_eu_west_1(&[("iamra.aws/region", "us-west-2")], "--region", Some("eu-west-1"))]
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

    #[rstest]
    #[case::defaults(settings().sidecar.resources)]
    #[case::nothing(Resources::default())]
    #[case::limits_only(Resources { limits: settings().sidecar.resources.limits, requests: None })]
    fn resources_are_written_as_serde_writes_them(#[case] r: Resources) {
        let mut text = Text::with_capacity(64);
        resources(&mut text, &r);
        let written: Value = serde_json::from_slice(&text.out).unwrap();
        assert_eq!(written, serde_json::to_value(&r).unwrap());
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
        assert_eq!(p.warning_kinds, [(Source::Pod, Kind::Unsupported)]);
        assert!(p.warnings[0].starts_with("init containers run before a classic sidecar"));
    }

    /// The names and values appended to the `i`th container's env.
    fn env_of(p: &P, i: usize) -> Vec<(String, String)> {
        appended_env(&p.env[i])
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
        assert_eq!(p.warning_kinds, [(Source::Pod, Kind::Conflicting)]);
        assert!(p.warnings[0].contains("\"a\" already sets AWS_EC2_METADATA_SERVICE_ENDPOINT"));
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
    #[case::aws_access_key_id("AWS_ACCESS_KEY_ID")]
    #[case::aws_role_arn("AWS_ROLE_ARN")]
    #[case::aws_web_identity_token_file("AWS_WEB_IDENTITY_TOKEN_FILE")]
    #[case::aws_profile("AWS_PROFILE")]
    fn static_keys_and_irsa_variables_warn(#[case] var: &str) {
        let p = plan(
            &pod(json!({"containers": [{"name": "a", "env": [{"name": var, "value": "x"}]}]})),
            &request(&[]),
            &settings(),
        );
        assert_eq!(p.warning_kinds, [(Source::Pod, Kind::Conflicting)]);
        assert!(
            p.warnings[0].contains(var) && p.warnings[0].contains("prefer"),
            "{:?}",
            p.warnings
        );
    }

    #[rstest]
    #[case::no_no_proxy(json!([{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]), &[], Some("127.0.0.1"), false)]
    #[case::lowercase_no_proxy_is_extended(json!([{"name": "http_proxy", "value": "http://proxy:3128"}, {"name": "no_proxy", "value": ".svc"}]), &[(1, ".svc,127.0.0.1")], None, false)]
    #[case::uppercase_no_proxy_is_extended(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "localhost,.svc"}]), &[(1, "localhost,.svc,127.0.0.1")], None, false)]
    #[case::both_spellings_are_extended(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "a"}, {"name": "no_proxy", "value": "b"}]), &[(1, "a,127.0.0.1"), (2, "b,127.0.0.1")], None, false)]
    #[case::already_there(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "127.0.0.1"}]), &[], None, false)]
    #[case::without_a_value(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY"}]), &[(1, "127.0.0.1")], None, false)]
    #[case::a_null_value(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": null}]), &[(1, "127.0.0.1")], None, false)]
    #[case::a_value_that_is_not_a_string_is_left_as_written(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": 547691298815_u64}]), &[], None, false)]
    #[case::from_value_from_warns_and_the_other_spelling_is_extended(json!([{"name": "HTTP_PROXY", "value": "p"}, {"name": "NO_PROXY", "valueFrom": {"configMapKeyRef": {"name": "proxy", "key": "no"}}}, {"name": "no_proxy", "value": "b"}]), &[(2, "b,127.0.0.1")], None, true)]
    #[case::without_a_proxy(json!([{"name": "NO_PROXY", "value": "x"}]), &[], None, false)]
    fn proxies_bypass_the_loopback_endpoint(
        #[case] env: Value,
        #[case] values: &[(usize, &str)],
        #[case] appended: Option<&str>,
        #[case] warns: bool,
    ) {
        let p = plan(
            &pod(json!({"containers": [{"name": "a", "env": env}]})),
            &request(&[]),
            &settings(),
        );
        let change = &p.env[0];
        let set: Vec<(usize, &str)> = change
            .values
            .iter()
            .map(|(i, v)| (*i, v.as_str()))
            .collect();
        assert_eq!(set, values);
        let append: Vec<Value> = change.append.iter().map(value).collect();
        let no_proxy = append.iter().find(|e| e["name"] == "NO_PROXY");
        assert_eq!(no_proxy.map(|e| e["value"].as_str().unwrap()), appended);
        let warned = p.warnings.iter().any(|w| {
            w == "container \"a\" sets NO_PROXY from valueFrom, which the policy cannot extend: \
                  add 127.0.0.1 to its source, or the AWS SDK sends its credential requests to the proxy"
        });
        assert_eq!(warned, warns, "{:?}", p.warnings);
        let kinds = Vec::from_iter(warns.then_some((Source::Pod, Kind::Unsupported)));
        assert_eq!(p.warning_kinds, kinds);
    }

    /// The policy owns only the `value` it extends: `valueFrom` entries and fields it does
    /// not know come back as they were.
    #[test]
    fn extending_no_proxy_keeps_the_rest_of_every_entry() {
        let env = json!([
            {"name": "HTTPS_PROXY", "value": "p"},
            {"name": "NO_PROXY", "value": ".svc", "futureField": {"keep": true}},
            {"name": "no_proxy", "valueFrom": {"configMapKeyRef": {"name": "proxy", "key": "no"}}, "futureField": 2},
        ]);
        let original = pod(json!({"containers": [{"name": "a", "env": env}]}));
        let mut mutated = doc(original.clone());
        plan(&original, &request(&[]), &settings())
            .patch
            .apply(&mut mutated)
            .unwrap();
        let mutated = value(&mutated);
        let env = &mutated["spec"]["containers"][0]["env"];
        assert_eq!(
            env[1],
            json!({"name": "NO_PROXY", "value": ".svc,127.0.0.1", "futureField": {"keep": true}})
        );
        assert_eq!(env[2], original["spec"]["containers"][0]["env"][2]);
    }

    #[rstest]
    #[case::aws_region(json!([{"name": "AWS_REGION", "value": "us-east-1"}]), "AWS_REGION")]
    #[case::aws_default_region(json!([{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]), "AWS_DEFAULT_REGION")]
    #[case::both(json!([{"name": "AWS_REGION", "value": "us-east-1"}, {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}]), "AWS_REGION")]
    fn a_container_that_sets_either_region_variable_keeps_both_as_written(
        #[case] env: Value,
        #[case] warned: &str,
    ) {
        let p = plan(
            &pod(json!({"containers": [{"name": "a", "env": env}]})),
            &request(&[("iamra.aws/region", "us-west-2")]),
            &settings(),
        );
        let names: Vec<String> = env_of(&p, 0).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [ENDPOINT, ENDPOINT_MODE]);
        let conflicting = vec![(Source::Pod, Kind::Conflicting); p.warnings.len()];
        assert_eq!(p.warning_kinds, conflicting);
        assert!(
            p.warnings.iter().any(|w| w.starts_with(&format!(
                "container \"a\" already sets {warned}; left as written, so the pod's region \
                 annotation does not apply to it"
            ))),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_preset_region_equal_to_the_annotation_adds_nothing_and_raises_no_warning() {
        let p = plan(
            &pod(
                json!({"containers": [{"name": "a", "env": [{"name": "AWS_REGION", "value": "us-west-2"}]}]}),
            ),
            &request(&[("iamra.aws/region", "us-west-2")]),
            &settings(),
        );
        let names: Vec<String> = env_of(&p, 0).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [ENDPOINT, ENDPOINT_MODE]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn annotations_mark_the_pod_and_skip_the_webhook() {
        let p = plan(
            &pod(json!({"containers": [{"name": "a"}]})),
            &request(&[]),
            &settings(),
        );
        let get = |k: &str| {
            p.annotations()
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
            .annotations()
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

    /// Each conflict by its kind; the pod itself is the source, so the message names what
    /// conflicts.
    #[rstest]
    #[case::host_network(json!({"hostNetwork": true, "containers": [{"name": "a"}]}), Kind::Forbidden, "spec.hostNetwork is true")]
    #[case::windows_by_os_name(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}), Kind::Unsupported, "the pod runs on Windows")]
    #[case::windows_by_node_selector(json!({"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}), Kind::Unsupported, "the pod runs on Windows")]
    #[case::windows_by_beta_node_selector(json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}, "containers": [{"name": "a"}]}), Kind::Unsupported, "the pod runs on Windows")]
    #[case::container_named_as_the_sidecar(json!({"containers": [{"name": SIDECAR_NAME}]}), Kind::Conflicting, "container \"iamra-credential-helper\" already exists")]
    #[case::volume_named_as_ours(json!({"containers": [{"name": "a"}], "volumes": [{"name": VOLUME_NAME, "emptyDir": {}}]}), Kind::Conflicting, "volume \"iamra-credentials\" already exists")]
    #[case::init_container_on_the_sidecar_port(json!({"initContainers": [{"name": "i", "ports": [{"containerPort": 9911}]}], "containers": [{"name": "a"}]}), Kind::Conflicting, "container \"i\" uses port 9911")]
    #[case::common_name_over_64_characters(json!({"serviceAccountName": "a-very-long-service-account-name-for-the-payments-api", "containers": [{"name": "a"}]}), Kind::OutOfRange, "the certificate's common name")]
    fn conflicting_pods_are_named(#[case] spec: Value, #[case] kind: Kind, #[case] start: &str) {
        let problems = conflicts(&pod(spec), &request(&[]), &settings(), "payments");
        assert_eq!(problems.error_kinds(), [(Source::Pod, kind)]);
        assert!(problems.error_message().starts_with(start), "{problems:?}");
    }

    /// One message in full for each kind only conflicts report.
    #[rstest]
    #[case::forbidden(json!({"hostNetwork": true, "containers": [{"name": "a"}]}), "spec.hostNetwork is true: the credentials sidecar's loopback port would be shared by the whole node; run the pod without hostNetwork")]
    #[case::unsupported(json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}), "the pod runs on Windows (spec.os.name or an os nodeSelector): the credentials sidecar is a Linux container")]
    fn conflicts_in_full(#[case] spec: Value, #[case] message: &str) {
        let problems = conflicts(&pod(spec), &request(&[]), &settings(), "payments");
        assert_eq!(problems.error_message(), message);
    }

    #[test]
    fn long_pod_names_need_a_session_name() {
        let mut p = pod(json!({"containers": [{"name": "a"}]}));
        p["metadata"] = json!({"generateName": format!("{}-", "x".repeat(60))});
        let problems = conflicts(&p, &request(&[]), &settings(), "ns");
        assert_eq!(problems.error_kinds(), [(Source::Pod, Kind::Malformed)]);
        assert!(
            problems
                .error_message()
                .ends_with("set annotation iamra.aws/session-name"),
            "{problems:?}"
        );
        assert!(!conflicts(
            &p,
            &request(&[("iamra.aws/session-name", "ok-name")]),
            &settings(),
            "ns"
        )
        .has_errors());
    }

    #[test]
    fn an_ordinary_pod_has_no_conflicts() {
        let p = pod(json!({"containers": [{"name": "a", "ports": [{"containerPort": 8080}]}]}));
        assert_eq!(
            conflicts(&p, &request(&[]), &settings(), "payments"),
            Problems::default()
        );
    }
}
