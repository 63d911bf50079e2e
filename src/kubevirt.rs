//! KubeVirt virtual machines: the `virt-launcher` pod that runs one VM.
//!
//! - Such a pod never gets IAM Roles Anywhere. The helper listens on the pod's
//!   127.0.0.1, which KubeVirt's default (masquerade) networking forwards into the guest,
//!   so neither the guest nor the pod's own containers could reach it; and the eks-irsa
//!   hook sidecar would copy the helper's `AWS_EC2_METADATA_SERVICE_ENDPOINT` into the
//!   guest, where 127.0.0.1 is the guest itself. `credentials` sets the annotations
//!   aside with [`roles_anywhere_set_aside`], a warning, and never rejects the pod:
//!   KubeVirt, not the VM's owner, creates the pods of restarts and live migrations.
//! - IRSA applies to it as to any pod, `compute` and `hook-sidecar-*` included.
//! - With `kubevirt.shareTokenWithGuest`, [`share_token`] appends a virtiofsd container
//!   that serves the token directory on the socket and tag the eks-irsa hook sidecar
//!   declares in the domain, so the guest can mount it. It runs before IRSA's plan, which
//!   then treats that container as any other. This layer sits beside `credentials`: it
//!   reads IRSA's volume name and mount path.

use crate::irsa::plan::{MOUNT_PATH, VOLUME_NAME};
use crate::json::Json;
use crate::names;
use crate::pod;
use crate::problem::{Kind, Problem, Problems};
use crate::settings::Settings;
use serde_json::{json, Value};

/// The qemu user of virt-launcher images, which KubeVirt's own virtiofs containers run
/// as (root launchers included) and which owns the pod's files through `fsGroup: 107`.
const QEMU_ID: i64 = 107;
const VIRTIOFSD: &str = "/usr/libexec/virtiofsd";
/// KubeVirt's defaults for its virtiofs containers (`pkg/virtiofs/resources.go`).
const CPU_REQUEST: &str = "10m";
const MEMORY_REQUEST: &str = "1M";
const CPU_LIMIT: &str = "100m";
const MEMORY_LIMIT: &str = "80M";

/// Whether the pod runs a KubeVirt VM: the label `kubevirt.io: virt-launcher`, exactly
/// (hotplug-disk pods and KubeVirt's components carry the same key with other values).
pub fn is_virt_launcher(pod_value: &Json) -> bool {
    pod::label(pod_value, names::KUBEVIRT_LABEL) == Some(names::VIRT_LAUNCHER)
}

/// What a virt-launcher pod gets instead of IAM Roles Anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instead {
    Irsa,
    Nothing,
}

/// The warning for IAM Roles Anywhere annotations on a virt-launcher pod; `irsa_role`
/// is the ServiceAccount annotation of IRSA.
pub fn roles_anywhere_set_aside(irsa_role: &str, instead: Instead) -> Problem {
    let outcome = match instead {
        Instead::Irsa => format!("the ServiceAccount's {irsa_role} applies instead"),
        Instead::Nothing => {
            format!("give the VM IRSA instead: annotate its ServiceAccount with {irsa_role}")
        }
    };
    Problem::pod(
        Kind::Unsupported,
        format!(
            "this KubeVirt virt-launcher pod does not get IAM Roles Anywhere, whose helper \
             listens on the pod's 127.0.0.1: KubeVirt forwards that address into the VM, so \
             neither the guest nor the pod could reach it; its IAM Roles Anywhere annotations \
             are ignored, {outcome}"
        ),
    )
}

/// Where a virt-launcher pod's IRSA token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The IRSA this policy injects now.
    Injected,
    /// A token volume the pod already has (pod-identity-webhook's), if any.
    Existing,
}

