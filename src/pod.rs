//! Read-only views of a pod as `serde_json::Value`: fields this crate's Kubernetes
//! types do not know survive untouched, because the host turns our output into a JSON
//! patch. `patch` writes; no mode is named here.

use crate::json::{self, Json};
use crate::names;
use crate::problem::{Kind, Problem};
use std::collections::BTreeMap;

/// Annotations as the API server holds them (a ServiceAccount's, read through the host).
pub type Annotations = BTreeMap<String, String>;

/// The pod's ServiceAccount, as read through the host.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// `<namespace>/<name>`, for messages.
    pub name: &'a str,
    pub annotations: &'a Annotations,
}

/// Where a value of [`Sources`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Pod,
    Account,
}

/// The pod's annotations over its ServiceAccount's: the one precedence both modes read
/// by, key by key, a value the pod sets winning over the ServiceAccount's. Values are
/// trimmed. Without a ServiceAccount (`readServiceAccounts: false`) only the pod counts.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The pod's annotations node, found once, not at every key.
    annotations: &'a Json<'a>,
    account: Option<Account<'a>>,
}

impl<'a> Sources<'a> {
    pub fn new(pod: &'a Json<'a>, account: Option<Account<'a>>) -> Self {
        Sources {
            annotations: annotations_node(pod),
            account,
        }
    }

    /// `<namespace>/<name>` of the ServiceAccount, for messages; empty without one.
    pub fn account_name(&self) -> &'a str {
        self.account.map(|a| a.name).unwrap_or_default()
    }

    pub fn on_pod(&self, key: &str) -> Option<&'a str> {
        self.annotations.get(key)?.as_str().map(str::trim)
    }

    pub fn on_account(&self, key: &str) -> Option<&'a str> {
        Some(self.account?.annotations.get(key)?.trim())
    }

    /// The pod's `pod_key`, else the ServiceAccount's `account_key` (a mode may name one
    /// value differently on each), and where it was found.
    pub fn get(&self, pod_key: &str, account_key: &str) -> Option<(&'a str, Origin)> {
        match self.on_pod(pod_key) {
            Some(value) => Some((value, Origin::Pod)),
            None => Some((self.on_account(account_key)?, Origin::Account)),
        }
    }

    /// [`Sources::get`] of `<prefix>/<name>` on both: the key is built only to ask the
    /// ServiceAccount's annotations.
    pub fn get_under(&self, prefix: &str, name: &str) -> Option<(&'a str, Origin)> {
        if let Some(value) = self
            .annotations
            .get_under(prefix, name)
            .and_then(Json::as_str)
        {
            return Some((value.trim(), Origin::Pod));
        }
        let account = self.account?.annotations;
        Some((
            account.get(&names::key(prefix, name))?.trim(),
            Origin::Account,
        ))
    }

    /// The names under `<prefix>/` found at `origin`, sorted: the pod's, or those of the
    /// ServiceAccount the pod does not set. One pass over each: a ServiceAccount may carry
    /// thousands.
    pub fn names(&self, prefix: &str, origin: Origin) -> Vec<&'a str> {
        let under = |key: &'a str| key.strip_prefix(prefix)?.strip_prefix('/');
        let mut names: Vec<&'a str> = match origin {
            Origin::Pod => entries(self.annotations)
                .filter_map(|(k, _)| under(k))
                .collect(),
            Origin::Account => self
                .account
                .into_iter()
                .flat_map(|a| a.annotations.keys())
                .filter_map(|k| Some((k, under(k)?)))
                .filter(|(k, _)| self.annotations.get(k).is_none())
                .map(|(_, name)| name)
                .collect(),
        };
        names.sort_unstable();
        names
    }
}

pub const VOLUMES: &str = "volumes";

/// The two container lists of a pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    Init,
    App,
}

