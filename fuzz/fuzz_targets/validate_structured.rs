//! `validate` on edited seed payloads (`structured::Case`), with the oracles of `oracle`.
#![no_main]
use iamra_sidecar_policy_fuzz::{oracle, structured::Case};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| oracle::validate(&case.payload()));
