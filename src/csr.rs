//! The PKCS#10 certificate signing request (RFC 2986) of a CertificateRequest, read with a
//! strict DER walk over the few fields the guard checks: the subject, the requested
//! extensions and SANs, and the key type. A hand-written walk keeps the module small; the
//! signature is not verified (the README says what that leaves).

use crate::identity::Identity;
use crate::problem::quote;
use base64::{engine::general_purpose::STANDARD, Engine as _};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
/// `[0] IMPLICIT` attributes of the request info.
const ATTRIBUTES: u8 = 0xa0;

const COMMON_NAME: &str = "2.5.4.3";
const EXTENSION_REQUEST: &str = "1.2.840.113549.1.9.14";
const SUBJECT_ALT_NAME: &str = "2.5.29.17";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

/// Names for the OIDs an operator is likely to meet in a rejection.
const KNOWN: [(&str, &str); 10] = [
    (COMMON_NAME, "CN"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.37", "extKeyUsage"),
    ("1.2.840.113549.1.9.7", "challengePassword"),
    ("1.3.101.112", "Ed25519"),
    (P256, "P-256"),
    (P384, "P-384"),
];

/// An OID by its name when it has a well-known one, else dotted.
fn named(oid: &str) -> String {
    KNOWN
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or_else(|| oid.to_owned(), |(_, name)| format!("{name} ({oid})"))
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Uri(String),
    Dns(String),
    Ip(String),
    Email(String),
    /// Any other GeneralName, by its context tag.
    Other(u8),
}

impl AltName {
    fn describe(&self) -> String {
        match self {
            AltName::Uri(v) => format!("URI SAN {}", quote(v)),
            AltName::Dns(v) => format!("DNS SAN {}", quote(v)),
            AltName::Ip(v) => format!("IP SAN {v}"),
            AltName::Email(v) => format!("e-mail SAN {}", quote(v)),
            AltName::Other(tag) => format!("a SAN of GeneralName type [{tag}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// An elliptic curve key, by its curve's OID.
    Ec(String),
    /// An RSA key, by its modulus size in bits.
    Rsa(usize),
    /// Anything else, by its algorithm's OID.
    Other(String),
}

/// The fields of a CSR the guard checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// The subject's attributes (type OID, value), every RDN flattened in order.
    pub subject: Vec<(String, String)>,
    pub alt_names: Vec<AltName>,
    /// The OIDs of the requested extensions, subjectAltName included.
    pub extensions: Vec<String>,
    /// The OIDs of the attributes other than the extension request.
    pub attributes: Vec<String>,
    pub key: Key,
}

/// A cursor over DER elements: each read checks that the element fits.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self) -> Result<(u8, &'a [u8]), String> {
        let [tag, first, rest @ ..] = self.0 else {
            return Err("it ends in the middle of an element".into());
        };
        let (len, rest) = match *first {
            short if short < 0x80 => (usize::from(short), rest),
            long => {
                let n = usize::from(long & 0x7f);
                if n == 0 || n > 3 || rest.len() < n {
                    return Err("an element has an unsupported length".into());
                }
                let len = rest[..n].iter().fold(0, |a, b| a << 8 | usize::from(*b));
                (len, &rest[n..])
            }
        };
        if rest.len() < len {
            return Err("an element is longer than the request".into());
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Ok((*tag, content))
    }

    fn take(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        match self.next()? {
            (found, content) if found == tag => Ok(content),
            (found, _) => Err(format!(
                "{what} has tag {found:#04x} where {tag:#04x} belongs"
            )),
        }
    }

    fn oid(&mut self, what: &str) -> Result<String, String> {
        oid_string(self.take(OID, what)?).ok_or_else(|| format!("{what} is not a valid OID"))
    }

    fn end(&self, what: &str) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} has trailing bytes"))
        }
    }
}

/// A DER-encoded OID in dotted form.
fn oid_string(bytes: &[u8]) -> Option<String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        } else if i + 1 == bytes.len() {
            return None;
        }
    }
    let first = *arcs.first()?;
    let (a, b) = if first < 80 {
        (first / 40, first % 40)
    } else {
        (2, first - 80)
    };
    let rest = arcs[1..].iter().map(|arc| format!(".{arc}"));
    Some(format!("{a}.{b}{}", rest.collect::<String>()))
}

