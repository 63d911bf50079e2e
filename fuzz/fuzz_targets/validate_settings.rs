//! `validate_settings` on raw bytes (seeds: corpus/validate_settings), with the oracles
//! of `oracle`; settings it accepts are then used for a `validate`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| iamra_sidecar_policy_fuzz::oracle::validate_settings(payload));
