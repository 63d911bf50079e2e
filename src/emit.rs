//! Values the policy makes (the sidecar, its certificate volume) described once and sent
//! to a [`Sink`]: written as JSON text into the answer, or fed to the config hash. Built
//! as `serde_json::Value`s they were a quarter of a fresh request: a `String` per key,
//! a B-tree per object, then walked once to hash and once to write. A description
//! names an object's entries in key order, as a `Value`'s map holds them, so that the
//! text and the hash are the ones the `Value`s gave (golden files and config hashes
//! unchanged); the text writer checks the order in debug builds.

use crate::hash::Hasher;
use crate::json::string;

pub trait Sink {
    fn bool(&mut self, b: bool);
    fn uint(&mut self, n: u64);
    fn str(&mut self, s: &str);
    /// An array of `len` items, which `items` sends.
    fn array(&mut self, len: usize, items: impl FnOnce(&mut Self));
    /// An object of `len` entries, which `entries` sends as [`Sink::key`] (or
    /// [`Sink::input_key`]) then the value, in key order.
    fn object(&mut self, len: usize, entries: impl FnOnce(&mut Self));
    /// A key the policy names, a literal that needs no escaping: written as it is.
    fn key(&mut self, k: &'static str);
    /// A key from the settings, escaped as any string.
    fn input_key(&mut self, k: &str);

    /// A part of a description that never changes: a run of items or entries of the
    /// open array or object, which `describe` sends and whose JSON text is `text`. A
    /// text sink copies `text` at once, where each string of the run was a call; the
    /// hash is fed what `describe` sends.
    fn fixed(&mut self, text: &'static str, describe: impl FnOnce(&mut Self)) {
        let _ = text;
        describe(self);
    }

    /// An array of strings.
    fn strs(&mut self, items: &[&str]) {
        self.array(items.len(), |s| items.iter().for_each(|i| s.str(i)));
    }

    /// A `key: "value"` entry.
    fn entry(&mut self, k: &'static str, v: &str) {
        self.key(k);
        self.str(v);
    }
}

/// `n` in decimal, as `to_string` writes it, in `digits`: without the formatting
/// machinery, which costs a request more than the digits.
pub fn decimal(n: u64, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[at..]).unwrap_or_default()
}

/// JSON text, as `serde_json::to_vec` writes the `Value` of the same description.
#[derive(Debug, Default)]
pub struct Text {
    pub out: Vec<u8>,
    /// Whether the next item or entry follows another in its array or object.
    comma: bool,
    /// The last key of each open object, for the order check of debug builds.
    #[cfg(debug_assertions)]
    keys: Vec<String>,
    /// Whether fixed parts are written from their descriptions: the tests' check that
    /// each fixed text is its description's.
    #[cfg(test)]
    expand: bool,
}

impl Text {
    /// With room for `capacity` bytes: growing a few bytes at a time copies the text
    /// again at each step.
    pub fn with_capacity(capacity: usize) -> Self {
        Text {
            out: Vec::with_capacity(capacity),
            ..Text::default()
        }
    }

    /// The text, without its spare room. Given back while it is the newest allocation,
    /// the room is reused in place by the call's arena, so that what the call allocates
    /// next follows the text. The call's memory ends 900 bytes sooner: for the
    /// benchmarks' one-container pod a page sooner, one page fault fewer per request.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.shrink_to_fit();
        self.out
    }

    /// Writes every fixed part from its description, as if it had no fixed text.
    #[cfg(test)]
    pub fn expanding(capacity: usize) -> Self {
        Text {
            expand: true,
            ..Text::with_capacity(capacity)
        }
    }

    /// An entry begins with key `k`: after a comma unless it is the first, and checked
    /// to follow the one before in debug builds.
    fn opened(&mut self, k: &str) {
        #[cfg(debug_assertions)]
        if let Some(last) = self.keys.last_mut() {
            debug_assert!(last.as_str() < k, "key {k:?} after {last:?}: out of order");
            *last = k.to_owned();
        }
        #[cfg(not(debug_assertions))]
        let _ = k;
        self.item();
        self.comma = false;
    }

    fn item(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
    }
}