impl ContainerList {
    /// The field name in the pod spec.
    pub fn key(self) -> &'static str {
        match self {
            ContainerList::Init => "initContainers",
            ContainerList::App => "containers",
        }
    }
}

/// A container by its list and index in the original pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerRef {
    pub list: ContainerList,
    pub index: usize,
}

fn spec<'a>(pod: &'a Json<'a>) -> Option<&'a Json<'a>> {
    pod.get("spec")
}

pub fn list<'a>(pod: &'a Json<'a>, key: &str) -> &'a [Json<'a>] {
    spec(pod)
        .and_then(|s| s.get(key))
        .and_then(Json::as_array)
        .unwrap_or_default()
}

/// The pod's volume called `name`.
pub fn volume<'a>(pod: &'a Json<'a>, name: &str) -> Option<&'a Json<'a>> {
    list(pod, VOLUMES)
        .iter()
        .find(|v| v.get("name").and_then(Json::as_str) == Some(name))
}

/// Init containers, then app containers.
pub fn containers<'a>(pod: &'a Json<'a>) -> impl Iterator<Item = (ContainerRef, &'a Json<'a>)> {
    [ContainerList::Init, ContainerList::App]
        .into_iter()
        .flat_map(move |at| {
            list(pod, at.key())
                .iter()
                .enumerate()
                .map(move |(index, c)| (ContainerRef { list: at, index }, c))
        })
}

pub fn name_of<'a>(container: &'a Json<'a>) -> &'a str {
    container
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
}

pub fn env_of<'a>(container: &'a Json<'a>) -> &'a [Json<'a>] {
    container
        .get("env")
        .and_then(Json::as_array)
        .unwrap_or_default()
}

/// The pod's `metadata.annotations`; `NULL` without.
fn annotations_node<'a>(pod: &'a Json<'a>) -> &'a Json<'a> {
    pod.get("metadata")
        .and_then(|m| m.get("annotations"))
        .unwrap_or(&json::NULL)
}

/// The annotations with string values (the API server allows no others).
fn entries<'a>(node: &'a Json<'a>) -> impl Iterator<Item = (&'a str, &'a str)> {
    node.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((&**k, v.as_str()?)))
        .inspect(|_| visited())
}

#[cfg(test)]
thread_local! {
    /// How many pod annotations [`entries`] yielded on this thread: tests check
    /// that reading them is linear (a pod may carry thousands).
    pub static VISITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn visited() {
    #[cfg(test)]
    VISITS.with(|v| v.set(v.get() + 1));
}

pub fn annotation<'a>(pod: &'a Json<'a>, key: &str) -> Option<&'a str> {
    annotations_node(pod).get(key)?.as_str()
}

/// Whether the pod carries the label `key`, whatever its value.
pub fn has_label(pod: &Json, key: &str) -> bool {
    pod.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(key))
        .is_some()
}

/// The value of the pod's label `key`.
pub fn label<'a>(pod: &'a Json<'a>, key: &str) -> Option<&'a str> {
    pod.get("metadata")?.get("labels")?.get(key)?.as_str()
}

pub fn is_windows(pod: &Json) -> bool {
    let spec = spec(pod);
    let os = spec
        .and_then(|s| s.get("os"))
        .and_then(|o| o.get("name"))
        .and_then(Json::as_str);
    let selector = |label: &str| {
        spec.and_then(|s| s.get("nodeSelector"))
            .and_then(|n| n.get(label))
            .and_then(Json::as_str)
            == Some("windows")
    };
    os == Some("windows") || selector("kubernetes.io/os") || selector("beta.kubernetes.io/os")
}

/// `spec.serviceAccountName`, then the deprecated `spec.serviceAccount`, then `default`,
/// as the API server resolves it.
pub fn service_account<'a>(pod: &'a Json<'a>) -> &'a str {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|k| spec(pod)?.get(k)?.as_str().filter(|s| !s.is_empty()))
        .unwrap_or("default")
}

