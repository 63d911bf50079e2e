//! What `make bench`, `make bench-count` and `make load` send: opted-in Pod CREATEs with
//! n containers under the policy's minimal settings or under a full settings document,
//! and the constant-answer guest, which answers one request's precomputed answer without
//! reading it.

use anyhow::Result;
use clap::ValueEnum;
use serde_json::{json, Value};

use crate::policy::validate_payload;
use crate::request::parse_admission_request;
use crate::settings::{settings_from_json, PolicySettings};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/app";
const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70";
const TRUST_ANCHOR_ARN: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f";

/// Every setting with its default, as the chart renders them (the policy's test
/// `settings_contract_is_current` writes this file; the chart tests check the chart
/// renders each key).
const CHART_SETTINGS: &str = include_str!("../../../charts/tests/policy-settings.json");

/// The benchmarks' settings. Each turns the ServiceAccount read off: there is no API
/// server to ask, and the native build has no host either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Settings {
    /// Nothing but `readServiceAccounts: false`.
    Bare,
    /// The required settings: the trust anchor and its region.
    Minimal,
    /// Every setting, as the chart renders them, with the trust anchor and region set.
    Full,
}

impl Settings {
    pub fn label(self) -> &'static str {
        match self {
            Settings::Bare => "bare",
            Settings::Minimal => "minimal",
            Settings::Full => "full",
        }
    }

    pub fn document(self) -> Result<PolicySettings> {
        let mut settings = match self {
            Settings::Bare => PolicySettings::new(),
            Settings::Minimal => settings_from_json(&format!(
                r#"{{"trustAnchorArn":"{TRUST_ANCHOR_ARN}","region":"eu-west-1"}}"#
            ))?,
            Settings::Full => {
                let mut full = settings_from_json(CHART_SETTINGS)?;
                full.insert("trustAnchorArn".into(), json!(TRUST_ANCHOR_ARN));
                full.insert("region".into(), json!("eu-west-1"));
                full
            }
        };
        settings.insert("readServiceAccounts".into(), json!(false));
        Ok(settings)
    }
}

/// Whether the pod asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pod {
    /// Annotated with a role and a signing profile: the policy injects the sidecar.
    OptedIn,
    /// Without the annotations: the policy reads it and lets it pass unchanged.
    Untouched,
}

/// The `validate` payload for a Pod CREATE with `containers` containers.
pub fn pod_payload(pod: Pod, containers: usize, settings: &PolicySettings) -> Result<Vec<u8>> {
    let containers: Vec<Value> = (0..containers).map(container).collect();
    let spec = json!({"serviceAccountName": "app", "containers": containers});
    match pod {
        Pod::OptedIn => opted_in(spec, settings),
        Pod::Untouched => payload(spec, json!({}), settings),
    }
}

pub fn container(i: usize) -> Value {
    json!({
        "name": format!("app-{i}"),
        "image": "registry.example.com/team/app:1.4.2",
        "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
    })
}

/// The `validate` payload for a Pod CREATE of `spec`, opted in by its annotations.
pub fn opted_in(spec: Value, settings: &PolicySettings) -> Result<Vec<u8>> {
    let annotations = json!({
        "iamra.aws/role-arn": ROLE_ARN,
        "iamra.aws/signing-profile-arn": PROFILE_ARN
    });
    payload(spec, annotations, settings)
}

fn payload(spec: Value, annotations: Value, settings: &PolicySettings) -> Result<Vec<u8>> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "bench",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "bench", "namespace": "team-a", "annotations": annotations},
                "spec": spec
            },
            "dryRun": false
        }
    });
    let request = parse_admission_request(&review.to_string())?;
    Ok(validate_payload(&request, settings)?)
}

/// A waPC guest in WAT that answers `validate` with `answer`, whatever the request,
/// `validate_settings` with valid and `protocol_version` with v1, as policy-server asks
/// when it loads a policy. It reads the request into its memory, as any guest must to
/// learn the operation, but never parses it, and has no start function: its cost is
/// what wasmtime and waPC cost per request. `request_len` is the size of the requests
/// it will get; it has room for twice that, as policy-server serialises a request a
/// little differently from the runner.
pub fn constant_guest_wat(answer: &[u8], request_len: usize) -> String {
    const PAGE: usize = 64 * 1024;
    const ANSWER_AT: usize = 64;
    let op_at = (ANSWER_AT + answer.len()).next_multiple_of(16);
    let request_at = op_at + 1024;
    let pages = (request_at + 2 * request_len).div_ceil(PAGE).max(1);
    let escaped: String = answer.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") {pages})
  (data (i32.const 0) "\"v1\"")
  (data (i32.const 16) "{{\"valid\":true}}")
  (data (i32.const {ANSWER_AT}) "{escaped}")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $guest_request (i32.const {op_at}) (i32.const {request_at}))
    ;; "protocol_version" is 16 bytes long, "validate_settings" 17
    (if (i32.eq (local.get $op_len) (i32.const 16))
      (then (call $guest_response (i32.const 0) (i32.const 4)) (return (i32.const 1))))
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 16) (i32.const 14)) (return (i32.const 1))))
    (call $guest_response (i32.const {ANSWER_AT}) (i32.const {len}))
    (i32.const 1)))
"#,
        len = answer.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::HostCapabilities;
    use crate::fresh::Fresh;

    #[test]
    fn the_constant_guest_answers_its_answer_whatever_the_request() {
        let answer = br#"{"accepted":true,"mutated_object":{"a":"\"quoted\" \u00e9"}}"#;
        let request = vec![b'x'; 100_000];
        let wat = constant_guest_wat(answer, request.len());
        let guest = Fresh::new(
            wat.as_bytes(),
            HostCapabilities::new(Default::default(), None),
            false,
        )
        .unwrap();
        assert_eq!(guest.call("validate", &request).unwrap(), answer);
        assert_eq!(
            guest.call("validate_settings", b"{}").unwrap(),
            br#"{"valid":true}"#
        );
        assert_eq!(guest.call("protocol_version", b"").unwrap(), br#""v1""#);
    }

    #[test]
    fn payloads_carry_the_settings_and_the_opt_in() {
        let minimal = Settings::Minimal.document().unwrap();
        let read = |pod| -> Value {
            serde_json::from_slice(&pod_payload(pod, 3, &minimal).unwrap()).unwrap()
        };
        let opted = read(Pod::OptedIn);
        assert_eq!(opted["settings"]["region"], json!("eu-west-1"));
        assert_eq!(opted["settings"]["readServiceAccounts"], json!(false));
        assert_eq!(
            opted["request"]["object"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            opted["request"]["object"]["metadata"]["annotations"]["iamra.aws/role-arn"],
            json!(ROLE_ARN)
        );
        assert_eq!(
            read(Pod::Untouched)["request"]["object"]["metadata"]["annotations"],
            json!({})
        );
        let full = Settings::Full.document().unwrap();
        assert_eq!(full["mode"], json!("inject"));
        assert_eq!(full["trustAnchorArn"], json!(TRUST_ANCHOR_ARN));
        assert_eq!(full["readServiceAccounts"], json!(false));
        assert_eq!(
            Value::Object(Settings::Bare.document().unwrap()),
            json!({"readServiceAccounts": false})
        );
    }
}