/// A directory string the guard can compare: UTF8String, PrintableString or IA5String.
fn text(tag: u8, content: &[u8]) -> Result<String, String> {
    match tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(content)
            .map(str::to_owned)
            .map_err(|_| "a subject attribute is not valid text".into()),
        other => Err(format!(
            "a subject attribute has string type {other:#04x}; expected UTF8String or PrintableString"
        )),
    }
}

/// `spec.request` as cert-manager stores it: base64 of a PEM `CERTIFICATE REQUEST`.
pub fn parse(request: &str) -> Result<Csr, String> {
    let pem = STANDARD
        .decode(request.trim())
        .map_err(|_| "is not base64".to_owned())?;
    let pem = std::str::from_utf8(&pem).map_err(|_| "is not a PEM text".to_owned())?;
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE REQUEST-----")
        .and_then(|b| b.strip_suffix("-----END CERTIFICATE REQUEST-----"))
        .ok_or("is not one PEM block of type CERTIFICATE REQUEST")?;
    let body: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(body)
        .map_err(|_| "holds a PEM block that is not base64".to_owned())?;
    parse_der(&der).map_err(|e| format!("is not a well-formed PKCS#10 request: {e}"))
}

fn parse_der(der: &[u8]) -> Result<Csr, String> {
    let mut outer = Der(der);
    let mut request = Der(outer.take(SEQUENCE, "the request")?);
    outer.end("the request")?;
    let mut info = Der(request.take(SEQUENCE, "the request info")?);
    request.take(SEQUENCE, "the signature algorithm")?;
    request.take(BIT_STRING, "the signature")?;
    request.end("the request")?;
    if info.take(INTEGER, "the version")? != [0] {
        return Err("its version is not 1".into());
    }
    let subject = subject(info.take(SEQUENCE, "the subject")?)?;
    let key = key(info.take(SEQUENCE, "the public key")?)?;
    let mut csr = Csr {
        subject,
        alt_names: Vec::new(),
        extensions: Vec::new(),
        attributes: Vec::new(),
        key,
    };
    attributes(info.take(ATTRIBUTES, "the attributes")?, &mut csr)?;
    info.end("the request info")?;
    Ok(csr)
}

fn subject(content: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut rdns = Der(content);
    let mut subject = Vec::new();
    while !rdns.0.is_empty() {
        let mut rdn = Der(rdns.take(SET, "a subject RDN")?);
        while !rdn.0.is_empty() {
            let mut attribute = Der(rdn.take(SEQUENCE, "a subject attribute")?);
            let oid = attribute.oid("a subject attribute type")?;
            let (tag, value) = attribute.next()?;
            attribute.end("a subject attribute")?;
            subject.push((oid, text(tag, value)?));
        }
    }
    Ok(subject)
}

fn key(content: &[u8]) -> Result<Key, String> {
    let mut spki = Der(content);
    let mut algorithm = Der(spki.take(SEQUENCE, "the key algorithm")?);
    let bits = spki.take(BIT_STRING, "the public key")?;
    spki.end("the public key")?;
    match algorithm.oid("the key algorithm")?.as_str() {
        EC_PUBLIC_KEY => Ok(Key::Ec(algorithm.oid("the curve")?)),
        RSA_ENCRYPTION => {
            let [0, key @ ..] = bits else {
                return Err("the RSA key is not a whole number of bytes".into());
            };
            let mut key = Der(Der(key).take(SEQUENCE, "the RSA key")?);
            let modulus = key.take(INTEGER, "the RSA modulus")?;
            let significant = &modulus[modulus.iter().take_while(|b| **b == 0).count()..];
            let bits = significant
                .first()
                .map_or(0, |b| significant.len() * 8 - b.leading_zeros() as usize);
            Ok(Key::Rsa(bits))
        }
        other => Ok(Key::Other(other.to_owned())),
    }
}

