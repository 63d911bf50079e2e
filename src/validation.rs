//! Format checks for the values that settings and annotations carry: ARNs, regions,
//! durations and names. Each returns the parsed value or a [`Flaw`] whose message states
//! the expected form; callers add the field name.
//!
//! Hand-written instead of `regex` to keep the WebAssembly module small.

use crate::json;
use crate::problem::{quote, Flaw, Kind};

/// The parts of an ARN we check: `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

/// `s` before and after its first `sep` (an ASCII byte), found by [`find`]: in wasm,
/// the searcher behind `split(char)` costs more per call than these short values.
/// Measured against split (make bench-count): 5.4k fewer instructions per 1-container call (2.3%).
fn cut_at(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = find(s.as_bytes(), sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Where the first `sep` is in `bytes`, eight bytes at a time: a request checks three
/// ARNs of about 90 bytes, and a loop per byte was a third of their checks.
fn find(bytes: &[u8], sep: u8) -> Option<usize> {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let found = json::bytes_equal(u64::from_le_bytes(*chunk), sep);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    rest.iter().position(|&b| b == sep).map(|i| at + i)
}

/// `s.split(sep)` through [`cut_at`].
fn pieces(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let (piece, after) = cut_at(r, sep).map_or((r, None), |(p, a)| (p, Some(a)));
        rest = after;
        Some(piece)
    })
}

fn is_partition(s: &str) -> bool {
    s == "aws"
        || s.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && pieces(rest, b'-').all(|p| !p.is_empty())
                && rest.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS region name: `us-east-1`, `eu-west-3`, `cn-north-1`, `us-gov-west-1`,
/// `us-isob-east-1`, `eusc-de-east-1`.
pub fn is_region(s: &str) -> bool {
    let Some(dash) = s.bytes().rposition(|b| b == b'-') else {
        return false;
    };
    let (words, number) = (&s[..dash], &s[dash + 1..]);
    let mut count = 0;
    let words_ok = pieces(words, b'-').all(|p| {
        count += 1;
        (count > 1 || (2..=4).contains(&p.len()))
            && !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_lowercase())
    });
    words_ok
        && count >= 2
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

pub const REGION_FORM: &str = "an AWS region name such as us-east-1, eu-west-3 or us-gov-west-1";

/// `8-4-4-4-12` hex digits; each group checked as a run, without a test of the position
/// at every byte.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && [0..8, 9..13, 14..18, 19..23, 24..36]
            .into_iter()
            .all(|group| b[group].iter().all(u8::is_ascii_hexdigit))
}

fn parse_arn(s: &str) -> Option<Arn<'_>> {
    let (prefix, rest) = cut_at(s, b':')?;
    let (partition, rest) = cut_at(rest, b':')?;
    let (service, rest) = cut_at(rest, b':')?;
    let (region, rest) = cut_at(rest, b':')?;
    let (account, resource) = cut_at(rest, b':')?;
    (prefix == "arn" && is_partition(partition)).then_some(Arn {
        partition,
        service,
        region,
        account,
        resource,
    })
}

/// The characters IAM allows in role names, path segments and role session names.
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

pub const ROLE_ARN_FORM: &str = "arn:<partition>:iam::<12-digit account>:role/<path/>name";

/// `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn role_arn(s: &str) -> Result<Arn<'_>, Flaw> {
    let bad = || {
        let message = format!(
            "{} is not an IAM role ARN of the form {ROLE_ARN_FORM}",
            quote(s)
        );
        Flaw::new(Kind::Malformed, message)
    };
    let arn = parse_arn(s).ok_or_else(bad)?;
    let path = arn.resource.strip_prefix("role/").ok_or_else(bad)?;
    let name = pieces(path, b'/').last().unwrap_or_default();
    let valid = arn.service == "iam"
        && arn.region.is_empty()
        && is_account(arn.account)
        && (1..=64).contains(&name.len())
        && path.len() <= 512 + 64
        && pieces(path, b'/').all(|seg| !seg.is_empty() && seg.chars().all(is_iam_name_char));
    if valid {
        Ok(arn)
    } else {
        Err(bad())
    }
}

