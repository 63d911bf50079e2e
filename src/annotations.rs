//! Reads the IAM Roles Anywhere annotations (`<prefix>/role-arn`, ...) into a typed,
//! validated [`Request`]. Every error names the annotation and the expected form.

use crate::settings::{self, LogLevel, Settings};
use crate::validation::{self, REGION_FORM};
use std::collections::BTreeMap;

/// Annotation values as found on the pod (and, in IRSA mode, its ServiceAccount).
pub type Annotations = BTreeMap<String, String>;

pub const ROLE_ARN: &str = "role-arn";
pub const SIGNING_PROFILE_ARN: &str = "signing-profile-arn";
pub const SESSION_NAME: &str = "session-name";
pub const TOKEN_DURATION: &str = "token-duration";
pub const AUDIENCE: &str = "audience";
pub const LOG_LEVEL: &str = "log-level";
pub const REGION: &str = "region";
/// Written by the injection, read back for idempotence.
pub const INJECTED: &str = "injected";
pub const CONFIG_HASH: &str = "config-hash";

const KNOWN: [&str; 9] = [
    ROLE_ARN,
    SIGNING_PROFILE_ARN,
    SESSION_NAME,
    TOKEN_DURATION,
    AUDIENCE,
    LOG_LEVEL,
    REGION,
    INJECTED,
    CONFIG_HASH,
];

/// What a pod asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub role_arn: String,
    pub profile_arn: String,
    /// `None`: the pod's own name, read at run time through the downward API.
    pub session_name: Option<String>,
    pub session_seconds: u64,
    pub log_level: LogLevel,
    /// The region the app's AWS SDK uses, when the pod overrides it.
    pub region: Option<String>,
}

/// The outcome of reading the annotations of one pod.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `None` when the pod carries neither required annotation: it did not ask.
    pub request: Option<Request>,
    pub warnings: Vec<String>,
}

pub fn key(prefix: &str, name: &str) -> String {
    format!("{prefix}/{name}")
}

