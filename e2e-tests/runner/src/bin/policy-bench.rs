//! `make bench`: the policy's `validate` timed through wasmtime (exactly as
//! policy-runner and kwctl call it), natively (the same function, compiled for
//! the host) and against a floor (bench/floor: the least a mutating policy does
//! with the same SDK and release profile, through wasmtime too), on opted-in
//! pods with 1, 10 and 100 containers. Then the scaling series, natively: n and 10n
//! containers, env vars in one container, volumes and ServiceAccount annotations, so
//! that growth faster than linear shows in the cost per item.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use iamra_sidecar_policy::Annotations;
use policy_runner::bench::{fmt_time, measure, BenchConfig, Stats};
use policy_runner::capabilities::HostCapabilities;
use policy_runner::guest::{timeout_from_env, Guest, GuestOptions};
use policy_runner::policy::validate_payload;
use policy_runner::request::parse_admission_request;
use policy_runner::settings::{settings_from_json, PolicySettings};

const CONTAINER_COUNTS: [usize; 3] = [1, 10, 100];
/// `readServiceAccounts: false` because the native build has no host to ask
/// for the pod's ServiceAccount: both builds then do the same work, with no
/// host call in the timed path.
const SETTINGS: &str = r#"{"trustAnchorArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f","region":"eu-west-1","readServiceAccounts":false}"#;
/// The scaling series read the ServiceAccount (`readServiceAccounts` defaults to true),
/// through the lookup `validate_with` takes natively.
const SCALING_SETTINGS: &str = r#"{"trustAnchorArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f","region":"eu-west-1"}"#;
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/app";
const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70";

#[derive(Debug, Parser)]
#[command(
    about = "Compares the policy's validate through wasmtime with the same code run natively"
)]
struct Args {
    /// The policy module built by `make policy.wasm`
    #[arg(default_value = "policy.wasm")]
    module: PathBuf,
    /// The floor module: `scripts/build-wasm.sh bench-floor target/bench-floor.wasm`
    #[arg(long, default_value = "target/bench-floor.wasm")]
    floor: PathBuf,
    /// Warm-up per measurement, in seconds
    #[arg(long, default_value_t = 1)]
    warm_up_time: u64,
    /// Measurement time per measurement, in seconds
    #[arg(long, default_value_t = 2)]
    measurement_time: u64,
    /// Samples per measurement
    #[arg(long, default_value_t = 50)]
    num_samples: u64,
    /// Instead of timing: call MODULE's validate this many times on the pod with
    /// `--containers` containers and exit (bench-count.sh counts the instructions)
    #[arg(long, value_name = "N")]
    calls: Option<usize>,
    /// The pod's containers for `--calls`
    #[arg(long, default_value_t = 1)]
    containers: usize,
}

struct Row {
    containers: usize,
    wasm: Stats,
    native: Stats,
    floor: Stats,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(calls) = args.calls {
        return call_only(&args.module, calls, args.containers);
    }
    let cfg = BenchConfig {
        warm_up_time: Duration::from_secs(args.warm_up_time),
        measurement_time: Duration::from_secs(args.measurement_time),
        num_samples: args.num_samples.max(1),
    };
    let module = read_module(&args.module, "make policy.wasm")?;
    let floor_module = read_module(&args.floor, "make bench")?;
    let guest = load_guest(&module)?;
    let floor = load_guest(&floor_module)?;
    let settings = settings_from_json(SETTINGS)?;
    check_settings(&guest, &settings)?;

    let mut rows = Vec::new();
    for containers in CONTAINER_COUNTS {
        let payload = pod_payload(containers, &settings)?;
        check_same_answer(&guest, &payload, containers)?;
        check_floor_mutates(&floor, &payload, containers)?;
        eprintln!("measuring {containers} container(s)...");
        let wasm = measure(&cfg, || guest.call("validate", &payload));
        let native = measure(&cfg, || iamra_sidecar_policy::validate_payload(&payload));
        let floor = measure(&cfg, || floor.call("validate", &payload));
        rows.push(Row {
            containers,
            wasm,
            native,
            floor,
        });
    }
    // Fewer, shorter samples: a superlinear series can take a second per call.
    let scaled = scaling(&BenchConfig {
        warm_up_time: Duration::from_millis(200),
        num_samples: 10,
        ..cfg
    })?;
    print_report(
        &args.module,
        module.len(),
        &args.floor,
        floor_module.len(),
        &rows,
    );
    print_scaling(&scaled);
    Ok(())
}

fn read_module(path: &Path, build_with: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read {}; build it with `{build_with}`",
            path.display()
        )
    })
}

/// `--calls`: the module's validate, `calls` times, with wasmtime's compilation cache so
/// that a run under valgrind does not spend its time compiling.
fn call_only(module: &Path, calls: usize, containers: usize) -> Result<()> {
    let guest = load_guest_with(&read_module(module, "make policy.wasm")?, true)?;
    let payload = pod_payload(containers, &settings_from_json(SETTINGS)?)?;
    for _ in 0..calls {
        guest.call("validate", &payload)?;
    }
    Ok(())
}

