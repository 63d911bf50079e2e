//! The policy-runner binary end to end, on small waPC guests written in WAT.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};

const RUNNER: &str = env!("CARGO_BIN_EXE_policy-runner");

fn hex_bytes(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// A guest answering `validate_settings` with `settings_answer` and running
/// `validate_body` (WAT instructions that must return) for `validate`. Data at
/// 4096 holds the settings answer, at 8192 `extra_data`.
fn guest(settings_answer: &str, extra_data: &str, validate_body: &str) -> String {
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "kubewarden")
  (data (i32.const 16) "kubernetes")
  (data (i32.const 32) "get_resource")
  (data (i32.const 4096) "{settings}")
  (data (i32.const 8192) "{extra}")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $n i32)
    (call $guest_request (i32.const 1024) (i32.const 16384))
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 4096) (i32.const {settings_len})) (return (i32.const 1))))
    {validate_body}))"#,
        settings = hex_bytes(settings_answer),
        settings_len = settings_answer.len(),
        extra = hex_bytes(extra_data),
    )
}

const VALID: &str = r#"{"valid":true}"#;

/// `validate` answers `answer`.
fn answering(answer: &str) -> String {
    guest(
        VALID,
        answer,
        &format!(
            "(call $guest_response (i32.const 8192) (i32.const {})) (i32.const 1)",
            answer.len()
        ),
    )
}

const GET_SERVICE_ACCOUNT: &str = r#"{"api_version":"v1","kind":"ServiceAccount","name":"app","namespace":"team-a","disable_cache":false}"#;

/// `validate` asks the host for ServiceAccount team-a/app and answers with
/// the host's response, or fails with the host's error.
fn looking_up_service_account() -> String {
    guest(
        VALID,
        GET_SERVICE_ACCOUNT,
        &format!(
            r#"(if (result i32) (call $host_call (i32.const 0) (i32.const 10) (i32.const 16) (i32.const 10)
                                   (i32.const 32) (i32.const 12) (i32.const 8192) (i32.const {len}))
      (then
        (local.set $n (call $host_response_len))
        (call $host_response (i32.const 65536))
        (call $guest_response (i32.const 65536) (local.get $n))
        (i32.const 1))
      (else
        (local.set $n (call $host_error_len))
        (call $host_error (i32.const 65536))
        (call $guest_error (i32.const 65536) (local.get $n))
        (i32.const 0)))"#,
            len = GET_SERVICE_ACCOUNT.len()
        ),
    )
}

struct Workdir(PathBuf);

impl Workdir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("policy-runner-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Workdir(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn module(&self, wat: &str) -> PathBuf {
        self.file("policy.wasm", &wat::parse_str(wat).unwrap())
    }

    fn request(&self) -> PathBuf {
        self.file("request.json", admission_review().to_string().as_bytes())
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}})
}

fn admission_review() -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": pod()
        }
    })
}

fn runner(args: &[&str]) -> Command {
    let mut cmd = Command::new(RUNNER);
    cmd.args(args);
    cmd
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON line expected: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn mutation_is_printed_as_a_base64_json_patch() {
    let dir = Workdir::new("mutation");
    let mut mutated = pod();
    mutated["metadata"]["labels"] = json!({"a": "b"});
    let answer =
        json!({"accepted": true, "mutated_object": mutated, "warnings": ["w"]}).to_string();
    let module = dir.module(&answering(&answer));
    let request = dir.request();
    let uri = format!("file://{}", path(&module));

    let out = runner(&[
        "run",
        "--request-path",
        path(&request),
        "--settings-json",
        "{}",
        &uri,
    ])
    .output()
    .unwrap();
    let response = stdout_json(&out);
    assert_eq!(response["uid"], "uid-1");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert_eq!(response["warnings"], json!(["w"]));
    assert_eq!(response["auditAnnotations"], Value::Null);
    let patch: Value = serde_json::from_slice(
        &STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])
    );
}

#[test]
fn rejection_is_printed_and_exits_zero() {
    let dir = Workdir::new("rejection");
    let module = dir.module(&answering(
        r#"{"accepted":false,"message":"nope","code":403}"#,
    ));
    let request = dir.request();
    let out = runner(&["run", "-r", path(&request), path(&module)])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap(),
        "{\"uid\":\"uid-1\",\"allowed\":false,\"status\":{\"message\":\"nope\",\"code\":403},\"auditAnnotations\":null,\"warnings\":null}\n"
    );
    assert!(out.status.success());
}