fn attributes(content: &[u8], csr: &mut Csr) -> Result<(), String> {
    let mut attributes = Der(content);
    while !attributes.0.is_empty() {
        let mut attribute = Der(attributes.take(SEQUENCE, "an attribute")?);
        let oid = attribute.oid("an attribute type")?;
        let mut values = Der(attribute.take(SET, "an attribute's values")?);
        attribute.end("an attribute")?;
        if oid != EXTENSION_REQUEST {
            csr.attributes.push(oid);
            continue;
        }
        let mut extensions = Der(values.take(SEQUENCE, "the extension request")?);
        values.end("the extension request")?;
        while !extensions.0.is_empty() {
            extension(extensions.take(SEQUENCE, "an extension")?, csr)?;
        }
    }
    Ok(())
}

fn extension(content: &[u8], csr: &mut Csr) -> Result<(), String> {
    let mut extension = Der(content);
    let oid = extension.oid("an extension id")?;
    let (mut tag, mut value) = extension.next()?;
    if tag == BOOLEAN {
        (tag, value) = extension.next()?;
    }
    extension.end("an extension")?;
    if tag != OCTET_STRING {
        return Err(format!("extension {} has no value", named(&oid)));
    }
    if oid == SUBJECT_ALT_NAME {
        let mut names = Der(Der(value).take(SEQUENCE, "the subjectAltName")?);
        while !names.0.is_empty() {
            let (tag, name) = names.next()?;
            csr.alt_names.push(alt_name(tag, name)?);
        }
    }
    csr.extensions.push(oid);
    Ok(())
}

fn alt_name(tag: u8, name: &[u8]) -> Result<AltName, String> {
    let ascii = || {
        std::str::from_utf8(name)
            .ok()
            .filter(|s| s.is_ascii())
            .map(str::to_owned)
            .ok_or_else(|| format!("a SAN of type [{}] is not ASCII", tag & 0x1f))
    };
    Ok(match tag {
        0x81 => AltName::Email(ascii()?),
        0x82 => AltName::Dns(ascii()?),
        0x86 => AltName::Uri(ascii()?),
        // Spelled out by hand: std's address formatting costs more module size.
        0x87 => AltName::Ip(match name.len() {
            4 => name.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
            16 => name
                .chunks(2)
                .map(|pair| format!("{:x}", u16::from(pair[0]) << 8 | u16::from(pair[1])))
                .collect::<Vec<_>>()
                .join(":"),
            _ => return Err("an IP SAN is neither 4 nor 16 bytes".into()),
        }),
        other => AltName::Other(other & 0x1f),
    })
}

/// The identity a CSR must name, as its URI SAN and its only subject attribute, the
/// common name. Without an account (the csi-driver requests for any pod), the CSR's URI
/// SAN names it, and the subject must agree.
pub struct Expected<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub service_account: Option<&'a str>,
}

/// What is wrong with a CSR's identity, one message per field, each naming what was
/// expected.
pub fn identity_errors(csr: &Csr, expected: &Expected) -> Vec<String> {
    let (identity, uri_error) = uri_errors(csr, expected);
    let mut errors: Vec<String> = uri_error.into_iter().collect();
    let others: Vec<String> = csr
        .alt_names
        .iter()
        .filter(|n| !matches!(n, AltName::Uri(_)))
        .map(AltName::describe)
        .collect();
    if !others.is_empty() {
        errors.push(format!(
            "asks for {}; expected no SAN but the URI SAN",
            others.join(", ")
        ));
    }
    let cn = identity.common_name();
    if csr.subject != [(COMMON_NAME.to_owned(), cn.clone())] {
        let found: Vec<String> = csr
            .subject
            .iter()
            .map(|(oid, v)| format!("{}={}", named(oid), quote(v)))
            .collect();
        errors.push(format!(
            "has subject [{}]; expected only CN={cn:?}",
            found.join(", ")
        ));
    }
    errors.extend(extras_errors(csr));
    errors.extend(key_error(&csr.key));
    errors
}