fn load_guest(module: &[u8]) -> Result<Guest> {
    load_guest_with(module, false)
}

fn load_guest_with(module: &[u8], compilation_cache: bool) -> Result<Guest> {
    let options = GuestOptions {
        timeout: timeout_from_env()?,
        compilation_cache,
    };
    Guest::new(
        module,
        HostCapabilities::new(Default::default(), None),
        options,
    )
}

/// Both builds must accept the benchmark settings, or the timings mean nothing.
fn check_settings(guest: &Guest, settings: &PolicySettings) -> Result<()> {
    let payload = serde_json::to_vec(settings)?;
    let wasm = guest.call("validate_settings", &payload)?;
    let native =
        iamra_sidecar_policy::validate_settings_payload(&payload).map_err(|e| anyhow!("{e}"))?;
    for (name, answer) in [("wasm", wasm), ("native", native)] {
        let verdict: Value = serde_json::from_slice(&answer)?;
        if verdict["valid"] != json!(true) {
            bail!("{name} validate_settings rejects the benchmark settings: {verdict}");
        }
    }
    Ok(())
}

/// Both builds must give the same answer to the same payload, and that answer
/// must be the acceptance with mutation the benchmark is meant to time.
fn check_same_answer(guest: &Guest, payload: &[u8], containers: usize) -> Result<()> {
    let wasm: Value = serde_json::from_slice(&guest.call("validate", payload)?)?;
    let native_bytes =
        iamra_sidecar_policy::validate_payload(payload).map_err(|e| anyhow!("{e}"))?;
    let native: Value = serde_json::from_slice(&native_bytes)?;
    if wasm != native {
        bail!("wasm and native answers differ for {containers} container(s):\nwasm:   {wasm}\nnative: {native}");
    }
    if wasm["accepted"] != json!(true) || wasm["mutated_object"].is_null() {
        bail!("the {containers}-container pod was not accepted with a mutation: {wasm}");
    }
    Ok(())
}

/// The floor must do its one mutation on the same payload, or it is no floor.
fn check_floor_mutates(floor: &Guest, payload: &[u8], containers: usize) -> Result<()> {
    let answer: Value = serde_json::from_slice(&floor.call("validate", payload)?)?;
    if answer["accepted"] != json!(true) || answer["mutated_object"].is_null() {
        bail!("the floor did not accept the {containers}-container pod with a mutation: {answer}");
    }
    Ok(())
}

/// The `validate` payload for an opted-in Pod CREATE with `containers` containers.
fn pod_payload(containers: usize, settings: &PolicySettings) -> Result<Vec<u8>> {
    let containers: Vec<Value> = (0..containers).map(container).collect();
    opted_in(
        json!({"serviceAccountName": "app", "containers": containers}),
        settings,
    )
}

fn container(i: usize) -> Value {
    json!({
        "name": format!("app-{i}"),
        "image": "registry.example.com/team/app:1.4.2",
        "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
    })
}

/// The `validate` payload for a Pod CREATE of `spec`, opted in by its annotations.
fn opted_in(spec: Value, settings: &PolicySettings) -> Result<Vec<u8>> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "bench",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "bench",
                    "namespace": "team-a",
                    "annotations": {
                        "iamra.aws/role-arn": ROLE_ARN,
                        "iamra.aws/signing-profile-arn": PROFILE_ARN
                    }
                },
                "spec": spec
            },
            "dryRun": false
        }
    });
    let request = parse_admission_request(&review.to_string())?;
    Ok(validate_payload(&request, settings)?)
}

/// A series' payload and ServiceAccount annotations for `n` items.
type Make = fn(usize, &PolicySettings) -> Result<(Vec<u8>, Annotations)>;

/// One series of the scaling benchmark: the same opted-in pod with `n` of one item.
struct Series {
    item: &'static str,
    sizes: [usize; 2],
    make: Make,
}

const SERIES: [Series; 4] = [
    Series {
        item: "containers",
        sizes: [100, 1_000],
        make: |n, settings| Ok((pod_payload(n, settings)?, Annotations::new())),
    },
    Series {
        item: "env vars in one container",
        sizes: [1_000, 10_000],
        make: |n, settings| {
            let env: Vec<Value> = (0..n)
                .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
                .collect();
            let mut app = container(0);
            app["env"] = Value::Array(env);
            let spec = json!({"serviceAccountName": "app", "containers": [app]});
            Ok((opted_in(spec, settings)?, Annotations::new()))
        },
    },
    Series {
        item: "volumes",
        sizes: [100, 1_000],
        make: |n, settings| {
            let volumes: Vec<Value> = (0..n)
                .map(|i| json!({"name": format!("scratch-{i}"), "emptyDir": {}}))
                .collect();
            let spec = json!({"serviceAccountName": "app", "containers": [container(0)],
                              "volumes": volumes});
            Ok((opted_in(spec, settings)?, Annotations::new()))
        },
    },
    Series {
        item: "ServiceAccount annotations",
        sizes: [800, 8_000],
        // Unknown keys under the policy's prefix, about 25 bytes each: 8,000 are about
        // 200 KB, within the API server's 256 KiB limit on a ServiceAccount's annotations.
        make: |n, settings| {
            let annotations = (0..n)
                .map(|i| (format!("iamra.aws/note-{i}"), format!("v{i}")))
                .collect();
            let spec = json!({"serviceAccountName": "app", "containers": [container(0)]});
            Ok((opted_in(spec, settings)?, annotations))
        },
    },
];

