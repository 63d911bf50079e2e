//! Reads what a pod asks of IAM Roles Anywhere from its annotations (`<prefix>/role-arn`,
//! ...) into a validated [`Ask`]. Every problem names the annotation and where it was.
//!
//! Each value is read from the pod's annotation, else the ServiceAccount's, key by key
//! (a pod may set only `session-name` and take the rest from its ServiceAccount):
//!
//! | value           | pod annotation > ServiceAccount annotation > setting |
//! |-----------------|------------------------------------------------------|
//! | role, profile   | `role-arn`, `signing-profile-arn`; no setting         |
//! | session name    | `session-name`; else the pod's name at run time       |
//! | session seconds | `token-duration` > `defaults.sessionDuration`         |
//! | log level       | `log-level` > `sidecar.logLevel`                      |
//! | region (app)    | `region`; else the app's own                          |

use crate::names::{self, IAMRA_ASKS, ROLE_ARN, SIGNING_PROFILE_ARN};
use crate::pod::{Origin, Sources};
use crate::problem::{cut, quote, Flaw, Kind, Problem, Problems, Source};
use crate::settings::{self, LogLevel, Settings};
use crate::validation::{self, Arn, REGION_FORM};

/// What a pod asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub role_arn: String,
    pub profile_arn: String,
    /// `None`: the pod's own name, read at run time through the downward API.
    pub session_name: Option<String>,
    pub session_seconds: u64,
    pub log_level: LogLevel,
    /// The region the app's AWS SDK uses, when the pod overrides it.
    pub region: Option<String>,
}

/// Whether the pod or its ServiceAccount asks for IAM Roles Anywhere at all.
pub fn asks(sources: &Sources, settings: &Settings) -> bool {
    Reader::new(sources, settings).asking().next().is_some()
}

/// Whether the pod's own annotations ask for IAM Roles Anywhere.
pub fn pod_asks(sources: &Sources, settings: &Settings) -> bool {
    Reader::new(sources, settings)
        .asking()
        .any(|origin| origin == Origin::Pod)
}

/// Reads the annotations: `None` when nothing asks for IAM Roles Anywhere, or when
/// `problems` then holds errors.
pub fn read(sources: &Sources, settings: &Settings, problems: &mut Problems) -> Option<Ask> {
    let reader = Reader::new(sources, settings);
    reader.warn_unknown(Origin::Pod, problems);
    reader.warn_unknown(Origin::Account, problems);
    let ((role, role_at), (profile, profile_at)) =
        pair(&reader).map_err(|p| problems.error(p)).ok()??;
    // Settings validation guarantees a well-formed trust anchor in inject mode.
    let anchor = validation::rolesanywhere_arn(&settings.trust_anchor_arn, "trust-anchor").ok();
    problems.check(|| reader.at(role_at), role_arn(role, anchor.as_ref()));
    problems.check(
        || reader.at(profile_at),
        profile_arn(profile, anchor.as_ref()),
    );
    let session_name = session_name(&reader, problems);
    let session_seconds = session_seconds(&reader, settings, problems);
    check_audience(&reader, problems);
    let log_level = log_level(&reader, settings, problems);
    let region = region(&reader, problems);
    if problems.has_errors() {
        return None;
    }
    Some(Ask {
        role_arn: role.to_owned(),
        profile_arn: profile.to_owned(),
        session_name,
        session_seconds: session_seconds.unwrap_or_default(),
        log_level,
        region,
    })
}

/// `<prefix>/<name>` read from [`Sources`], each value with where it was found, in
/// this mode's words.
struct Reader<'a> {
    sources: &'a Sources<'a>,
    prefix: &'a str,
}

impl<'a> Reader<'a> {
    fn new(sources: &'a Sources<'a>, settings: &'a Settings) -> Self {
        Reader {
            sources,
            prefix: &settings.annotation_prefix,
        }
    }

