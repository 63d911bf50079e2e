//! IAM Roles Anywhere: what a pod asks for ([`ask`]) and the sidecar injection that
//! gives it ([`plan`], with the other containers' env wiring in `env`).

pub mod ask;
mod env;
pub mod plan;
