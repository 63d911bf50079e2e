//! The admission request as the policy reads it: the fields it decides on, and the
//! object, taken from the payload's tree (`json`). Field names are read as the SDK's
//! `KubernetesAdmissionRequest` reads them: camelCase, or the snake_case aliases. A
//! field that is absent or null is empty, as Kubernetes reads a null field; one of
//! another type is refused, named.

use crate::json::{self, Json};

#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub kind: Kind,
    pub sub_resource: String,
    pub namespace: String,
    pub operation: String,
    pub user_info: UserInfo,
    pub object: Json<'a>,
}

#[derive(Debug, Clone, Default)]
pub struct Kind {
    pub group: String,
    pub kind: String,
}

#[derive(Debug, Clone, Default)]
pub struct UserInfo {
    pub username: String,
}

impl<'a> Request<'a> {
    /// Reads the payload's `request` node, taking its object out of it.
    pub fn read(mut node: Json<'a>) -> Result<Self, String> {
        if !node.is_object() {
            return Err(format!("request is {}, not an object", node.type_name()));
        }
        // Taken first: the rest is read from what stays.
        let object = json::take(&mut node, "object");
        let kind = object_of(&node, "request.kind", &["kind"])?;
        let user_info = object_of(&node, "request.userInfo", &["userInfo", "user_info"])?;
        let request = Request {
            kind: Kind {
                group: string(kind, "request.kind.group", &["group"])?,
                kind: string(kind, "request.kind.kind", &["kind"])?,
            },
            sub_resource: string(
                &node,
                "request.subResource",
                &["subResource", "sub_resource"],
            )?,
            namespace: string(&node, "request.namespace", &["namespace"])?,
            operation: string(&node, "request.operation", &["operation"])?,
            user_info: UserInfo {
                username: string(user_info, "request.userInfo.username", &["username"])?,
            },
            object,
        };
        crate::arena::discard(node);
        Ok(request)
    }
}

/// The first of `names` that `node` has and is not null.
fn field<'n, 'a>(node: &'n Json<'a>, names: &[&str]) -> Option<&'n Json<'a>> {
    names
        .iter()
        .filter_map(|name| node.get(name))
        .find(|value| !value.is_null())
}

fn string(node: &Json, path: &str, names: &[&str]) -> Result<String, String> {
    match field(node, names) {
        None => Ok(String::new()),
        Some(value) => match value.as_str() {
            Some(s) => Ok(s.to_owned()),
            None => Err(format!("{path} is {}, not a string", value.type_name())),
        },
    }
}

/// The object `names` of `node`; an empty one when absent or null.
fn object_of<'n, 'a>(
    node: &'n Json<'a>,
    path: &str,
    names: &[&str],
) -> Result<&'n Json<'a>, String> {
    match field(node, names) {
        None => Ok(&json::NULL),
        Some(value) if value.is_object() => Ok(value),
        Some(value) => Err(format!("{path} is {}, not an object", value.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{doc, value};
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case::camel_case("subResource", "userInfo")]
    #[case::snake_case("sub_resource", "user_info")]
    fn reads_the_fields_the_sdk_reads(#[case] sub_resource: &str, #[case] user_info: &str) {
        let r = Request::read(doc(json!({
            "uid": "1", "kind": {"group": "cert-manager.io", "version": "v1", "kind": "Certificate"},
            sub_resource: "status", "namespace": "payments", "operation": "UPDATE",
            user_info: {"username": "alice", "groups": ["a", "b"]},
            "object": {"metadata": {}}, "oldObject": null, "options": {"kind": "UpdateOptions"},
        })))
        .unwrap();
        assert_eq!(
            (r.kind.group.as_str(), r.kind.kind.as_str()),
            ("cert-manager.io", "Certificate")
        );
        assert_eq!(
            (
                r.sub_resource.as_str(),
                r.namespace.as_str(),
                r.operation.as_str()
            ),
            ("status", "payments", "UPDATE")
        );
        assert_eq!(r.user_info.username, "alice");
        assert_eq!(value(&r.object), json!({"metadata": {}}));
    }

    #[rstest]
    #[case::empty(json!({}))]
    #[case::nulls(json!({"kind": null, "namespace": null, "userInfo": {"username": null}, "object": null}))]
    fn every_field_may_be_missing_or_null(#[case] request: serde_json::Value) {
        let r = Request::read(doc(request)).unwrap();
        assert!(r.object.is_null() && r.operation.is_empty() && r.kind.kind.is_empty());
        assert!(r.namespace.is_empty() && r.user_info.username.is_empty());
    }

    #[rstest]
    #[case::not_an_object(json!([]), "request is an array, not an object")]
    #[case::kind(json!({"kind": "Pod"}), "request.kind is a string, not an object")]
    #[case::kind_kind(json!({"kind": {"kind": 1}}), "request.kind.kind is a number, not a string")]
    #[case::namespace(json!({"namespace": ["a"]}), "request.namespace is an array, not a string")]
    #[case::user(json!({"userInfo": {"username": true}}), "request.userInfo.username is a bool, not a string")]
    fn a_field_of_another_type_is_named(#[case] request: serde_json::Value, #[case] message: &str) {
        assert_eq!(Request::read(doc(request)).unwrap_err(), message);
    }
}
