//! The one mode-neutral plan of edits to a pod, and [`Patch::apply`], which writes it.
//! Both modes fill a [`Patch`]: IAM Roles Anywhere with a sidecar and its certificate
//! volume, IRSA with a token volume and mounts only.

use crate::emit::{Sink, Text};
use crate::json::{array_in, object_in, set, Entry, Json};
use crate::pod::{ContainerList, ContainerRef, VOLUMES};
use crate::problem::{Kind, Problem};
use serde_json::Value;
use std::borrow::Cow;

/// Where the sidecar goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A native sidecar: first in `initContainers` (Kubernetes 1.29+).
    FirstInit,
    /// A classic sidecar: last in `containers`.
    LastApp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    pub container: Json<'static>,
    pub placement: Placement,
}

/// Env and volume mount changes for one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPatch {
    pub container: ContainerRef,
    /// Entries appended to `env`.
    pub append: Vec<Json<'static>>,
    /// Existing `env` entries whose `value` is set, by index; their other fields stay.
    pub values: Vec<(usize, String)>,
    /// Entries appended to `volumeMounts`.
    pub mounts: Vec<Value>,
}

impl ContainerPatch {
    pub fn new(container: ContainerRef) -> Self {
        ContainerPatch {
            container,
            append: Vec::new(),
            values: Vec::new(),
            mounts: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.append.is_empty() && self.values.is_empty() && self.mounts.is_empty()
    }
}

/// What to add to one pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    pub sidecar: Option<Sidecar>,
    /// Volumes appended to `spec.volumes`.
    pub volumes: Vec<Json<'static>>,
    pub containers: Vec<ContainerPatch>,
    /// Containers appended to `spec.containers`, before `containers` applies: a
    /// [`ContainerPatch`] may refer to them by the index they will have.
    pub added: Vec<Value>,
    /// Annotations to set, with their full keys.
    pub annotations: Vec<(String, String)>,
}

/// `{"name": name, "value": value}`, written as text: every container gets a few, and
/// built as a `Value` each was a map and four `String`s.
pub fn env_var(name: &str, value: &str) -> Json<'static> {
    let mut text = Text::with_capacity(name.len() + value.len() + 24);
    text.object(2, |s| {
        s.entry("name", name);
        s.entry("value", value);
    });
    Json::rendered(text.out)
}

impl Patch {
    /// Nothing to add: the pod already has it all.
    pub fn is_empty(&self) -> bool {
        self.annotations.is_empty() && !self.edits_spec()
    }

    /// Whether anything goes into the spec.
    fn edits_spec(&self) -> bool {
        self.sidecar.is_some()
            || !self.added.is_empty()
            || !self.volumes.is_empty()
            || !self.containers.iter().all(ContainerPatch::is_empty)
    }

    /// Writes the patch into `pod`, which passed `pod::check_shape`; moves, never copies,
    /// what it adds. The pod's other parts keep their text.
    pub fn apply(self, pod: &mut Json) -> Result<(), Problem> {
        let root = pod
            .entries_mut()
            .ok_or_else(|| Problem::pod(Kind::Malformed, "the object is not a pod"))?;
        let edits_spec = self.edits_spec();
        if !self.annotations.is_empty() {
            let annotations = object_in(object_in(root, "metadata"), "annotations");
            for (k, v) in self.annotations {
                set(annotations, Cow::Owned(k), Json::string(v));
            }
        }
        if !edits_spec {
            // Annotations alone (the warnings): the spec stays as it is.
            return Ok(());
        }
        let spec = object_in(root, "spec");
        if !self.added.is_empty() {
            array_in(spec, ContainerList::App.key()).extend(self.added.into_iter().map(Json::made));
        }
        // Containers before the sidecar: the patch's indexes refer to the lists without it.
        for change in self.containers {
            apply_container(spec, change)?;
        }
        if !self.volumes.is_empty() {
            array_in(spec, VOLUMES).extend(self.volumes);
        }
        match self.sidecar {
            Some(Sidecar {
                container,
                placement: Placement::FirstInit,
            }) => array_in(spec, ContainerList::Init.key()).insert(0, container),
            Some(Sidecar {
                container,
                placement: Placement::LastApp,
            }) => array_in(spec, ContainerList::App.key()).push(container),
            None => {}
        }
        Ok(())
    }
}