#[test]
fn invalid_settings_are_an_error_with_the_policy_message() {
    let dir = Workdir::new("settings");
    let module = dir.module(&guest(
        r#"{"valid":false,"message":"region is required"}"#,
        "",
        "(i32.const 0)",
    ));
    let request = dir.request();
    let settings = dir.file("settings.yaml", b"region: \"\"\n");
    let out = runner(&[
        "run",
        "-r",
        path(&request),
        "-s",
        path(&settings),
        path(&module),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Provided settings are not valid: "region is required""#),
        "{stderr}"
    );
}

#[test]
fn traps_and_timeouts_are_500_rejections() {
    let dir = Workdir::new("trap");
    let request = dir.request();
    for (body, expected) in [
        ("unreachable", "internal server error: Guest call failure: "),
        (
            "(loop $forever (br $forever)) (i32.const 0)",
            "guest code interrupted, execution deadline exceeded",
        ),
    ] {
        let module = dir.module(&guest(VALID, "", body));
        let out = runner(&[
            "run",
            "--disable-wasmtime-cache",
            "-r",
            path(&request),
            path(&module),
        ])
        .env("POLICY_RUNNER_TIMEOUT_MS", "300")
        .output()
        .unwrap();
        let response = stdout_json(&out);
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 500);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn request_can_come_from_stdin_as_a_bare_request() {
    let dir = Workdir::new("stdin");
    let module = dir.module(&answering(r#"{"accepted":true}"#));
    let mut child = runner(&["run", "--request-path", "-", path(&module)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bare = admission_review()["request"].to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bare.as_bytes())
        .unwrap();
    let response = stdout_json(&child.wait_with_output().unwrap());
    assert_eq!(
        response,
        json!({"uid": "uid-1", "allowed": true, "auditAnnotations": null, "warnings": null})
    );
}

/// Appends kwctl's metadata custom section declaring access to ServiceAccounts.
fn annotate(module: &[u8]) -> Vec<u8> {
    let name = b"io.kubewarden.metadata";
    let data = br#"{"protocolVersion":"v1","rules":[],"mutating":false,"executionMode":"kubewarden-wapc","contextAwareResources":[{"apiVersion":"v1","kind":"ServiceAccount"}]}"#;
    let body_len = 1 + name.len() + data.len();
    assert!(name.len() < 128 && body_len < 128 * 128);
    let mut out = module.to_vec();
    out.push(0);
    out.extend([(body_len & 0x7f) as u8 | 0x80, (body_len >> 7) as u8]);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    out
}

const SESSION: &str = r#"- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: ServiceAccount
    name: app
    namespace: team-a
    disable_cache: false
  response:
    type: Success
    payload: '{"accepted":true}'
"#;

#[test]
fn context_aware_lookups_follow_flag_metadata_and_session() {
    let dir = Workdir::new("context");
    let request = dir.request();
    let module = dir.file(
        "annotated.wasm",
        &annotate(&wat::parse_str(looking_up_service_account()).unwrap()),
    );
    let session = dir.file("session.yml", SESSION.as_bytes());
    let replay = ["--replay-host-capabilities-interactions", path(&session)];

    let mut args = vec!["run", "--allow-context-aware", "-r", path(&request)];
    args.extend(replay);
    args.push(path(&module));
    let granted = stdout_json(&runner(&args).output().unwrap());
    assert_eq!(granted["allowed"], true, "{granted}");

    let mut args = vec!["run", "-r", path(&request)];
    args.extend(replay);
    args.push(path(&module));
    let denied = stdout_json(&runner(&args).output().unwrap());
    assert_eq!(denied["allowed"], false);
    assert!(denied["status"]["message"]
        .as_str()
        .unwrap()
        .contains("Policy has not been granted access to Kubernetes v1/ServiceAccount resources"));

    let other = dir.file(
        "other.yml",
        SESSION.replace("name: app", "name: other").as_bytes(),
    );
    let mismatch = stdout_json(
        &runner(&[
            "run",
            "--allow-context-aware",
            "-r",
            path(&request),
            "--replay-host-capabilities-interactions",
            path(&other),
            path(&module),
        ])
        .output()
        .unwrap(),
    );
    assert!(mismatch["status"]["message"]
        .as_str()
        .unwrap()
        .contains("Callback evaluation failure: Replay error: unexpected request"));
}

#[test]
fn context_aware_without_a_session_is_refused_as_kwctl_refuses_it() {
    // kwctl then needs a kubeconfig (none here: exit 1); the runner has no cluster.
    let dir = Workdir::new("no-session");
    let request = dir.request();
    let module = dir.module(&answering(r#"{"accepted":true}"#));
    let out = runner(&[
        "run",
        "--allow-context-aware",
        "-r",
        path(&request),
        path(&module),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success(), "accepted: {out:?}");
    assert!(out.stdout.is_empty(), "printed a response: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--allow-context-aware without --replay-host-capabilities-interactions"),
        "{stderr}"
    );

    // An empty session is the form both accept for a request that reads nothing.
    let empty = dir.file("empty.yml", b"[]\n");
    let out = runner(&[
        "run",
        "--allow-context-aware",
        "--replay-host-capabilities-interactions",
        path(&empty),
        "-r",
        path(&request),
        path(&module),
    ])
    .output()
    .unwrap();
    assert_eq!(stdout_json(&out)["allowed"], true, "{out:?}");
}

#[test]
fn unannotated_modules_get_no_kubernetes_access() {
    let dir = Workdir::new("unannotated");
    let request = dir.request();
    let module = dir.module(&looking_up_service_account());
    let session = dir.file("session.yml", SESSION.as_bytes());
    let out = runner(&[
        "run",
        "--allow-context-aware",
        "-r",
        path(&request),
        "--replay-host-capabilities-interactions",
        path(&session),
        path(&module),
    ])
    .output()
    .unwrap();
    assert_eq!(stdout_json(&out)["allowed"], false);
}

#[test]
fn bench_prints_kwctl_style_figures() {
    let dir = Workdir::new("bench");
    let module = dir.module(&answering(r#"{"accepted":true}"#));
    let request = dir.request();
    let out = runner(&[
        "bench",
        "--warm-up-time",
        "0",
        "--measurement-time",
        "0",
        "--num-samples",
        "3",
        "--num-resamples",
        "2",
        "-r",
        path(&request),
        path(&module),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "validate_settings warming up for",
        "validate warming up for",
        "validate [",
        "with 3.0 samples]:",
        "\telapsed\t[min mean max]:\t[",
        "(sample data: med = ",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn usage_errors_exit_non_zero() {
    let dir = Workdir::new("usage");
    let request = dir.request();
    for args in [
        vec!["run", "-r", path(&request), "registry://ghcr.io/x/y:1"],
        vec!["run", "-r", "/nonexistent.json", "policy.wasm"],
        vec!["run", "-r", path(&request), "/nonexistent/policy.wasm"],
        vec!["run", "policy.wasm"],
    ] {
        let out = runner(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty());
    }
}
