//! A Kubewarden policy that gives pods AWS credentials through an IAM Roles Anywhere
//! sidecar. This file is the waPC glue: decode, dispatch, encode. The decisions live
//! in `admission` and the modules it calls; the README's "How it works" has the layers.

mod admission;
mod answer;
mod arena;
mod credentials;
mod csr;
mod emit;
mod guard;
mod hash;
mod iamra;
mod identity;
mod irsa;
mod json;
mod kubevirt;
mod names;
mod patch;
mod pod;
mod problem;
mod request;
mod settings;
#[cfg(test)]
mod testutil;
mod validation;

pub use credentials::Lookup;
pub use pod::Annotations;

use crate::json::Json;
use crate::request::Request;
use admission::{Decision, Policy};
use kubewarden_policy_sdk::settings::{SettingsValidationResponse, Validatable};
use std::cell::RefCell;
use std::rc::Rc;
use wapc_guest::{register_function, CallResult};

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    arena::touch_statics();
    register_function("validate", validate_payload);
    register_function("validate_settings", validate_settings_payload);
    register_function(
        "protocol_version",
        kubewarden_policy_sdk::protocol_version_guest,
    );
}

/// What an instance keeps of the settings its requests carried.
enum Last {
    /// A request was served; its settings were not kept.
    Served,
    /// The settings text of the last request, and its policy.
    Kept(Box<str>, Rc<Policy>),
}

thread_local! {
    /// policy-server serves every request in a new instance, so most instances never
    /// serve a second; kwctl and a warm host send the same settings with every request
    /// to one instance, so an instance that serves a second is likely to serve many.
    static LAST_SETTINGS: RefCell<Option<Last>> = const { RefCell::new(None) };
}

/// The policy of these settings, from the second request of an instance on: read
/// outside the arena and kept for the requests after it that carry the same text. A
/// payload without settings reads as the empty text, which no settings JSON is.
fn policy_of(settings: Option<&Json>) -> Result<Rc<Policy>, json::Failure> {
    let seen_as = settings.and_then(Json::text).unwrap_or_default();
    LAST_SETTINGS.with_borrow_mut(|last| match last {
        Some(Last::Kept(seen, policy)) if **seen == *seen_as => Ok(Rc::clone(policy)),
        _ => arena::outside(|| {
            let policy = Rc::new(read_policy(settings)?);
            *last = Some(Last::Kept(seen_as.into(), Rc::clone(&policy)));
            Ok(policy)
        }),
    })
}

/// The policy of a payload's settings; without them, of the default settings.
fn read_policy(settings: Option<&Json>) -> Result<Policy, json::Failure> {
    Ok(match settings {
        Some(settings) => {
            let text = settings.text().unwrap_or_default();
            Policy::from(settings::from_tree(settings, text)?)
        }
        None => Policy::default(),
    })
}

/// Makes the next `validate` an instance's first, as policy-server serves every request:
/// for native hosts that call the policy many times in one process (the fuzz targets),
/// so that they judge that path and not only a warm instance's.
pub fn forget_settings() {
    arena::outside(|| LAST_SETTINGS.set(None));
}

/// `validate`: the same function the wasm export and the native benchmarks call.
pub fn validate_payload(payload: &[u8]) -> CallResult {
    // SAFETY: waPC copies the answer out before the next call, and nothing the call
    // allocates is kept past it: the settings cache is built in `arena::outside`.
    unsafe { arena::call(|| validate_with(payload, &credentials::from_host)) }
}

/// `validate` with another ServiceAccount lookup than the host's.
pub fn validate_with(payload: &[u8], lookup: Lookup) -> CallResult {
    let decision = match read(payload) {
        Ok((request, policy)) => {
            let decision = admission::evaluate(request, &policy, lookup);
            // The first request's policy is the call's own (the cache holds the others).
            if let Ok(policy) = Rc::try_unwrap(policy) {
                arena::discard(policy);
            }
            decision
        }
        // Never a guest error: that would block every pod with a code 500.
        Err(e) => Decision::Reject {
            message: format!("the policy could not read the admission request: {e}"),
        },
    };
    let answer = answer::write(&decision);
    arena::discard(decision);
    Ok(answer)
}

