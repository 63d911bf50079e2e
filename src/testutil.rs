//! What the unit tests of several modules share.

use crate::json::Json;
use crate::patch::ContainerPatch;
use crate::pod::Annotations;
use crate::request::Request;
use crate::settings::Settings;
use serde_json::Value;

pub const TRUST_ANCHOR: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/app";
pub const PROFILE: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70";

/// Valid inject-mode settings, defaults elsewhere.
pub fn settings() -> Settings {
    serde_json::from_value(serde_json::json!({
        "trustAnchorArn": TRUST_ANCHOR,
        "region": "eu-west-1"
    }))
    .unwrap()
}

pub fn map(pairs: &[(&str, &str)]) -> Annotations {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The role and profile annotations with `extra` over them; an empty value removes a key.
pub fn annotations(extra: &[(&str, &str)]) -> Annotations {
    let mut a = map(&[
        ("iamra.aws/role-arn", ROLE),
        ("iamra.aws/signing-profile-arn", PROFILE),
    ]);
    a.extend(map(extra));
    a.retain(|_, v| !v.is_empty());
    a
}

/// The names and values a container patch appends to `env`.
pub fn appended_env(change: &ContainerPatch) -> Vec<(String, String)> {
    change
        .append
        .iter()
        .map(|e| {
            let e = value(e);
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// `text`, kept for the rest of the test run: what a request's object borrows from.
pub fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A test's value as the policy reads a request's object: parsed from its JSON text.
pub fn doc(v: Value) -> Json<'static> {
    Json::parse(leak(v.to_string())).unwrap()
}

/// What the policy wrote of `json`, read back as a `serde_json::Value` to compare.
pub fn value(json: &Json) -> Value {
    serde_json::from_slice(&json.to_vec()).unwrap()
}

/// `v` read as the payload's request is.
pub fn request(v: Value) -> Request<'static> {
    Request::read(doc(v)).unwrap()
}