fn apply_container(spec: &mut Vec<Entry>, change: ContainerPatch) -> Result<(), Problem> {
    let gone = || Problem::pod(Kind::Malformed, "a container disappeared while injecting");
    let list = array_in(spec, change.container.list.key());
    let container = list
        .get_mut(change.container.index)
        .and_then(Json::entries_mut)
        .ok_or_else(gone)?;
    if !change.append.is_empty() || !change.values.is_empty() {
        let env = array_in(container, "env");
        for (i, value) in change.values {
            if let Some(entry) = env.get_mut(i).and_then(Json::entries_mut) {
                set(entry, Cow::Borrowed("value"), Json::string(value));
            }
        }
        env.extend(change.append);
    }
    if !change.mounts.is_empty() {
        array_in(container, "volumeMounts").extend(change.mounts.into_iter().map(Json::made));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{doc, value};
    use rstest::rstest;
    use serde_json::json;

    fn at(list: ContainerList, index: usize) -> ContainerRef {
        ContainerRef { list, index }
    }

    /// `pod` with `patch`, which has something to write, applied.
    fn applied(pod: Value, patch: Patch) -> Value {
        assert!(!patch.is_empty());
        let mut pod = doc(pod);
        patch.apply(&mut pod).unwrap();
        value(&pod)
    }

    #[rstest]
    #[case::plain("AWS_REGION", "eu-west-1")]
    #[case::escaped("NO_PROXY", "a,\"b\"\n\\c\u{1}é")]
    #[case::empty("EMPTY", "")]
    fn an_env_entry_is_the_json_of_its_name_and_value(#[case] name: &str, #[case] text: &str) {
        assert_eq!(
            value(&env_var(name, text)),
            json!({"name": name, "value": text})
        );
    }

    #[rstest]
    #[case::native(Placement::FirstInit, "/spec/initContainers/0/name")]
    #[case::classic(Placement::LastApp, "/spec/containers/1/name")]
    fn the_sidecar_goes_where_its_placement_says(#[case] placement: Placement, #[case] path: &str) {
        let pod = json!({"spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]}});
        let patch = Patch {
            sidecar: Some(Sidecar {
                container: Json::made(json!({"name": "helper"})),
                placement,
            }),
            ..Patch::default()
        };
        let pod = applied(pod, patch);
        assert_eq!(pod.pointer(path), Some(&json!("helper")), "{pod}");
    }

    #[test]
    fn an_env_value_is_set_in_place_keeping_the_entry_then_appended_and_mounts_added() {
        let pod = json!({"metadata": {}, "spec": {"containers": [{"name": "app", "env": [{"name": "A", "futureField": 1}, {"name": "B"}]}]}});
        let mut change = ContainerPatch::new(at(ContainerList::App, 0));
        change.values.push((0, "1".into()));
        change.append.push(env_var("C", "3"));
        change.mounts.push(json!({"name": "v"}));
        let patch = Patch {
            containers: vec![change],
            volumes: vec![Json::made(json!({"name": "v"}))],
            annotations: vec![("k".into(), "v".into())],
            ..Patch::default()
        };
        assert_eq!(
            applied(pod, patch),
            json!({"metadata": {"annotations": {"k": "v"}}, "spec": {
                "containers": [{"name": "app", "env": [{"name": "A", "futureField": 1, "value": "1"}, {"name": "B"}, {"name": "C", "value": "3"}], "volumeMounts": [{"name": "v"}]}],
                "volumes": [{"name": "v"}]}})
        );
    }

    /// A container the patch adds (the VM's token server) is edited as the pod's own:
    /// a value set in place, env appended, a mount beside the one it came with.
    #[test]
    fn a_container_the_patch_adds_is_edited_as_the_pods_own() {
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let mut change = ContainerPatch::new(at(ContainerList::App, 1));
        change.values.push((0, "1".into()));
        change.append.push(env_var("B", "2"));
        change.mounts.push(json!({"name": "token"}));
        let patch = Patch {
            added: vec![
                json!({"name": "server", "env": [{"name": "A"}], "volumeMounts": [{"name": "socket"}]}),
            ],
            containers: vec![change],
            ..Patch::default()
        };
        assert_eq!(
            applied(pod, patch),
            json!({"spec": {"containers": [{"name": "app"}, {"name": "server",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "volumeMounts": [{"name": "socket"}, {"name": "token"}]}]}})
        );
    }

    #[test]
    fn annotations_alone_leave_the_spec_as_it_is() {
        let patch = Patch {
            annotations: vec![("k".into(), "v".into())],
            ..Patch::default()
        };
        assert_eq!(
            applied(json!({"metadata": {"name": "a"}}), patch),
            json!({"metadata": {"name": "a", "annotations": {"k": "v"}}})
        );
    }

    #[test]
    fn an_empty_patch_is_empty() {
        let patch = Patch {
            containers: vec![ContainerPatch::new(at(ContainerList::Init, 0))],
            ..Patch::default()
        };
        assert!(patch.is_empty());
    }
}
