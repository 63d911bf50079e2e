//! What the ServiceAccount, the pod and the settings ask of IRSA, validated. Each value
//! comes from the first source that has it, as in pod-identity-webhook's handler:
//!
//! | value        | precedence                                                               |
//! |--------------|--------------------------------------------------------------------------|
//! | role         | ServiceAccount `role-arn`                                                |
//! | audience     | pod `<annotationPrefix>/audience` > ServiceAccount `audience` > `defaults.audience` |
//! | regional STS | ServiceAccount `sts-regional-endpoints` > `irsa.stsRegionalEndpoints`    |
//! | expiration   | pod `token-expiration` > ServiceAccount `token-expiration` > `irsa.tokenExpiration`; raised to 600 with a warning |
//! | region       | `irsa.region`                                                            |
//! | skip list    | pod `skip-containers` and ServiceAccount `skip-containers`               |
//!
//! Names without a prefix are under `irsa.annotationPrefix`.

use crate::json::Json;
use crate::names;
use crate::pod::{self, Account, Annotations, Origin, Sources};
use crate::problem::{quote, Flaw, Kind, Problem, Problems, Source};
use crate::settings::Settings;
use crate::validation;
use std::collections::BTreeSet;

/// The API server's floor for a projected token's lifetime; shorter asks are raised to it.
pub const MIN_TOKEN_EXPIRATION: u64 = 600;
/// The API server's ceiling: 2^32 seconds.
const MAX_TOKEN_EXPIRATION: u64 = 1 << 32;

/// What the ServiceAccount, the pod and the settings ask for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub role_arn: String,
    pub audience: String,
    pub expiration: u64,
    pub regional_sts: bool,
    pub region: Option<String>,
    /// Container names from `skip-containers` on the pod and on the ServiceAccount.
    pub skip: BTreeSet<String>,
}

/// Whether the ServiceAccount asks for IRSA.
pub fn is_requested(service_account: &Annotations, settings: &Settings) -> bool {
    service_account.contains_key(&names::key(
        &settings.irsa.annotation_prefix,
        names::ROLE_ARN,
    ))
}

/// Whether the pod carries the skip label.
pub fn is_skipped(pod_value: &Json, settings: &Settings) -> bool {
    pod::has_label(
        pod_value,
        &names::key(&settings.irsa.annotation_prefix, names::SKIP_LABEL),
    )
}

/// `<irsa.annotationPrefix>/<name>` read from [`Sources`], each value with where it was
/// found, in this mode's words.
struct Reader<'a> {
    sources: Sources<'a>,
    settings: &'a Settings,
}

impl<'a> Reader<'a> {
    fn key(&self, name: &str) -> String {
        names::key(&self.settings.irsa.annotation_prefix, name)
    }

    fn account_at(&self, key: String) -> Source {
        let account = self.sources.account_name().to_owned();
        Source::Account { key, account }
    }

    fn on_account(&self, name: &str) -> Option<(&'a str, Source)> {
        let key = self.key(name);
        let value = self.sources.on_account(&key)?;
        Some((value, self.account_at(key)))
    }

    /// The pod's `pod_key` (its source made by `on_pod`), else the ServiceAccount's
    /// `<prefix>/<name>`.
    fn get(
        &self,
        pod_key: String,
        on_pod: fn(String) -> Source,
        name: &str,
    ) -> Option<(&'a str, Source)> {
        let key = self.key(name);
        match self.sources.get(&pod_key, &key)? {
            (value, Origin::Pod) => Some((value, on_pod(pod_key))),
            (value, Origin::Account) => Some((value, self.account_at(key))),
        }
    }
}

/// Reads the ask; `None` when `problems` then holds errors.
pub fn read(
    pod_value: &Json,
    account: Account,
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Ask> {
    let reader = Reader {
        sources: Sources::new(pod_value, Some(account)),
        settings,
    };
    let role_arn = role_arn(&reader, problems);
    let audience = audience(&reader, problems);
    let regional_sts = regional_sts(&reader, problems);
    let expiration = expiration(&reader, problems);
    let skip = skip_list(&reader);
    if problems.has_errors() {
        return None;
    }
    let region = Some(settings.irsa.region.clone()).filter(|r| !r.is_empty());
    Some(Ask {
        role_arn,
        audience,
        expiration,
        regional_sts,
        region,
        skip,
    })
}

fn role_arn(reader: &Reader, problems: &mut Problems) -> String {
    let (role, at) = reader
        .on_account(names::ROLE_ARN)
        .unwrap_or_else(|| ("", reader.account_at(reader.key(names::ROLE_ARN))));
    problems.check(|| at, validation::role_arn(role));
    role.to_owned()
}

fn audience(reader: &Reader, problems: &mut Problems) -> String {
    let pod_key = names::key(&reader.settings.annotation_prefix, names::AUDIENCE);
    let (audience, at) = reader
        .get(pod_key, Source::Annotation, names::AUDIENCE)
        .unwrap_or_else(|| {
            // The setting, validated with the settings; a problem would name the account.
            let at = reader.account_at(reader.key(names::AUDIENCE));
            (&reader.settings.defaults.audience, at)
        });
    problems.check(|| at, validation::audience(audience));
    audience.to_owned()
}

/// Go's `strconv.ParseBool`, which the webhook uses for `sts-regional-endpoints`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn regional_sts(reader: &Reader, problems: &mut Problems) -> bool {
    let Some((value, at)) = reader.on_account(names::STS_REGIONAL_ENDPOINTS) else {
        return reader.settings.irsa.sts_regional_endpoints;
    };
    let parsed = parse_bool(value).ok_or_else(|| {
        Flaw::new(
            Kind::Malformed,
            format!("{} is not true or false", quote(value)),
        )
    });
    problems.check(|| at, parsed).unwrap_or(false)
}

fn expiration(reader: &Reader, problems: &mut Problems) -> u64 {
    let pod_key = reader.key(names::TOKEN_EXPIRATION);
    let found = reader.get(pod_key, Source::PodAnnotation, names::TOKEN_EXPIRATION);
    let Some((value, at)) = found else {
        return reader.settings.irsa.token_expiration;
    };
    match value.parse::<u64>() {
        Ok(n) if n > MAX_TOKEN_EXPIRATION => {
            problems.error(Problem::new(
                at,
                Kind::OutOfRange,
                format!(
                    "{} is over Kubernetes' limit of {MAX_TOKEN_EXPIRATION} seconds",
                    quote(value)
                ),
            ));
            0
        }
        Ok(n) if n < MIN_TOKEN_EXPIRATION => {
            problems.warn(Problem::new(
                at,
                Kind::OutOfRange,
                format!("{n} seconds is under Kubernetes' minimum; the token lives {MIN_TOKEN_EXPIRATION} seconds"),
            ));
            MIN_TOKEN_EXPIRATION
        }
        Ok(n) => n,
        Err(_) => {
            problems.error(Problem::new(
                at,
                Kind::Malformed,
                format!(
                    "{} is not a whole number of seconds such as 86400 (at least {MIN_TOKEN_EXPIRATION})",
                    quote(value)
                ),
            ));
            0
        }
    }
}

/// The containers to leave alone: the pod's list and the ServiceAccount's.
fn skip_list(reader: &Reader) -> BTreeSet<String> {
    let key = reader.key(names::SKIP_CONTAINERS);
    let on_pod = reader.sources.on_pod(&key);
    let on_account = reader.sources.on_account(&key);
    on_pod
        .into_iter()
        .chain(on_account)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}