    /// The trimmed value of `<prefix>/<name>` and where it was found.
    fn get(&self, name: &'static str) -> Option<Found<'a>> {
        let (value, origin) = self.sources.get_under(self.prefix, name)?;
        Some((value, At { name, origin }))
    }

    /// Where a value was found, as a problem names it.
    fn at(&self, At { name, origin }: At<'_>) -> Source {
        let key = names::key(self.prefix, name);
        match origin {
            Origin::Pod => Source::Annotation(key),
            Origin::Account => Source::Inherited {
                key,
                account: self.sources.account_name().to_owned(),
            },
        }
    }

    /// For each of the role and the profile that is set, where: either asks for IAM
    /// Roles Anywhere.
    fn asking(&self) -> impl Iterator<Item = Origin> + '_ {
        [ROLE_ARN, SIGNING_PROFILE_ARN]
            .into_iter()
            .filter_map(|name| Some(self.sources.get_under(self.prefix, name)?.1))
    }

    /// One warning for the names under the prefix this policy does not read, of one
    /// origin: a ServiceAccount may carry thousands, and a warning each would swell the
    /// answer. The bookkeeping names are the policy's own, on the pod; a ServiceAccount's
    /// are never read.
    fn warn_unknown(&self, origin: Origin, problems: &mut Problems) {
        /// Names a warning spells out; the rest are counted.
        const LISTED: usize = 5;
        let unknown: Vec<&str> = self
            .sources
            .names(self.prefix, origin)
            .into_iter()
            .filter(|n| !IAMRA_ASKS.contains(n) && !names::BOOKKEEPING.contains(n))
            .collect();
        // Joined only for a warning: most pods have none.
        let known = || IAMRA_ASKS.join(", ");
        let problem = match unknown.as_slice() {
            [] => return,
            [name] => Problem::sentence(
                self.at(At { name, origin }),
                Kind::Unknown,
                format!("is not one this policy reads (known: {})", known()),
            ),
            many => {
                let mut listed: Vec<String> = many
                    .iter()
                    .take(LISTED)
                    .map(|n| names::key(self.prefix, n))
                    .collect();
                if many.len() > LISTED {
                    listed.push(format!("{} more", many.len() - LISTED));
                }
                let place = match origin {
                    Origin::Pod => String::new(),
                    Origin::Account => {
                        format!(" (on ServiceAccount {})", self.sources.account_name())
                    }
                };
                Problem::pod(
                    Kind::Unknown,
                    format!(
                        "annotations {}{place} are not ones this policy reads (known: {})",
                        listed.join(", "),
                        known()
                    ),
                )
            }
        };
        problems.warn(problem);
    }
}

/// Where a value was found: made a [`Source`] (its key and account spelt out) only for
/// a problem, which most values have none of.
#[derive(Debug, Clone, Copy)]
struct At<'n> {
    name: &'n str,
    origin: Origin,
}

type Found<'a> = (&'a str, At<'static>);

/// The role and the profile: both, or neither (`None`).
fn pair<'a>(reader: &Reader<'a>) -> Result<Option<(Found<'a>, Found<'a>)>, Problem> {
    match (reader.get(ROLE_ARN), reader.get(SIGNING_PROFILE_ARN)) {
        (None, None) => Ok(None),
        (Some(role), Some(profile)) => Ok(Some((role, profile))),
        (role, profile) => {
            let (at, missing) = match (role, profile) {
                (Some((_, at)), _) => (at, SIGNING_PROFILE_ARN),
                (_, Some((_, at))) => (at, ROLE_ARN),
                _ => unreachable!("one of the two is set"),
            };
            Err(Problem::sentence(
                reader.at(at),
                Kind::Missing,
                format!(
                    "needs {}/{missing} too: set both to get IAM Roles Anywhere credentials, or neither",
                    reader.prefix
                ),
            ))
        }
    }
}

fn role_arn(role: &str, anchor: Option<&Arn>) -> Result<(), Flaw> {
    let arn = validation::role_arn(role)?;
    match anchor {
        Some(a) if a.partition != arn.partition => {
            let message = format!(
                "the role is in partition {} but the trust anchor in {:?}",
                quote(arn.partition),
                a.partition
            );
            Err(Flaw::new(Kind::Conflicting, message))
        }
        _ => Ok(()),
    }
}

