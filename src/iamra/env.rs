//! The env wiring of the pod's other containers for IAM Roles Anywhere: the sidecar's
//! endpoint and the region, warnings for what would bypass the sidecar, and `NO_PROXY`.

use crate::json::Json;
use crate::patch::{env_var, ContainerPatch};
use crate::pod::{self, ContainerRef};
use crate::problem::{quote, Kind, Problem, Problems};

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
/// Both spellings are read: Go's net/http prefers `NO_PROXY`, Python (botocore) `no_proxy`.
const NO_PROXIES: [&str; 2] = ["NO_PROXY", "no_proxy"];
const LOOPBACK: &str = "127.0.0.1";
/// One group: a container that sets either keeps both as written, so that the two never
/// disagree (SDKs differ in which they read first).
const REGIONS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

fn position(env: &[Json], var: &str) -> Option<usize> {
    env.iter()
        .position(|e| e.get("name").and_then(Json::as_str) == Some(var))
}

/// The env change for one container, and the warnings it raises.
pub fn container_env(
    container: &Json,
    at: ContainerRef,
    vars: &[(&str, String)],
    problems: &mut Problems,
) -> ContainerPatch {
    // Quoted only for a warning: formatting it costs more than the rest of the wiring.
    let name = || quote(pod::name_of(container));
    let env = pod::env_of(container);
    let find = |var: &str| position(env, var);
    let mut change = ContainerPatch::new(at);
    for (var, value) in vars {
        let group = if REGIONS.contains(var) {
            &REGIONS[..]
        } else {
            std::slice::from_ref(var)
        };
        match find(var) {
            None if group.iter().all(|v| find(v).is_none()) => {
                change.append.push(env_var(var, value))
            }
            // Its group partner is set: the warning, if any, is about that one.
            None => {}
            Some(i) if env[i].get("value").and_then(Json::as_str) == Some(value) => {}
            Some(_) => {
                let consequence = if var.starts_with("AWS_EC2_METADATA") {
                    "it may not use the credentials sidecar"
                } else {
                    "the pod's region annotation does not apply to it"
                };
                problems.warn(Problem::pod(
                    Kind::Conflicting,
                    format!(
                        "container {} already sets {var}; left as written, so {consequence}",
                        name()
                    ),
                ));
            }
        }
    }
    let overrides: Vec<&str> = CREDENTIAL_OVERRIDES
        .into_iter()
        .filter(|v| find(v).is_some())
        .collect();
    if !overrides.is_empty() {
        problems.warn(Problem::pod(
            Kind::Conflicting,
            format!(
                "container {} sets {}, which the AWS SDKs prefer over the credentials sidecar",
                name(),
                overrides.join(", ")
            ),
        ));
    }
    if PROXIES.iter().any(|p| find(p).is_some()) {
        no_proxy(&name(), env, &mut change, problems);
    }
    change
}

/// Keeps the loopback endpoint off the container's proxy: without this the SDK sends
/// its metadata calls to the proxy. Each spelling the container sets gets 127.0.0.1 in
/// its `value`, the rest of the entry untouched; with neither, `NO_PROXY` is added.
fn no_proxy(name: &str, env: &[Json], change: &mut ContainerPatch, problems: &mut Problems) {
    let set: Vec<(&str, usize)> = NO_PROXIES
        .into_iter()
        .filter_map(|var| Some((var, position(env, var)?)))
        .collect();
    if set.is_empty() {
        change.append.push(env_var("NO_PROXY", LOOPBACK));
    }
    for (var, i) in set {
        if env[i].get("valueFrom").is_some() {
            // Its value is only known at run time, and a second entry of the same name
            // would be ambiguous: the operator must add the host where the value lives.
            problems.warn(Problem::pod(
                Kind::Unsupported,
                format!(
                    "container {name} sets {var} from valueFrom, which the policy cannot extend: \
                     add {LOOPBACK} to its source, or the AWS SDK sends its credential requests \
                     to the proxy"
                ),
            ));
            continue;
        }
        let hosts = match env[i].get("value") {
            None => "",
            Some(v) if v.is_null() => "",
            Some(v) => match v.as_str() {
                Some(hosts) => hosts,
                // Not a list of hosts (no API server sends one): left as written.
                None => continue,
            },
        };
        if !hosts.split(',').any(|h| h.trim() == LOOPBACK) {
            change.values.push((i, join_hosts(hosts, LOOPBACK)));
        }
    }
}

/// `list` (comma-separated) with `item` after it.
pub fn join_hosts(list: &str, host: &str) -> String {
    if list.trim().is_empty() {
        host.to_owned()
    } else {
        format!("{list},{host}")
    }
}
