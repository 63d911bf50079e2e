//! The `validate` answer as JSON bytes: the same bytes `serde_json::to_vec` writes for
//! the SDK's `ValidationResponse`, written directly. The mutated pod is most of an
//! answer, and serde_json's serializer spent more on it than the policy's own work:
//! it checks every byte of every string against its escape table one at a time and
//! appends each fragment through `io::Write`. Here a string is checked eight bytes
//! per step and copied whole when nothing in it needs escaping, which is the rule in
//! a pod.
//! Measured only together with the settings-time template and the payload's one UTF-8
//! check: 365k -> 248k instructions per 1-container call (b51b77e, callgrind).

use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::Value;

/// `response` as `serde_json::to_vec` writes it.
pub fn write(response: &ValidationResponse) -> Vec<u8> {
    let pod_size = response.mutated_object.as_ref().map_or(0, |_| 4096);
    let mut out = Vec::with_capacity(256 + pod_size);
    out.extend_from_slice(b"{\"accepted\":");
    out.extend_from_slice(if response.accepted { b"true" } else { b"false" });
    out.extend_from_slice(b",\"message\":");
    optional(&mut out, response.message.as_deref(), |out, m| {
        string(out, m)
    });
    out.extend_from_slice(b",\"code\":");
    optional(&mut out, response.code, |out, c| {
        out.extend_from_slice(c.to_string().as_bytes())
    });
    out.extend_from_slice(b",\"mutated_object\":");
    optional(&mut out, response.mutated_object.as_ref(), value);
    out.extend_from_slice(b",\"audit_annotations\":");
    optional(&mut out, response.audit_annotations.as_ref(), |out, map| {
        entries(out, map.iter(), |out, v| string(out, v))
    });
    out.extend_from_slice(b",\"warnings\":");
    optional(&mut out, response.warnings.as_deref(), |out, warnings| {
        list(out, warnings, |out, w| string(out, w))
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

fn list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn entries<'a, T: 'a>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = (&'a String, T)>,
    write: impl Fn(&mut Vec<u8>, T),
) {
    out.push(b'{');
    for (i, (k, v)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        write(out, v);
    }
    out.push(b'}');
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Numbers are rare in a pod: serde_json's own formatting keeps them exact.
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => string(out, s),
        Value::Array(items) => list(out, items, value),
        Value::Object(map) => entries(out, map.iter(), value),
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` is a control character, `"` or `\`.
fn needs_escape(w: u64) -> bool {
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    (below_space | zero_in(w ^ (ONES * u64::from(b'"'))) | zero_in(w ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// A JSON string, escaped as serde_json escapes it. Inlined, with `copy_clean`: in
/// wasm a call per string cost more than copying most strings.
#[inline(always)]
fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !copy_clean(out, bytes) {
        escaped(out, bytes);
    }
    out.push(b'"');
}

fn word(bytes: &[u8]) -> [u8; 8] {
    let mut word = [b' '; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    word
}

/// Appends `bytes` when none of them needs escaping, eight at a time (as fixed-size
/// stores: in wasm a copy of unknown length is a call into the runtime); otherwise
/// appends nothing and says so.
#[inline(always)]
fn copy_clean(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let start = out.len();
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let w = word(chunk);
        if needs_escape(u64::from_le_bytes(w)) {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(&w);
    }
    let rest = chunks.remainder().len();
    if rest == 0 {
        return true;
    }
    // The last eight bytes, overlapping those written (or, in a short string, padded
    // with spaces): written whole, then the overlap or padding taken off.
    let (last, keep) = if bytes.len() >= 8 {
        out.truncate(out.len() - (8 - rest));
        (word(&bytes[bytes.len() - 8..]), 8)
    } else {
        (word(bytes), rest)
    };
    if needs_escape(u64::from_le_bytes(last)) {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(&last);
    out.truncate(out.len() - (8 - keep));
    true
}

/// `bytes` with JSON escapes, byte by byte: the rare string with quotes, backslashes
/// or control characters.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let hex = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&[hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;
    use std::collections::HashMap;

    fn response(mutated_object: Option<Value>) -> ValidationResponse {
        ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object,
            audit_annotations: None,
            warnings: None,
        }
    }

    fn same_as_serde_json(r: &ValidationResponse) {
        let ours = write(r);
        let theirs = serde_json::to_vec(r).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    /// Every character in every position of strings from empty to over two steps long,
    /// so that each is seen in a whole step, in the overlapping last step and in a
    /// padded short string.
    #[test]
    fn every_character_is_escaped_as_serde_json_escapes_it() {
        let mut chars: Vec<char> = (0u8..=0x7f).map(char::from).collect();
        chars.extend(['é', '€', '😀', '\u{2028}', '\u{ffff}']);
        let base = "abcdefghijklmnopqrs";
        for len in 0..base.len() {
            same_as_serde_json(&response(Some(json!([&base[..len]]))));
            for c in &chars {
                for at in 0..=len {
                    let mut s = base[..len].to_owned();
                    s.insert(at, *c);
                    same_as_serde_json(&response(Some(json!({ "k": s, s.clone(): [s] }))));
                }
            }
        }
    }

    #[rstest]
    #[case::numbers(json!([0, -1, 1.5, 1e300, u64::MAX, i64::MIN, 0.1, 2.225_073_858_507_201e-308]))]
    #[case::nesting(json!({"a": {"b": [[], {}, [null, true, false]], "c": ""}, "": null}))]
    #[case::pod(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {"a/b": "x\ny"}}, "spec": {"containers": [{"name": "app", "env": [{"name": "NO_PROXY", "value": "a,\"b\""}]}]}}))]
    fn values_are_written_as_serde_json_writes_them(#[case] v: Value) {
        same_as_serde_json(&response(Some(v)));
    }

    #[test]
    fn every_field_of_the_response_is_written_as_serde_json_writes_it() {
        same_as_serde_json(&response(None));
        same_as_serde_json(&ValidationResponse {
            accepted: false,
            message: Some("annotation \"x\" is wrong:\tfix it".into()),
            code: Some(400),
            mutated_object: None,
            audit_annotations: Some(HashMap::from([
                ("a".into(), "1".into()),
                ("b\\".into(), "2".into()),
            ])),
            warnings: Some(vec!["one".into(), "two \u{1}".into()]),
        });
        same_as_serde_json(&ValidationResponse {
            warnings: Some(Vec::new()),
            ..response(Some(json!({})))
        });
    }
}