fn profile_arn(profile: &str, anchor: Option<&Arn>) -> Result<(), Flaw> {
    let arn = validation::rolesanywhere_arn(profile, "profile")?;
    match anchor {
        Some(a) if (a.partition, a.region) != (arn.partition, arn.region) => {
            let message = format!(
                "the profile is in {}/{} but the trust anchor in {}/{}; IAM Roles Anywhere \
                 needs both in one partition and region",
                cut(arn.partition),
                cut(arn.region),
                a.partition,
                a.region
            );
            Err(Flaw::new(Kind::Conflicting, message))
        }
        _ => Ok(()),
    }
}

fn session_name(reader: &Reader, problems: &mut Problems) -> Option<String> {
    let (name, at) = reader.get(names::SESSION_NAME)?;
    problems.check(|| reader.at(at), validation::session_name(name));
    Some(name.to_owned())
}

fn session_seconds(reader: &Reader, settings: &Settings, problems: &mut Problems) -> Option<u64> {
    match reader.get(names::TOKEN_DURATION) {
        Some((duration, at)) => {
            problems.check(|| reader.at(at), settings::session_seconds(duration))
        }
        // Valid: the settings were validated.
        None => settings::session_seconds(&settings.defaults.session_duration).ok(),
    }
}

/// The audience shapes the IRSA mode's token, not the sidecar; a typo still fails early.
fn check_audience(reader: &Reader, problems: &mut Problems) {
    if let Some((audience, at)) = reader.get(names::AUDIENCE) {
        problems.check(|| reader.at(at), validation::audience(audience));
    }
}

fn log_level(reader: &Reader, settings: &Settings, problems: &mut Problems) -> LogLevel {
    let Some((level, at)) = reader.get(names::LOG_LEVEL) else {
        return settings.sidecar.log_level;
    };
    let parsed = LogLevel::parse(level).ok_or_else(|| {
        let message = format!("{} is not {}", quote(level), LogLevel::NAMES);
        Flaw::new(Kind::Unknown, message)
    });
    problems.check(|| reader.at(at), parsed).unwrap_or_default()
}