/// The identity the CSR must name (with a placeholder account when its one URI SAN
/// names none that fits), and what is wrong with its URI SANs.
fn uri_errors<'a>(csr: &'a Csr, expected: &Expected<'a>) -> (Identity<'a>, Option<String>) {
    let uris: Vec<&str> = csr
        .alt_names
        .iter()
        .filter_map(|n| match n {
            AltName::Uri(uri) => Some(uri.as_str()),
            _ => None,
        })
        .collect();
    let mut identity = Identity {
        cluster: expected.cluster,
        namespace: expected.namespace,
        account: "<service account>",
    };
    let account = match expected.service_account {
        Some(account) => Some(account),
        None => uris
            .first()
            .and_then(|uri| identity.account_in(uri))
            .filter(|a| crate::validation::is_dns_subdomain(a)),
    };
    identity.account = account.unwrap_or(identity.account);
    let uri = identity.uri();
    if uris.len() == 1 && account.is_some() && uris[0] == uri {
        return (identity, None);
    }
    let found: Vec<String> = uris.iter().map(|u| quote(u)).collect();
    let error = format!(
        "has URI SANs [{}]; expected exactly one, {uri:?}",
        found.join(", ")
    );
    (identity, Some(error))
}

/// cert-manager's csi-driver requests one extension, subjectAltName, and no other
/// attribute.
fn extras_errors(csr: &Csr) -> Vec<String> {
    let extra = csr
        .attributes
        .iter()
        .map(|oid| format!("attribute {}", named(oid)))
        .chain(
            csr.extensions
                .iter()
                .filter(|oid| *oid != SUBJECT_ALT_NAME)
                .map(|oid| format!("extension {}", named(oid))),
        );
    let mut extra: Vec<String> = extra.collect();
    if csr
        .extensions
        .iter()
        .filter(|o| *o == SUBJECT_ALT_NAME)
        .count()
        > 1
    {
        extra.push("a second subjectAltName extension".into());
    }
    if extra.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "requests {}; expected only the subjectAltName extension, as cert-manager's csi-driver sends",
        extra.join(", ")
    )]
}