impl Sink for Text {
    fn bool(&mut self, b: bool) {
        self.item();
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    fn uint(&mut self, n: u64) {
        self.item();
        self.out
            .extend_from_slice(decimal(n, &mut [0; 20]).as_bytes());
    }

    fn str(&mut self, s: &str) {
        self.item();
        string(&mut self.out, s);
    }

    fn array(&mut self, _len: usize, items: impl FnOnce(&mut Self)) {
        self.item();
        self.out.push(b'[');
        self.comma = false;
        items(self);
        self.out.push(b']');
        self.comma = true;
    }

    fn object(&mut self, _len: usize, entries: impl FnOnce(&mut Self)) {
        self.item();
        self.out.push(b'{');
        self.comma = false;
        #[cfg(debug_assertions)]
        self.keys.push(String::new());
        entries(self);
        #[cfg(debug_assertions)]
        self.keys.pop();
        self.out.push(b'}');
        self.comma = true;
    }

    /// Inlined, so that the literal's length is known and its copy is a few stores.
    #[inline(always)]
    fn key(&mut self, k: &'static str) {
        debug_assert!(
            k.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'),
            "key {k:?} needs escaping"
        );
        self.opened(k);
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn input_key(&mut self, k: &str) {
        self.opened(k);
        string(&mut self.out, k);
        self.out.push(b':');
    }

    fn fixed(&mut self, text: &'static str, describe: impl FnOnce(&mut Self)) {
        #[cfg(test)]
        if self.expand {
            return describe(self);
        }
        let _ = describe;
        self.item();
        self.out.extend_from_slice(text.as_bytes());
        self.comma = true;
    }
}

/// The config hash, fed the words `Hasher::value` feeds for the `Value` of the same
/// description. Lengths are the caller's: they are hashed before the items.
impl Sink for Hasher {
    fn bool(&mut self, b: bool) {
        self.word(1 + u64::from(b));
    }

    fn uint(&mut self, n: u64) {
        self.word(3);
        self.text(decimal(n, &mut [0; 20]));
    }

    fn str(&mut self, s: &str) {
        self.word(4);
        self.text(s);
    }

    fn array(&mut self, len: usize, items: impl FnOnce(&mut Self)) {
        self.word(5);
        self.word(len as u64);
        items(self);
    }

    fn object(&mut self, len: usize, entries: impl FnOnce(&mut Self)) {
        self.word(6);
        self.word(len as u64);
        entries(self);
    }

    fn key(&mut self, k: &'static str) {
        self.text(k);
    }

    fn input_key(&mut self, k: &str) {
        self.text(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{json, Value};

    /// `v` described to `s` as a description would: objects in key order, lengths first.
    fn send<S: Sink>(s: &mut S, v: &Value) {
        match v {
            Value::Bool(b) => s.bool(*b),
            Value::Number(n) => s.uint(n.as_u64().expect("the tests' numbers are u64")),
            Value::String(t) => s.str(t),
            Value::Array(items) => s.array(items.len(), |s| items.iter().for_each(|i| send(s, i))),
            Value::Object(map) => s.object(map.len(), |s| {
                map.iter().for_each(|(k, v)| {
                    s.input_key(k);
                    send(s, v);
                })
            }),
            Value::Null => unreachable!("descriptions send no null"),
        }
    }

    #[rstest]
    #[case::scalars(json!([true, false, 0, 7, 65532, u64::MAX, "", "x"]))]
    #[case::escapes(json!({"a\"b": "line\nbreak\t\u{1}\\", "é": "€😀"}))]
    #[case::nesting(json!({"a": {"b": [[], {}, [{"c": [1, 2]}]]}, "d": [], "e": {}}))]
    #[case::sidecar_like(json!({"args": ["serve", "--port", "9911"], "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}], "securityContext": {"runAsUser": 65532}}))]
    fn text_and_hash_are_the_ones_of_the_value(#[case] v: Value) {
        let mut text = Text::with_capacity(16);
        send(&mut text, &v);
        assert_eq!(
            String::from_utf8(text.out).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
        let (mut ours, mut oracle) = (Hasher(0), Hasher(0));
        send(&mut ours, &v);
        oracle.value(&v);
        assert_eq!(ours.0, oracle.0);
    }

    /// A fixed run is written with the commas its description would have, wherever it
    /// falls in its array or object, and the hash is fed its description.
    #[test]
    fn a_fixed_run_is_written_and_hashed_as_its_description() {
        fn describe<S: Sink>(s: &mut S) {
            s.object(4, |s| {
                s.fixed(r#""a":[1],"b":true"#, |s| {
                    s.key("a");
                    s.array(1, |s| s.fixed("1", |s| s.uint(1)));
                    s.key("b");
                    s.bool(true);
                });
                s.entry("c", "x");
                s.key("d");
                s.array(2, |s| {
                    s.str("y");
                    s.fixed(r#""z""#, |s| s.str("z"));
                });
            });
        }
        let expected = r#"{"a":[1],"b":true,"c":"x","d":["y","z"]}"#;
        for mut text in [Text::with_capacity(0), Text::expanding(0)] {
            describe(&mut text);
            assert_eq!(String::from_utf8(text.out).unwrap(), expected);
        }
        let (mut ours, mut oracle) = (Hasher(0), Hasher(0));
        describe(&mut ours);
        oracle.value(&serde_json::from_str(expected).unwrap());
        assert_eq!(ours.0, oracle.0);
    }

    #[rstest]
    #[case::zero(0, "0")]
    #[case::one_digit(7, "7")]
    #[case::round(1000, "1000")]
    #[case::largest(u64::MAX, "18446744073709551615")]
    fn decimal_writes_what_to_string_writes(#[case] n: u64, #[case] expected: &str) {
        assert_eq!(decimal(n, &mut [0; 20]), expected);
        assert_eq!(expected, n.to_string());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "needs escaping")]
    fn a_literal_key_that_needs_escaping_fails_in_debug_builds() {
        Text::with_capacity(16).object(1, |s| s.entry("a\"b", "1"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of order")]
    fn keys_out_of_order_fail_in_debug_builds() {
        let mut text = Text::with_capacity(16);
        text.object(2, |s| {
            s.entry("b", "1");
            s.entry("a", "2");
        });
    }
}
