//! Everything `run` and `bench` do before calling the policy: read the
//! request, settings, module and session, decide which Kubernetes resources
//! the policy may read, and instantiate it.

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{anyhow, bail, Result};

use crate::capabilities::HostCapabilities;
use crate::cli::PolicyArgs;
use crate::guest::{timeout_from_env, Guest, GuestOptions};
use crate::metadata::{read_metadata, ContextAwareResource, Metadata};
use crate::module_path::local_module_path;
use crate::policy::Policy;
use crate::request::{parse_admission_request, AdmissionRequest};
use crate::session::Replay;
use crate::settings::{settings_from_file, settings_from_json, PolicySettings};

const WAPC_EXECUTION_MODE: &str = "kubewarden-wapc";

pub struct Prepared {
    pub policy: Policy,
    pub settings: PolicySettings,
    pub request: AdmissionRequest,
}

pub fn prepare(args: &PolicyArgs) -> Result<Prepared> {
    let settings = match (&args.settings_path, &args.settings_json) {
        (Some(path), _) => settings_from_file(path)?,
        (None, Some(json)) => settings_from_json(json)?,
        (None, None) => PolicySettings::new(),
    };
    let request = parse_admission_request(&read_request(&args.request_path)?)?;

    let module_path = local_module_path(&args.uri)?;
    let module = std::fs::read(&module_path)
        .map_err(|e| anyhow!("cannot read policy module {}: {e}", module_path.display()))?;
    let metadata = if module.starts_with(b"\0asm") {
        read_metadata(&module)?
    } else {
        // WAT text, handy for tests, carries no metadata.
        None
    };
    if let Some(mode) = metadata.as_ref().and_then(|m| m.execution_mode.as_deref()) {
        if mode != WAPC_EXECUTION_MODE {
            bail!("policy-runner only runs waPC policies, but the module's metadata declares execution mode {mode:?}");
        }
    }
    check_context_aware_source(args)?;
    let allowed = allowed_resources(args.allow_context_aware, metadata.as_ref());
    let replay = args
        .replay_host_capabilities_interactions
        .as_deref()
        .map(Replay::from_file)
        .transpose()?;

    let options = GuestOptions {
        timeout: timeout_from_env()?,
        compilation_cache: !args.disable_wasmtime_cache,
    };
    let guest = Guest::new(&module, HostCapabilities::new(allowed, replay), options)?;
    Ok(Prepared {
        policy: Policy::new(guest),
        settings,
        request,
    })
}

fn read_request(path: &str) -> Result<String> {
    if path == "-" {
        let mut buffer = String::new();
        std::io::stdin()
            .read_to_string(&mut buffer)
            .map_err(|e| anyhow!("Error reading request from stdin: {e}"))?;
        return Ok(buffer);
    }
    std::fs::read_to_string(path).map_err(|e| anyhow!("Error opening request file {path}; {e}"))
}

/// With `--allow-context-aware` kwctl answers lookups from a replayed session or
/// else from the cluster of the current kubeconfig, which it must read before the
/// first evaluation (no kubeconfig: it exits 1). The runner has no Kubernetes
/// client, so it refuses the second form rather than accept a command line that
/// kwctl would refuse here.
fn check_context_aware_source(args: &PolicyArgs) -> Result<()> {
    if args.allow_context_aware && args.replay_host_capabilities_interactions.is_none() {
        bail!(
            "--allow-context-aware without --replay-host-capabilities-interactions: kwctl would \
             then read Kubernetes resources from the cluster of your kubeconfig, and policy-runner \
             has no Kubernetes client. Replay a session (an empty list `[]` when the request \
             reads nothing), or drop --allow-context-aware"
        );
    }
    Ok(())
}

/// kwctl's rule for a policy given on the command line: with
/// `--allow-context-aware` the policy may read what its metadata lists, and
/// nothing without metadata; otherwise it may read nothing.
fn allowed_resources(
    allow_context_aware: bool,
    metadata: Option<&Metadata>,
) -> BTreeSet<ContextAwareResource> {
    match (allow_context_aware, metadata) {
        (true, Some(metadata)) => metadata.context_aware_resources.clone(),
        (true, None) => {
            eprintln!("policy-runner: the policy is not annotated, access to Kubernetes resources is not allowed");
            BTreeSet::new()
        }
        (false, Some(metadata)) if !metadata.context_aware_resources.is_empty() => {
            eprintln!(
                "policy-runner: the policy requires access to Kubernetes resources at evaluation time, \
                 which is denied without --allow-context-aware"
            );
            BTreeSet::new()
        }
        (false, _) => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata_with_service_accounts() -> Metadata {
        Metadata {
            execution_mode: None,
            context_aware_resources: BTreeSet::from([ContextAwareResource {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
            }]),
        }
    }

    #[test]
    fn access_follows_the_flag_and_the_metadata() {
        let metadata = metadata_with_service_accounts();
        assert_eq!(
            allowed_resources(true, Some(&metadata)),
            metadata.context_aware_resources
        );
        assert!(allowed_resources(true, None).is_empty());
        assert!(allowed_resources(false, Some(&metadata)).is_empty());
        assert!(allowed_resources(false, None).is_empty());
    }
}
