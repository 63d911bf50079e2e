//! Command line: the subset of `kwctl run` / `kwctl bench` flags that applies
//! to a local waPC module, with kwctl's names, short forms and meanings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "policy-runner",
    version,
    about = "Runs a Kubewarden waPC policy module like `kwctl run` / `kwctl bench`",
    after_help = "Environment: POLICY_RUNNER_TIMEOUT_MS sets the time limit of each guest call \
                  (default 5000)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a Kubewarden policy against a request and prints the AdmissionResponse
    Run(RunArgs),
    /// Benchmarks a Kubewarden policy
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// File containing the Kubernetes admission request object in JSON format ("-" for stdin)
    #[arg(short = 'r', long, value_name = "PATH")]
    pub request_path: String,

    /// File containing the settings for this policy
    #[arg(
        short = 's',
        long,
        value_name = "PATH",
        conflicts_with = "settings_json"
    )]
    pub settings_path: Option<PathBuf>,

    /// JSON string containing the settings for this policy
    #[arg(long, value_name = "VALUE")]
    pub settings_json: Option<String>,

    /// Grant access to the Kubernetes resources defined inside of the policy's
    /// `contextAwareResources` metadata section. Disabled by default
    #[arg(long)]
    pub allow_context_aware: bool,

    /// During policy and host capabilities exchanges the host replays back the
    /// answers found inside of the provided file (recorded with kwctl)
    #[arg(long, value_name = "FILE")]
    pub replay_host_capabilities_interactions: Option<PathBuf>,

    /// Turn off usage of wasmtime cache
    #[arg(long)]
    pub disable_wasmtime_cache: bool,

    /// Policy module: a path, or a file:// URI
    #[arg(value_name = "URI_OR_SHA_PREFIX_OR_YAML_FILE")]
    pub uri: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// How long the bench should warm up
    #[arg(long, value_name = "SECONDS")]
    pub warm_up_time: Option<u64>,

    /// How long the bench 'should' run; the number of samples is prioritized, so
    /// benching takes longer when the code is slower than this time allows
    #[arg(long, value_name = "SECONDS")]
    pub measurement_time: Option<u64>,

    /// How many samples to collect
    #[arg(long, value_name = "NUM")]
    pub num_samples: Option<u64>,

    /// Accepted for kwctl compatibility: kwctl uses resamples only to compare
    /// with results it dumped to disk, which this runner does not do
    #[arg(long, value_name = "NUM")]
    pub num_resamples: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kwctl_style_command_lines_parse() {
        let cli = Cli::try_parse_from([
            "policy-runner",
            "run",
            "-r",
            "req.json",
            "--settings-json",
            "{}",
            "--allow-context-aware",
            "--replay-host-capabilities-interactions",
            "s.yml",
            "file:///tmp/policy.wasm",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(run.policy.request_path, "req.json");
        assert!(run.policy.allow_context_aware);
        assert_eq!(run.policy.uri, "file:///tmp/policy.wasm");

        let cli = Cli::try_parse_from([
            "policy-runner",
            "bench",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
            "--num-samples",
            "10",
            "--num-resamples",
            "2",
            "--request-path",
            "r.json",
            "p.wasm",
        ])
        .unwrap();
        let Command::Bench(bench) = cli.command else {
            panic!("expected bench")
        };
        assert_eq!(bench.warm_up_time, Some(1));
        assert_eq!(bench.num_samples, Some(10));
    }

    #[test]
    fn both_settings_sources_are_refused() {
        assert!(Cli::try_parse_from([
            "policy-runner",
            "run",
            "-r",
            "r.json",
            "-s",
            "s.yaml",
            "--settings-json",
            "{}",
            "p.wasm",
        ])
        .is_err());
        assert!(Cli::try_parse_from(["policy-runner", "run", "p.wasm"]).is_err());
    }
}