/// `arn:<partition>:rolesanywhere:<region>:<account>:<kind>/<uuid>` where kind is
/// `profile` or `trust-anchor`.
pub fn rolesanywhere_arn<'a>(s: &'a str, kind: &str) -> Result<Arn<'a>, Flaw> {
    let bad = || {
        let message = format!(
            "{} is not an IAM Roles Anywhere {kind} ARN of the form \
             arn:<partition>:rolesanywhere:<region>:<12-digit account>:{kind}/<uuid>",
            quote(s)
        );
        Flaw::new(Kind::Malformed, message)
    };
    let arn = parse_arn(s).ok_or_else(bad)?;
    let valid = arn.service == "rolesanywhere"
        && is_region(arn.region)
        && is_account(arn.account)
        && arn
            .resource
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(is_uuid);
    if valid {
        Ok(arn)
    } else {
        Err(bad())
    }
}

/// A Go-style duration (`900s`, `15m`, `1h30m`, `24h`) or a plain number of seconds,
/// in whole seconds.
pub fn duration_seconds(s: &str) -> Result<u64, Flaw> {
    let bad = || {
        let message = format!(
            "{} is not a duration such as 900, 900s, 15m or 1h30m",
            quote(s)
        );
        Flaw::new(Kind::Malformed, message)
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = match &rest[..unit_len] {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// An AWS role session name: 2..64 of `[\w+=,.@-]`.
pub fn session_name(s: &str) -> Result<(), Flaw> {
    if (2..=64).contains(&s.len()) && s.chars().all(is_iam_name_char) {
        Ok(())
    } else {
        let message = format!(
            "{} is not a role session name: 2 to 64 characters of letters, digits and _+=,.@-",
            quote(s)
        );
        Err(Flaw::new(Kind::Malformed, message))
    }
}

/// A token audience: non-empty, no white space.
pub fn audience(s: &str) -> Result<(), Flaw> {
    if !s.is_empty() && !s.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        let message = format!(
            "{} is not an audience; use a non-empty value without spaces such as sts.amazonaws.com",
            quote(s)
        );
        Err(Flaw::new(Kind::Malformed, message))
    }
}

/// An RFC 1123 DNS label: 1..63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 DNS subdomain: dot-separated DNS labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && pieces(s, b'.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::empty("")]
    #[case::separators_only("::")]
    #[case::ends("a:b:")]
    #[case::starts(":a:b")]
    #[case::arn("arn:aws:iam::123456789012:role/a:b")]
    #[case::non_ascii("é:ü::😀")]
    #[case::in_the_first_word("abcdefg:")]
    #[case::after_a_word("abcdefgh:ij")]
    #[case::in_the_third_word("abcdefghijklmnopq:r")]
    #[case::a_word_without("abcdefgh")]
    #[case::after_high_bytes("éééééééé😀:x")]
    fn pieces_and_cuts_are_those_of_split(#[case] s: &str) {
        assert_eq!(
            pieces(s, b':').collect::<Vec<_>>(),
            s.split(':').collect::<Vec<_>>()
        );
        assert_eq!(cut_at(s, b':'), s.split_once(':'));
    }

    #[rstest]
    #[case::us_east_1("us-east-1", true)]
    #[case::eu_west_3("eu-west-3", true)]
    #[case::cn_north_1("cn-north-1", true)]
    #[case::us_gov_west_1("us-gov-west-1", true)]
    #[case::us_isob_east_1("us-isob-east-1", true)]
    #[case::eusc_de_east_1("eusc-de-east-1", true)]
    #[case::ap_southeast_12("ap-southeast-12", true)]
    #[case::no_number("us-east", false)]
    #[case::no_dashes("useast1", false)]
    #[case::upper_case("US-EAST-1", false)]
    #[case::a_zone("us-east-1a", false)]
    #[case::empty_area("us--1", false)]
    #[case::empty("", false)]
    fn regions(#[case] region: &str, #[case] valid: bool) {
        assert_eq!(is_region(region), valid);
    }

    #[rstest]
    #[case::plain_role("arn:aws:iam::123456789012:role/app")]
    #[case::role_with_a_path_and_every_allowed_sign(
        "arn:aws:iam::123456789012:role/team/payments/api+v2@x"
    )]
    #[case::china_partition("arn:aws-cn:iam::123456789012:role/app")]
    #[case::govcloud_partition("arn:aws-us-gov:iam::123456789012:role/a_b=c,d.e-f")]
    fn valid_role_arns(#[case] arn: &str) {
        assert!(role_arn(arn).is_ok(), "{arn}");
    }

    #[rstest]
    #[case::account_of_eleven_digits("arn:aws:iam::12345678901:role/app")]
    #[case::a_user("arn:aws:iam::123456789012:user/app")]
    #[case::a_region("arn:aws:iam:us-east-1:123456789012:role/app")]
    #[case::another_service("arn:aws:sts::123456789012:role/app")]
    #[case::another_partition("arn:azure:iam::123456789012:role/app")]
    #[case::no_role_name("arn:aws:iam::123456789012:role/")]
    #[case::empty_path_segment("arn:aws:iam::123456789012:role//app")]
    #[case::a_space("arn:aws:iam::123456789012:role/ap p")]
    #[case::no_arn_prefix("role/app")]
    #[case::empty("")]
    fn invalid_role_arns(#[case] arn: &str) {
        let err = role_arn(arn).unwrap_err();
        assert_eq!(err.kind, Kind::Malformed);
        assert!(err.message.contains(ROLE_ARN_FORM), "{err:?}");
    }

    #[test]
    fn role_name_length_is_bounded() {
        let ok = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(64));
        let long = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(65));
        assert!(role_arn(&ok).is_ok());
        assert!(role_arn(&long).is_err());
    }

    #[rstest]
    #[case::profile(
        "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
        "profile",
        true
    )]
    #[case::trust_anchor(
        "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
        "trust-anchor",
        true
    )]
    #[case::trust_anchor_as_a_profile(
        "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
        "profile",
        false
    )]
    #[case::profile_id_not_a_uuid(
        "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/not-a-uuid",
        "profile",
        false
    )]
    #[case::no_region(
        "arn:aws:rolesanywhere::123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
        "profile",
        false
    )]
    #[case::iam_service(
        "arn:aws:iam:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
        "profile",
        false
    )]
    fn rolesanywhere_arns(#[case] arn: &str, #[case] kind: &str, #[case] valid: bool) {
        assert_eq!(rolesanywhere_arn(arn, kind).is_ok(), valid);
    }

    #[rstest]
    #[case::bare_900("900", Ok(900))]
    #[case::d900s("900s", Ok(900))]
    #[case::d15m("15m", Ok(900))]
    #[case::d1h("1h", Ok(3600))]
    #[case::d1h30m("1h30m", Ok(5400))]
    #[case::d24h("24h", Ok(86400))]
    #[case::empty("", Err(()))]
    #[case::bare_seconds("15", Ok(15))]
    #[case::fraction("1.5h", Err(()))]
    #[case::negative("-900", Err(()))]
    #[case::milliseconds("900ms", Err(()))]
    #[case::unit_only("h", Err(()))]
    #[case::seconds_overflow("99999999999999999999s", Err(()))]
    #[case::hours_overflow("9999999999999999h", Err(()))]
    fn durations(#[case] input: &str, #[case] expected: Result<u64, ()>) {
        assert_eq!(duration_seconds(input).map_err(|_| ()), expected);
    }

    #[rstest]
    #[case::ab("ab", true)]
    #[case::every_allowed_sign("app@payments.example,v=1+x_y-z", true)]
    #[case::one_character("a", false)]
    #[case::has_space("has space", false)]
    #[case::slash_name("slash/name", false)]
    fn session_names(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(session_name(name).is_ok(), valid);
        assert!(session_name(&"a".repeat(64)).is_ok());
        assert!(session_name(&"a".repeat(65)).is_err());
    }

    #[rstest]
    #[case::cluster("cluster", true)]
    #[case::prod_eu_1("prod-eu-1", true)]
    #[case::leading_dash("-prod", false)]
    #[case::upper_case("Prod", false)]
    #[case::a_dot("a.b", false)]
    #[case::empty("", false)]
    fn dns_labels(#[case] s: &str, #[case] valid: bool) {
        assert_eq!(is_dns_label(s), valid);
    }
}
