//! IAM Roles Anywhere: what a pod asks for ([`ask`]) and the sidecar injection that
//! gives it ([`plan`]).

pub mod ask;
pub mod plan;