struct Scaled {
    item: &'static str,
    points: Vec<(usize, Stats)>,
}

/// Times every series natively, with `validate_with` and a lookup that answers with the
/// series' ServiceAccount annotations (a copy per call, as the host hands over its own).
fn scaling(cfg: &BenchConfig) -> Result<Vec<Scaled>> {
    let settings = settings_from_json(SCALING_SETTINGS)?;
    SERIES
        .iter()
        .map(|series| {
            let mut points = Vec::new();
            for n in series.sizes {
                let (payload, annotations) = (series.make)(n, &settings)?;
                let lookup = |_: &str, _: &str| Ok(annotations.clone());
                let call = || iamra_sidecar_policy::validate_with(&payload, &lookup);
                let answer: Value = serde_json::from_slice(&call().map_err(|e| anyhow!("{e}"))?)?;
                if answer["accepted"] != json!(true) || answer["mutated_object"].is_null() {
                    bail!(
                        "the pod with {n} {} was not accepted with a mutation: {}",
                        series.item,
                        answer["message"]
                    );
                }
                eprintln!("measuring {n} {} (native)...", series.item);
                points.push((n, measure(cfg, call)));
            }
            Ok(Scaled {
                item: series.item,
                points,
            })
        })
        .collect()
}

fn print_scaling(series: &[Scaled]) {
    println!(
        "scaling, native validate, median per call (one opted-in Pod CREATE with n of one item):"
    );
    println!(
        "  {:<28}  {:>7}  {:>12}  {:>12}  {:>7}  {:>12}  {:>12}  {:>14}",
        "item", "n", "per call", "per item", "10n", "per call", "per item", "10x n costs"
    );
    for s in series {
        if let [(n, small), (large_n, large)] = s.points.as_slice() {
            println!(
                "  {:<28}  {:>7}  {:>12}  {:>12}  {:>7}  {:>12}  {:>12}  {:>13.1}x",
                s.item,
                n,
                fmt_time(small.median),
                fmt_time(small.median / *n as f64),
                large_n,
                fmt_time(large.median),
                fmt_time(large.median / *large_n as f64),
                large.median / small.median,
            );
        }
    }
    println!(
        "  (linear growth: 10x n costs about 10x, per item about equal; quadratic: about 100x)"
    );
}

fn print_report(module: &Path, module_size: usize, floor: &Path, floor_size: usize, rows: &[Row]) {
    for (name, path, size) in [
        ("policy", module, module_size),
        ("floor", floor, floor_size),
    ] {
        println!(
            "{name} module: {} ({size} bytes, {:.1} KiB)",
            path.display(),
            size as f64 / 1024.0
        );
    }
    println!("validate, median per call (opted-in Pod CREATE); floor: typed Pod round trip plus one annotation, through wasmtime:");
    println!(
        "  {:>10}  {:>12}  {:>12}  {:>11}  {:>12}  {:>10}  {:>16}  {:>16}",
        "containers",
        "wasmtime",
        "native",
        "wasm/native",
        "floor",
        "ours/floor",
        "wasm/container",
        "native/container"
    );
    for row in rows {
        let n = row.containers as f64;
        println!(
            "  {:>10}  {:>12}  {:>12}  {:>10.2}x  {:>12}  {:>9.2}x  {:>16}  {:>16}",
            row.containers,
            fmt_time(row.wasm.median),
            fmt_time(row.native.median),
            row.wasm.median / row.native.median,
            fmt_time(row.floor.median),
            row.wasm.median / row.floor.median,
            fmt_time(row.wasm.median / n),
            fmt_time(row.native.median / n),
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let growth = |pick: fn(&Row) -> f64| {
            rows.iter()
                .map(|r| fmt_time(pick(r) / r.containers as f64))
                .collect::<Vec<_>>()
                .join(" -> ")
        };
        println!(
            "growth, time per container {}: wasmtime {}; native {}",
            rows.iter()
                .map(|r| r.containers.to_string())
                .collect::<Vec<_>>()
                .join("->"),
            growth(|r| r.wasm.median),
            growth(|r| r.native.median),
        );
        println!(
            "{}x the containers cost {:.1}x the time through wasmtime, {:.1}x natively",
            last.containers / first.containers,
            last.wasm.median / first.wasm.median,
            last.native.median / first.native.median,
        );
    }
}
