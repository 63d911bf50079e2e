//! What every answer must satisfy (the oracles):
//!
//! 1. the policy never panics (libFuzzer sees the abort);
//! 2. the answer is valid JSON, with a boolean `accepted` (`valid` for settings);
//! 3. a rejection has code 400 and a non-empty message (invalid settings: a message);
//! 4. an accepted mutation, sent again as the new object, is accepted without a patch;
//! 5. every key of the original object is still there with the same value, unless the
//!    policy owns it ([`kept`] says exactly what it owns);
//! 6. settings that `validate_settings` accepts can be used: `validate` answers a pod
//!    under them with oracles 1-5 holding.
//!
//! Every oracle reads objects as the API server does ([`stored`]): a null field, of any
//! type, is the field absent, and a null value in a string map (annotations, labels) is
//! the empty string.
//!
//! Oracle 5 compares the request and the answer as [`json::read`] reads them: numbers
//! through Rust's correctly rounded `f64` parsing, independent of the serde_json build
//! the policy uses, so a number the policy reads or writes inexactly shows.

use crate::json::{self, Json};
use iamra_sidecar_policy::{
    forget_settings, validate_settings_payload, validate_with, Annotations,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::OnceLock;

/// The payload the settings oracle (6) runs `validate` on, with the settings replaced.
const SETTINGS_PROBE: &str = include_str!("../corpus/validate/pod-plain.json");

/// The string maps of a pod (by key) whose null values the API server stores as "";
/// everywhere else a null value is a field left out.
const STRING_MAPS: &[&str] = &["annotations", "labels", "nodeSelector", "volumeAttributes"];

/// `value` as the API server stores it: without null fields; `map` says `value` is a
/// string map, whose null values become "". Oracle 4 and the lookup compare through it.
fn stored(value: &Value, map: bool) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(key, v)| match v {
                    Value::Null if map => Some((key.clone(), Value::from(""))),
                    Value::Null => None,
                    _ => Some((key.clone(), stored(v, STRING_MAPS.contains(&key.as_str())))),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| stored(v, false)).collect()),
        _ => value.clone(),
    }
}

/// The parts of a `validate` payload the oracles read, borrowed from its text: a
/// payload is parsed into values only where an oracle needs one, and the mutated object
/// is sent again by replacing the original's text (the rest, settings included, stays
/// byte for byte, as a host sends it).
#[derive(Deserialize)]
struct Sent<'a> {
    #[serde(borrow)]
    request: Option<SentRequest<'a>>,
    #[serde(borrow)]
    settings: Option<&'a RawValue>,
    #[serde(borrow, rename = "serviceAccount")]
    service_account: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SentRequest<'a> {
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

/// The policy's answer, as far as oracles 2-4 read it.
#[derive(Deserialize)]
struct Answer<'a> {
    accepted: bool,
    code: Option<Value>,
    message: Option<String>,
    #[serde(borrow)]
    mutated_object: Option<&'a RawValue>,
}

/// Runs `validate` on `payload` and checks oracles 2-5 on its answer.
pub fn validate(payload: &[u8]) {
    // serde_json skips the fields the policy ignores without checking their UTF-8, so
    // the policy can mutate a payload that is not JSON; no host sends one (policy-server
    // has parsed the AdmissionReview), and there is nothing to compare or resend.
    let text = std::str::from_utf8(payload).ok();
    let sent = OnceCell::new();
    let sent = || sent.get_or_init(|| text.and_then(|t| serde_json::from_str::<Sent>(t).ok()));
    // The lookup's answers, read once for both calls: the resend carries the same account.
    let account = OnceCell::new();
    let account =
        || account.get_or_init(|| annotations(sent().as_ref().and_then(|s| s.service_account)));
    // The answer of a new instance, as policy-server serves every request; the resend
    // below goes through a warm instance's path (the settings read as text and kept).
    forget_settings();
    let out = call(payload, account);
    let answer = read_answer(&out);
    let Some(object) = answer.mutated_object else {
        return;
    };
    let (Some(text), Some(sent)) = (text, sent()) else {
        return;
    };
    let Some(original) = sent.request.as_ref().and_then(|r| r.object) else {
        return;
    };
    kept_in_answer(original.get(), object.get(), sent.settings);
    // The original object's place in the text: it is borrowed from it.
    let start = original.get().as_ptr() as usize - text.as_ptr() as usize;
    let end = start + original.get().len();
    let resent = [&text[..start], object.get(), &text[end..]].concat();
    let out = call(resent.as_bytes(), account);
    let second = read_answer(&out);
    // A patch to an object that Kubernetes reads as the same one changes nothing.
    let same = |again: &RawValue| {
        let read = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
        let (a, b) = (read(object), read(again));
        a.is_some() && a.map(|a| stored(&a, false)) == b.map(|b| stored(&b, false))
    };
    assert!(
        second.accepted && second.mutated_object.is_none_or(same),
        "the mutated object, sent again, was not accepted without a further patch:\n\
         first object: {object}\nsecond answer: {}",
        String::from_utf8_lossy(&out)
    );
}

