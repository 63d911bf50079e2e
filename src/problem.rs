//! One type for everything the policy reports: where a problem was found, what kind of
//! problem it is and its message, worded for a cluster operator. [`Problems`] collects
//! errors and warnings.

use std::fmt;

/// How many characters of an echoed value a message shows.
const SHOWN: usize = 128;
/// How many characters of free text (an error that may quote input) a message shows.
const SHOWN_TEXT: usize = 512;

/// `value` quoted for a message, cut to its first 128 characters with a marker giving
/// its full length: a rejection that repeats a 300 KiB value would be a 900 KiB answer.
pub fn quote(value: &str) -> String {
    let (shown, rest) = split(value, SHOWN);
    if rest {
        format!("{shown:?}…({} bytes)", value.len())
    } else {
        format!("{shown:?}")
    }
}

/// Free text that may carry input (serde's and the host's errors), cut like [`quote`].
pub fn cut(text: &str) -> String {
    match split(text, SHOWN_TEXT) {
        (shown, true) => format!("{shown}…({} bytes)", text.len()),
        (shown, false) => shown.to_owned(),
    }
}

/// The first `shown` characters, and whether there is more.
fn split(value: &str, shown: usize) -> (&str, bool) {
    match value.char_indices().nth(shown) {
        Some((end, _)) => (&value[..end], true),
        None => (value, false),
    }
}

/// Where a problem was found; its `Display` is the start of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The pod object itself; the message names the field.
    Pod,
    /// `annotation <key>`: an annotation of the pod.
    Annotation(String),
    /// `annotation <key> on the pod`: said where the ServiceAccount may carry the same key.
    PodAnnotation(String),
    /// `annotation <key> (on ServiceAccount <account>)`: an IAM Roles Anywhere annotation
    /// the pod inherits from its ServiceAccount.
    Inherited { key: String, account: String },
    /// `annotation <key> on ServiceAccount <account>`: an IRSA annotation.
    Account { key: String, account: String },
    /// A setting, by its path such as `sidecar.port`.
    Setting(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pod => Ok(()),
            Source::Annotation(key) => write!(f, "annotation {key}"),
            Source::PodAnnotation(key) => write!(f, "annotation {key} on the pod"),
            Source::Inherited { key, account } => {
                write!(f, "annotation {key} (on ServiceAccount {account})")
            }
            Source::Account { key, account } => {
                write!(f, "annotation {key} on ServiceAccount {account}")
            }
            Source::Setting(path) => f.write_str(path),
        }
    }
}

/// What is wrong, in an operator's terms: the fact a rule found, which tests assert
/// instead of the wording. The severity (error or warning) is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that does not have the form it must: an ARN, a region, a duration, an
    /// image reference, the pod object's shape.
    Malformed,
    /// A well-formed value outside what is allowed: a session duration, a port, a key
    /// size, a token lifetime, a common name's length.
    OutOfRange,
    /// Something required that is not there, or cannot be read: a setting, the other
    /// half of a pair, the pod's ServiceAccount, what a VM needs to share its token.
    Missing,
    /// Two things that disagree: settings with each other, an annotation with the trust
    /// anchor, the pod's own containers, volumes and variables with what the policy adds,
    /// a ServiceAccount that asks for both modes.
    Conflicting,
    /// What the policy refuses on purpose: a shared host network, a workload identity
    /// asked for outside the injected volume or by someone not entitled to it.
    Forbidden,
    /// What the policy cannot serve: a Windows pod, init containers before a classic
    /// sidecar, IAM Roles Anywhere in a VM's pod, an IRSA role on the pod, a proxy
    /// exception set through `valueFrom`.
    Unsupported,
    /// A name the policy does not know: an annotation under its prefix, a log level.
    Unknown,
}

/// What is wrong with a value, before its caller says where the value was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw {
    pub kind: Kind,
    pub message: String,
}

impl Flaw {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Flaw {
            kind,
            message: message.into(),
        }
    }

    /// `<at>: <message>`.
    pub fn at(self, at: Source) -> Problem {
        Problem::new(at, self.kind, self.message)
    }
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Source,
    pub kind: Kind,
    message: String,
    /// The message continues the source's sentence ("… needs …") instead of following
    /// it after a colon.
    continues: bool,
}

impl Problem {
    /// `<source>: <message>`.
    pub fn new(at: Source, kind: Kind, message: impl Into<String>) -> Self {
        Problem {
            at,
            kind,
            message: message.into(),
            continues: false,
        }
    }

    /// `<source> <message>`.
    pub fn sentence(at: Source, kind: Kind, message: impl Into<String>) -> Self {
        Problem {
            continues: true,
            ..Problem::new(at, kind, message)
        }
    }

    /// A problem with the pod object; the message names the field.
    pub fn pod(kind: Kind, message: impl Into<String>) -> Self {
        Problem::new(Source::Pod, kind, message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.at, self.continues) {
            (Source::Pod, _) => f.write_str(&self.message),
            (at, true) => write!(f, "{at} {}", self.message),
            (at, false) => write!(f, "{at}: {}", self.message),
        }
    }
}

