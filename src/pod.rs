//! Reads and edits a pod as `serde_json::Value`: fields this crate's Kubernetes types
//! do not know survive untouched, because the host turns our output into a JSON patch.

use crate::annotations::{self, Annotations};
use crate::inject::{Plan, SIDECAR_NAME};
use serde_json::{Map, Value};

pub const CONTAINERS: &str = "containers";
pub const INIT_CONTAINERS: &str = "initContainers";
pub const VOLUMES: &str = "volumes";

/// A container by its list and index in the original pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerRef {
    pub list: &'static str,
    pub index: usize,
}

fn spec(pod: &Value) -> Option<&Value> {
    pod.get("spec")
}

pub fn list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    spec(pod)
        .and_then(|s| s.get(key))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The pod's volume called `name`.
pub fn volume<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    list(pod, VOLUMES)
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
}

/// Init containers, then app containers.
pub fn containers(pod: &Value) -> impl Iterator<Item = (ContainerRef, &Value)> {
    [INIT_CONTAINERS, CONTAINERS]
        .into_iter()
        .flat_map(move |key| {
            list(pod, key)
                .iter()
                .enumerate()
                .map(move |(index, c)| (ContainerRef { list: key, index }, c))
        })
}

pub fn name_of(container: &Value) -> &str {
    container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn env_of(container: &Value) -> &[Value] {
    container
        .get("env")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The pod's annotations with string values (the API server allows no others).
pub fn annotations(pod: &Value) -> Annotations {
    pod.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

pub fn annotation(pod: &Value, key: &str) -> Option<String> {
    pod.get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

pub fn is_windows(pod: &Value) -> bool {
    let spec = spec(pod);
    let os = spec
        .and_then(|s| s.get("os"))
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str);
    let selector = |label: &str| {
        spec.and_then(|s| s.get("nodeSelector"))
            .and_then(|n| n.get(label))
            .and_then(Value::as_str)
            == Some("windows")
    };
    os == Some("windows") || selector("kubernetes.io/os") || selector("beta.kubernetes.io/os")
}

/// `spec.serviceAccountName`, then the deprecated `spec.serviceAccount`, then `default`,
/// as the API server resolves it.
pub fn service_account(pod: &Value) -> String {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|k| spec(pod)?.get(*k)?.as_str().filter(|s| !s.is_empty()))
        .unwrap_or("default")
        .to_owned()
}

/// The pod's name as the role session will see it: the name, or the generated name
/// (the API server appends 5 characters to `generateName`).
pub fn pod_name_for_session(pod: &Value) -> Option<String> {
    let meta = pod.get("metadata")?;
    match meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(name) => Some(name.to_owned()),
        None => meta
            .get("generateName")
            .and_then(Value::as_str)
            .map(|g| format!("{g}xxxxx")),
    }
}

/// Rejects objects the injection cannot edit, naming the field.
pub fn check_shape(pod: &Value) -> Result<(), String> {
    let spec = spec(pod)
        .and_then(Value::as_object)
        .ok_or("the pod has no spec object")?;
    match spec.get(CONTAINERS).and_then(Value::as_array) {
        Some(c) if !c.is_empty() => {}
        _ => return Err("spec.containers must be a non-empty list".into()),
    }
    for key in [INIT_CONTAINERS, VOLUMES] {
        if spec.get(key).is_some_and(|v| !v.is_array() && !v.is_null()) {
            return Err(format!("spec.{key} must be a list"));
        }
    }
    for (at, c) in containers(pod) {
        let not_list = |key: &str| c.get(key).is_some_and(|e| !e.is_array() && !e.is_null());
        if !c.is_object() || not_list("env") || not_list("volumeMounts") {
            return Err(format!(
                "spec.{}[{}] must be a container object whose env and volumeMounts are lists",
                at.list, at.index
            ));
        }
    }
    if pod.get("metadata").is_some_and(|m| !m.is_object())
        || pod
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .is_some_and(|a| !a.is_object() && !a.is_null())
    {
        return Err("metadata.annotations must be a map".into());
    }
    Ok(())
}

/// An injected pod whose configuration has not changed: re-evaluating it changes nothing.
pub fn is_injected(pod: &Value, prefix: &str, plan: &Plan) -> bool {
    let key = if plan.native {
        INIT_CONTAINERS
    } else {
        CONTAINERS
    };
    annotation(pod, &annotations::key(prefix, annotations::INJECTED)).as_deref() == Some("true")
        && annotation(pod, &annotations::key(prefix, annotations::CONFIG_HASH)).as_deref()
            == Some(plan.config_hash.as_str())
        && list(pod, key).iter().any(|c| name_of(c) == SIDECAR_NAME)
}

/// Returns the array at `obj[key]`, creating it when absent or null.
fn array_at<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

fn object_at<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(o) => o,
        _ => unreachable!("just made an object"),
    }
}