/// Runs `validate_settings` on `payload` and checks oracles 2, 3 and 6.
pub fn validate_settings(payload: &[u8]) {
    let out = validate_settings_payload(payload).expect("validate_settings returns an answer");
    let answer: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("validate_settings answered invalid JSON ({e}): {out:?}"));
    match answer["valid"] {
        Value::Bool(true) => {}
        Value::Bool(false) => {
            assert!(
                answer["message"].as_str().is_some_and(|m| !m.is_empty()),
                "invalid settings without a message: {answer}"
            );
            return;
        }
        _ => panic!("no boolean `valid` in {answer}"),
    }
    let settings = std::str::from_utf8(payload).expect("settings found valid are UTF-8");
    serde_json::from_str::<IgnoredAny>(settings).expect("settings found valid are JSON");
    validate(
        format!(
            "{{\"request\":{},\"settings\":{settings}}}",
            probe_request()
        )
        .as_bytes(),
    );
}

/// The request of the settings oracle's pod, [`SETTINGS_PROBE`], read once.
fn probe_request() -> &'static str {
    static REQUEST: OnceLock<String> = OnceLock::new();
    REQUEST.get_or_init(|| {
        let probe: Value = serde_json::from_str(SETTINGS_PROBE).expect("the probe is JSON");
        probe["request"].to_string()
    })
}

/// The policy's answer to `payload`, with the lookup answering from the payload's
/// `serviceAccount` (`account` gives its annotations, [`annotations`]).
fn call<'a>(
    payload: &[u8],
    account: impl Fn() -> &'a Option<Result<Annotations, String>>,
) -> Vec<u8> {
    let lookup = |namespace: &str, name: &str| {
        account().clone().unwrap_or_else(|| {
            Err(format!(
                "Cannot find v1/ServiceAccount named '{name}' inside of namespace '{namespace}'"
            ))
        })
    };
    validate_with(payload, &lookup).expect("validate returns an answer")
}

/// The answer `out`, checked against oracles 2 and 3.
fn read_answer(out: &[u8]) -> Answer<'_> {
    let shown = || String::from_utf8_lossy(out);
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("validate answered invalid UTF-8 ({e}): {}", shown()));
    let answer: Answer = serde_json::from_str(text).unwrap_or_else(|e| {
        panic!("validate answered invalid JSON or no boolean `accepted` ({e}): {text}")
    });
    if answer.accepted {
        assert!(
            answer
                .mutated_object
                .is_none_or(|o| o.get().starts_with('{')),
            "a mutated object that is not an object: {text}"
        );
    } else {
        assert!(
            answer.code.as_ref().is_some_and(|c| *c == 400)
                && answer.message.as_ref().is_some_and(|m| !m.is_empty()),
            "a rejection without code 400 and a message: {text}"
        );
    }
    answer
}

/// The annotations of the payload's `serviceAccount` (`account`), as the API server would
/// give them; `None` when there is none (absent, null or not JSON), for which the lookup
/// fails as the host's does for a missing ServiceAccount.
fn annotations(account: Option<&RawValue>) -> Option<Result<Annotations, String>> {
    let account: Value = account
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .filter(|a: &Value| !a.is_null())?;
    Some(match account.pointer("/metadata/annotations") {
        None | Some(Value::Null) => Ok(Annotations::new()),
        Some(annotations) => {
            serde_json::from_value(stored(annotations, true)).map_err(|e| e.to_string())
        }
    })
}

/// Oracle 5 on the texts: the request's object against the answer's `mutated_object`.
fn kept_in_answer(original: &str, mutated: &str, settings: Option<&RawValue>) {
    let Ok(original_json) = json::read(original) else {
        // The reader is stricter than serde_json on a few inputs; nothing to compare then.
        return;
    };
    let mutated_json = json::read(mutated)
        .unwrap_or_else(|e| panic!("the mutated object does not read back ({e}): {mutated}"));
    let settings = settings.and_then(|s| serde_json::from_str(s.get()).ok());
    let owned = Owned::from_settings(settings.as_ref().unwrap_or(&Value::Null));
    if let Err(problem) = kept(&original_json, &mutated_json, &mut Vec::new(), &owned) {
        panic!("{problem}\noriginal object: {original}\nmutated object: {mutated}");
    }
}

/// What the policy owns in a pod, from the settings' prefixes.
pub struct Owned {
    /// `<annotationPrefix>/injected`, `/config-hash` and `/warnings`: the policy sets any
    /// value.
    bookkeeping: [String; 3],
    /// `<irsa.annotationPrefix>/skip-containers`: a list the policy may extend.
    skip_containers: String,
}

