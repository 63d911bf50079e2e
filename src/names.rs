//! Every annotation and label name the policy reads or writes, without their prefixes
//! (the settings choose those), and how a full key is made.

/// `<prefix>/<name>`, pushed into a `String` of its size: `concat` (a generic join)
/// cost a fresh request about twice as much per key.
pub fn key(prefix: &str, name: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + 1 + name.len());
    key.push_str(prefix);
    key.push('/');
    key.push_str(name);
    key
}

// IAM Roles Anywhere, under `annotationPrefix` (pod and ServiceAccount).
pub const ROLE_ARN: &str = "role-arn";
pub const SIGNING_PROFILE_ARN: &str = "signing-profile-arn";
pub const SESSION_NAME: &str = "session-name";
pub const TOKEN_DURATION: &str = "token-duration";
pub const AUDIENCE: &str = "audience";
pub const LOG_LEVEL: &str = "log-level";
pub const REGION: &str = "region";
/// Written by the injection, read back for idempotence; only ever read from the pod.
pub const INJECTED: &str = "injected";
pub const CONFIG_HASH: &str = "config-hash";
/// The admission response's warnings, one per line, recorded on the pod too: the
/// controller that creates a pod drops them.
pub const WARNINGS: &str = "warnings";

/// The names a pod or ServiceAccount sets to ask for IAM Roles Anywhere.
pub const IAMRA_ASKS: [&str; 7] = [
    ROLE_ARN,
    SIGNING_PROFILE_ARN,
    SESSION_NAME,
    TOKEN_DURATION,
    AUDIENCE,
    LOG_LEVEL,
    REGION,
];
pub const BOOKKEEPING: [&str; 3] = [INJECTED, CONFIG_HASH, WARNINGS];

// pod-identity-webhook's, under `irsa.annotationPrefix` (`role-arn` and `audience` too).
pub const STS_REGIONAL_ENDPOINTS: &str = "sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "token-expiration";
/// Read by IRSA, and written by IAM Roles Anywhere to keep the webhook off its sidecar.
pub const SKIP_CONTAINERS: &str = "skip-containers";
/// A pod label: its presence, whatever its value, keeps IRSA away from the pod, as the
/// webhook's `objectSelector` (`DoesNotExist`) does.
pub const SKIP_LABEL: &str = "skip-pod-identity-webhook";

// KubeVirt's, fixed by KubeVirt and by the eks-irsa hook sidecar (see `kubevirt`).
/// The label every virt-launcher pod carries, `kubevirt.io: virt-launcher`; the same key
/// with other values marks hotplug-disk pods and KubeVirt's own components.
pub const KUBEVIRT_LABEL: &str = "kubevirt.io";
pub const VIRT_LAUNCHER: &str = "virt-launcher";
/// The container that runs the VM; its image ships virtiofsd.
pub const COMPUTE_CONTAINER: &str = "compute";
/// The emptyDir KubeVirt adds, only for a VMI with a virtiofs filesystem, and where its
/// libvirt looks for virtiofsd sockets.
pub const VIRTIOFS_VOLUME: &str = "virtiofs-containers";
pub const VIRTIOFS_SOCKET_DIR: &str = "/var/run/kubevirt/virtiofs-containers";
/// The guest's mount tag; also the socket's and the token server container's name, as
/// KubeVirt names the container of a virtiofs filesystem `virtiofs-<tag>`.
pub const GUEST_TOKEN_TAG: &str = "aws-iam-token";
pub const GUEST_TOKEN_CONTAINER: &str = "virtiofs-aws-iam-token";
