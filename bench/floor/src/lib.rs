//! `make bench`'s floor: the least a mutating Kubewarden policy does with the policy's
//! SDK and release profile. It decodes the request into a typed Pod, adds one
//! annotation and answers with the mutated Pod. The policy's time over this one's is
//! the cost of the policy's own work; the rest is the SDK, serde and waPC.

use k8s_openapi::api::core::v1::Pod;
use kubewarden_policy_sdk::request::ValidationRequest;
use kubewarden_policy_sdk::settings::Validatable;
use kubewarden_policy_sdk::{mutate_request, protocol_version_guest, reject_request};
use serde::Deserialize;
use wapc_guest::{register_function, CallResult};

const ANNOTATION: &str = "bench.kubewarden.io/floor";

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function(
        "validate_settings",
        kubewarden_policy_sdk::validate_settings::<Settings>,
    );
    register_function("protocol_version", protocol_version_guest);
}

/// No settings of its own: the benchmark passes the policy's, which are ignored.
#[derive(Debug, Default, Deserialize)]
struct Settings {}

impl Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

fn validate(payload: &[u8]) -> CallResult {
    let request = match ValidationRequest::<Settings>::new(payload) {
        Ok(request) => request,
        Err(e) => return reject(format!("cannot read the admission request: {e}")),
    };
    let mut pod = match serde_json::from_value::<Pod>(request.request.object) {
        Ok(pod) => pod,
        Err(e) => return reject(format!("the object is not a Pod: {e}")),
    };
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION.to_string(), "true".to_string());
    mutate_request(serde_json::to_value(&pod)?)
}

fn reject(message: String) -> CallResult {
    reject_request(Some(message), Some(400), None, None)
}