fn region(reader: &Reader, problems: &mut Problems) -> Option<String> {
    let (region, at) = reader.get(names::REGION)?;
    if !validation::is_region(region) {
        problems.error(Problem::new(
            reader.at(at),
            Kind::Malformed,
            format!("{} is not {REGION_FORM}", quote(region)),
        ));
    }
    Some(region.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pod::{Account, Annotations};
    use crate::testutil::{annotations, doc, map, settings, PROFILE, ROLE};
    use rstest::rstest;
    use serde_json::json;

    /// Reads `annotations` as a pod's, with `account`'s under them.
    pub fn read_with(
        annotations: &Annotations,
        account: Option<&Annotations>,
        settings: &Settings,
    ) -> (Option<Ask>, Problems) {
        let pod = doc(json!({"metadata": {"annotations": annotations}}));
        let account = account.map(|annotations| Account {
            name: "payments/api",
            annotations,
        });
        let sources = Sources::new(&pod, account);
        let mut problems = Problems::default();
        let ask = read(&sources, settings, &mut problems);
        (ask, problems)
    }

    pub fn ask(extra: &[(&str, &str)]) -> Ask {
        let (ask, problems) = read_with(&annotations(extra), None, &settings());
        assert!(!problems.has_errors(), "{problems:?}");
        ask.unwrap()
    }

    /// Where each error is and its kind, for a pod with `extra` over the role and profile.
    fn errors(extra: &[(&str, &str)]) -> Vec<(Source, Kind)> {
        let (ask, problems) = read_with(&annotations(extra), None, &settings());
        assert_eq!(ask, None);
        problems.error_kinds()
    }

    fn on_pod(key: &str) -> Source {
        Source::Annotation(key.into())
    }

    #[test]
    fn defaults_come_from_settings() {
        let r = ask(&[]);
        assert_eq!(r.role_arn, ROLE);
        assert_eq!(r.profile_arn, PROFILE);
        assert_eq!(r.session_name, None);
        assert_eq!(r.session_seconds, 900);
        assert_eq!(r.log_level, LogLevel::Info);
        assert_eq!(r.region, None);
    }

    #[test]
    fn a_pod_without_the_annotations_did_not_ask() {
        let (ask, problems) = read_with(&Annotations::new(), None, &settings());
        assert_eq!((ask, problems), (None, Problems::default()));
    }

    #[rstest]
    #[case::session_name(&[("iamra.aws/session-name", "payments-api")], |r: &Ask| r.session_name.as_deref() == Some("payments-api"))]
    #[case::seconds(&[("iamra.aws/token-duration", "3600")], |r: &Ask| r.session_seconds == 3600)]
    #[case::seconds_with_unit(&[("iamra.aws/token-duration", "900s")], |r: &Ask| r.session_seconds == 900)]
    #[case::minutes(&[("iamra.aws/token-duration", "15m")], |r: &Ask| r.session_seconds == 900)]
    #[case::hours(&[("iamra.aws/token-duration", "12h")], |r: &Ask| r.session_seconds == 43200)]
    #[case::audience_is_only_checked(&[("iamra.aws/audience", "example.com/aud")], |r: &Ask| r.role_arn == ROLE)]
    #[case::debug(&[("iamra.aws/log-level", "debug")], |r: &Ask| r.log_level == LogLevel::Debug)]
    #[case::info(&[("iamra.aws/log-level", "info")], |r: &Ask| r.log_level == LogLevel::Info)]
    #[case::region(&[("iamra.aws/region", "us-west-2")], |r: &Ask| r.region.as_deref() == Some("us-west-2"))]
    #[case::trimmed(&[("iamra.aws/role-arn", " arn:aws:iam::123456789012:role/app ")], |r: &Ask| r.role_arn == ROLE)]
    fn optional_annotations(#[case] extra: &[(&str, &str)], #[case] check: fn(&Ask) -> bool) {
        let r = ask(extra);
        assert!(check(&r), "{r:?}");
    }

    #[rstest]
    #[case::role_without_profile(&[("iamra.aws/signing-profile-arn", "")], "iamra.aws/role-arn", Kind::Missing)]
    #[case::profile_without_role(&[("iamra.aws/role-arn", "")], "iamra.aws/signing-profile-arn", Kind::Missing)]
    #[case::role_not_an_arn(&[("iamra.aws/role-arn", "app")], "iamra.aws/role-arn", Kind::Malformed)]
    #[case::role_in_another_partition(&[("iamra.aws/role-arn", "arn:aws-cn:iam::123456789012:role/app")], "iamra.aws/role-arn", Kind::Conflicting)]
    #[case::profile_not_an_arn(&[("iamra.aws/signing-profile-arn", "profile/x")], "iamra.aws/signing-profile-arn", Kind::Malformed)]
    #[case::profile_in_another_region(&[("iamra.aws/signing-profile-arn", "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70")], "iamra.aws/signing-profile-arn", Kind::Conflicting)]
    #[case::session_name_with_spaces(&[("iamra.aws/session-name", "has spaces")], "iamra.aws/session-name", Kind::Malformed)]
    #[case::session_name_too_short(&[("iamra.aws/session-name", "x")], "iamra.aws/session-name", Kind::Malformed)]
    #[case::duration_not_a_duration(&[("iamra.aws/token-duration", "soon")], "iamra.aws/token-duration", Kind::Malformed)]
    #[case::duration_too_short(&[("iamra.aws/token-duration", "60")], "iamra.aws/token-duration", Kind::OutOfRange)]
    #[case::duration_too_long(&[("iamra.aws/token-duration", "13h")], "iamra.aws/token-duration", Kind::OutOfRange)]
    #[case::audience_with_spaces(&[("iamra.aws/audience", "two words")], "iamra.aws/audience", Kind::Malformed)]
    #[case::log_level(&[("iamra.aws/log-level", "trace")], "iamra.aws/log-level", Kind::Unknown)]
    #[case::log_level_warn(&[("iamra.aws/log-level", "warn")], "iamra.aws/log-level", Kind::Unknown)]
    #[case::log_level_error(&[("iamra.aws/log-level", "error")], "iamra.aws/log-level", Kind::Unknown)]
    #[case::region(&[("iamra.aws/region", "mars-1")], "iamra.aws/region", Kind::Malformed)]
    fn rejections(#[case] extra: &[(&str, &str)], #[case] key: &str, #[case] kind: Kind) {
        assert_eq!(errors(extra), [(on_pod(key), kind)]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        assert_eq!(
            errors(&[("iamra.aws/region", "x"), ("iamra.aws/log-level", "loud")]),
            [
                (on_pod("iamra.aws/log-level"), Kind::Unknown),
                (on_pod("iamra.aws/region"), Kind::Malformed)
            ]
        );
    }

    #[test]
    fn unknown_annotations_under_the_prefix_warn() {
        let (_, problems) = read_with(
            &annotations(&[("iamra.aws/role_arn", "x")]),
            None,
            &settings(),
        );
        assert_eq!(
            problems.warning_kinds(),
            [(on_pod("iamra.aws/role_arn"), Kind::Unknown)]
        );
        assert_eq!(
            problems.warnings(),
            [
                "annotation iamra.aws/role_arn is not one this policy reads (known: role-arn, \
                 signing-profile-arn, session-name, token-duration, audience, log-level, region)"
            ]
        );
    }

    #[test]
    fn many_unknown_annotations_make_one_warning_per_source() {
        let many = |n: usize, from: &str| -> Annotations {
            (0..n)
                .map(|i| (format!("iamra.aws/{from}-{i:04}"), "x".to_owned()))
                .collect()
        };
        let (_, problems) = read_with(&many(2, "pod"), Some(&many(8000, "sa")), &settings());
        assert_eq!(
            problems.warnings(),
            [
                "annotations iamra.aws/pod-0000, iamra.aws/pod-0001 are not ones this policy \
                 reads (known: role-arn, signing-profile-arn, session-name, token-duration, \
                 audience, log-level, region)",
                "annotations iamra.aws/sa-0000, iamra.aws/sa-0001, iamra.aws/sa-0002, \
                 iamra.aws/sa-0003, iamra.aws/sa-0004, 7995 more (on ServiceAccount \
                 payments/api) are not ones this policy reads (known: role-arn, \
                 signing-profile-arn, session-name, token-duration, audience, log-level, region)"
            ]
        );
    }

    #[test]
    fn the_prefix_comes_from_settings() {
        let mut s = settings();
        s.annotation_prefix = "example.com".into();
        let a = map(&[
            ("example.com/role-arn", ROLE),
            ("example.com/signing-profile-arn", PROFILE),
        ]);
        assert!(read_with(&a, None, &s).0.is_some());
        assert!(read_with(&annotations(&[]), None, &s).0.is_none());
    }

    #[test]
    fn the_pods_annotations_win_key_by_key_and_inherited_ones_say_so() {
        let account = annotations(&[
            ("iamra.aws/session-name", "from-account"),
            ("iamra.aws/region", "x"),
        ]);
        let pod = map(&[
            ("iamra.aws/session-name", "from-pod"),
            ("iamra.aws/extra", "1"),
        ]);
        let (ask, problems) = read_with(&pod, Some(&account), &settings());
        assert_eq!(ask, None);
        let inherited = Source::Inherited {
            key: "iamra.aws/region".into(),
            account: "payments/api".into(),
        };
        assert_eq!(problems.error_kinds(), [(inherited, Kind::Malformed)]);
        assert_eq!(
            problems.error_message(),
            "annotation iamra.aws/region (on ServiceAccount payments/api): \"x\" is not an AWS region name such as us-east-1, eu-west-3 or us-gov-west-1"
        );
        assert!(problems.warnings()[0].starts_with("annotation iamra.aws/extra is not one"));
        let account = annotations(&[("iamra.aws/session-name", "from-account")]);
        let (ask, _) = read_with(&pod, Some(&account), &settings());
        assert_eq!(ask.unwrap().session_name.as_deref(), Some("from-pod"));
    }
}
