//! The host side of waPC host calls: what a policy gets when it asks the host
//! for something (`wapc_guest::host_call`).
//!
//! Bindings, namespaces, operations and error messages follow
//! policy-evaluator's host callback. Kubernetes lookups are checked against the
//! allow list first; answers can only come from a replayed session, since this
//! runner talks to no cluster, registry or DNS server.

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

/// Payloads of the SDK's Kubernetes host calls.
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

#[derive(Deserialize)]
struct ListByNamespacePayload {
    api_version: String,
    kind: String,
    namespace: String,
    label_selector: Option<String>,
    field_selector: Option<String>,
    #[serde(default)]
    field_masks: Option<BTreeSet<String>>,
}

#[derive(Deserialize)]
struct ListAllPayload {
    api_version: String,
    kind: String,
    label_selector: Option<String>,
    field_selector: Option<String>,
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
        match (binding, namespace) {
            ("kubewarden", "tracing") => match operation {
                "log" => {
                    print_guest_log(payload);
                    Ok(Vec::new())
                }
                _ => unknown_operation(operation),
            },
            ("kubewarden", "kubernetes") => self.kubernetes(operation, payload),
            ("kubewarden", "oci") => match operation {
                "v1/manifest_digest" => {
                    let image: String = serde_json::from_slice(payload)?;
                    self.replay(&HostRequest::OciManifestDigest { image })
                }
                "v1/verify" | "v2/verify" | "v1/oci_manifest" | "v1/oci_manifest_config" => {
                    not_supported(namespace, operation)
                }
                _ => unknown_operation(operation),
            },
            ("kubewarden", "net") => match operation {
                "v1/dns_lookup_host" => {
                    let host: String = serde_json::from_slice(payload)?;
                    self.replay(&HostRequest::DNSLookupHost { host })
                }
                _ => unknown_operation(operation),
            },
            ("kubewarden", "crypto") => match operation {
                "v1/is_certificate_trusted" => not_supported(namespace, operation),
                _ => unknown_operation(operation),
            },
            ("kubewarden", _) => Err(format!("unknown namespace: {namespace}").into()),
            // The deprecated `ClusterContext` API: policy-evaluator serves it
            // without consulting the allow list.
            ("kubernetes", "ingresses") => {
                self.replay(&list_all("networking.k8s.io/v1", "Ingress"))
            }
            ("kubernetes", "namespaces") => self.replay(&list_all("v1", "Namespace")),
            ("kubernetes", "services") => self.replay(&list_all("v1", "Service")),
            ("kubernetes", _) => Err(format!("unknown namespace: {namespace}").into()),
            _ => Err(format!("unknown binding: {binding}").into()),
        }
    }

    fn kubernetes(&self, operation: &str, payload: &[u8]) -> HostCallResult {
        let (resource, request) = match operation {
            "get_resource" => {
                let p: GetResourcePayload = serde_json::from_slice(payload)?;
                (
                    resource(&p.api_version, &p.kind),
                    HostRequest::KubernetesGetResource {
                        api_version: p.api_version,
                        kind: p.kind,
                        name: p.name,
                        namespace: p.namespace,
                        disable_cache: p.disable_cache,
                        field_masks: p.field_masks,
                    },
                )
            }
            "list_resources_by_namespace" => {
                let p: ListByNamespacePayload = serde_json::from_slice(payload)?;
                (
                    resource(&p.api_version, &p.kind),
                    HostRequest::KubernetesListResourceNamespace {
                        api_version: p.api_version,
                        kind: p.kind,
                        namespace: p.namespace,
                        label_selector: p.label_selector,
                        field_selector: p.field_selector,
                        field_masks: p.field_masks,
                    },
                )
            }
            "list_resources_all" => {
                let p: ListAllPayload = serde_json::from_slice(payload)?;
                (
                    resource(&p.api_version, &p.kind),
                    HostRequest::KubernetesListResourceAll {
                        api_version: p.api_version,
                        kind: p.kind,
                        label_selector: p.label_selector,
                        field_selector: p.field_selector,
                        field_masks: p.field_masks,
                    },
                )
            }
            "can_i" => return not_supported("kubernetes", operation),
            _ => return unknown_operation(operation),
        };
        if !self.allowed_resources.contains(&resource) {
            return Err(format!(
                "Policy has not been granted access to Kubernetes {}/{} resources. \
                 The violation has been reported.",
                resource.api_version, resource.kind
            )
            .into());
        }
        self.replay(&request)
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

fn resource(api_version: &str, kind: &str) -> ContextAwareResource {
    ContextAwareResource {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    }
}

fn list_all(api_version: &str, kind: &str) -> HostRequest {
    HostRequest::KubernetesListResourceAll {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        label_selector: None,
        field_selector: None,
        field_masks: None,
    }
}

fn unknown_operation(operation: &str) -> HostCallResult {
    Err(format!("unknown operation: {operation}").into())
}

fn not_supported(namespace: &str, operation: &str) -> HostCallResult {
    Err(format!("host capability {namespace}/{operation} is not supported by policy-runner").into())
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
        assert_eq!(
            caps.handle("kubewarden", "nope", "y", b"")
                .unwrap_err()
                .to_string(),
            "unknown namespace: nope"
        );
        assert_eq!(
            caps.handle("kubewarden", "kubernetes", "nope", b"")
                .unwrap_err()
                .to_string(),
            "unknown operation: nope"
        );
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