/// Applies `plan` to a pod that passed [`check_shape`].
pub fn apply(mut pod: Value, plan: &Plan) -> Result<Value, String> {
    let root = pod.as_object_mut().ok_or("the object is not a pod")?;
    if !plan.annotations.is_empty() {
        let annotations = object_at(object_at(root, "metadata"), "annotations");
        for (k, v) in &plan.annotations {
            annotations.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let spec = object_at(root, "spec");
    // Env first: the plan's container indexes refer to the lists before the sidecar.
    for change in &plan.env {
        let container = spec
            .get_mut(change.container.list)
            .and_then(|l| l.get_mut(change.container.index))
            .and_then(Value::as_object_mut)
            .ok_or("a container disappeared while injecting")?;
        if !change.append.is_empty() || !change.replace.is_empty() {
            let env = array_at(container, "env");
            for (i, entry) in &change.replace {
                if let Some(slot) = env.get_mut(*i) {
                    *slot = entry.clone();
                }
            }
            env.extend(change.append.iter().cloned());
        }
        if !change.mounts.is_empty() {
            array_at(container, "volumeMounts").extend(change.mounts.iter().cloned());
        }
    }
    if !plan.volumes.is_empty() {
        array_at(spec, VOLUMES).extend(plan.volumes.iter().cloned());
    }
    match &plan.sidecar {
        Some(sidecar) if plan.native => array_at(spec, INIT_CONTAINERS).insert(0, sidecar.clone()),
        Some(sidecar) => array_at(spec, CONTAINERS).push(sidecar.clone()),
        None => {}
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({"spec": {"serviceAccountName": "api"}}), "api")]
    #[case(json!({"spec": {"serviceAccount": "legacy"}}), "legacy")]
    #[case(json!({"spec": {"serviceAccountName": ""}}), "default")]
    #[case(json!({"spec": {}}), "default")]
    fn service_accounts(#[case] pod: Value, #[case] expected: &str) {
        assert_eq!(service_account(&pod), expected);
    }

    #[rstest]
    #[case(json!({"kind": "Pod"}), "the pod has no spec object")]
    #[case(json!({"spec": {"containers": []}}), "spec.containers must be a non-empty list")]
    #[case(json!({"spec": {"containers": "app"}}), "spec.containers must be a non-empty list")]
    #[case(json!({"spec": {"containers": [{"name": "a"}], "volumes": {}}}), "spec.volumes must be a list")]
    #[case(json!({"spec": {"containers": [{"name": "a", "env": "X=1"}]}}), "spec.containers[0] must be a container object")]
    #[case(json!({"spec": {"containers": [7]}}), "spec.containers[0] must be a container object")]
    #[case(json!({"spec": {"containers": [{"name": "a", "volumeMounts": {}}]}}), "spec.containers[0] must be a container object")]
    #[case(json!({"metadata": {"annotations": []}, "spec": {"containers": [{"name": "a"}]}}), "metadata.annotations must be a map")]
    fn malformed_pods_are_named(#[case] pod: Value, #[case] message: &str) {
        let err = check_shape(&pod).unwrap_err();
        assert!(err.starts_with(message), "{err}");
    }

    #[rstest]
    #[case(json!({"spec": {"os": {"name": "windows"}}}), true)]
    #[case(json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}}), true)]
    #[case(json!({"spec": {"nodeSelector": {"beta.kubernetes.io/os": "windows"}}}), true)]
    #[case(json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}), false)]
    #[case(json!({"spec": {}}), false)]
    fn windows_pods(#[case] pod: Value, #[case] windows: bool) {
        assert_eq!(is_windows(&pod), windows);
    }

    #[test]
    fn a_well_formed_pod_passes() {
        let pod = json!({"metadata": {}, "spec": {"containers": [{"name": "a", "env": null}], "volumes": null}});
        assert_eq!(check_shape(&pod), Ok(()));
    }
}