/// Errors and warnings, in the order found: every problem is reported at once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Problems {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Problems {
    pub fn error(&mut self, problem: Problem) {
        self.errors.push(problem);
    }

    pub fn warn(&mut self, problem: Problem) {
        self.warnings.push(problem);
    }

    /// The value of `result`; `None` after recording its flaw at `at`.
    pub fn check<T>(&mut self, at: impl FnOnce() -> Source, result: Result<T, Flaw>) -> Option<T> {
        result.map_err(|flaw| self.error(flaw.at(at()))).ok()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors as one message, `; `-separated.
    pub fn error_message(&self) -> String {
        join(&self.errors)
    }

    pub fn into_warnings(self) -> Vec<String> {
        self.warnings.iter().map(Problem::to_string).collect()
    }

    #[cfg(test)]
    pub fn errors(&self) -> Vec<String> {
        self.errors.iter().map(Problem::to_string).collect()
    }

    #[cfg(test)]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.iter().map(Problem::to_string).collect()
    }

    /// Where each error was found and its kind: what rule tests assert.
    #[cfg(test)]
    pub fn error_kinds(&self) -> Vec<(Source, Kind)> {
        kinds(&self.errors)
    }

    #[cfg(test)]
    pub fn warning_kinds(&self) -> Vec<(Source, Kind)> {
        kinds(&self.warnings)
    }
}

#[cfg(test)]
fn kinds(problems: &[Problem]) -> Vec<(Source, Kind)> {
    problems.iter().map(|p| (p.at.clone(), p.kind)).collect()
}

fn join(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&p.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::pod(
        Problem::pod(Kind::Forbidden, "spec.hostNetwork is true"),
        "spec.hostNetwork is true"
    )]
    #[case::annotation(Problem::new(Source::Annotation("iamra.aws/region".into()), Kind::Malformed, "bad"), "annotation iamra.aws/region: bad")]
    #[case::on_the_pod(Problem::new(Source::PodAnnotation("k".into()), Kind::Malformed, "bad"), "annotation k on the pod: bad")]
    #[case::inherited(Problem::new(Source::Inherited { key: "k".into(), account: "ns/sa".into() }, Kind::Malformed, "bad"), "annotation k (on ServiceAccount ns/sa): bad")]
    #[case::account(Problem::new(Source::Account { key: "k".into(), account: "ns/sa".into() }, Kind::Malformed, "bad"), "annotation k on ServiceAccount ns/sa: bad")]
    #[case::setting(
        Problem::new(Source::Setting("sidecar.port"), Kind::OutOfRange, "bad"),
        "sidecar.port: bad"
    )]
    #[case::sentence(
        Problem::sentence(Source::Setting("region"), Kind::Missing, "is required"),
        "region is required"
    )]
    #[case::flaw(
        Flaw::new(Kind::Malformed, "bad").at(Source::Setting("region")),
        "region: bad"
    )]
    fn messages_start_with_where(#[case] problem: Problem, #[case] text: &str) {
        assert_eq!(problem.to_string(), text);
    }

    #[test]
    fn echoed_values_are_cut_on_a_character_boundary_with_their_length() {
        assert_eq!(quote("eu-west-1"), "\"eu-west-1\"");
        let exact = "x".repeat(SHOWN);
        assert_eq!(quote(&exact), format!("{exact:?}"));
        let huge = format!("{}{}", "é".repeat(SHOWN - 1), "z".repeat(294_871));
        let shown = format!("{}z", "é".repeat(SHOWN - 1));
        assert_eq!(quote(&huge), format!("{shown:?}…({} bytes)", huge.len()));
        let text = format!(
            "{}{}",
            "é".repeat(SHOWN - 1),
            "z".repeat(SHOWN_TEXT - SHOWN + 1)
        );
        assert_eq!(cut(&huge), format!("{text}…({} bytes)", huge.len()));
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
    }

    #[test]
    fn every_error_is_reported_in_order() {
        let mut p = Problems::default();
        assert_eq!(p.check(|| Source::Setting("a"), Ok::<_, Flaw>(1)), Some(1));
        let flaw = Flaw::new(Kind::OutOfRange, "x");
        assert_eq!(p.check(|| Source::Setting("b"), Err::<u8, _>(flaw)), None);
        p.error(Problem::pod(Kind::Conflicting, "y"));
        p.warn(Problem::pod(Kind::Unsupported, "w"));
        assert!(p.has_errors());
        assert_eq!(p.error_message(), "b: x; y");
        assert_eq!(
            p.error_kinds(),
            [
                (Source::Setting("b"), Kind::OutOfRange),
                (Source::Pod, Kind::Conflicting)
            ]
        );
        assert_eq!(p.warning_kinds(), [(Source::Pod, Kind::Unsupported)]);
        assert_eq!(p.into_warnings(), ["w"]);
    }
}
