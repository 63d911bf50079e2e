//! The Kubewarden waPC protocol on top of a [`Guest`]: `validate_settings`
//! and `validate`, with the payloads and error handling of policy-evaluator.

use serde::Serialize;

use crate::guest::Guest;
use crate::request::AdmissionRequest;
use crate::response::{AdmissionResponse, SettingsValidationResponse, ValidationResponse};
use crate::settings::PolicySettings;

pub struct Policy {
    guest: Guest,
}

#[derive(Serialize)]
struct ValidatePayload<'a> {
    request: &'a AdmissionRequest,
    settings: &'a PolicySettings,
}

/// The bytes sent to the guest's `validate`: `{"request": ..., "settings": ...}`.
pub fn validate_payload(
    request: &AdmissionRequest,
    settings: &PolicySettings,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&ValidatePayload { request, settings })
}

impl Policy {
    pub fn new(guest: Guest) -> Self {
        Policy { guest }
    }

    /// Asks the guest whether `settings` are valid. Failures to call the guest
    /// or to read its answer count as invalid settings, with a message saying why.
    pub fn validate_settings(&self, settings: &PolicySettings) -> SettingsValidationResponse {
        let invalid = |message: String| SettingsValidationResponse {
            valid: false,
            message: Some(message),
        };
        let payload = match serde_json::to_vec(settings) {
            Ok(payload) => payload,
            Err(e) => return invalid(format!("could not marshal settings: {e}")),
        };
        match self.guest.call("validate_settings", &payload) {
            Ok(answer) => serde_json::from_slice(&answer).unwrap_or_else(|e| {
                invalid(format!(
                    "error: cannot parse the settings validation response: {e}"
                ))
            }),
            // `{:?}` as policy-evaluator formats it, e.g. `GuestCallFailure("...")`.
            Err(err) => invalid(format!(
                "Error invoking settings validation callback: {err:?}"
            )),
        }
    }

    /// Runs `validate`. A guest error, trap or time-out, or an answer that
    /// cannot be read, becomes a code 500 rejection, never an acceptance.
    pub fn validate(
        &self,
        request: &AdmissionRequest,
        settings: &PolicySettings,
    ) -> AdmissionResponse {
        let uid = request.uid.as_str();
        let payload = match validate_payload(request, settings) {
            Ok(payload) => payload,
            Err(e) => return AdmissionResponse::reject_internal_server_error(uid, &e.to_string()),
        };
        let answer = match self.guest.call("validate", &payload) {
            Ok(answer) => answer,
            Err(e) => return AdmissionResponse::reject_internal_server_error(uid, &e.to_string()),
        };
        let response: ValidationResponse = match serde_json::from_slice(&answer) {
            Ok(response) => response,
            Err(e) => {
                return AdmissionResponse::reject_internal_server_error(
                    uid,
                    &format!("cannot deserialize policy validation response: {e}"),
                )
            }
        };
        AdmissionResponse::from_validation_response(uid, request.object.as_ref(), response)
            .unwrap_or_else(|e| {
                AdmissionResponse::reject_internal_server_error(uid, &format!("{e:#}"))
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::capabilities::HostCapabilities;
    use crate::guest::{GuestOptions, DEFAULT_TIMEOUT};
    use crate::request::parse_admission_request;
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    fn wat_bytes(text: &str) -> String {
        text.bytes().map(|b| format!("\\{b:02x}")).collect()
    }

    /// WAT for a guest whose `validate_settings` answers `settings_answer` and
    /// whose `validate` answers `validate_answer`, or traps when it is `None`.
    pub(crate) fn fixed_guest(settings_answer: &str, validate_answer: Option<&str>) -> String {
        let validate_body = match validate_answer {
            Some(answer) => format!(
                "(call $guest_response (i32.const 8192) (i32.const {})) (return (i32.const 1))",
                answer.len()
            ),
            None => "unreachable".to_owned(),
        };
        format!(
            r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "{settings}")
  (data (i32.const 8192) "{validate}")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $guest_request (i32.const 0) (i32.const 16384))
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 4096) (i32.const {settings_len})) (return (i32.const 1))))
    {validate_body}))"#,
            settings = wat_bytes(settings_answer),
            settings_len = settings_answer.len(),
            validate = wat_bytes(validate_answer.unwrap_or_default()),
        )
    }

    fn policy(wat: &str) -> Policy {
        let options = GuestOptions {
            timeout: DEFAULT_TIMEOUT,
            compilation_cache: false,
        };
        let guest = Guest::new(
            wat.as_bytes(),
            HostCapabilities::new(BTreeSet::new(), None),
            options,
        )
        .unwrap();
        Policy::new(guest)
    }

    fn request() -> AdmissionRequest {
        parse_admission_request(
            &json!({
                "uid": "abc",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE",
                "userInfo": {},
                "object": {"metadata": {"name": "p"}}
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn payload_has_request_then_settings() {
        let mut settings = PolicySettings::new();
        settings.insert("region".into(), json!("eu-west-1"));
        let payload: Value =
            serde_json::from_slice(&validate_payload(&request(), &settings).unwrap()).unwrap();
        assert_eq!(payload["settings"], json!({"region": "eu-west-1"}));
        assert_eq!(payload["request"]["uid"], json!("abc"));
        assert_eq!(payload.as_object().unwrap().len(), 2);
    }

    #[test]
    fn settings_verdicts_are_passed_through() {
        let p = policy(&fixed_guest(
            r#"{"valid":false,"message":"region is required"}"#,
            None,
        ));
        let verdict = p.validate_settings(&PolicySettings::new());
        assert!(!verdict.valid);
        assert_eq!(verdict.message.as_deref(), Some("region is required"));
    }

    #[test]
    fn unreadable_settings_answers_are_invalid() {
        let verdict =
            policy(&fixed_guest("nonsense", None)).validate_settings(&PolicySettings::new());
        assert!(!verdict.valid);
        assert!(verdict.message.unwrap().starts_with("error: "));
    }

    #[test]
    fn mutation_is_diffed_against_the_request_object() {
        let answer =
            r#"{"accepted":true,"mutated_object":{"metadata":{"name":"p","labels":{"a":"b"}}}}"#;
        let response = policy(&fixed_guest(r#"{"valid":true}"#, Some(answer)))
            .validate(&request(), &PolicySettings::new());
        assert!(response.allowed);
        assert_eq!(response.uid, "abc");
        assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
    }

    #[test]
    fn traps_and_garbage_are_500_rejections() {
        for p in [
            policy(&fixed_guest(r#"{"valid":true}"#, None)),
            policy(&fixed_guest(
                r#"{"valid":true}"#,
                Some("{\"accepted\": tru"),
            )),
        ] {
            let response = p.validate(&request(), &PolicySettings::new());
            assert!(!response.allowed);
            let status = response.status.unwrap();
            assert_eq!(status.code, Some(500));
            assert!(status
                .message
                .unwrap()
                .starts_with("internal server error: "));
        }
    }
}
