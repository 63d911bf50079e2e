//! `validate` on raw bytes (seeds: corpus/validate), with the oracles of `oracle`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| iamra_sidecar_policy_fuzz::oracle::validate(payload));
