//! The host side of waPC host calls: what a policy gets when it asks the host
//! for something (`wapc_guest::host_call`).
//!
//! Only what this policy calls is served: its log events and Kubernetes
//! `get_resource` (a ServiceAccount); every other capability kwctl offers (OCI,
//! DNS, crypto, Kubernetes lists and `can_i`, the deprecated ClusterContext)
//! is refused with a message that names kwctl. Names and error messages follow
//! policy-evaluator's host callback. Lookups are checked against the allow
//! list first; answers can only come from a replayed session, since this
//! runner talks to no cluster.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use crate::metadata::ContextAwareResource;
use crate::session::{HostRequest, Replay};

pub type HostCallResult = Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

pub struct HostCapabilities {
    allowed_resources: BTreeSet<ContextAwareResource>,
    replay: Option<Mutex<Replay>>,
}

/// Payload of the SDK's `kubernetes::get_resource` host call.
#[derive(Deserialize)]
struct GetResourcePayload {
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    disable_cache: bool,
    #[serde(default)]
    field_masks: Option<BTreeSet<String>>,
}

impl HostCapabilities {
    pub fn new(allowed_resources: BTreeSet<ContextAwareResource>, replay: Option<Replay>) -> Self {
        HostCapabilities {
            allowed_resources,
            replay: replay.map(Mutex::new),
        }
    }

    pub fn handle(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> HostCallResult {
        match (binding, namespace, operation) {
            ("kubewarden", "tracing", "log") => {
                print_guest_log(payload);
                Ok(Vec::new())
            }
            ("kubewarden", "kubernetes", "get_resource") => self.get_resource(payload),
            ("kubewarden" | "kubernetes", _, _) => not_supported(namespace, operation),
            _ => Err(format!("unknown binding: {binding}").into()),
        }
    }

    fn get_resource(&self, payload: &[u8]) -> HostCallResult {
        let p: GetResourcePayload = serde_json::from_slice(payload)?;
        let resource = ContextAwareResource {
            api_version: p.api_version.clone(),
            kind: p.kind.clone(),
        };
        if !self.allowed_resources.contains(&resource) {
            return Err(format!(
                "Policy has not been granted access to Kubernetes {}/{} resources. \
                 The violation has been reported.",
                resource.api_version, resource.kind
            )
            .into());
        }
        self.replay(&HostRequest::KubernetesGetResource {
            api_version: p.api_version,
            kind: p.kind,
            name: p.name,
            namespace: p.namespace,
            disable_cache: p.disable_cache,
            field_masks: p.field_masks,
        })
    }

    fn replay(&self, request: &HostRequest) -> HostCallResult {
        let Some(replay) = &self.replay else {
            return Err(format!(
                "policy-runner cannot reach the services behind host capabilities (request: \
                 {request:?}); record the session with `kwctl run \
                 --record-host-capabilities-interactions FILE` and pass it with \
                 --replay-host-capabilities-interactions FILE"
            )
            .into());
        };
        // A poisoned lock only means another call panicked; the queue itself is intact.
        let mut replay = replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        replay
            .respond(request)
            .map_err(|e| format!("Callback evaluation failure: {e:#}").into())
    }
}

fn not_supported(namespace: &str, operation: &str) -> HostCallResult {
    Err(format!(
        "host capability {namespace}/{operation} is not supported by policy-runner, which \
         serves only what this policy calls (tracing/log, kubernetes/get_resource); use kwctl"
    )
    .into())
}

/// Shows the policy's log events on stderr, at info level and above as kwctl does.
fn print_guest_log(payload: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(payload) else {
        eprintln!(
            "policy log (unparsable): {}",
            String::from_utf8_lossy(payload)
        );
        return;
    };
    let level = event.get("level").and_then(Value::as_str).unwrap_or("info");
    if matches!(level, "debug" | "trace") {
        return;
    }
    let message = event
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    eprintln!("{} policy: {message} {event}", level.to_uppercase());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = r#"
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: ServiceAccount
    name: app
    namespace: team-a
    disable_cache: false
  response:
    type: Success
    payload: '{"kind":"ServiceAccount"}'
"#;

    const GET_SA: &[u8] =
        br#"{"api_version":"v1","kind":"ServiceAccount","name":"app","namespace":"team-a","disable_cache":false}"#;

    fn service_accounts() -> BTreeSet<ContextAwareResource> {
        BTreeSet::from([ContextAwareResource {
            api_version: "v1".into(),
            kind: "ServiceAccount".into(),
        }])
    }

    #[test]
    fn allowed_lookup_is_answered_from_the_session() {
        let caps = HostCapabilities::new(
            service_accounts(),
            Some(Replay::from_yaml(SESSION).unwrap()),
        );
        let answer = caps
            .handle("kubewarden", "kubernetes", "get_resource", GET_SA)
            .unwrap();
        assert_eq!(answer, br#"{"kind":"ServiceAccount"}"#);
        let err = caps
            .handle("kubewarden", "kubernetes", "get_resource", GET_SA)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Callback evaluation failure: the list of recorded responses is empty"
        );
    }

    #[test]
    fn lookups_outside_the_allow_list_are_refused_like_kwctl() {
        let caps =
            HostCapabilities::new(BTreeSet::new(), Some(Replay::from_yaml(SESSION).unwrap()));
        let err = caps
            .handle("kubewarden", "kubernetes", "get_resource", GET_SA)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Policy has not been granted access to Kubernetes v1/ServiceAccount resources. \
             The violation has been reported."
        );
    }

    #[test]
    fn allowed_lookup_without_session_is_an_error() {
        let caps = HostCapabilities::new(service_accounts(), None);
        let err = caps
            .handle("kubewarden", "kubernetes", "get_resource", GET_SA)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("--replay-host-capabilities-interactions"),
            "{err}"
        );
    }

    #[test]
    fn unknown_calls_and_bad_payloads_are_errors() {
        let caps = HostCapabilities::new(service_accounts(), None);
        assert_eq!(
            caps.handle("other", "x", "y", b"").unwrap_err().to_string(),
            "unknown binding: other"
        );
        // Capabilities the policy never calls are refused, naming kwctl, whatever the
        // allow list and session say.
        for (namespace, operation) in [
            ("nope", "y"),
            ("kubernetes", "nope"),
            ("kubernetes", "list_resources_all"),
            ("kubernetes", "can_i"),
            ("oci", "v1/manifest_digest"),
            ("net", "v1/dns_lookup_host"),
            ("crypto", "v1/is_certificate_trusted"),
        ] {
            let err = caps
                .handle("kubewarden", namespace, operation, GET_SA)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "host capability {namespace}/{operation} is not supported by policy-runner"
                )) && err.ends_with("use kwctl"),
                "{err}"
            );
        }
        assert!(caps
            .handle("kubernetes", "namespaces", "", b"")
            .unwrap_err()
            .to_string()
            .contains("not supported by policy-runner"));
        assert!(caps
            .handle("kubewarden", "kubernetes", "get_resource", b"{")
            .is_err());
    }

    #[test]
    fn logging_always_succeeds() {
        let caps = HostCapabilities::new(BTreeSet::new(), None);
        let event = br#"{"level":"debug","message":"hello"}"#;
        assert_eq!(
            caps.handle("kubewarden", "tracing", "log", event).unwrap(),
            b""
        );
        assert_eq!(
            caps.handle("kubewarden", "tracing", "log", b"garbage")
                .unwrap(),
            b""
        );
    }
}
