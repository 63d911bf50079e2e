//! What the guest answers and what kwctl prints for it.
//!
//! The printed `AdmissionResponse` follows policy-evaluator's serialisation:
//! `patchType`, `patch` and `status` are left out when absent, while
//! `auditAnnotations` and `warnings` are always written (`null` when absent).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The guest's answer to `validate` (kubewarden-policy-sdk `ValidationResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub mutated_object: Option<Value>,
    #[serde(default)]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

/// The guest's answer to `validate_settings`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SettingsValidationResponse {
    pub valid: bool,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Base64 of the RFC 6902 JSON patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionResponseStatus>,
    pub audit_annotations: Option<BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionResponseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

const MUTATION_ON_DELETE: &str = "Incoming object is null, which happens only with DELETE \
operations, but the policy is attempting a mutation. This is not allowed";

impl AdmissionResponse {
    pub fn reject(uid: &str, message: String, code: Option<u16>) -> Self {
        AdmissionResponse {
            uid: uid.to_owned(),
            allowed: false,
            patch_type: None,
            patch: None,
            status: Some(AdmissionResponseStatus {
                message: Some(message),
                code,
            }),
            audit_annotations: None,
            warnings: None,
        }
    }

    /// How the host reports a guest that failed, trapped or timed out.
    pub fn reject_internal_server_error(uid: &str, message: &str) -> Self {
        Self::reject(uid, format!("internal server error: {message}"), Some(500))
    }

    /// Turns the guest's answer into the webhook answer. `original` is the
    /// request's `object` (`None` for DELETE); the patch goes from it to the
    /// mutated object, and no patch is sent when the two are equal.
    pub fn from_validation_response(
        uid: &str,
        original: Option<&Value>,
        response: ValidationResponse,
    ) -> Result<Self> {
        let patch = match (&response.mutated_object, original) {
            (None, _) => None,
            (Some(_), None) => {
                return Ok(Self::reject(uid, MUTATION_ON_DELETE.to_owned(), None));
            }
            (Some(mutated), Some(original)) => encode_patch(original, mutated)?,
        };
        let status = (response.message.is_some() || response.code.is_some()).then_some(
            AdmissionResponseStatus {
                message: response.message,
                code: response.code,
            },
        );
        Ok(AdmissionResponse {
            uid: uid.to_owned(),
            allowed: response.accepted,
            patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
            patch,
            status,
            audit_annotations: response.audit_annotations,
            warnings: response.warnings,
        })
    }
}

/// Base64 of `json_patch::diff(original, mutated)`, or `None` for an empty diff.
fn encode_patch(original: &Value, mutated: &Value) -> Result<Option<String>> {
    let patch = json_patch::diff(original, mutated);
    if patch.0.is_empty() {
        return Ok(None);
    }
    let text = serde_json::to_string(&patch).context("cannot serialize JSONPatch")?;
    Ok(Some(STANDARD.encode(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn accepted() -> ValidationResponse {
        ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: None,
        }
    }

    fn decode_patch(response: &AdmissionResponse) -> Value {
        let bytes = STANDARD.decode(response.patch.as_ref().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn plain_acceptance_prints_like_kwctl() {
        let r = AdmissionResponse::from_validation_response("u1", Some(&json!({})), accepted())
            .unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"uid":"u1","allowed":true,"auditAnnotations":null,"warnings":null}"#
        );
    }

    #[test]
    fn rejection_carries_message_code_warnings_and_annotations() {
        let guest: ValidationResponse = serde_json::from_value(json!({
            "accepted": false,
            "message": "no",
            "code": 403,
            "audit_annotations": {"b": "2", "a": "1"},
            "warnings": ["w"]
        }))
        .unwrap();
        let r = AdmissionResponse::from_validation_response("u", Some(&json!({})), guest).unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            concat!(
                r#"{"uid":"u","allowed":false,"status":{"message":"no","code":403},"#,
                r#""auditAnnotations":{"a":"1","b":"2"},"warnings":["w"]}"#
            )
        );
    }

    #[test]
    fn mutation_becomes_an_index_based_json_patch() {
        let original =
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}});
        let mutated = json!({
            "metadata": {"name": "p", "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]}
        });
        let guest = ValidationResponse {
            mutated_object: Some(mutated.clone()),
            ..accepted()
        };
        let r = AdmissionResponse::from_validation_response("u", Some(&original), guest).unwrap();
        assert_eq!(r.patch_type.as_deref(), Some("JSONPatch"));
        let patch = decode_patch(&r);
        assert_eq!(
            patch,
            serde_json::to_value(json_patch::diff(&original, &mutated)).unwrap()
        );
        assert!(patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/containers/1" && op["op"] == "add"));

        let mut patched = original.clone();
        let ops: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut patched, &ops).unwrap();
        assert_eq!(patched, mutated);

        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"uid":"u","allowed":true,"patchType":"JSONPatch","patch":""#),
            "{text}"
        );
    }

    #[test]
    fn identical_mutated_object_gives_no_patch() {
        let original = json!({"a": 1});
        let guest = ValidationResponse {
            mutated_object: Some(original.clone()),
            ..accepted()
        };
        let r = AdmissionResponse::from_validation_response("u", Some(&original), guest).unwrap();
        assert!(r.patch.is_none() && r.patch_type.is_none() && r.status.is_none());
        assert!(r.allowed);
    }

    #[test]
    fn mutation_of_a_delete_is_rejected_without_code() {
        let guest = ValidationResponse {
            mutated_object: Some(json!({"a": 1})),
            ..accepted()
        };
        let r = AdmissionResponse::from_validation_response("u", None, guest).unwrap();
        assert!(!r.allowed);
        assert!(r.patch.is_none());
        let status = r.status.unwrap();
        assert_eq!(status.code, None);
        assert!(status
            .message
            .unwrap()
            .starts_with("Incoming object is null"));
    }

    #[test]
    fn internal_errors_are_code_500_rejections() {
        let r = AdmissionResponse::reject_internal_server_error("u", "Guest call failure: boom");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            concat!(
                r#"{"uid":"u","allowed":false,"status":{"message":"internal server error: "#,
                r#"Guest call failure: boom","code":500},"auditAnnotations":null,"warnings":null}"#
            )
        );
    }
}
