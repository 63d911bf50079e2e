//! Instances made the way Kubewarden's policy-server 1.35 makes them: one compiled
//! module and one `InstancePre` (wasmtime-provider's `WasmtimeEngineProviderPre`, as
//! policy-evaluator's `StackPre` builds it), then for every request a new store and
//! instance, the waPC start functions (`wapc_init`), and one call
//! (`EvaluationEnvironment::validate_policy` → `rehydrate` → `WapcHost::new`).
//!
//! Nothing advances the engine's epoch here. policy-server ticks it once a second,
//! far longer than a request takes, so the ticks change nothing a request pays, and
//! without them instruction counts do not depend on the clock.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use wapc::WapcHost;
use wasmtime_provider::wasmtime::{Config, Engine, Module};
use wasmtime_provider::{EpochDeadlines, WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

use crate::capabilities::HostCapabilities;
use crate::guest::use_compilation_cache;

/// policy-server's `--policy-timeout` default (2 s), in its one-second epoch ticks.
const DEADLINES: EpochDeadlines = EpochDeadlines {
    wapc_init: 2,
    wapc_func: 2,
};

/// policy-server 1.35's engine (crates/policy-server/src/lib.rs): wasmtime's defaults,
/// function references (for policies of Go ≥ 1.26), and epoch interruption, which its
/// default `--policy-timeout` turns on. The cache only spares recompiling the module.
fn policy_server_config(compilation_cache: bool) -> Config {
    let mut config = Config::default();
    config.wasm_function_references(true);
    config.epoch_interruption(true);
    if compilation_cache {
        use_compilation_cache(&mut config);
    }
    config
}

pub struct Fresh {
    pre: WasmtimeEngineProviderPre,
    capabilities: Arc<HostCapabilities>,
    /// The compiled module, for where its functions' code lies (`functions`).
    module: Module,
}

/// A compiled function of the module: where its code lies in this process, and its name
/// from the module's name section (the index, `function[N]`, without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRange {
    pub start: usize,
    pub len: usize,
    pub name: String,
}

impl Fresh {
    /// Compiles `module` (a `.wasm` binary, or WAT text) and prepares its instantiation.
    pub fn new(
        module: &[u8],
        capabilities: HostCapabilities,
        compilation_cache: bool,
    ) -> Result<Self> {
        let engine = Engine::new(&policy_server_config(compilation_cache))
            .map_err(|e| anyhow!("cannot create the wasmtime engine: {e}"))?;
        let module = Module::new(&engine, module)
            .map_err(|e| anyhow!("cannot compile the policy module: {e:?}"))?;
        let pre = WasmtimeEngineProviderBuilder::new()
            .engine(engine)
            .module(module.clone())
            .build_pre()
            .map_err(|e| anyhow!("cannot prepare the module's instantiation: {e}"))?;
        Ok(Fresh {
            pre,
            capabilities: Arc::new(capabilities),
            module,
        })
    }

    /// Where each of the module's functions runs in this process: a profiler that sees
    /// only addresses in the compiled code (callgrind) names them with these.
    pub fn functions(&self) -> Vec<CodeRange> {
        let text = self.module.text().as_ptr() as usize;
        self.module
            .functions()
            .map(|f| CodeRange {
                start: text + f.offset,
                len: f.len,
                name: f
                    .name
                    .unwrap_or_else(|| format!("function[{}]", f.index.as_u32())),
            })
            .collect()
    }

    /// A new instance whose start functions have run: what policy-server does before
    /// each request.
    pub fn instance(&self) -> Result<WapcHost> {
        let provider = self
            .pre
            .rehydrate(Some(DEADLINES))
            .map_err(|e| anyhow!("cannot rehydrate the module: {e}"))?;
        let capabilities = Arc::clone(&self.capabilities);
        let callback =
            move |_id: u64, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                capabilities.handle(binding, namespace, operation, payload)
            };
        WapcHost::new(Box::new(provider), Some(Box::new(callback)))
            .map_err(|e| anyhow!("cannot instantiate the policy module: {e}"))
    }

    /// One request as policy-server serves it: a new instance, one call.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>> {
        Ok(self.instance()?.call(operation, payload)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::tests::TEST_GUEST;
    use std::collections::BTreeSet;

    /// A guest whose memory remembers whether it has been called before: a fresh
    /// instance always answers "first".
    const COUNTING_GUEST: &str = r#"
(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "first")
  (data (i32.const 32) "again")
  (global $init (mut i32) (i32.const 0))
  (func (export "wapc_init") (global.set $init (i32.const 1)))
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call $guest_request (i32.const 1024) (i32.const 2048))
    (if (i32.eqz (global.get $init)) (then unreachable))
    (if (i32.load8_u (i32.const 0))
      (then (call $guest_response (i32.const 32) (i32.const 5)))
      (else (call $guest_response (i32.const 16) (i32.const 5))))
    (i32.store8 (i32.const 0) (i32.const 1))
    (i32.const 1)))
"#;

    fn fresh(wat: &str) -> Fresh {
        Fresh::new(
            wat.as_bytes(),
            HostCapabilities::new(BTreeSet::new(), None),
            false,
        )
        .unwrap()
    }

    #[test]
    fn every_request_gets_a_new_started_instance() {
        let f = fresh(COUNTING_GUEST);
        assert_eq!(f.call("validate", b"{}").unwrap(), b"first");
        assert_eq!(f.call("validate", b"{}").unwrap(), b"first");
        let warm = f.instance().unwrap();
        assert_eq!(warm.call("validate", b"{}").unwrap(), b"first");
        assert_eq!(warm.call("validate", b"{}").unwrap(), b"again");
    }

    #[test]
    fn functions_are_named_where_their_code_lies() {
        let f = fresh(&COUNTING_GUEST.replace(
            "(func (export \"wapc_init\")",
            "(func $start (export \"wapc_init\")",
        ));
        let functions = f.functions();
        // The two imports come first: the defined functions are 2 and 3.
        let names: Vec<&str> = functions.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["start", "function[3]"]);
        assert!(functions.iter().all(|c| c.len > 0));
        let [a, b] = &functions[..] else {
            unreachable!()
        };
        assert!(
            a.start + a.len <= b.start || b.start + b.len <= a.start,
            "{functions:?}"
        );
    }

    #[test]
    fn guest_errors_and_host_refusals_come_back() {
        let f = fresh(TEST_GUEST);
        assert_eq!(f.call("echo", b"hello").unwrap(), b"hello");
        let err = f.call("fail", b"").unwrap_err();
        assert_eq!(err.to_string(), "Guest call failure: guest says no");
        let lookup = br#"{"api_version":"v1","kind":"ServiceAccount","name":"a","namespace":"n","disable_cache":false}"#;
        let err = f.call("host", lookup).unwrap_err();
        assert!(
            err.to_string()
                .contains("Policy has not been granted access"),
            "{err}"
        );
    }
}