/// IAM Roles Anywhere accepts ECDSA P-256 and P-384 keys and RSA keys of 2048 bits or more.
fn key_error(key: &Key) -> Option<String> {
    let found = match key {
        Key::Ec(curve) if curve == P256 || curve == P384 => return None,
        Key::Rsa(bits) if *bits >= 2048 => return None,
        Key::Ec(curve) => format!("an EC key on curve {}", named(curve)),
        Key::Rsa(bits) => format!("a {bits}-bit RSA key"),
        Key::Other(algorithm) => format!("a key of algorithm {}", named(algorithm)),
    };
    Some(format!(
        "has {found}; IAM Roles Anywhere accepts ECDSA P-256 or P-384, or RSA of at least 2048 bits"
    ))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rstest::rstest;

    /// A fixture of e2e-tests/tools/make_csrs.py as `spec.request` holds it.
    pub fn request(case: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e-tests/fixtures/guard/csr/");
        let pem = std::fs::read(format!("{dir}{case}.pem")).unwrap();
        STANDARD.encode(pem)
    }

    fn errors(case: &str, service_account: Option<&str>) -> Vec<String> {
        let csr = parse(&request(case)).unwrap();
        let expected = Expected {
            cluster: "cluster",
            namespace: "payments",
            service_account,
        };
        identity_errors(&csr, &expected)
    }

    #[test]
    fn reads_what_the_csi_driver_sends() {
        let csr = parse(&request("good-p256")).unwrap();
        assert_eq!(
            csr,
            Csr {
                subject: vec![(COMMON_NAME.into(), "ns/payments/sa/payments-api".into())],
                alt_names: vec![AltName::Uri(
                    "spiffe://cluster/ns/payments/sa/payments-api".into()
                )],
                extensions: vec![SUBJECT_ALT_NAME.into()],
                attributes: vec![],
                key: Key::Ec(P256.into()),
            }
        );
        assert_eq!(parse(&request("good-rsa2048")).unwrap().key, Key::Rsa(2048));
        assert_eq!(
            parse(&request("extra-ip")).unwrap().alt_names[1],
            AltName::Ip("10.0.0.7".into())
        );
    }

    #[rstest]
    #[case::p256("good-p256")]
    #[case::p384("good-p384")]
    #[case::rsa2048("good-rsa2048")]
    fn the_requesters_own_identity_passes(#[case] case: &str) {
        assert_eq!(errors(case, Some("payments-api")), Vec::<String>::new());
        // The csi-driver requests for any account; the CSR names it.
        assert_eq!(errors(case, None), Vec::<String>::new());
    }

    #[rstest]
    #[case::other_namespace(
        "other-namespace",
        Some("payments-api"),
        "expected exactly one, \"spiffe://cluster/ns/payments/sa/payments-api\""
    )]
    #[case::other_namespace_from_the_driver(
        "other-namespace",
        None,
        "has URI SANs [\"spiffe://cluster/ns/billing/sa/payments-api\"]"
    )]
    #[case::other_account("other-account", Some("payments-api"), "has subject [CN (2.5.4.3)=\"ns/payments/sa/admin\"]; expected only CN=\"ns/payments/sa/payments-api\"")]
    #[case::mixed_identity(
        "mixed-identity",
        None,
        "expected only CN=\"ns/payments/sa/payments-api\""
    )]
    #[case::extra_dns(
        "extra-dns",
        None,
        "asks for DNS SAN \"api.payments.svc\"; expected no SAN but the URI SAN"
    )]
    #[case::extra_ip("extra-ip", Some("payments-api"), "asks for IP SAN 10.0.0.7")]
    #[case::extra_email("extra-email", None, "asks for e-mail SAN \"ops@example.com\"")]
    #[case::extra_uri("extra-uri", Some("payments-api"), "has URI SANs [\"spiffe://cluster/ns/payments/sa/payments-api\", \"spiffe://cluster/ns/payments/sa/admin\"]; expected exactly one")]
    #[case::no_san("no-san", None, "has URI SANs []; expected exactly one, \"spiffe://cluster/ns/payments/sa/<service account>\"")]
    #[case::extra_subject("extra-subject", None, "O (2.5.4.10)=\"payments\"]; expected only CN=")]
    #[case::ca_extension("ca-extension", Some("payments-api"), "requests extension basicConstraints (2.5.29.19); expected only the subjectAltName extension")]
    #[case::rsa1024("rsa1024", None, "has a 1024-bit RSA key; IAM Roles Anywhere accepts")]
    #[case::ed25519("ed25519", None, "has a key of algorithm Ed25519 (1.3.101.112)")]
    fn forgeries_are_named(
        #[case] case: &str,
        #[case] service_account: Option<&str>,
        #[case] message: &str,
    ) {
        let errors = errors(case, service_account);
        assert!(errors.iter().any(|e| e.contains(message)), "{errors:#?}");
    }

    #[rstest]
    #[case::not_base64("not base64!", "is not base64")]
    #[case::not_pem(&STANDARD.encode("hello"), "is not one PEM block of type CERTIFICATE REQUEST")]
    #[case::a_certificate(&STANDARD.encode("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), "is not one PEM block")]
    #[case::empty_block(&STANDARD.encode("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"), "is not a well-formed PKCS#10 request: it ends in the middle")]
    #[case::wrong_structure(&STANDARD.encode("-----BEGIN CERTIFICATE REQUEST-----\nAgEA\n-----END CERTIFICATE REQUEST-----\n"), "the request has tag 0x02 where 0x30 belongs")]
    #[case::overlong(&STANDARD.encode("-----BEGIN CERTIFICATE REQUEST-----\nMIQAAAAA\n-----END CERTIFICATE REQUEST-----\n"), "unsupported length")]
    fn garbage_is_named(#[case] request: &str, #[case] message: &str) {
        let err = parse(request).unwrap_err();
        assert!(err.contains(message), "{err}");
    }

    #[test]
    fn every_truncation_of_a_request_is_refused_without_panicking() {
        let pem = String::from_utf8(STANDARD.decode(request("good-rsa2048")).unwrap()).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        assert!(parse_der(&der).is_ok());
        for len in 0..der.len() {
            assert!(parse_der(&der[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn ip_sans_read_in_both_families() {
        assert_eq!(
            alt_name(0x87, &[10, 0, 0, 7]),
            Ok(AltName::Ip("10.0.0.7".into()))
        );
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            alt_name(0x87, &v6),
            Ok(AltName::Ip("2001:db8:0:0:0:0:0:1".into()))
        );
        assert!(alt_name(0x87, &[1, 2, 3]).is_err());
    }

    #[test]
    fn oids_read_in_dotted_form() {
        assert_eq!(
            oid_string(&[0x55, 0x04, 0x03]).as_deref(),
            Some(COMMON_NAME)
        );
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e]).as_deref(),
            Some(EXTENSION_REQUEST)
        );
        assert_eq!(oid_string(&[0x2a, 0x86]), None);
    }
}
