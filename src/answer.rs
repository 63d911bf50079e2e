//! The `validate` answer as JSON bytes: the bytes `serde_json::to_vec` writes for the
//! SDK's `ValidationResponse`, written directly, but for the mutated pod, which is most
//! of an answer: its unedited parts are copied from the request's text and the rest is
//! written by `json` (strings checked eight bytes per step, copied whole when nothing in
//! them needs escaping). serde_json's serializer had spent more on the pod than the
//! policy's own work.

use crate::admission::Decision;
use crate::json::{list, string, Json};

/// The answer to `decision`, as `serde_json::to_vec` writes the SDK's
/// `ValidationResponse` of it, but for the mutated object, whose unedited parts are
/// copied from the request's text.
pub fn write(decision: &Decision) -> Vec<u8> {
    let none = &[][..];
    let (accepted, message, object, warnings): (bool, Option<&str>, Option<&Json>, &[String]) =
        match decision {
            Decision::Accept { warnings } => (true, None, None, warnings),
            Decision::Mutate { object, warnings } => (true, None, Some(object), warnings),
            Decision::Reject { message } => (false, Some(message), None, none),
        };
    let mut out = Vec::with_capacity(256 + object.map_or(0, |_| 4096));
    out.extend_from_slice(b"{\"accepted\":");
    out.extend_from_slice(if accepted { b"true" } else { b"false" });
    out.extend_from_slice(b",\"message\":");
    optional(&mut out, message, string);
    // The SDK's code for a rejection.
    out.extend_from_slice(if accepted {
        b",\"code\":null"
    } else {
        b",\"code\":400"
    });
    out.extend_from_slice(b",\"mutated_object\":");
    optional(&mut out, object, |out, o| o.write(out));
    out.extend_from_slice(b",\"audit_annotations\":null,\"warnings\":");
    let warnings = (!warnings.is_empty()).then_some(warnings);
    optional(&mut out, warnings, |out, w| {
        list(out, w, |out, w| string(out, w))
    });
    out.push(b'}');
    out
}

fn optional<T>(out: &mut Vec<u8>, v: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => write(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{doc, value};
    use kubewarden_policy_sdk::response::ValidationResponse;
    use rstest::rstest;
    use serde_json::{json, Value};

    /// The SDK's response to `decision`, as the policy built it before it wrote answers
    /// itself (`lib.rs`' `response`, b51b77e..6007420): the reference the answer matches.
    fn sdk(decision: &Decision) -> ValidationResponse {
        let some = |w: &[String]| (!w.is_empty()).then(|| w.to_vec());
        let (accepted, message, mutated_object, warnings) = match decision {
            Decision::Accept { warnings } => (true, None, None, some(warnings)),
            Decision::Mutate { object, warnings } => {
                (true, None, Some(value(object)), some(warnings))
            }
            Decision::Reject { message } => (false, Some(message.clone()), None, None),
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

    /// A mutation to `object`, a value the policy built.
    fn made(object: Value) -> Decision<'static> {
        Decision::Mutate {
            object: Json::made(object),
            warnings: Vec::new(),
        }
    }

    /// The answer, byte for byte as `serde_json::to_vec` writes the SDK's response.
    fn same_as_serde_json(decision: &Decision) {
        let ours = write(decision);
        let theirs = serde_json::to_vec(&sdk(decision)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    /// Every character in every position of strings from empty to over two steps long,
    /// so that each is seen in a whole step, in the overlapping last step and in a
    /// padded short string: in what the policy builds, in a string it sets in the
    /// request's object, and in a message.
    #[test]
    fn every_character_is_escaped_as_serde_json_escapes_it() {
        let mut chars: Vec<char> = (0u8..=0x7f).map(char::from).collect();
        chars.extend(['é', '€', '😀', '\u{2028}', '\u{ffff}']);
        let base = "abcdefghijklmnopqrs";
        for len in 0..base.len() {
            same_as_serde_json(&made(json!([&base[..len]])));
            for c in &chars {
                for at in 0..=len {
                    let mut s = base[..len].to_owned();
                    s.insert(at, *c);
                    same_as_serde_json(&made(json!({ "k": s, s.clone(): [s] })));
                    same_as_serde_json(&Decision::Mutate {
                        object: Json::string(s.clone()),
                        warnings: Vec::new(),
                    });
                    same_as_serde_json(&Decision::Reject { message: s });
                }
            }
        }
    }

    #[rstest]
    #[case::numbers(json!([0, -1, 1.5, 1e300, u64::MAX, i64::MIN, 0.1, 2.225_073_858_507_201e-308]))]
    #[case::nesting(json!({"a": {"b": [[], {}, [null, true, false]], "c": ""}, "": null}))]
    #[case::pod(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {"a/b": "x\ny"}}, "spec": {"containers": [{"name": "app", "env": [{"name": "NO_PROXY", "value": "a,\"b\""}]}]}}))]
    fn values_are_written_as_serde_json_writes_them(#[case] v: Value) {
        // Built by the policy: written by the writer.
        same_as_serde_json(&made(v.clone()));
        // Read from serde_json's own text: that text, whole or under an edited node.
        let mut parsed = doc(v);
        same_as_serde_json(&Decision::Mutate {
            object: parsed.clone(),
            warnings: Vec::new(),
        });
        // Taken for editing (either an object or an array): the node is then written
        // item by item, its items as their text.
        let _ = parsed.entries_mut();
        let _ = parsed.items_mut();
        same_as_serde_json(&Decision::Mutate {
            object: parsed,
            warnings: Vec::new(),
        });
    }

    /// A request's object is answered as its own text where the policy did not edit it:
    /// other bytes than serde_json's (spacing, escapes, key order, numbers as written),
    /// the same value.
    #[rstest]
    #[case::spacing("{ \"kind\" : \"Pod\" ,\n\t\"spec\": {\"containers\": [ ] } }")]
    #[case::key_order(r#"{"spec":{},"metadata":{"name":"a"},"apiVersion":"v1"}"#)]
    #[case::escapes(r#"{"name":"\u0061\/b","note":"\ud83d\ude00 \u2028"}"#)]
    #[case::numbers(r#"{"a":1e2,"b":1.50,"c":-0,"d":0.30000000000000004,"e":1E-7}"#)]
    fn a_parsed_object_is_its_own_text_with_the_value_serde_json_writes(#[case] text: &str) {
        let decision = Decision::Mutate {
            object: Json::parse(text).unwrap(),
            warnings: vec!["w".into()],
        };
        let ours = write(&decision);
        let theirs = serde_json::to_vec(&sdk(&decision)).unwrap();
        assert!(
            String::from_utf8_lossy(&ours).contains(&format!(",\"mutated_object\":{text},")),
            "{}",
            String::from_utf8_lossy(&ours)
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&ours).unwrap(),
            serde_json::from_slice::<Value>(&theirs).unwrap()
        );
    }

    #[test]
    fn every_field_of_the_response_is_written_as_serde_json_writes_it() {
        same_as_serde_json(&Decision::Accept {
            warnings: Vec::new(),
        });
        same_as_serde_json(&Decision::Accept {
            warnings: vec!["one".into(), "two \u{1}".into()],
        });
        same_as_serde_json(&Decision::Reject {
            message: "annotation \"x\" is wrong:\tfix it".into(),
        });
        same_as_serde_json(&made(json!({})));
        same_as_serde_json(&Decision::Mutate {
            object: Json::made(json!({"a": "b\\"})),
            warnings: vec!["one".into(), "two \u{1}".into()],
        });
    }
}