/// The request and the policy of its settings. The payload is checked as UTF-8 once,
/// whole, and read once, as a tree (`json`): the request's fields and object, and the
/// settings, by serde from the tree as `validate_settings` reads them from their text
/// (absent or null: the defaults). An instance's first request reads them into the
/// call's arena, not kept.
fn read(payload: &[u8]) -> Result<(Request<'_>, Rc<Policy>), String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("it is not UTF-8 ({e})"))?;
    let mut payload = Json::parse(text).map_err(|e| format!("it is not JSON: {e}"))?;
    let request = Request::read(json::take(&mut payload, "request"))?;
    let settings = payload.get("settings").filter(|s| !s.is_null());
    let settings_error = |e: json::Failure| {
        let text = settings.and_then(Json::text).unwrap_or_default();
        format!("settings: {}", e.describe(text))
    };
    let policy = if LAST_SETTINGS.with_borrow(Option::is_none) {
        let policy = read_policy(settings).map_err(settings_error)?;
        LAST_SETTINGS.set(Some(Last::Served));
        Rc::new(policy)
    } else {
        policy_of(settings).map_err(settings_error)?
    };
    arena::discard(payload);
    Ok((request, policy))
}

/// `validate_settings`: `settings::Settings`' `Validatable`. Settings that do not parse
/// (a misspelt key, a wrong type) are invalid settings with serde's message, not a guest
/// error, so that kwctl and policy-server show the operator which key is wrong.
pub fn validate_settings_payload(payload: &[u8]) -> CallResult {
    let outcome = std::str::from_utf8(payload)
        .map_err(|e| format!("they are not UTF-8 ({e})"))
        .and_then(|text| {
            let tree = Json::parse(text)?;
            settings::from_tree(&tree, text).map_err(|e| match e.at {
                Some(at) => format!("{}, after {:?}", e.describe(text), text_before(text, at)),
                None => e.describe(text),
            })
        })
        .map_err(|e| format!("the settings do not parse: {e}"))
        .and_then(|settings| settings.validate());
    Ok(serde_json::to_vec(&SettingsValidationResponse {
        valid: outcome.is_ok(),
        message: outcome.err(),
    })?)
}

