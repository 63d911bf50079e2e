//! One instantiated policy module behind a waPC host, with a time limit.
//!
//! Set up as policy-evaluator does: a wasmtime engine with epoch interruption,
//! the `wasmtime-provider` waPC engine (with WASI, as policies built for
//! wasm32-wasip1 expect), and a host callback for host capabilities. A ticker
//! thread advances the engine's epoch; a guest running past its deadline is
//! interrupted and the call fails with wasmtime-provider's
//! "guest code interrupted, execution deadline exceeded".

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use wapc::WapcHost;
use wasmtime_provider::wasmtime::{Cache, Config, Engine, Module};
use wasmtime_provider::{EpochDeadlines, WasmtimeEngineProviderBuilder};

use crate::capabilities::HostCapabilities;

/// Environment variable holding the per-call time limit, in milliseconds.
/// An environment variable rather than a flag, to keep kwctl's command line.
pub const TIMEOUT_ENV: &str = "POLICY_RUNNER_TIMEOUT_MS";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Reads the time limit from [`TIMEOUT_ENV`], falling back to [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var(TIMEOUT_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
        Err(e) => Err(anyhow!("{TIMEOUT_ENV}: {e}")),
        Ok(text) => parse_timeout(&text),
    }
}

fn parse_timeout(text: &str) -> Result<Duration> {
    let ms: u64 = text.trim().parse().map_err(|e| {
        anyhow!("{TIMEOUT_ENV} must be a whole number of milliseconds, got {text:?}: {e}")
    })?;
    if ms == 0 {
        bail!("{TIMEOUT_ENV} must be greater than 0");
    }
    Ok(Duration::from_millis(ms))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestOptions {
    /// Time limit of each guest call, and of the module's start functions.
    pub timeout: Duration,
    /// Reuse compiled code from wasmtime's on-disk cache.
    pub compilation_cache: bool,
}

pub struct Guest {
    host: WapcHost,
    _ticker: EpochTicker,
}

impl Guest {
    /// Compiles and instantiates `module` (a `.wasm` binary, or WAT text).
    pub fn new(
        module: &[u8],
        capabilities: HostCapabilities,
        options: GuestOptions,
    ) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if options.compilation_cache {
            use_compilation_cache(&mut config);
        }
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("cannot create the wasmtime engine: {e}"))?;
        let module = Module::new(&engine, module)
            .map_err(|e| anyhow!("cannot compile the policy module: {e:?}"))?;

        // The ticker runs before instantiation so that the guest's start
        // functions are under the same time limit as its calls.
        let ticker = EpochTicker::start(engine.clone())?;
        let ticks = options
            .timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .max(1);
        let ticks = u64::try_from(ticks).context("time limit too large")?;
        let provider = WasmtimeEngineProviderBuilder::new()
            .engine(engine)
            .module(module)
            .enable_epoch_interruptions(EpochDeadlines {
                wapc_init: ticks,
                wapc_func: ticks,
            })
            .build()
            .map_err(|e| anyhow!("cannot set up the waPC engine: {e}"))?;
        let callback =
            move |_id: u64, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                capabilities.handle(binding, namespace, operation, payload)
            };
        let host = WapcHost::new(Box::new(provider), Some(Box::new(callback)))
            .map_err(|e| anyhow!("cannot instantiate the policy module: {e}"))?;
        Ok(Guest {
            host,
            _ticker: ticker,
        })
    }

    /// Invokes a waPC operation of the guest. Guest errors, traps and
    /// time-outs all come back as `wapc::errors::Error::GuestCallFailure`.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, wapc::errors::Error> {
        self.host.call(operation, payload)
    }
}

