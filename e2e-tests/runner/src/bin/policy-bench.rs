//! `make bench`: the policy's `validate` timed through wasmtime as policy-server 1.35
//! serves it (a fresh instance per request: new store and instance, `wapc_init`, one
//! call) and on one warm instance (many calls), natively (the same function, compiled
//! for the host), against the floor (bench/floor: the least a mutating policy does with
//! the same SDK and release profile) and against the constant-answer guest (our answer
//! to the same request, precomputed, returned without reading the request: what wasmtime
//! and waPC cost), on opted-in pods with 1, 10 and 100 containers, under the minimal
//! and under the full settings. Then the scaling series, natively: n and 10n containers,
//! env vars in one container, volumes and ServiceAccount annotations, so that growth
//! faster than linear shows in the cost per item.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use wapc::WapcHost;

use iamra_sidecar_policy::Annotations;
use policy_runner::bench::{fmt_time, measure, BenchConfig, Stats};
use policy_runner::capabilities::HostCapabilities;
use policy_runner::fresh::Fresh;
use policy_runner::settings::{settings_from_json, PolicySettings};
use policy_runner::workload::{
    constant_guest_wat, container, opted_in, pod_payload, Pod, Settings,
};

const CONTAINER_COUNTS: [usize; 3] = [1, 10, 100];
/// The scaling series read the ServiceAccount (`readServiceAccounts` defaults to true),
/// through the lookup `validate_with` takes natively.
const SCALING_SETTINGS: &str = r#"{"trustAnchorArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f","region":"eu-west-1"}"#;

#[derive(Debug, Parser)]
#[command(
    about = "Times the policy's validate through wasmtime (fresh instances and warm), natively, and against the floor and a constant-answer guest"
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
}

/// One figure for each guest.
struct Guests {
    ours: Stats,
    floor: Stats,
    constant: Stats,
}

struct Row {
    settings: Settings,
    containers: usize,
    fresh: Guests,
    warm: Guests,
    native: Stats,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = BenchConfig {
        warm_up_time: Duration::from_secs(args.warm_up_time),
        measurement_time: Duration::from_secs(args.measurement_time),
        num_samples: args.num_samples.max(1),
    };
    let module = read_module(&args.module, "make policy.wasm")?;
    let floor_module = read_module(&args.floor, "make bench")?;
    let ours = load(&module)?;
    let floor = load(&floor_module)?;

    let mut rows = Vec::new();
    for settings in [Settings::Minimal, Settings::Full] {
        let document = settings.document()?;
        check_settings(&ours.instance()?, &document)?;
        for containers in CONTAINER_COUNTS {
            let payload = pod_payload(Pod::OptedIn, containers, &document)?;
            let (warm_ours, warm_floor) = (ours.instance()?, floor.instance()?);
            let answer = check_same_answer(&warm_ours, &payload, containers)?;
            check_floor_mutates(&warm_floor, &payload, containers)?;
            let constant = load(constant_guest_wat(&answer, payload.len()).as_bytes())?;
            let warm_constant = constant.instance()?;
            eprintln!(
                "measuring {containers} container(s), {} settings...",
                settings.label()
            );
            let fresh = Guests {
                ours: measure(&cfg, || ours.call("validate", &payload)),
                floor: measure(&cfg, || floor.call("validate", &payload)),
                constant: measure(&cfg, || constant.call("validate", &payload)),
            };
            let warm = Guests {
                ours: measure(&cfg, || warm_ours.call("validate", &payload)),
                floor: measure(&cfg, || warm_floor.call("validate", &payload)),
                constant: measure(&cfg, || warm_constant.call("validate", &payload)),
            };
            let native = measure(&cfg, || iamra_sidecar_policy::validate_payload(&payload));
            rows.push(Row {
                settings,
                containers,
                fresh,
                warm,
                native,
            });
        }
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

fn load(module: &[u8]) -> Result<Fresh> {
    Fresh::new(
        module,
        HostCapabilities::new(Default::default(), None),
        false,
    )
}

/// Both builds must accept the benchmark settings, or the timings mean nothing.
fn check_settings(guest: &WapcHost, settings: &PolicySettings) -> Result<()> {
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

/// Both builds must give the same answer to the same payload, and that answer must be
/// the acceptance with mutation the benchmark is meant to time. Returns the answer.
fn check_same_answer(guest: &WapcHost, payload: &[u8], containers: usize) -> Result<Vec<u8>> {
    let answer = guest.call("validate", payload)?;
    let wasm: Value = serde_json::from_slice(&answer)?;
    let native_bytes =
        iamra_sidecar_policy::validate_payload(payload).map_err(|e| anyhow!("{e}"))?;
    let native: Value = serde_json::from_slice(&native_bytes)?;
    if wasm != native {
        bail!("wasm and native answers differ for {containers} container(s):\nwasm:   {wasm}\nnative: {native}");
    }
    if wasm["accepted"] != json!(true) || wasm["mutated_object"].is_null() {
        bail!("the {containers}-container pod was not accepted with a mutation: {wasm}");
    }
    Ok(answer)
}

/// The floor must do its one mutation on the same payload, or it is no floor.
fn check_floor_mutates(floor: &WapcHost, payload: &[u8], containers: usize) -> Result<()> {
    let answer: Value = serde_json::from_slice(&floor.call("validate", payload)?)?;
    if answer["accepted"] != json!(true) || answer["mutated_object"].is_null() {
        bail!("the floor did not accept the {containers}-container pod with a mutation: {answer}");
    }
    Ok(())
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
        make: |n, settings| Ok((pod_payload(Pod::OptedIn, n, settings)?, Annotations::new())),
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
    println!("opted-in Pod CREATE, median per request; floor: typed Pod round trip plus one annotation; constant: our answer, precomputed, returned without reading the request");
    let ratio = |a: &Stats, b: &Stats| format!("{:.2}x", a.median / b.median);
    println!("fresh instance per request (as policy-server 1.35: new store and instance, wapc_init, one validate):");
    let fresh: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let f = &row.fresh;
            vec![
                row.settings.label().to_owned(),
                row.containers.to_string(),
                fmt_time(f.ours.median),
                fmt_time(f.floor.median),
                fmt_time(f.constant.median),
                ratio(&f.ours, &f.constant),
                ratio(&f.ours, &f.floor),
            ]
        })
        .collect();
    print_table(
        &[
            "settings",
            "containers",
            "ours",
            "floor",
            "constant",
            "ours/constant",
            "ours/floor",
        ],
        &fresh,
    );
    println!("warm (one instance, many calls; what kwctl bench measures):");
    let warm: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let w = &row.warm;
            vec![
                row.settings.label().to_owned(),
                row.containers.to_string(),
                fmt_time(w.ours.median),
                fmt_time(row.native.median),
                ratio(&w.ours, &row.native),
                fmt_time(w.floor.median),
                fmt_time(w.constant.median),
                ratio(&w.ours, &w.constant),
                ratio(&w.ours, &w.floor),
                fmt_time(w.ours.median / row.containers as f64),
            ]
        })
        .collect();
    print_table(
        &[
            "settings",
            "containers",
            "ours",
            "native",
            "wasm/native",
            "floor",
            "constant",
            "ours/constant",
            "ours/floor",
            "ours/container",
        ],
        &warm,
    );
}

/// Right-aligned columns, each as wide as its header or its widest cell.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .fold(headers[i].len(), usize::max)
        })
        .collect();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for line in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        println!("  {}", cells.join("  "));
    }
}
