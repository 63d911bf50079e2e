//! The policy module serves request after request in one instance, as policy-server
//! runs it: every answer must be the one a fresh instance gives. The module frees a
//! call's memory all at once when the next call starts (src/arena.rs), so memory kept
//! from one call into the next would show here as a changed answer or a trap.
//!
//! The module is `$POLICY`: `make runner-tests` builds it with feature `arena-poison`
//! (a finished call's memory is overwritten, so what dangles into the next call traps),
//! sets it and runs this test, which plain `cargo test` leaves out (ignored) and which
//! fails without `$POLICY`.

use std::path::{Path, PathBuf};

use policy_runner::capabilities::HostCapabilities;
use policy_runner::guest::{Guest, GuestOptions};
use policy_runner::policy::Policy;
use policy_runner::request::parse_admission_request;
use policy_runner::response::AdmissionResponse;
use policy_runner::settings::{settings_from_file, PolicySettings};
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn policy(module: &[u8]) -> Policy {
    let options = GuestOptions {
        timeout: std::time::Duration::from_secs(10),
        compilation_cache: true,
    };
    Policy::new(
        Guest::new(
            module,
            HostCapabilities::new(Default::default(), None),
            options,
        )
        .unwrap(),
    )
}

/// Every request fixture with every settings fixture, plus a guard-mode pass, which
/// covers mutations, rejections, warnings, untouched requests and failed lookups.
fn cases() -> Vec<(String, Value, PolicySettings)> {
    let dir = fixtures();
    let mut requests: Vec<PathBuf> = Vec::new();
    for sub in ["", "irsa", "kubevirt", "guard"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        found.sort();
        requests.extend(found);
    }
    let mut settings: Vec<(String, PolicySettings)> = [
        "settings.yaml",
        "settings-classic.yaml",
        "settings-region-mismatch.yaml",
        "irsa/settings.yaml",
        "kubevirt/settings-share.yaml",
    ]
    .iter()
    .map(|f| (f.to_string(), settings_from_file(&dir.join(f)).unwrap()))
    .collect();
    let mut guard = settings[0].1.clone();
    guard.insert("mode".into(), json!("guard"));
    settings.push(("guard mode".into(), guard));
    let mut cases = Vec::new();
    for request in &requests {
        let text = std::fs::read_to_string(request).unwrap();
        let review: Value = serde_json::from_str(&text).unwrap();
        for (name, s) in &settings {
            let label = format!(
                "{} with {name}",
                request.strip_prefix(&dir).unwrap().display()
            );
            cases.push((label, review.clone(), s.clone()));
        }
    }
    cases
}

fn answer(policy: &Policy, review: &Value, settings: &PolicySettings) -> AdmissionResponse {
    let request = parse_admission_request(&review.to_string()).unwrap();
    policy.validate(&request, settings)
}

#[test]
#[ignore = "needs POLICY, the policy module: make runner-tests builds it and runs this test"]
fn one_instance_answers_every_request_as_a_fresh_one_does() {
    let module = std::env::var_os("POLICY")
        .expect("POLICY names the policy module (make runner-tests sets it)");
    let module = std::fs::read(&module).unwrap();
    let cases = cases();
    assert!(cases.len() > 100, "{} cases", cases.len());
    let fresh: Vec<String> = cases
        .iter()
        .map(|(_, review, settings)| {
            serde_json::to_string(&answer(&policy(&module), review, settings)).unwrap()
        })
        .collect();
    let kinds = |needle: &str| fresh.iter().filter(|a| a.contains(needle)).count();
    assert!(
        kinds("\"patch\"") > 10 && kinds("\"allowed\":false") > 10,
        "{fresh:?}"
    );
    let shared = policy(&module);
    // Three rounds, the second backwards: each request follows different ones.
    let order: Vec<usize> = (0..cases.len())
        .chain((0..cases.len()).rev())
        .chain(0..cases.len())
        .collect();
    for i in order {
        let (label, review, settings) = &cases[i];
        let again = serde_json::to_string(&answer(&shared, review, settings)).unwrap();
        assert_eq!(
            again, fresh[i],
            "{label}: the shared instance answered differently"
        );
    }
}