/// The container that shares the IRSA token with the VM's guest, to append to
/// `spec.containers` of a virt-launcher pod that has the token, when the settings ask
/// for it and the pod has no such container yet. A warning when the VMI lacks what the
/// guest needs. Deterministic, so a migration target pod gets the same container. Only
/// reads the pod: the plan carries the container, `Patch::apply` adds it.
pub fn share_token(
    pod_value: &Json,
    token: Token,
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Value> {
    let has_token = token == Token::Injected || pod::volume(pod_value, VOLUME_NAME).is_some();
    let has_list = pod_value
        .get("spec")
        .and_then(|s| s.get("containers"))
        .is_some_and(Json::is_array);
    if !settings.kubevirt.share_token_with_guest
        || !is_virt_launcher(pod_value)
        || !has_token
        || container(pod_value, names::GUEST_TOKEN_CONTAINER).is_some()
        || !has_list
    {
        return None;
    }
    token_server(pod_value, settings, problems)
}

/// The token server for this pod, or a warning saying what the VMI lacks.
fn token_server(pod_value: &Json, settings: &Settings, problems: &mut Problems) -> Option<Value> {
    if pod::volume(pod_value, names::VIRTIOFS_VOLUME).is_none() {
        problems.warn(Problem::pod(
            Kind::Missing,
            format!(
                "the IRSA token is not shared with the VM's guest: the pod has no volume {} \
                 because its VMI declares no virtiofs filesystem; add one to the VMI, e.g. a \
                 serviceAccount volume listed in spec.domain.devices.filesystems with virtiofs: {{}}",
                names::VIRTIOFS_VOLUME
            ),
        ));
        return None;
    }
    let Some(image) = image(pod_value, settings) else {
        problems.warn(Problem::pod(
            Kind::Missing,
            format!(
                "the IRSA token is not shared with the VM's guest: the pod has no {} container \
                 with an image to run virtiofsd from; set kubevirt.virtiofsImage",
                names::COMPUTE_CONTAINER
            ),
        ));
        return None;
    };
    Some(virtiofsd(image, is_guaranteed(pod_value), settings))
}

/// The container called `name`, from either list.
fn container<'a>(pod_value: &'a Json<'a>, name: &str) -> Option<&'a Json<'a>> {
    pod::containers(pod_value)
        .map(|(_, c)| c)
        .find(|c| pod::name_of(c) == name)
}

/// The setting, else the `compute` container's image: virt-launcher images ship
/// virtiofsd, and the same image keeps it at the running KubeVirt's version.
fn image<'a>(pod_value: &'a Json<'a>, settings: &'a Settings) -> Option<&'a str> {
    let configured = settings.kubevirt.virtiofs_image.as_str();
    if !configured.is_empty() {
        return Some(configured);
    }
    container(pod_value, names::COMPUTE_CONTAINER)?
        .get("image")
        .and_then(Json::as_str)
        .filter(|i| !i.is_empty())
}

/// Whether every container sets cpu and memory limits with requests equal to them
/// (absent requests default to the limits): the pod's QoS class is then Guaranteed,
/// which an added container must keep. The API server sends quantities in canonical
/// form, so equal amounts are equal strings.
fn is_guaranteed(pod_value: &Json) -> bool {
    pod::containers(pod_value).all(|(_, c)| {
        ["cpu", "memory"].iter().all(|resource| {
            let limit = c
                .get("resources")
                .and_then(|r| r.get("limits")?.get(resource));
            let request = c
                .get("resources")
                .and_then(|r| r.get("requests")?.get(resource))
                .or(limit);
            limit.is_some() && request == limit
        })
    })
}