/// Parses the annotations under the settings' prefix. `Err` lists every problem.
pub fn parse(annotations: &Annotations, settings: &Settings) -> Result<Parsed, Vec<String>> {
    let prefix = settings.annotation_prefix.as_str();
    let get = |name: &str| annotations.get(&key(prefix, name)).map(|v| v.trim());
    let warnings = annotations
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.strip_prefix('/'))
        .filter(|name| !KNOWN.contains(name))
        .map(|name| {
            format!(
                "annotation {prefix}/{name} is not one this policy reads (known: {})",
                KNOWN[..7].join(", ")
            )
        })
        .collect();

    let (role, profile) = match (get(ROLE_ARN), get(SIGNING_PROFILE_ARN)) {
        (None, None) => {
            return Ok(Parsed {
                request: None,
                warnings,
            })
        }
        (Some(role), Some(profile)) => (role, profile),
        (found, _) => {
            let (have, missing) = if found.is_some() {
                (ROLE_ARN, SIGNING_PROFILE_ARN)
            } else {
                (SIGNING_PROFILE_ARN, ROLE_ARN)
            };
            return Err(vec![format!(
                "annotation {prefix}/{have} needs {prefix}/{missing} too: set both to get \
                 IAM Roles Anywhere credentials, or neither"
            )]);
        }
    };

    let mut errors = Vec::new();
    let mut field = |name: &str, result: Result<(), String>| {
        if let Err(e) = result {
            errors.push(format!("annotation {prefix}/{name}: {e}"));
        }
    };
    // Settings validation guarantees a well-formed trust anchor in inject mode.
    let anchor = validation::rolesanywhere_arn(&settings.trust_anchor_arn, "trust-anchor").ok();

    field(
        ROLE_ARN,
        validation::role_arn(role).and_then(|arn| match &anchor {
            Some(a) if a.partition != arn.partition => Err(format!(
                "the role is in partition {:?} but the trust anchor in {:?}",
                arn.partition, a.partition
            )),
            _ => Ok(()),
        }),
    );
    field(
        SIGNING_PROFILE_ARN,
        validation::rolesanywhere_arn(profile, "profile").and_then(|arn| match &anchor {
            Some(a) if (a.partition, a.region) != (arn.partition, arn.region) => Err(format!(
                "the profile is in {}/{} but the trust anchor in {}/{}; IAM Roles Anywhere \
                 needs both in one partition and region",
                arn.partition, arn.region, a.partition, a.region
            )),
            _ => Ok(()),
        }),
    );

    let session_name = get(SESSION_NAME).map(str::to_owned);
    if let Some(name) = &session_name {
        field(SESSION_NAME, validation::session_name(name));
    }

    let duration = get(TOKEN_DURATION).unwrap_or(&settings.defaults.session_duration);
    let session_seconds = settings::session_seconds(duration)
        .map_err(|e| field(TOKEN_DURATION, Err(e)))
        .unwrap_or_default();

    // The audience shapes the IRSA mode's token, not the sidecar; a typo still fails early.
    if let Some(audience) = get(AUDIENCE) {
        field(AUDIENCE, validation::audience(audience));
    }

    let log_level = match get(LOG_LEVEL) {
        None => settings.sidecar.log_level,
        Some(level) => LogLevel::parse(level).unwrap_or_else(|| {
            field(
                LOG_LEVEL,
                Err(format!("{level:?} is not one of debug, info, warn, error")),
            );
            LogLevel::default()
        }),
    };

    let region = get(REGION).map(str::to_owned);
    if let Some(r) = &region {
        if !validation::is_region(r) {
            field(REGION, Err(format!("{r:?} is not {REGION_FORM}")));
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Parsed {
        request: Some(Request {
            role_arn: role.to_owned(),
            profile_arn: profile.to_owned(),
            session_name,
            session_seconds,
            log_level,
            region,
        }),
        warnings,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rstest::rstest;

    pub const ROLE: &str = "arn:aws:iam::123456789012:role/app";
    pub const PROFILE: &str =
        "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70";

    pub fn settings() -> Settings {
        serde_json::from_value(serde_json::json!({
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
            "region": "eu-west-1"
        }))
        .unwrap()
    }

    pub fn annotations(extra: &[(&str, &str)]) -> Annotations {
        let mut a: Annotations = [
            ("iamra.aws/role-arn", ROLE),
            ("iamra.aws/signing-profile-arn", PROFILE),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        a.retain(|_, v| !v.is_empty());
        a
    }

    fn request(extra: &[(&str, &str)]) -> Request {
        parse(&annotations(extra), &settings())
            .unwrap()
            .request
            .unwrap()
    }

    fn error(extra: &[(&str, &str)]) -> String {
        parse(&annotations(extra), &settings())
            .unwrap_err()
            .join("; ")
    }

    #[test]
    fn defaults_come_from_settings() {
        let r = request(&[]);
        assert_eq!(r.role_arn, ROLE);
        assert_eq!(r.profile_arn, PROFILE);
        assert_eq!(r.session_name, None);
        assert_eq!(r.session_seconds, 900);
        assert_eq!(r.log_level, LogLevel::Info);
        assert_eq!(r.region, None);
    }

    #[test]
    fn a_pod_without_the_annotations_did_not_ask() {
        let parsed = parse(&Annotations::new(), &settings()).unwrap();
        assert_eq!(parsed, Parsed::default());
    }

    #[rstest]
    #[case(&[("iamra.aws/session-name", "payments-api")], |r: &Request| r.session_name.as_deref() == Some("payments-api"))]
    #[case(&[("iamra.aws/token-duration", "3600")], |r: &Request| r.session_seconds == 3600)]
    #[case(&[("iamra.aws/token-duration", "900s")], |r: &Request| r.session_seconds == 900)]
    #[case(&[("iamra.aws/token-duration", "15m")], |r: &Request| r.session_seconds == 900)]
    #[case(&[("iamra.aws/token-duration", "12h")], |r: &Request| r.session_seconds == 43200)]
    #[case(&[("iamra.aws/audience", "example.com/aud")], |r: &Request| r.role_arn == ROLE)]
    #[case(&[("iamra.aws/log-level", "debug")], |r: &Request| r.log_level == LogLevel::Debug)]
    #[case(&[("iamra.aws/log-level", "error")], |r: &Request| r.log_level == LogLevel::Error)]
    #[case(&[("iamra.aws/region", "us-west-2")], |r: &Request| r.region.as_deref() == Some("us-west-2"))]
    #[case(&[("iamra.aws/role-arn", " arn:aws:iam::123456789012:role/app ")], |r: &Request| r.role_arn == ROLE)]
    fn optional_annotations(#[case] extra: &[(&str, &str)], #[case] check: fn(&Request) -> bool) {
        let r = request(extra);
        assert!(check(&r), "{r:?}");
    }

    #[rstest]
    #[case(&[("iamra.aws/signing-profile-arn", "")], "annotation iamra.aws/role-arn needs iamra.aws/signing-profile-arn too")]
    #[case(&[("iamra.aws/role-arn", "")], "annotation iamra.aws/signing-profile-arn needs iamra.aws/role-arn too")]
    #[case(&[("iamra.aws/role-arn", "app")], "annotation iamra.aws/role-arn: \"app\" is not an IAM role ARN of the form arn:<partition>:iam::<12-digit account>:role/<path/>name")]
    #[case(&[("iamra.aws/role-arn", "arn:aws-cn:iam::123456789012:role/app")], "annotation iamra.aws/role-arn: the role is in partition \"aws-cn\"")]
    #[case(&[("iamra.aws/signing-profile-arn", "profile/x")], "annotation iamra.aws/signing-profile-arn: \"profile/x\" is not an IAM Roles Anywhere profile ARN")]
    #[case(&[("iamra.aws/signing-profile-arn", "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70")], "the profile is in aws/us-east-1 but the trust anchor in aws/eu-west-1")]
    #[case(&[("iamra.aws/session-name", "has spaces")], "annotation iamra.aws/session-name: \"has spaces\" is not a role session name")]
    #[case(&[("iamra.aws/session-name", "x")], "annotation iamra.aws/session-name:")]
    #[case(&[("iamra.aws/token-duration", "soon")], "annotation iamra.aws/token-duration: \"soon\" is not a duration")]
    #[case(&[("iamra.aws/token-duration", "60")], "annotation iamra.aws/token-duration: \"60\" is 60s; it must be between 900s (15m) and 43200s (12h)")]
    #[case(&[("iamra.aws/token-duration", "13h")], "annotation iamra.aws/token-duration: \"13h\" is 46800s")]
    #[case(&[("iamra.aws/audience", "two words")], "annotation iamra.aws/audience:")]
    #[case(&[("iamra.aws/log-level", "trace")], "annotation iamra.aws/log-level: \"trace\" is not one of debug, info, warn, error")]
    #[case(&[("iamra.aws/region", "mars-1")], "annotation iamra.aws/region: \"mars-1\" is not an AWS region name")]
    fn rejections(#[case] extra: &[(&str, &str)], #[case] message: &str) {
        let err = error(extra);
        assert!(err.contains(message), "{err:?} should contain {message:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = error(&[("iamra.aws/region", "x"), ("iamra.aws/log-level", "loud")]);
        assert!(
            err.contains("iamra.aws/region") && err.contains("iamra.aws/log-level"),
            "{err}"
        );
    }

    #[test]
    fn unknown_annotations_under_the_prefix_warn() {
        let parsed = parse(&annotations(&[("iamra.aws/role_arn", "x")]), &settings()).unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert!(parsed.warnings[0].contains("iamra.aws/role_arn"));
    }

    #[test]
    fn the_prefix_comes_from_settings() {
        let mut s = settings();
        s.annotation_prefix = "example.com".into();
        let a: Annotations = [
            ("example.com/role-arn", ROLE),
            ("example.com/signing-profile-arn", PROFILE),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert!(parse(&a, &s).unwrap().request.is_some());
        assert!(parse(&annotations(&[]), &s).unwrap().request.is_none());
    }
}
