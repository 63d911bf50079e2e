//! The admission request given with `--request-path`, normalised the way
//! kwctl/policy-evaluator hand it to the guest.
//!
//! kwctl deserialises the input into policy-evaluator's `AdmissionRequest` and
//! serialises that back into the `validate` payload, so unknown fields are
//! dropped, missing required fields are an error, `null` optional fields are
//! left out and the field order is fixed. The types below reproduce that shape.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

/// `authentication/v1 UserInfo`: every field optional, absent ones omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `admission/v1 AdmissionRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub operation: String,
    pub user_info: UserInfo,
    /// `None` for DELETE, where the API server sends `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Parses the text of a request file: either an `AdmissionReview` (recognised,
/// as kwctl does, by `"kind": "AdmissionReview"`) whose `request` is used, or a
/// bare `AdmissionRequest`.
pub fn parse_admission_request(text: &str) -> Result<AdmissionRequest> {
    let value: Value =
        serde_json::from_str(text).context("the request is not a valid JSON document")?;
    let Value::Object(mut object) = value else {
        bail!("Invalid request object: expected a JSON object");
    };
    let request = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        object
            .remove("request")
            .ok_or_else(|| anyhow!("invalid AdmissionReview object: it has no `request` field"))?
    } else {
        Value::Object(object)
    };
    serde_json::from_value(request)
        .map_err(|e| anyhow!("cannot build AdmissionRequest object from given input: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_request() -> Value {
        json!({
            "uid": "1299d386-525b-4032-98ae-1949f69f9cfc",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
            "oldObject": null,
            "dryRun": false,
            "notAField": 1
        })
    }

    #[test]
    fn admission_review_and_bare_request_give_the_same_request() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": pod_request()
        });
        let from_review = parse_admission_request(&review.to_string()).unwrap();
        let from_bare = parse_admission_request(&pod_request().to_string()).unwrap();
        assert_eq!(from_review, from_bare);
        assert_eq!(from_bare.uid, "1299d386-525b-4032-98ae-1949f69f9cfc");
        assert_eq!(from_bare.kind.kind, "Pod");
    }

    #[test]
    fn reserialisation_drops_unknown_and_null_fields_in_kwctl_order() {
        let request = parse_admission_request(&pod_request().to_string()).unwrap();
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"uid":"1299d386-525b-4032-98ae-1949f69f9cfc","#,
                r#""kind":{"group":"","version":"v1","kind":"Pod"},"#,
                r#""resource":{"group":"","version":"v1","resource":"pods"},"#,
                r#""requestKind":{"group":"","version":"v1","kind":"Pod"},"#,
                r#""namespace":"default","operation":"CREATE","#,
                r#""userInfo":{"groups":["system:authenticated"],"username":"alice"},"#,
                r#""object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}},"#,
                r#""dryRun":false}"#
            )
        );
    }

    #[test]
    fn delete_requests_have_no_object() {
        let mut request = pod_request();
        request["operation"] = json!("DELETE");
        request["object"] = Value::Null;
        let parsed = parse_admission_request(&request.to_string()).unwrap();
        assert!(parsed.object.is_none());
    }

    #[test]
    fn malformed_inputs_are_explained() {
        let err = parse_admission_request("[1]").unwrap_err();
        assert!(err.to_string().contains("Invalid request object"), "{err}");

        let err = parse_admission_request(r#"{"kind":"AdmissionReview"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid AdmissionReview"), "{err}");

        let mut no_uid = pod_request();
        no_uid.as_object_mut().unwrap().remove("uid");
        let err = parse_admission_request(&no_uid.to_string()).unwrap_err();
        assert!(
            err.to_string().contains(
                "cannot build AdmissionRequest object from given input: missing field `uid`"
            ),
            "{err}"
        );

        assert!(parse_admission_request("{not json").is_err());
    }
}
