//! Timing of repeated calls, the way kwctl bench (tiny-bench) samples them:
//! warm up for a while, estimate the cost of one call, then take N samples
//! where sample i runs i×d iterations, d chosen so that all samples together
//! fill the measurement time. Figures are per iteration, over the samples.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    pub warm_up_time: Duration,
    pub measurement_time: Duration,
    pub num_samples: u64,
}

impl Default for BenchConfig {
    /// tiny-bench's defaults, which kwctl bench uses.
    fn default() -> Self {
        BenchConfig {
            warm_up_time: Duration::from_secs(3),
            measurement_time: Duration::from_secs(5),
            num_samples: 100,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WarmUp {
    pub iterations: u64,
    pub elapsed: Duration,
}

impl WarmUp {
    pub fn mean_ns(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.iterations.max(1) as f64
    }
}

/// Runs `f` in doubling batches until `duration` has passed.
pub fn warm_up<T>(f: &mut impl FnMut() -> T, duration: Duration) -> WarmUp {
    let mut total = WarmUp {
        iterations: 0,
        elapsed: Duration::ZERO,
    };
    let mut batch: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        total.elapsed += start.elapsed();
        total.iterations += batch;
        if total.elapsed >= duration {
            return total;
        }
        batch = batch.saturating_mul(2);
    }
}

/// Iteration counts per sample: `d, 2d, …, n·d`, with `d ≥ 1` such that the
/// expected total time is about `measurement`.
pub fn plan_samples(mean_ns: f64, num_samples: u64, measurement: Duration) -> Vec<u64> {
    let n = num_samples.max(1);
    let total_runs = n * (n + 1) / 2;
    let d = (measurement.as_nanos() as f64 / mean_ns.max(1.0) / total_runs as f64).ceil() as u64;
    let d = d.max(1);
    (1..=n).map(|i| i * d).collect()
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub iterations: u64,
    pub elapsed: Duration,
}

pub fn run_samples<T>(plan: &[u64], f: &mut impl FnMut() -> T) -> Vec<Sample> {
    plan.iter()
        .map(|&iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(f());
            }
            Sample {
                iterations,
                elapsed: start.elapsed(),
            }
        })
        .collect()
}

/// Per-iteration figures over the samples' averages, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub iterations: u128,
    pub elapsed: Duration,
    pub samples: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    pub variance: f64,
    pub stddev: f64,
}

impl Stats {
    pub fn from_samples(samples: &[Sample]) -> Stats {
        let mut averages: Vec<f64> = samples
            .iter()
            .map(|s| s.elapsed.as_nanos() as f64 / s.iterations.max(1) as f64)
            .collect();
        averages.sort_by(f64::total_cmp);
        let n = averages.len();
        let mean = if n == 0 {
            0.0
        } else {
            averages.iter().sum::<f64>() / n as f64
        };
        // Sample variance (n − 1), as tiny-bench computes it.
        let variance = if n < 2 {
            0.0
        } else {
            averages.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        Stats {
            iterations: samples.iter().map(|s| u128::from(s.iterations)).sum(),
            elapsed: samples.iter().map(|s| s.elapsed).sum(),
            samples: n,
            min: averages.first().copied().unwrap_or_default(),
            max: averages.last().copied().unwrap_or_default(),
            mean,
            median: averages.get(n / 2).copied().unwrap_or_default(),
            variance,
            stddev: variance.sqrt(),
        }
    }
}

/// Warm-up, sampling and statistics in one go, without printing.
pub fn measure<T>(cfg: &BenchConfig, mut f: impl FnMut() -> T) -> Stats {
    let warm = warm_up(&mut f, cfg.warm_up_time);
    let plan = plan_samples(warm.mean_ns(), cfg.num_samples, cfg.measurement_time);
    Stats::from_samples(&run_samples(&plan, &mut f))
}

/// A duration in nanoseconds, in tiny-bench's style: `812.00ns`, `1.50µs`, `3.33ms`, `2.00s`.
pub fn fmt_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.2}ns")
    } else if ns < 1e6 {
        format!("{:.2}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// A count in tiny-bench's style: `5.0`, `35.0 thousand`, `97.0M`, `7.9B`.
pub fn fmt_count(n: f64) -> String {
    if n < 1e3 {
        format!("{n:.1}")
    } else if n < 1e6 {
        format!("{:.1} thousand", n / 1e3)
    } else if n < 1e9 {
        format!("{:.1}M", n / 1e6)
    } else {
        format!("{:.1}B", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_grow_linearly_and_fill_the_time() {
        let plan = plan_samples(1_000.0, 4, Duration::from_millis(10));
        // 10 runs of d iterations at 1µs must cover 10ms: d = 1000
        assert_eq!(plan, vec![1000, 2000, 3000, 4000]);
        // slow functions still get one iteration per step
        assert_eq!(
            plan_samples(1e9, 3, Duration::from_millis(1)),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn stats_are_per_iteration() {
        let samples = [
            Sample {
                iterations: 1,
                elapsed: Duration::from_nanos(30),
            },
            Sample {
                iterations: 2,
                elapsed: Duration::from_nanos(20),
            },
            Sample {
                iterations: 4,
                elapsed: Duration::from_nanos(80),
            },
        ];
        let s = Stats::from_samples(&samples);
        assert_eq!((s.min, s.median, s.max), (10.0, 20.0, 30.0));
        assert_eq!(s.mean, 20.0);
        assert_eq!(s.variance, 100.0);
        assert_eq!(s.stddev, 10.0);
        assert_eq!(s.iterations, 7);
        assert_eq!(s.elapsed, Duration::from_nanos(130));
        assert_eq!(s.samples, 3);
    }

    #[test]
    fn measure_calls_the_function() {
        let mut calls = 0u64;
        let cfg = BenchConfig {
            warm_up_time: Duration::from_millis(5),
            measurement_time: Duration::from_millis(5),
            num_samples: 5,
        };
        let stats = measure(&cfg, || calls += 1);
        assert!(calls as u128 > stats.iterations);
        assert_eq!(stats.samples, 5);
    }

    #[test]
    fn figures_are_formatted_like_tiny_bench() {
        assert_eq!(fmt_time(5.15), "5.15ns");
        assert_eq!(fmt_time(1500.0), "1.50µs");
        assert_eq!(fmt_time(3_330_000.0), "3.33ms");
        assert_eq!(fmt_time(68e9), "68.00s");
        assert_eq!(fmt_count(5.1), "5.1");
        assert_eq!(fmt_count(35_000.0), "35.0 thousand");
        assert_eq!(fmt_count(97e6), "97.0M");
        assert_eq!(fmt_count(7.9e9), "7.9B");
    }
}