/// The pod's name as the role session will see it: the name, or the generated name
/// (the API server appends 5 characters to `generateName`).
pub fn pod_name_for_session(pod: &Json) -> Option<String> {
    let meta = pod.get("metadata")?;
    match meta
        .get("name")
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(name) => Some(name.to_owned()),
        None => meta
            .get("generateName")
            .and_then(Json::as_str)
            .map(|g| format!("{g}xxxxx")),
    }
}

/// Rejects objects the injection cannot edit, naming the field.
pub fn check_shape(pod: &Json) -> Result<(), Problem> {
    shape(pod).map_err(|message| Problem::pod(Kind::Malformed, message))
}

fn shape(pod: &Json) -> Result<(), String> {
    let spec = spec(pod)
        .filter(|s| s.is_object())
        .ok_or("the pod has no spec object")?;
    match spec.get(ContainerList::App.key()).and_then(Json::as_array) {
        Some(c) if !c.is_empty() => {}
        _ => return Err("spec.containers must be a non-empty list".into()),
    }
    for key in [ContainerList::Init.key(), VOLUMES] {
        if spec.get(key).is_some_and(|v| !v.is_array() && !v.is_null()) {
            return Err(format!("spec.{key} must be a list"));
        }
    }
    for (at, c) in containers(pod) {
        let not_list = |key: &str| c.get(key).is_some_and(|e| !e.is_array() && !e.is_null());
        if !c.is_object() || not_list("env") || not_list("volumeMounts") {
            return Err(format!(
                "spec.{}[{}] must be a container object whose env and volumeMounts are lists",
                at.list.key(),
                at.index
            ));
        }
    }
    let annotations = pod.get("metadata").and_then(|m| m.get("annotations"));
    if pod.get("metadata").is_some_and(|m| !m.is_object())
        || annotations.is_some_and(|a| !a.is_object() && !a.is_null())
    {
        return Err("metadata.annotations must be a map".into());
    }
    // The API server refuses any other value (a null reads as ""); the injection reads
    // and extends annotations as strings, and would replace such a value.
    // The first in key order, as when the pod was a `serde_json::Value`.
    if let Some(key) = annotations
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_string() && !v.is_null())
        .map(|(k, _)| k)
        .min()
    {
        return Err(format!(
            "metadata.annotations.{key} must be a string: annotations map strings to strings"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Source;
    use crate::testutil::{doc, map};
    use rstest::rstest;
    use serde_json::json;
    use serde_json::Value;

    #[rstest]
    #[case::spec_serviceaccountname_api_api(json!({"spec": {"serviceAccountName": "api"}}), "api")]
    #[case::spec_serviceaccount_legacy_legacy(json!({"spec": {"serviceAccount": "legacy"}}), "legacy")]
    #[case::spec_serviceaccountname_default(json!({"spec": {"serviceAccountName": ""}}), "default")]
    #[case::spec_default(json!({"spec": {}}), "default")]
    fn service_accounts(#[case] pod: Value, #[case] expected: &str) {
        assert_eq!(service_account(&doc(pod)), expected);
    }

    #[rstest]
    #[case::no_spec(json!({"kind": "Pod"}), "the pod has no spec object")]
    #[case::no_containers(json!({"spec": {"containers": []}}), "spec.containers must be a non-empty list")]
    #[case::containers_not_a_list(json!({"spec": {"containers": "app"}}), "spec.containers must be a non-empty list")]
    #[case::volumes_not_a_list(json!({"spec": {"containers": [{"name": "a"}], "volumes": {}}}), "spec.volumes must be a list")]
    #[case::env_not_a_list(json!({"spec": {"containers": [{"name": "a", "env": "X=1"}]}}), "spec.containers[0] must be a container object")]
    #[case::container_not_an_object(json!({"spec": {"containers": [7]}}), "spec.containers[0] must be a container object")]
    #[case::volume_mounts_not_a_list(json!({"spec": {"containers": [{"name": "a", "volumeMounts": {}}]}}), "spec.containers[0] must be a container object")]
    #[case::annotations_not_a_map(json!({"metadata": {"annotations": []}, "spec": {"containers": [{"name": "a"}]}}), "metadata.annotations must be a map")]
    #[case::annotation_not_a_string(json!({"metadata": {"annotations": {"a": "x", "eks.amazonaws.com/skip-containers": 8.27098e-317}}, "spec": {"containers": [{"name": "a"}]}}), "metadata.annotations.eks.amazonaws.com/skip-containers must be a string")]
    fn malformed_pods_are_named(#[case] pod: Value, #[case] message: &str) {
        let err = check_shape(&doc(pod)).unwrap_err();
        assert_eq!((&err.at, err.kind), (&Source::Pod, Kind::Malformed));
        assert!(err.to_string().starts_with(message), "{err}");
    }

    #[rstest]
    #[case::spec_os_name_windows(json!({"spec": {"os": {"name": "windows"}}}), true)]
    #[case::spec_nodeselector_kubernetes_io_os_windows(json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}}), true)]
    #[case::windows_by_beta_node_selector(json!({"spec": {"nodeSelector": {"beta.kubernetes.io/os": "windows"}}}), true)]
    #[case::spec_nodeselector_kubernetes_io_os_linux(json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}), false)]
    #[case::spec(json!({"spec": {}}), false)]
    fn windows_pods(#[case] pod: Value, #[case] windows: bool) {
        assert_eq!(is_windows(&doc(pod)), windows);
    }

    fn annotated(pairs: &[(&str, &str)]) -> Json<'static> {
        doc(json!({"metadata": {"annotations": map(pairs)}}))
    }

    #[rstest]
    #[case::the_pods_value_wins(&[("p/a", " pod ")], &[("p/a", "account")], Some(("pod", Origin::Pod)))]
    #[case::the_accounts_where_the_pod_has_none(&[("p/b", "pod")], &[("p/a", " account ")], Some(("account", Origin::Account)))]
    #[case::neither(&[("p/b", "pod")], &[("p/c", "account")], None)]
    fn the_pods_annotation_wins_over_the_service_accounts(
        #[case] on_pod: &[(&str, &str)],
        #[case] on_account: &[(&str, &str)],
        #[case] expected: Option<(&str, Origin)>,
    ) {
        let pod = annotated(on_pod);
        let annotations = map(on_account);
        let account = Account {
            name: "ns/sa",
            annotations: &annotations,
        };
        assert_eq!(
            Sources::new(&pod, Some(account)).get("p/a", "p/a"),
            expected
        );
        let alone = Sources::new(&pod, None).get("p/a", "p/a");
        assert_eq!(alone, expected.filter(|(_, origin)| *origin == Origin::Pod));
    }

    #[test]
    fn names_under_a_prefix_are_the_pods_and_the_ones_it_does_not_override() {
        let pod = annotated(&[("p/x", "1"), ("p/a", "1"), ("q/y", "1"), ("px/z", "1")]);
        let annotations = map(&[("p/a", "2"), ("p/b", "2"), ("q/c", "2")]);
        let account = Account {
            name: "ns/sa",
            annotations: &annotations,
        };
        let sources = Sources::new(&pod, Some(account));
        assert_eq!(sources.names("p", Origin::Pod), ["a", "x"]);
        assert_eq!(sources.names("p", Origin::Account), ["b"]);
        assert!(Sources::new(&pod, None)
            .names("p", Origin::Account)
            .is_empty());
    }

    #[test]
    fn a_well_formed_pod_passes() {
        let pod = doc(
            json!({"metadata": {"annotations": {"a": "x", "b": null}}, "spec": {"containers": [{"name": "a", "env": null}], "volumes": null}}),
        );
        assert_eq!(check_shape(&pod), Ok(()));
    }
}
