//! The fresh-instance instruction budget. policy-server 1.35 serves every request in a
//! new instance, so that is the cost users feel: one request of the 1-container opted-in
//! pod under the minimal settings, served that way, must not cost more than 10 % over the
//! figure recorded in `bench/fresh-instance-budget.txt`; nor one of the same pod without
//! the opt-in annotations, which most pods of an opted-in namespace are. Instructions, counted by
//! valgrind's callgrind exactly as `e2e-tests/runner/bench-count.sh` counts them (1 and
//! 1+N requests in one process, the difference over N), do not vary with the machine's
//! load as times do; between runs they differ by about 1 %.
//!
//! The module is `$RELEASE_POLICY`: `make runner-tests` sets it to the module `make
//! policy.wasm` builds and runs this test, which plain `cargo test` leaves out (ignored).
//! Without valgrind the test says so and passes; `make runner-tests` installs valgrind,
//! or says aloud that the budget went unchecked.

use std::path::Path;
use std::process::Command;

const PERF: &str = env!("CARGO_BIN_EXE_policy-perf");
const REQUESTS: u64 = 10;
/// How much a fresh request may grow over the recorded figure before the test fails.
const TOLERANCE: f64 = 1.10;

const BUDGET_FILE: &str = "bench/fresh-instance-budget.txt";

/// The recorded figure: the file's line `<line>: <instructions>`.
fn recorded_budget(line: &str) -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(BUDGET_FILE);
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{BUDGET_FILE} has no `{line}:` line"))
        .trim()
        .parse()
        .unwrap()
}

fn count_args(module: &str, pod: &str, requests: u64) -> Vec<String> {
    [
        "count",
        module,
        "--instance",
        "fresh",
        "--pod",
        pod,
        "--containers",
        "1",
        "--settings",
        "minimal",
        "--requests",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain([requests.to_string()])
    .collect()
}

/// The instructions of `policy-perf count` serving `requests` fresh requests of `pod`.
fn instructions(module: &str, pod: &str, requests: u64) -> u64 {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--smc-check=all-non-file",
            "--callgrind-out-file=/dev/null",
            PERF,
        ])
        .args(count_args(module, pod, requests))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "policy-perf under valgrind failed:\n{log}"
    );
    log.lines()
        .find_map(|line| line.split("Collected : ").nth(1))
        .unwrap_or_else(|| panic!("no instruction count in valgrind's output:\n{log}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "needs RELEASE_POLICY and valgrind: make runner-tests runs it"]
fn a_fresh_request_stays_within_its_instruction_budget() {
    within_budget("opted-in", "instructions");
}

#[test]
#[ignore = "needs RELEASE_POLICY and valgrind: make runner-tests runs it"]
fn a_fresh_request_of_a_pod_that_asks_for_nothing_stays_within_its_budget() {
    within_budget("untouched", "untouched");
}

/// `pod` (policy-perf's `--pod`) against the budget file's `line`.
fn within_budget(pod: &str, line: &str) {
    let module = std::env::var("RELEASE_POLICY").expect(
        "RELEASE_POLICY names the module make policy.wasm builds (make runner-tests sets it)",
    );
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the fresh-instance instruction budget: valgrind is not installed");
        return;
    }
    let budget = recorded_budget(line);
    // Once under valgrind first, to fill wasmtime's compilation cache so that the counted
    // runs need not compile. Not natively: wasmtime compiles for the CPU features it sees,
    // and on a host with some valgrind does not offer (AVX-512) the native entry misses,
    // so one counted run compiled and a request "cost" 489 M instructions.
    instructions(&module, pod, 1);
    let per_request =
        (instructions(&module, pod, 1 + REQUESTS) - instructions(&module, pod, 1)) / REQUESTS;
    let limit = (budget as f64 * TOLERANCE) as u64;
    eprintln!(
        "a fresh request ({pod}): {per_request} instructions; budget {budget}, limit {limit}"
    );
    assert!(
        per_request <= limit,
        "a fresh request of the 1-container {pod} pod costs {per_request} instructions, more \
         than {:.0} % of the {budget} recorded in {BUDGET_FILE} (`{line}:`): find what grew \
         (make bench-phases), or record the new figure there if the growth is meant",
        TOLERANCE * 100.0,
    );
}