/// virtiofsd as KubeVirt runs it for a virtiofs filesystem, on the socket the eks-irsa
/// hook names and the token directory, which it mounts itself, so that it does not
/// depend on another webhook mounting it.
fn virtiofsd(image: &str, guaranteed: bool, settings: &Settings) -> Value {
    let tag = names::GUEST_TOKEN_TAG;
    let mut args = vec![
        format!("--socket-path={}/{tag}.sock", names::VIRTIOFS_SOCKET_DIR),
        format!("--shared-dir={MOUNT_PATH}"),
        "--sandbox=none".to_owned(),
        "--cache=auto".to_owned(),
        "--migration-on-error=guest-error".to_owned(),
        "--migration-mode=find-paths".to_owned(),
    ];
    if settings.kubevirt.translate_uid {
        // Kubernetes 1.36+ makes the token's symlinks the pod user's: mapped to the
        // guest's root, as KubeVirt does for ServiceAccount volumes since v1.9.
        args.push(format!("--translate-uid=host:{QEMU_ID}:0:1"));
    }
    let requests = if guaranteed {
        json!({"cpu": CPU_LIMIT, "memory": MEMORY_LIMIT})
    } else {
        json!({"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST})
    };
    json!({
        "name": names::GUEST_TOKEN_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [VIRTIOFSD],
        "args": args,
        "resources": {"requests": requests, "limits": {"cpu": CPU_LIMIT, "memory": MEMORY_LIMIT}},
        "securityContext": {
            "runAsUser": QEMU_ID,
            "runAsGroup": QEMU_ID,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": names::VIRTIOFS_VOLUME, "mountPath": names::VIRTIOFS_SOCKET_DIR},
            {"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true},
        ],
    })
}

#[cfg(test)]
mod tests {
    //! The KubeVirt rules on their own, then whole admissions of the e2e fixtures (pods
    //! built from KubeVirt's virt-launcher template) through `admission::evaluate`.
    use super::*;
    use crate::admission::{evaluate, Decision};
    use crate::testutil::{self, doc, map, settings, value};
    use rstest::rstest;

    const IRSA: [(&str, &str); 1] = [(
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::123456789012:role/vm",
    )];
    const IAMRA: [(&str, &str); 2] = [
        ("iamra.aws/role-arn", "arn:aws:iam::123456789012:role/vm"),
        (
            "iamra.aws/signing-profile-arn",
            "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
        ),
    ];

    /// The pod of an e2e fixture under `e2e-tests/fixtures/kubevirt`.
    fn fixture(name: &str) -> Value {
        let text = match name {
            "vm-burstable" => include_str!("../e2e-tests/fixtures/kubevirt/vm-burstable.json"),
            "vm-guaranteed" => include_str!("../e2e-tests/fixtures/kubevirt/vm-guaranteed.json"),
            "vm-no-virtiofs" => {
                include_str!("../e2e-tests/fixtures/kubevirt/vm-no-virtiofs.json")
            }
            "vm-no-hook" => include_str!("../e2e-tests/fixtures/kubevirt/vm-no-hook.json"),
            "vm-shared" => include_str!("../e2e-tests/fixtures/kubevirt/vm-shared.json"),
            "vm-iamra" => include_str!("../e2e-tests/fixtures/kubevirt/vm-iamra.json"),
            "hotplug-disk" => include_str!("../e2e-tests/fixtures/kubevirt/hotplug-disk.json"),
            other => panic!("no fixture {other}"),
        };
        let review: Value = serde_json::from_str(text).unwrap();
        review["request"]["object"].clone()
    }

    fn sharing() -> Settings {
        let mut s = settings();
        s.kubevirt.share_token_with_guest = true;
        s
    }

    /// Admits `pod` as KubeVirt creates it in namespace vms, its ServiceAccount
    /// carrying `account`.
    fn admit(pod: &Value, account: &[(&str, &str)], s: &Settings) -> Decision<'static> {
        let request = testutil::request(json!({
            "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "vms", "object": pod,
        }));
        let account = map(account);
        evaluate(request, &s.clone().into(), &|ns, name| {
            assert_eq!((ns, name), ("vms", "example-sa"));
            Ok(account.clone())
        })
    }

    fn mutated(pod: &Value, account: &[(&str, &str)], s: &Settings) -> (Value, Vec<String>) {
        match admit(pod, account, s) {
            Decision::Mutate { object, warnings } => (value(&object), warnings),
            other => panic!("expected a mutation, got {other:?}"),
        }
    }

    fn names(pod: &Value, list: &str) -> Vec<String> {
        pod::list(&doc(pod.clone()), list)
            .iter()
            .map(|c| pod::name_of(c).to_owned())
            .collect()
    }

    fn servers(pod: &Value) -> Vec<Value> {
        pod::containers(&doc(pod.clone()))
            .map(|(_, c)| c)
            .filter(|c| pod::name_of(c) == names::GUEST_TOKEN_CONTAINER)
            .map(value)
            .collect()
    }

    /// Every container has the IRSA role, token file and mount, once.
    fn assert_irsa_everywhere(pod: &Value) {
        for (_, c) in pod::containers(&doc(pod.clone())) {
            let env: Vec<&str> = pod::env_of(c)
                .iter()
                .filter_map(|e| e.get("name")?.as_str())
                .filter(|n| n.starts_with("AWS_"))
                .collect();
            assert_eq!(
                env,
                ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
                "{}",
                pod::name_of(c)
            );
            let name = pod::name_of(c);
            let c = value(c);
            let mounts = c["volumeMounts"].as_array().unwrap();
            let token: Vec<&Value> = mounts.iter().filter(|m| m["name"] == VOLUME_NAME).collect();
            assert_eq!(token.len(), 1, "{name}");
            assert_eq!(token[0]["mountPath"], MOUNT_PATH);
        }
    }

    #[rstest]
    #[case::virt_launcher(json!({"kubevirt.io": "virt-launcher"}), true)]
    #[case::hotplug_disk(json!({"kubevirt.io": "hotplug-disk"}), false)]
    #[case::virt_handler(json!({"kubevirt.io": "virt-handler"}), false)]
    #[case::a_longer_value(json!({"kubevirt.io": "virt-launcher-x"}), false)]
    #[case::only_other_kubevirt_labels(json!({"vm.kubevirt.io/name": "vm", "kubevirt.io/created-by": "x"}), false)]
    #[case::not_a_string(json!({"kubevirt.io": true}), false)]
    fn virt_launcher_pods_are_recognised_exactly(#[case] labels: Value, #[case] is: bool) {
        assert_eq!(
            is_virt_launcher(&doc(json!({"metadata": {"labels": labels}}))),
            is
        );
    }

    fn limited(requests: Value, limits: Value) -> Value {
        json!({"resources": {"requests": requests, "limits": limits}})
    }

    #[rstest]
    #[case::equal(limited(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"})), true)]
    #[case::requests_default_to_limits(json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}), true)]
    #[case::cpu_request_lower(limited(json!({"cpu": "500m", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"})), false)]
    #[case::no_memory_limit(limited(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1"})), false)]
    #[case::no_resources(json!({}), false)]
    fn guaranteed_shape_needs_every_container_at_its_limits(
        #[case] compute: Value,
        #[case] guaranteed: bool,
    ) {
        let at_limits = limited(
            json!({"cpu": "1", "memory": "1Gi"}),
            json!({"cpu": "1", "memory": "1Gi"}),
        );
        let pod = doc(json!({"spec": {"initContainers": [at_limits], "containers": [compute]}}));
        assert_eq!(is_guaranteed(&pod), guaranteed);
        let burstable_init =
            doc(json!({"spec": {"initContainers": [{}], "containers": [at_limits]}}));
        assert!(!is_guaranteed(&burstable_init));
    }

    #[test]
    fn the_token_server_is_virtiofsd_on_the_hooks_socket_hardened() {
        let server = virtiofsd("launcher:v1.9.0", false, &settings());
        assert_eq!(
            server,
            json!({
                "name": "virtiofs-aws-iam-token",
                "image": "launcher:v1.9.0",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/libexec/virtiofsd"],
                "args": [
                    "--socket-path=/var/run/kubevirt/virtiofs-containers/aws-iam-token.sock",
                    "--shared-dir=/var/run/secrets/eks.amazonaws.com/serviceaccount",
                    "--sandbox=none", "--cache=auto",
                    "--migration-on-error=guest-error", "--migration-mode=find-paths",
                    "--translate-uid=host:107:0:1"
                ],
                "resources": {"requests": {"cpu": "10m", "memory": "1M"}, "limits": {"cpu": "100m", "memory": "80M"}},
                "securityContext": {
                    "runAsUser": 107, "runAsGroup": 107, "runAsNonRoot": true,
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": true, "seccompProfile": {"type": "RuntimeDefault"}
                },
                "volumeMounts": [
                    {"name": "virtiofs-containers", "mountPath": "/var/run/kubevirt/virtiofs-containers"},
                    {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}
                ]
            })
        );
    }

    #[test]
    fn a_burstable_vm_gets_irsa_everywhere_and_one_token_server_last() {
        let original = fixture("vm-burstable");
        let (pod, warnings) = mutated(&original, &IRSA, &sharing());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            names(&pod, "containers"),
            [
                "compute",
                "virtiofs-serviceaccount-fs",
                "hook-sidecar-0",
                "virtiofs-aws-iam-token"
            ]
        );
        assert_eq!(names(&pod, "initContainers"), ["guest-console-log"]);
        assert_irsa_everywhere(&pod);
        let server = &servers(&pod)[0];
        assert_eq!(server["image"], "quay.io/kubevirt/virt-launcher:v1.9.0");
        assert_eq!(
            server["resources"]["requests"],
            json!({"cpu": "10m", "memory": "1M"})
        );
        // KubeVirt's own objects are kept: only env and mounts are appended to its containers.
        assert_eq!(pod["metadata"], original["metadata"]);
        let compute = &pod["spec"]["containers"][0];
        for field in ["command", "args", "resources", "securityContext", "image"] {
            assert_eq!(
                compute[field], original["spec"]["containers"][0][field],
                "{field}"
            );
        }
        let volumes = names(&pod, "volumes");
        assert_eq!(
            volumes[..volumes.len() - 1],
            names(&original, "volumes")[..]
        );
        assert_eq!(volumes.last().unwrap(), VOLUME_NAME);
        assert_eq!(
            admit(&pod, &IRSA, &sharing()),
            Decision::Accept { warnings: vec![] }
        );
    }

    #[test]
    fn a_guaranteed_vm_keeps_its_qos_class() {
        let (pod, _) = mutated(&fixture("vm-guaranteed"), &IRSA, &sharing());
        let server = &servers(&pod)[0];
        assert_eq!(
            server["resources"]["requests"],
            server["resources"]["limits"]
        );
        assert!(is_guaranteed(&doc(pod)));
    }

    #[test]
    fn without_a_virtiofs_filesystem_there_is_irsa_and_a_warning_saying_what_to_add() {
        let (pod, warnings) = mutated(&fixture("vm-no-virtiofs"), &IRSA, &sharing());
        assert!(servers(&pod).is_empty());
        assert_irsa_everywhere(&pod);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("no volume virtiofs-containers"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("spec.domain.devices.filesystems"),
            "{warnings:?}"
        );
        assert_eq!(
            admit(&pod, &IRSA, &sharing()),
            Decision::Accept { warnings }
        );
    }

    #[test]
    fn a_vm_without_a_hook_sidecar_is_shared_too() {
        let (pod, _) = mutated(&fixture("vm-no-hook"), &IRSA, &sharing());
        assert_eq!(
            names(&pod, "containers"),
            [
                "compute",
                "virtiofs-serviceaccount-fs",
                "virtiofs-aws-iam-token"
            ]
        );
        assert_irsa_everywhere(&pod);
    }

    #[test]
    fn an_existing_token_server_is_kept_and_given_the_token() {
        let original = fixture("vm-shared");
        let (pod, _) = mutated(&original, &IRSA, &sharing());
        assert_eq!(names(&pod, "containers"), names(&original, "containers"));
        let server = &servers(&pod)[0];
        assert_eq!(server["image"], "quay.io/kubevirt/virt-launcher:v1.5.1");
        assert_irsa_everywhere(&pod);
        assert_eq!(
            admit(&pod, &IRSA, &sharing()),
            Decision::Accept { warnings: vec![] }
        );
    }

    #[test]
    fn a_token_server_irsa_skips_still_comes_to_a_pod_that_has_irsa() {
        let (mut pod, _) = mutated(&fixture("vm-burstable"), &IRSA, &settings());
        pod["metadata"]["annotations"]["eks.amazonaws.com/skip-containers"] =
            json!(names::GUEST_TOKEN_CONTAINER);
        let (shared, _) = mutated(&pod, &IRSA, &sharing());
        assert_eq!(servers(&shared).len(), 1);
        assert!(pod::env_of(&doc(servers(&shared)[0].clone())).is_empty());
    }

    #[test]
    fn sharing_is_off_by_default() {
        let (pod, warnings) = mutated(&fixture("vm-burstable"), &IRSA, &settings());
        assert!(servers(&pod).is_empty() && warnings.is_empty());
        assert_irsa_everywhere(&pod);
        assert_eq!(pod["spec"]["containers"][0]["name"], "compute");
    }

    #[test]
    fn a_token_from_pod_identity_webhook_is_shared_without_irsa_from_us() {
        let mut pod = fixture("vm-burstable");
        let token = json!({"name": VOLUME_NAME, "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}});
        pod["spec"]["volumes"].as_array_mut().unwrap().push(token);
        let (shared, _) = mutated(&pod, &[], &sharing());
        assert_eq!(servers(&shared).len(), 1);
        assert!(pod::env_of(&doc(shared["spec"]["containers"][0].clone()))
            .iter()
            .all(|e| e.get("name").and_then(Json::as_str) != Some("AWS_ROLE_ARN")));
        assert_eq!(
            admit(&shared, &[], &sharing()),
            Decision::Accept { warnings: vec![] }
        );
        assert_eq!(
            admit(&fixture("vm-burstable"), &[], &sharing()),
            Decision::Accept { warnings: vec![] }
        );
    }

    #[test]
    fn the_image_and_translate_uid_follow_the_settings() {
        let mut s = sharing();
        s.kubevirt.virtiofs_image = "registry.example/virt-launcher:v1.7.0".into();
        s.kubevirt.translate_uid = false;
        let (pod, _) = mutated(&fixture("vm-burstable"), &IRSA, &s);
        let server = &servers(&pod)[0];
        assert_eq!(server["image"], "registry.example/virt-launcher:v1.7.0");
        let args = server["args"].as_array().unwrap();
        assert!(
            args.iter()
                .all(|a| !a.as_str().unwrap().starts_with("--translate-uid")),
            "{args:?}"
        );
    }

    #[rstest]
    #[case::pod_annotations(fixture("vm-iamra"), &[][..], None)]
    #[case::service_account_annotations(fixture("vm-burstable"), &IAMRA[..], None)]
    #[case::irsa_beside_pod_annotations(fixture("vm-iamra"), &IRSA[..], Some("the ServiceAccount's eks.amazonaws.com/role-arn applies instead"))]
    #[case::irsa_beside_service_account_annotations(fixture("vm-burstable"), &[IRSA[0], IAMRA[0], IAMRA[1]][..], Some("the ServiceAccount's eks.amazonaws.com/role-arn applies instead"))]
    fn a_vm_never_gets_iam_roles_anywhere_and_is_told_why(
        #[case] pod: Value,
        #[case] account: &[(&str, &str)],
        #[case] irsa: Option<&str>,
    ) {
        let (object, warnings) = mutated(&pod, account, &sharing());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("does not get IAM Roles Anywhere"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains(
                irsa.unwrap_or("annotate its ServiceAccount with eks.amazonaws.com/role-arn")
            ),
            "{warnings:?}"
        );
        for (_, c) in pod::containers(&doc(object.clone())) {
            assert!(pod::env_of(c)
                .iter()
                .all(|e| e.get("name").and_then(Json::as_str)
                    != Some("AWS_EC2_METADATA_SERVICE_ENDPOINT")));
            assert_ne!(pod::name_of(c), "iamra-credential-helper");
        }
        assert_eq!(
            object["metadata"]["annotations"]["iamra.aws/warnings"],
            warnings[0]
        );
        let mut unrecorded = object.clone();
        unrecorded["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("iamra.aws/warnings");
        assert_eq!(irsa.is_some(), unrecorded != pod);
        if irsa.is_some() {
            assert_irsa_everywhere(&object);
        }
    }

    #[test]
    fn without_service_account_reads_a_vm_is_told_why_too() {
        let mut s = sharing();
        s.read_service_accounts = false;
        s.irsa.annotation_prefix = "irsa.example.com".into();
        let (object, warnings) = mutated(&fixture("vm-iamra"), &[], &s);
        assert_eq!(
            object["metadata"]["annotations"]["iamra.aws/warnings"],
            warnings[0]
        );
        assert!(
            warnings[0].contains("does not get IAM Roles Anywhere")
                && warnings[0]
                    .ends_with("annotate its ServiceAccount with irsa.example.com/role-arn"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_hotplug_disk_pod_is_any_pod() {
        let (pod, warnings) = mutated(&fixture("hotplug-disk"), &IRSA, &sharing());
        assert!(servers(&pod).is_empty() && warnings.is_empty());
        assert_irsa_everywhere(&pod);
        let (pod, _) = mutated(&fixture("hotplug-disk"), &IAMRA, &sharing());
        assert_eq!(
            pod["spec"]["initContainers"][0]["name"],
            "iamra-credential-helper"
        );
    }
}