/// Up to 40 characters of `text` before `at`, on its line: serde's type errors do not
/// name the key, the text before them does.
fn text_before(text: &str, at: usize) -> &str {
    let line = text.get(..at).unwrap_or_default();
    let line = line.rsplit_once('\n').map_or(line, |(_, last)| last);
    let start = line.len().saturating_sub(40);
    let start = (start..=line.len())
        .find(|i| line.is_char_boundary(*i))
        .unwrap_or(line.len());
    &line[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn call(payload: &[u8]) -> Value {
        serde_json::from_slice(&validate_payload(payload).unwrap()).unwrap()
    }

    /// Every value of `v`, with the path to it.
    fn paths(v: &Value, at: Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(at.clone());
        let children: Vec<(Value, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (json!(k), c)).collect(),
            Value::Array(a) => a.iter().enumerate().map(|(i, c)| (json!(i), c)).collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            let mut next = at.clone();
            next.push(key);
            paths(child, next, out);
        }
    }

    fn replace(v: &mut Value, path: &[Value], with: &Value) {
        let mut slot = v;
        for key in path {
            slot = match key {
                Value::String(k) => &mut slot[k.as_str()],
                _ => &mut slot[key.as_u64().unwrap() as usize],
            };
        }
        *slot = with.clone();
    }

    /// Replaces every value of an injectable request, one at a time, with values of
    /// every other type, huge ones included: the policy answers each, it never traps.
    #[test]
    fn no_input_makes_the_policy_panic() {
        let mut request = pod_request(json!({
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
            "region": "eu-west-1", "readServiceAccounts": false
        }));
        request["request"]["object"]["metadata"]["annotations"] = json!({
            "iamra.aws/role-arn": "arn:aws:iam::123456789012:role/app",
            "iamra.aws/signing-profile-arn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
            "iamra.aws/token-duration": "1h", "iamra.aws/region": "us-west-2"
        });
        request["request"]["object"]["spec"]["containers"][0]["env"] =
            json!([{"name": "HTTPS_PROXY", "value": "p"}, {"name": "NO_PROXY", "value": "x"}]);
        request["request"]["object"]["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80}]);
        assert!(call(request.to_string().as_bytes())["mutated_object"].is_object());
        let huge = "9".repeat(100_000);
        let values = [
            json!(null),
            json!(true),
            json!(-1),
            json!(1e308),
            json!(u64::MAX),
            json!(""),
            json!(huge),
            json!(format!("{huge}h")),
            json!([]),
            json!([null, 1, "x"]),
            json!({}),
        ];
        let mut all = Vec::new();
        paths(&request, Vec::new(), &mut all);
        for path in all.iter().filter(|p| !p.is_empty()) {
            for value in &values {
                let mut mutated = request.clone();
                replace(&mut mutated, path, value);
                let answer = call(mutated.to_string().as_bytes());
                assert!(
                    answer["accepted"].is_boolean(),
                    "{path:?} = {value}: {answer}"
                );
            }
        }
        for cut in (0..request.to_string().len()).step_by(7) {
            let answer = call(&request.to_string().as_bytes()[..cut]);
            assert_eq!(answer["accepted"], false);
        }
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
        let lookup = |ns: &str, name: &str| -> Result<Annotations, String> {
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

    /// Floats the policy does not own come back as the same number: the exact value of a
    /// long mantissa, not a neighbour one ULP off.
    #[test]
    fn long_mantissa_floats_elsewhere_in_the_pod_come_back_unchanged() {
        let floats = [
            "9007199254740993.0",
            "2.2250738585072011e-308",
            // Shortest representations, as Go's encoding/json writes them.
            "0.18599151333979486",
            "13.236679880465505",
        ];
        let mut request = pod_request(json!({
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
            "region": "eu-west-1", "readServiceAccounts": false
        }));
        let object = &mut request["request"]["object"];
        object["metadata"]["annotations"] = json!({
            "iamra.aws/role-arn": "arn:aws:iam::123456789012:role/app",
            "iamra.aws/signing-profile-arn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
        });
        object["spec"]["futureTuning"] = json!(["F0", "F1", "F2", "F3"]);
        let mut payload = request.to_string();
        for (i, f) in floats.iter().enumerate() {
            payload = payload.replace(&format!("\"F{i}\""), f);
        }
        let answer = call(payload.as_bytes());
        let tuning = &answer["mutated_object"]["spec"]["futureTuning"];
        for (i, f) in floats.iter().enumerate() {
            assert_eq!(
                tuning[i].as_f64(),
                f.parse().ok(),
                "{f} came back as {}",
                tuning[i]
            );
        }
    }

    /// A rejection quotes the offending values cut to a readable length: the whole of a
    /// 300 KB annotation would make a 900 KB answer.
    #[test]
    fn huge_values_are_echoed_cut_with_their_length() {
        let huge = "é".repeat(150_000);
        let mut request = pod_request(json!({
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
            "region": "eu-west-1", "readServiceAccounts": false
        }));
        request["request"]["object"]["metadata"]["annotations"] = json!({
            "iamra.aws/role-arn": huge, "iamra.aws/signing-profile-arn": huge,
            "iamra.aws/region": huge, "iamra.aws/session-name": huge,
        });
        let answer = call(request.to_string().as_bytes());
        let message = answer["message"].as_str().unwrap();
        assert_eq!(message.matches("…(300000 bytes)").count(), 4, "{message}");
        assert!(message.len() < 2000, "{} bytes", message.len());
        let unparsed = pod_request(json!({"sidecar": {"port": huge}}));
        let answer = call(unparsed.to_string().as_bytes());
        assert!(answer.to_string().len() < 2000, "{answer}");
        let settings = json!({"sidecar": {"port": huge}}).to_string();
        let answer = validate_settings_payload(settings.as_bytes()).unwrap();
        assert!(answer.len() < 2000, "{}", String::from_utf8_lossy(&answer));
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
    fn each_call_reads_the_settings_it_carries() {
        let mut request = pod_request(json!({}));
        request["request"]["object"]["metadata"]["annotations"] =
            json!({"iamra.aws/role-arn": "arn:aws:iam::123456789012:role/app"});
        let with_prefix = |prefix: &str| {
            let mut r = request.clone();
            r["settings"] = json!({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
                                   "region": "eu-west-1", "readServiceAccounts": false, "annotationPrefix": prefix});
            call(r.to_string().as_bytes())
        };
        // iamra.aws annotations ask for injection only under their own prefix.
        for _ in 0..2 {
            assert_eq!(with_prefix("iamra.aws")["accepted"], false);
            let other = with_prefix("other.example");
            assert_eq!(other["accepted"], true);
            assert!(other["mutated_object"].is_null());
        }
    }

    /// An instance's first request reads its settings with the request, its second reads
    /// and keeps them (with the hash of the sidecar's settings-shaped part), the ones after
    /// reuse them: the answers must not tell them apart, nor keep anything across other
    /// settings.
    #[test]
    fn the_kept_settings_answer_as_the_first_read() {
        let opted_in = |image: &str| {
            let mut r = pod_request(
                json!({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
                                           "region": "eu-west-1", "readServiceAccounts": false,
                                           "sidecar": {"image": image}}),
            );
            r["request"]["object"]["metadata"]["annotations"] = json!({
                "iamra.aws/role-arn": "arn:aws:iam::123456789012:role/app",
                "iamra.aws/signing-profile-arn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70"});
            r.to_string()
        };
        let (one, other) = (opted_in("helper:1"), opted_in("helper:2"));
        let first = call(one.as_bytes());
        let sidecar =
            |answer: &Value| answer["mutated_object"]["spec"]["initContainers"][0].clone();
        assert_eq!(sidecar(&first)["image"], "helper:1", "{first}");
        for _ in 0..3 {
            assert_eq!(call(one.as_bytes()), first);
        }
        let second = call(other.as_bytes());
        assert_eq!(sidecar(&second)["image"], "helper:2");
        let hash = |answer: &Value| {
            answer["mutated_object"]["metadata"]["annotations"]["iamra.aws/config-hash"].clone()
        };
        assert_ne!(hash(&second), hash(&first));
        for _ in 0..3 {
            assert_eq!(call(other.as_bytes()), second);
            assert_eq!(call(one.as_bytes()), first);
        }
        // As a new instance again: read in one pass, built into the pod.
        forget_settings();
        assert_eq!(call(other.as_bytes()), second);
        assert_eq!(call(other.as_bytes()), second);
    }

    #[test]
    fn a_payload_without_settings_reads_the_defaults_between_others() {
        let mut bare = pod_request(json!({}));
        bare.as_object_mut().unwrap().remove("settings");
        bare["request"]["object"]["metadata"]["annotations"] =
            json!({"iamra.aws/role-arn": "arn:aws:iam::123456789012:role/app"});
        let mut other = bare.clone();
        other["settings"] =
            json!({"annotationPrefix": "other.example", "readServiceAccounts": false});
        let first = call(bare.to_string().as_bytes());
        assert!(first["message"]
            .as_str()
            .unwrap()
            .contains("cannot read ServiceAccount"));
        // The defaults read the ServiceAccount, which a native build cannot.
        assert_eq!(first["accepted"], false, "{first}");
        assert_eq!(call(other.to_string().as_bytes())["accepted"], true);
        assert_eq!(call(bare.to_string().as_bytes()), first);
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

    #[test]
    fn settings_that_do_not_parse_are_invalid_not_an_error() {
        for (payload, message) in [
            (
                &br#"{"trustAnchroArn": "x"}"#[..],
                "unknown field `trustAnchroArn`",
            ),
            (
                br#"{"sidecar": {"port": "high"}}"#,
                r#"expected u32 at line 1 column 27, after "{\"sidecar\": {\"port\": \"high\"""#,
            ),
            (
                br#"{"sidecar": {"native": "yes"}}"#,
                r#"\"native\": \"yes\""#,
            ),
            (
                "{\"clusterName\": \"\u{e9}\u{e9}\", \"sidecar\": {\"port\": -1}}".as_bytes(),
                "invalid value",
            ),
            (b"not json", "the settings do not parse"),
            (
                br#"["inject", "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/x"]"#,
                "invalid type: sequence, expected struct Settings",
            ),
        ] {
            let r: Value =
                serde_json::from_slice(&validate_settings_payload(payload).unwrap()).unwrap();
            assert_eq!(r["valid"], false);
            assert!(r["message"].as_str().unwrap().contains(message), "{r}");
        }
    }
}