/// As kwctl: wasmtime's default cache (see `wasmtime config new`), and compiling every
/// time if it cannot be set up.
pub(crate) fn use_compilation_cache(config: &mut Config) {
    match Cache::from_file(None) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(e) => eprintln!("policy-runner: wasmtime cache disabled: {e}"),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .context("cannot start the epoch ticker thread")?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            // A panicked ticker has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Instant;

    /// A waPC guest in WAT: `echo` returns its payload, `fail` reports a guest
    /// error, `trap` hits `unreachable`, `spin` never returns, and `host`
    /// forwards its payload to `host_call("kubewarden","kubernetes","get_resource")`
    /// and returns the host's answer, or the host's error as its own.
    pub(crate) const TEST_GUEST: &str = r#"
(module
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
  (data (i32.const 48) "guest says no")
  ;; operation name at 1024, payload at 4096, host answers at 65536
  (func $op_is (param $len i32) (param $c0 i32) (result i32)
    (i32.and (i32.ge_u (local.get $len) (i32.const 1))
             (i32.eq (i32.load8_u (i32.const 1024)) (local.get $c0))))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $n i32)
    (call $guest_request (i32.const 1024) (i32.const 4096))
    ;; echo
    (if (call $op_is (local.get $op_len) (i32.const 101))
      (then (call $guest_response (i32.const 4096) (local.get $msg_len)) (return (i32.const 1))))
    ;; fail
    (if (call $op_is (local.get $op_len) (i32.const 102))
      (then (call $guest_error (i32.const 48) (i32.const 13)) (return (i32.const 0))))
    ;; trap
    (if (call $op_is (local.get $op_len) (i32.const 116))
      (then unreachable))
    ;; spin
    (if (call $op_is (local.get $op_len) (i32.const 115))
      (then (loop $forever (br $forever))))
    ;; host
    (if (call $op_is (local.get $op_len) (i32.const 104))
      (then
        (if (call $host_call (i32.const 0) (i32.const 10) (i32.const 16) (i32.const 10)
                             (i32.const 32) (i32.const 12) (i32.const 4096) (local.get $msg_len))
          (then
            (local.set $n (call $host_response_len))
            (call $host_response (i32.const 65536))
            (call $guest_response (i32.const 65536) (local.get $n))
            (return (i32.const 1)))
          (else
            (local.set $n (call $host_error_len))
            (call $host_error (i32.const 65536))
            (call $guest_error (i32.const 65536) (local.get $n))
            (return (i32.const 0))))))
    (call $guest_error (i32.const 48) (i32.const 13))
    (i32.const 0)))
"#;

    fn guest(timeout: Duration) -> Guest {
        let caps = HostCapabilities::new(BTreeSet::new(), None);
        let options = GuestOptions {
            timeout,
            compilation_cache: false,
        };
        Guest::new(TEST_GUEST.as_bytes(), caps, options).unwrap()
    }

    #[test]
    fn calls_reach_the_guest_and_back() {
        let g = guest(DEFAULT_TIMEOUT);
        assert_eq!(g.call("echo", b"hello").unwrap(), b"hello");
        let err = g.call("fail", b"").unwrap_err();
        assert_eq!(err.to_string(), "Guest call failure: guest says no");
    }

    #[test]
    fn traps_are_call_failures() {
        let err = guest(DEFAULT_TIMEOUT).call("trap", b"").unwrap_err();
        assert!(
            matches!(err, wapc::errors::Error::GuestCallFailure(_)),
            "{err:?}"
        );
    }

    #[test]
    fn runaway_guests_are_interrupted() {
        let g = guest(Duration::from_millis(200));
        let start = Instant::now();
        let err = g.call("spin", b"").unwrap_err();
        assert!(
            err.to_string()
                .contains("guest code interrupted, execution deadline exceeded"),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn host_errors_reach_the_guest() {
        let err = guest(DEFAULT_TIMEOUT)
            .call("host", br#"{"api_version":"v1","kind":"ServiceAccount","name":"a","namespace":"n","disable_cache":false}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Policy has not been granted access"),
            "{err}"
        );
    }

    #[test]
    fn timeout_setting_is_validated() {
        assert_eq!(parse_timeout("1500").unwrap(), Duration::from_millis(1500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("2s").is_err());
    }
}
