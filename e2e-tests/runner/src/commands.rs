//! The `run` and `bench` subcommands.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::bench::{fmt_count, fmt_time, plan_samples, run_samples, warm_up, BenchConfig, Stats};
use crate::cli::{BenchArgs, PolicyArgs, RunArgs};
use crate::setup::{prepare, Prepared};

/// `kwctl run`: validate the settings, evaluate the request once and print
/// the AdmissionResponse as one JSON line on stdout. A rejection is a normal
/// outcome (exit 0); invalid settings are an error (non-zero exit).
pub fn run(args: &RunArgs) -> Result<()> {
    let Prepared {
        policy,
        settings,
        request,
    } = prepare_valid(&args.policy)?;
    let response = policy.validate(&request, &settings);
    println!("{}", serde_json::to_string(&response)?);
    Ok(())
}

/// `kwctl bench`: time `validate_settings`, then `validate`, on one instance.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let cfg = bench_config(args)?;
    let Prepared {
        policy,
        settings,
        request,
    } = prepare_valid(&args.policy)?;
    bench_labeled("validate_settings", &cfg, || {
        policy.validate_settings(&settings)
    });
    bench_labeled("validate", &cfg, || policy.validate(&request, &settings));
    Ok(())
}

/// The policy, settings and request, once the policy has accepted the settings.
fn prepare_valid(args: &PolicyArgs) -> Result<Prepared> {
    let prepared = prepare(args)?;
    let verdict = prepared.policy.validate_settings(&prepared.settings);
    if !verdict.valid {
        bail!(
            "Provided settings are not valid: {:?}",
            verdict.message.unwrap_or_default()
        );
    }
    Ok(prepared)
}

fn bench_config(args: &BenchArgs) -> Result<BenchConfig> {
    let defaults = BenchConfig::default();
    if args.num_samples == Some(0) {
        return Err(anyhow!("'num-samples' must be at least 1"));
    }
    Ok(BenchConfig {
        warm_up_time: args
            .warm_up_time
            .map_or(defaults.warm_up_time, Duration::from_secs),
        measurement_time: args
            .measurement_time
            .map_or(defaults.measurement_time, Duration::from_secs),
        num_samples: args.num_samples.unwrap_or(defaults.num_samples),
    })
}

/// Times `f` and prints the progress and figures as kwctl bench does.
fn bench_labeled<T>(label: &str, cfg: &BenchConfig, mut f: impl FnMut() -> T) {
    println!(
        "{label} warming up for {}",
        fmt_time(cfg.warm_up_time.as_nanos() as f64)
    );
    let warm = warm_up(&mut f, cfg.warm_up_time);
    let plan = plan_samples(warm.mean_ns(), cfg.num_samples, cfg.measurement_time);
    let planned: u64 = plan.iter().sum();
    if plan.first() == Some(&1) {
        let expected = Duration::from_nanos((planned as f64 * warm.mean_ns()) as u64);
        eprintln!(
            "{label}: unable to complete {} samples in {:.1?}; expect about {expected:.1?}",
            cfg.num_samples, cfg.measurement_time
        );
    }
    println!(
        "{label} mean warm up execution time {} running {} iterations",
        fmt_time(warm.mean_ns()),
        fmt_count(planned as f64)
    );
    let stats = Stats::from_samples(&run_samples(&plan, &mut f));
    println!(
        "{label} [{} iterations in {} with {} samples]:",
        fmt_count(stats.iterations as f64),
        fmt_time(stats.elapsed.as_nanos() as f64),
        fmt_count(stats.samples as f64)
    );
    println!(
        "\telapsed\t[min mean max]:\t[{} {} {}] (sample data: med = {}, var = {}², stddev = {})",
        fmt_time(stats.min),
        fmt_time(stats.mean),
        fmt_time(stats.max),
        fmt_time(stats.median),
        fmt_time(stats.variance),
        fmt_time(stats.stddev)
    );
}
