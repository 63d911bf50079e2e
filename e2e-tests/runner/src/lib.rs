//! A kwctl-compatible runner for Kubewarden waPC policy modules, on the same
//! host crates Kubewarden uses (wapc, wasmtime-provider, json-patch).

pub mod bench;
pub mod capabilities;
pub mod cli;
pub mod commands;
pub mod fresh;
pub mod guest;
pub mod metadata;
pub mod module_path;
pub mod policy;
pub mod request;
pub mod response;
pub mod session;
pub mod settings;
pub mod setup;
pub mod workload;
