//! The workloads `make bench-count` and `make bench-phases` run under valgrind, and the
//! constant-answer guest `make load` puts through policy-server. Built in the runner
//! profile without the policy crate, so it shares wasmtime's build with the runner's tests
//! (the fresh-instance budget test runs it too).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use policy_runner::capabilities::HostCapabilities;
use policy_runner::fresh::Fresh;
use policy_runner::policy::validate_payload;
use policy_runner::request::parse_admission_request;
use policy_runner::settings::settings_from_file;
use policy_runner::workload::{constant_guest_wat, pod_payload, Pod, Settings};

#[derive(Debug, Parser)]
#[command(about = "Fresh-instance and warm workloads for callgrind; the constant-answer guest")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve REQUESTS requests of one kind and exit (callgrind counts the instructions)
    Count(CountArgs),
    /// Print, as WAT, a guest that answers MODULE's answer to this request without reading it
    ConstantGuest {
        module: PathBuf,
        #[arg(short = 'r', long)]
        request_path: PathBuf,
        #[arg(short = 's', long)]
        settings_path: PathBuf,
    },
}

#[derive(Debug, Parser)]
struct CountArgs {
    /// A policy module (`.wasm` or WAT)
    module: PathBuf,
    #[arg(long, default_value_t = 1)]
    requests: usize,
    /// fresh: a new instance per request, as policy-server 1.35 serves them; warm: one
    /// instance, every request
    #[arg(long, value_enum)]
    instance: Instance,
    /// validate-settings: with the settings document as its payload; none: the new
    /// instance only, with its start functions (fresh only)
    #[arg(long, value_enum, default_value = "validate")]
    call: Call,
    #[arg(long, value_enum, default_value = "opted-in")]
    pod: Pod,
    #[arg(long, default_value_t = 1)]
    containers: usize,
    #[arg(long, value_enum, default_value = "minimal")]
    settings: Settings,
    /// Serve the constant-answer guest made of MODULE's answer instead of MODULE
    #[arg(long)]
    constant: bool,
    /// Write where each compiled function of the served module lies, as lines of "start
    /// length name" (hexadecimal addresses), for bench-profile.sh to name callgrind's
    /// addresses
    #[arg(long)]
    symbols: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Instance {
    Fresh,
    Warm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Call {
    Validate,
    ValidateSettings,
    None,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Count(args) => count(&args),
        Command::ConstantGuest {
            module,
            request_path,
            settings_path,
        } => {
            let text = std::fs::read_to_string(&request_path)
                .with_context(|| format!("cannot read {}", request_path.display()))?;
            let payload = validate_payload(
                &parse_admission_request(&text)?,
                &settings_from_file(&settings_path)?,
            )?;
            let answer = load(&module)?.call("validate", &payload)?;
            print!("{}", constant_guest_wat(&answer, payload.len()));
            Ok(())
        }
    }
}

/// With wasmtime's compilation cache, so that a run under valgrind does not compile.
fn load(module: &Path) -> Result<Fresh> {
    let bytes =
        std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    Fresh::new(
        &bytes,
        HostCapabilities::new(Default::default(), None),
        true,
    )
}

fn count(args: &CountArgs) -> Result<()> {
    let settings = args.settings.document()?;
    let (operation, payload) = match args.call {
        Call::ValidateSettings => ("validate_settings", serde_json::to_vec(&settings)?),
        _ => (
            "validate",
            pod_payload(args.pod, args.containers, &settings)?,
        ),
    };
    let mut guest = load(&args.module)?;
    if args.constant {
        let answer = guest.call(operation, &payload)?;
        let wat = constant_guest_wat(&answer, payload.len());
        guest = Fresh::new(
            wat.as_bytes(),
            HostCapabilities::new(Default::default(), None),
            true,
        )?;
    }
    if let Some(path) = &args.symbols {
        let lines: String = guest
            .functions()
            .iter()
            .map(|f| format!("{:x} {:x} {}\n", f.start, f.len, f.name))
            .collect();
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let check_first =
        |i: usize, answer: Vec<u8>| if i == 0 { check(&answer, args) } else { Ok(()) };
    match (args.instance, args.call) {
        (Instance::Fresh, Call::None) => {
            for _ in 0..args.requests {
                drop(guest.instance()?);
            }
        }
        (Instance::Warm, Call::None) => bail!("--call none counts new instances: --instance fresh"),
        (Instance::Fresh, _) => {
            for i in 0..args.requests {
                check_first(i, guest.call(operation, &payload)?)?;
            }
        }
        (Instance::Warm, _) => {
            let instance = guest.instance()?;
            for i in 0..args.requests {
                check_first(i, instance.call(operation, &payload)?)?;
            }
        }
    }
    Ok(())
}

/// The answer the count is meant to measure: valid settings; an acceptance, with a
/// mutation for an opted-in pod. A rejection costs something else.
fn check(answer: &[u8], args: &CountArgs) -> Result<()> {
    let answer: Value = serde_json::from_slice(answer)?;
    let expected = match args.call {
        Call::ValidateSettings => answer["valid"] == Value::Bool(true),
        _ => {
            answer["accepted"] == Value::Bool(true)
                && (args.pod == Pod::Untouched || !answer["mutated_object"].is_null())
        }
    };
    if !expected {
        bail!("not the answer to count: {answer}");
    }
    Ok(())
}