impl Owned {
    fn from_settings(settings: &Value) -> Self {
        let prefix = |at: &str, default: &str| {
            settings
                .pointer(at)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        let ours = prefix("/annotationPrefix", "iamra.aws");
        let irsa = prefix("/irsa/annotationPrefix", "eks.amazonaws.com");
        Owned {
            bookkeeping: [
                format!("{ours}/injected"),
                format!("{ours}/config-hash"),
                format!("{ours}/warnings"),
            ],
            skip_containers: format!("{irsa}/skip-containers"),
        }
    }
}

/// Whether `new` keeps everything of `original` (at path `at` in the pod) that the policy
/// does not own. The policy owns:
/// - its bookkeeping annotations (any value) and `skip-containers`, a comma-separated
///   list it may add items to (every original item stays);
/// - `spec.containers`, `spec.volumes` and each container's `env` and `volumeMounts`,
///   which it may append to (the original entries stay first, in order);
/// - `spec.initContainers`, which it may prepend to (the original entries stay last);
/// - the `value` of an original `NO_PROXY` env entry, a list it may add items to; the
///   entry's other fields stay.
///
/// Everything else, at any depth, must be there with an equal value (numbers as `f64`),
/// as Kubernetes reads it ([`stored`]): a null field is an absent one, so nothing to keep
/// (the API server never sends one), and a null in a string map is "". New keys and
/// entries are not judged.
pub fn kept<'a>(
    original: &Json<'a>,
    new: &Json<'_>,
    at: &mut Vec<Cow<'a, str>>,
    owned: &Owned,
) -> Result<(), String> {
    // The rules' paths are at most 5 steps long: a deeper path matches none of them.
    let mut steps = [""; 5];
    let path: &[&str] = if at.len() <= steps.len() {
        for (step, key) in steps.iter_mut().zip(at.iter()) {
            *step = key;
        }
        &steps[..at.len()]
    } else {
        &[]
    };
    match path {
        ["metadata", "annotations", key] if owned.bookkeeping.iter().any(|b| b == key) => {
            return Ok(())
        }
        ["metadata", "annotations", key] if *key == owned.skip_containers => {
            return extended_list(original, new, at)
        }
        _ => {}
    }
    match (original, new) {
        (Json::Object(o), Json::Object(_)) => {
            let no_proxy = matches!(path, ["spec", "containers" | "initContainers", _, "env", _])
                && original.get("name") == Some(&Json::String("NO_PROXY".into()));
            let map = at.last().is_some_and(|key| STRING_MAPS.contains(&&**key));
            for (key, value) in o {
                if *value == Json::Null && !map {
                    // A null field is an absent one: nothing to keep.
                    continue;
                }
                let Some(kept_value) = new.get(key) else {
                    return Err(format!("{} was dropped", show(at, key)));
                };
                at.push(key.clone());
                let result = if no_proxy && key == "value" {
                    extended_list(value, kept_value, at)
                } else {
                    kept(value, kept_value, at, owned)
                };
                at.pop();
                result?;
            }
            Ok(())
        }
        (Json::Array(o), Json::Array(n)) => {
            let offset = match path {
                ["spec", "initContainers"] => n.len().checked_sub(o.len()),
                ["spec", "containers" | "volumes"]
                | ["spec", "containers" | "initContainers", _, "env" | "volumeMounts"] => {
                    (n.len() >= o.len()).then_some(0)
                }
                _ => (n.len() == o.len()).then_some(0),
            };
            let Some(offset) = offset else {
                return Err(format!(
                    "{} had {} entries, now {}",
                    at.join("."),
                    o.len(),
                    n.len()
                ));
            };
            for (i, value) in o.iter().enumerate() {
                at.push(Cow::Owned(i.to_string()));
                let result = kept(value, &n[offset + i], at, owned);
                at.pop();
                result?;
            }
            Ok(())
        }
        _ if original == new => Ok(()),
        (Json::Null, Json::String(s)) | (Json::String(s), Json::Null)
            if s.is_empty()
                && at
                    .iter()
                    .rev()
                    .nth(1)
                    .is_some_and(|m| STRING_MAPS.contains(&&**m)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{} changed from {} to {}",
            at.join("."),
            stringify(original),
            stringify(new)
        )),
    }
}

/// A comma-separated list the policy may add items to: every original item stays. Null
/// is the empty list (an absent env value, or a null annotation, which is "").
fn extended_list(original: &Json, new: &Json, at: &[Cow<str>]) -> Result<(), String> {
    fn items<'v>(v: &'v Json) -> Option<Vec<&'v str>> {
        match v {
            Json::Null => Some(Vec::new()),
            Json::String(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        }
    }
    match (items(original), items(new)) {
        (Some(o), Some(n)) if o.iter().all(|i| n.contains(i)) => Ok(()),
        _ if original == new => Ok(()),
        _ => Err(format!(
            "{} lost items: {} became {}",
            at.join("."),
            stringify(original),
            stringify(new)
        )),
    }
}

fn show(at: &[Cow<str>], key: &str) -> String {
    at.iter()
        .map(AsRef::as_ref)
        .chain([key])
        .collect::<Vec<_>>()
        .join(".")
}

/// A value for a message, cut to a readable length.
fn stringify(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()),
        None => text,
    }
}
