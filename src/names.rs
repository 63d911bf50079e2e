//! Every annotation and label name the policy reads or writes, without their prefixes
//! (the settings choose those), and how a full key is made.

/// `<prefix>/<name>`.
pub fn key(prefix: &str, name: &str) -> String {
    format!("{prefix}/{name}")
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
pub const BOOKKEEPING: [&str; 2] = [INJECTED, CONFIG_HASH];

// pod-identity-webhook's, under `irsa.annotationPrefix` (`role-arn` and `audience` too).
pub const STS_REGIONAL_ENDPOINTS: &str = "sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "token-expiration";
/// Read by IRSA, and written by IAM Roles Anywhere to keep the webhook off its sidecar.
pub const SKIP_CONTAINERS: &str = "skip-containers";
/// A pod label: its presence, whatever its value, keeps IRSA away from the pod, as the
/// webhook's `objectSelector` (`DoesNotExist`) does.
pub const SKIP_LABEL: &str = "skip-pod-identity-webhook";
