//! A Kubewarden policy that gives pods AWS credentials through an IAM Roles Anywhere
//! sidecar. This file is the waPC glue: decode, dispatch, encode. The decisions live
//! in [`admission`] and the modules it calls.

pub mod admission;
pub mod annotations;
pub mod identity;
pub mod inject;
pub mod irsa;
pub mod pod;
pub mod service_account;
pub mod settings;
pub mod validation;

use admission::Decision;
use kubewarden_policy_sdk::request::KubernetesAdmissionRequest;
use kubewarden_policy_sdk::response::ValidationResponse;
use serde::Deserialize;
use settings::Settings;
use wapc_guest::{register_function, CallResult};

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate_payload);
    register_function("validate_settings", validate_settings_payload);
    register_function(
        "protocol_version",
        kubewarden_policy_sdk::protocol_version_guest,
    );
}

/// The `validate` payload: the admission request and the (already validated) settings.
#[derive(Deserialize)]
struct Payload {
    request: KubernetesAdmissionRequest,
    #[serde(default)]
    settings: Settings,
}

/// `validate`: the same function the wasm export and the native benchmarks call.
pub fn validate_payload(payload: &[u8]) -> CallResult {
    validate_with(payload, &service_account::from_host)
}

/// `validate` with another ServiceAccount lookup than the host's.
pub fn validate_with(payload: &[u8], lookup: service_account::Lookup) -> CallResult {
    let decision = match serde_json::from_slice::<Payload>(payload) {
        Ok(p) => admission::evaluate(&p.request, &p.settings, lookup),
        // Never a guest error: that would block every pod with a code 500.
        Err(e) => Decision::Reject {
            message: format!("the policy could not read the admission request: {e}"),
        },
    };
    Ok(serde_json::to_vec(&response(decision))?)
}

/// `validate_settings`: the SDK's check, through `settings::Settings`' `Validatable`.
pub fn validate_settings_payload(payload: &[u8]) -> CallResult {
    kubewarden_policy_sdk::validate_settings::<Settings>(payload)
}

fn response(decision: Decision) -> ValidationResponse {
    let some = |w: Vec<String>| (!w.is_empty()).then_some(w);
    let (accepted, message, mutated_object, warnings) = match decision {
        Decision::Accept { warnings } => (true, None, None, some(warnings)),
        Decision::Mutate { object, warnings } => (true, None, Some(object), some(warnings)),
        Decision::Reject { message } => (false, Some(message), None, None),
    };
    ValidationResponse {
        accepted,
        code: (!accepted).then_some(400),
        message,
        mutated_object,
        audit_annotations: None,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn call(payload: &[u8]) -> Value {
        serde_json::from_slice(&validate_payload(payload).unwrap()).unwrap()
    }

    fn pod_request(settings: Value) -> Value {
        json!({
            "request": {"uid": "1", "kind": {"kind": "Pod"}, "operation": "CREATE", "namespace": "payments",
                        "object": {"metadata": {}, "spec": {"serviceAccountName": "api", "containers": [{"name": "a"}]}}},
            "settings": settings
        })
    }

    #[test]
    fn the_service_account_is_looked_up_through_the_given_function() {
        let payload =
            pod_request(json!({"trustAnchorArn": "x", "region": "eu-west-1"})).to_string();
        let lookup = |ns: &str, name: &str| -> Result<annotations::Annotations, String> {
            assert_eq!((ns, name), ("payments", "api"));
            Ok([(
                "eks.amazonaws.com/role-arn".to_owned(),
                "arn:aws:iam::123456789012:role/app".to_owned(),
            )]
            .into())
        };
        let r: Value =
            serde_json::from_slice(&validate_with(payload.as_bytes(), &lookup).unwrap()).unwrap();
        assert_eq!(r["accepted"], true);
        assert_eq!(
            r["mutated_object"]["spec"]["volumes"][0]["name"],
            "aws-iam-token"
        );
    }

    #[test]
    fn a_native_build_has_no_host_and_says_so_by_service_account() {
        let r = call(
            pod_request(json!({"trustAnchorArn": "x", "region": "eu-west-1"}))
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r["accepted"], false);
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("cannot read ServiceAccount payments/api"),
            "{r}"
        );
    }

    #[test]
    fn garbage_is_rejected_not_trapped() {
        let r = call(b"not json");
        assert_eq!(r["accepted"], false);
        assert_eq!(r["code"], 400);
        assert!(r["message"]
            .as_str()
            .unwrap()
            .contains("could not read the admission request"));
    }

    #[test]
    fn an_untouched_pod_is_accepted_without_a_mutation() {
        let payload = json!({
            "request": {"uid": "1", "kind": {"kind": "Pod"}, "operation": "CREATE",
                        "object": {"metadata": {}, "spec": {"containers": [{"name": "a"}]}}},
            "settings": {"trustAnchorArn": "x", "region": "eu-west-1", "readServiceAccounts": false}
        });
        let r = call(payload.to_string().as_bytes());
        assert_eq!(r["accepted"], true);
        assert!(r["mutated_object"].is_null());
    }

    #[test]
    fn invalid_settings_are_reported_by_validate_settings() {
        let out = validate_settings_payload(br#"{"region": "eu-west-1"}"#).unwrap();
        let r: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(r["valid"], false);
        assert!(r["message"]
            .as_str()
            .unwrap()
            .contains("trustAnchorArn is required"));
    }
}
