//! IRSA (IAM roles for service accounts) with the contract of
//! aws/amazon-eks-pod-identity-webhook: a ServiceAccount annotated
//! `<irsa.annotationPrefix>/role-arn` gives its pods a projected service account token
//! and the variables the AWS SDKs read for a web identity. [`ask`] reads the
//! annotations and settings, [`plan`] the edits; neither writes the pod.
//!
//! Like the webhook: the same volume, mount path, token path (under `C:` on Windows),
//! variables and order; a container that already sets one variable of a group (role and
//! token file; the two region variables; the STS endpoint) keeps that group as written,
//! and one that sets a variable of every group is left alone, token mount included;
//! containers named in `<prefix>/skip-containers` are left alone; a pod that already
//! has the `aws-iam-token` volume, mounts and variables is not changed again.
//! Unlike the webhook: a malformed value is rejected with a message that names the
//! annotation (the webhook logs and falls back), `skip-containers` is read from the
//! ServiceAccount too, `irsa.region` must be a region name (the webhook copies any
//! string), and the token expiration is used without the jitter the webhook adds to EKS
//! Pod Identity tokens (its IRSA path adds none either).

pub mod ask;
pub mod plan;
