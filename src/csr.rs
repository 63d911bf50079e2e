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
                // DER's shortest form (X.690 10.1): the long form only from 128 on, and
                // no leading zero byte.
                if len < 0x80 || rest[0] == 0 {
                    return Err("an element's length is not in DER's shortest form".into());
                }
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
        // A leading 0x80 pads an arc, which DER forbids (X.690 8.19.2).
        if value == 0 && *b == 0x80 {
            return None;
        }
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
            "a subject attribute has string type {other:#04x}; expected UTF8String, PrintableString \
             or IA5String"
        )),
    }
}

/// `spec.request` as cert-manager stores it: base64 of a PEM `CERTIFICATE REQUEST`.
pub fn parse(request: &str) -> Result<Csr, String> {
    parse_der(&der_of(request)?).map_err(|e| format!("is not a well-formed PKCS#10 request: {e}"))
}

/// The DER of `spec.request`'s PEM block.
fn der_of(request: &str) -> Result<Vec<u8>, String> {
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
    STANDARD
        .decode(body)
        .map_err(|_| "holds a PEM block that is not base64".to_owned())
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
        // `critical` is DEFAULT FALSE, so DER encodes it only as TRUE, which is 0xff.
        if value != [0xff] {
            return Err(format!(
                "extension {} encodes critical as {value:02x?}; DER encodes only TRUE, as [ff]",
                named(&oid)
            ));
        }
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

    /// `der` with its outer length in four bytes instead of two: a length DER forbids.
    fn overlong_outer_length(der: &[u8]) -> Vec<u8> {
        assert_eq!(der[..2], [SEQUENCE, 0x82]);
        [&[SEQUENCE, 0x83, 0x00][..], &der[2..]].concat()
    }

    /// A DER element, its content split into elements when it is constructed.
    enum Tlv {
        Leaf(u8, Vec<u8>),
        Node(u8, Vec<Tlv>),
    }

    fn tlvs(mut der: Der) -> Vec<Tlv> {
        let mut out = Vec::new();
        while !der.0.is_empty() {
            let (tag, content) = der.next().unwrap();
            out.push(if tag & 0x20 != 0 {
                Tlv::Node(tag, tlvs(Der(content)))
            } else {
                Tlv::Leaf(tag, content.to_vec())
            });
        }
        out
    }

    /// The elements in DER, lengths in their shortest form.
    fn encode(elements: &[Tlv]) -> Vec<u8> {
        let mut out = Vec::new();
        for element in elements {
            let (tag, content) = match element {
                Tlv::Leaf(tag, content) => (*tag, content.clone()),
                Tlv::Node(tag, children) => (*tag, encode(children)),
            };
            out.push(tag);
            let len = content.len().to_be_bytes();
            match content.len() {
                short @ 0..0x80 => out.push(short as u8),
                _ => {
                    let skip = len.iter().take_while(|b| **b == 0).count();
                    out.push(0x80 | (len.len() - skip) as u8);
                    out.extend_from_slice(&len[skip..]);
                }
            }
            out.extend(content);
        }
        out
    }

    /// `der` with `edit` applied to every element list, innermost first.
    fn rewritten(der: &[u8], edit: &dyn Fn(&mut Vec<Tlv>)) -> Vec<u8> {
        fn walk(elements: &mut Vec<Tlv>, edit: &dyn Fn(&mut Vec<Tlv>)) {
            for element in elements.iter_mut() {
                if let Tlv::Node(_, children) = element {
                    walk(children, edit);
                }
            }
            edit(elements);
        }
        let mut elements = tlvs(Der(der));
        walk(&mut elements, edit);
        encode(&elements)
    }

    fn fixture_der(case: &str) -> Vec<u8> {
        der_of(&request(case)).unwrap()
    }

    /// The common name's type as `2.5.(0x80 0x04).3`: an arc padded with a leading 0x80.
    fn padded_oid_arc(elements: &mut Vec<Tlv>) {
        for element in elements {
            if let Tlv::Leaf(OID, content) = element {
                if content == &[0x55, 0x04, 0x03] {
                    *content = vec![0x55, 0x80, 0x04, 0x03];
                }
            }
        }
    }

    /// `critical FALSE` encoded after the subjectAltName extension's id.
    fn encoded_default_critical(elements: &mut Vec<Tlv>) {
        if matches!(elements.first(), Some(Tlv::Leaf(OID, id)) if id == &[0x55, 0x1d, 0x11]) {
            elements.insert(1, Tlv::Leaf(BOOLEAN, vec![0x00]));
        }
    }

    /// `critical TRUE`, which DER encodes, after the subjectAltName extension's id.
    fn critical_true(elements: &mut Vec<Tlv>) {
        if matches!(elements.first(), Some(Tlv::Leaf(OID, id)) if id == &[0x55, 0x1d, 0x11]) {
            elements.insert(1, Tlv::Leaf(BOOLEAN, vec![0xff]));
        }
    }

    #[test]
    fn the_rewriter_reproduces_a_fixture_byte_for_byte() {
        let der = fixture_der("good-p256");
        assert_eq!(rewritten(&der, &|_| {}), der);
    }

    #[rstest]
    #[case::length_with_a_leading_zero_byte(
        overlong_outer_length(&fixture_der("good-p256")),
        "an element's length is not in DER's shortest form"
    )]
    #[case::a_short_length_in_the_long_form(
        [&[SEQUENCE, 0x81, 0x03][..], &[INTEGER, 0x01, 0x00]].concat(),
        "an element's length is not in DER's shortest form"
    )]
    #[case::an_oid_arc_padded_with_0x80(
        rewritten(&fixture_der("good-p256"), &padded_oid_arc),
        "a subject attribute type is not a valid OID"
    )]
    #[case::critical_false_encoded(
        rewritten(&fixture_der("good-p256"), &encoded_default_critical),
        "extension 2.5.29.17 encodes critical as [00]; DER encodes only TRUE, as [ff]"
    )]
    fn encodings_der_forbids_are_refused(#[case] der: Vec<u8>, #[case] message: &str) {
        let err = parse_der(&der).unwrap_err();
        assert!(err.ends_with(message), "{err}");
    }

    #[test]
    fn a_critical_extension_encoded_as_der_does_is_read() {
        let csr = parse_der(&rewritten(&fixture_der("good-p256"), &critical_true)).unwrap();
        assert_eq!(csr, parse_der(&fixture_der("good-p256")).unwrap());
    }

    #[test]
    fn every_string_type_the_message_names_is_read_and_no_other() {
        for tag in [0x0c, 0x13, 0x16] {
            assert_eq!(text(tag, b"ns"), Ok("ns".into()));
        }
        assert_eq!(
            text(0x1e, b"ns"),
            Err(
                "a subject attribute has string type 0x1e; expected UTF8String, \
                 PrintableString or IA5String"
                    .into()
            )
        );
    }

    /// What RustCrypto's `x509-cert` reads of `der`, in this module's terms: the
    /// subject, the attribute and extension ids, the URI SANs and the key's algorithm.
    type Reading = (
        Vec<(String, String)>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        String,
    );

    fn x509_cert_reads(der: &[u8]) -> Result<Reading, der::Error> {
        use der::{Decode, Encode};
        use x509_cert::ext::pkix::{name::GeneralName, SubjectAltName};
        let request = x509_cert::request::CertReq::from_der(der)?;
        let info = request.info;
        let mut subject = Vec::new();
        for rdn in info.subject.0.iter() {
            for atv in rdn.0.iter() {
                let value = String::from_utf8_lossy(atv.value.value()).into_owned();
                subject.push((atv.oid.to_string(), value));
            }
        }
        let (mut attributes, mut extensions, mut uris) = (Vec::new(), Vec::new(), Vec::new());
        for attribute in info.attributes.iter() {
            if attribute.oid.to_string() != EXTENSION_REQUEST {
                attributes.push(attribute.oid.to_string());
                continue;
            }
            for value in attribute.values.iter() {
                for extension in x509_cert::ext::Extensions::from_der(&value.to_der()?)? {
                    if extension.extn_id.to_string() == SUBJECT_ALT_NAME {
                        let names = SubjectAltName::from_der(extension.extn_value.as_bytes())?;
                        for name in names.0 {
                            if let GeneralName::UniformResourceIdentifier(uri) = name {
                                uris.push(uri.to_string());
                            }
                        }
                    }
                    extensions.push(extension.extn_id.to_string());
                }
            }
        }
        let key = info.public_key.algorithm.oid.to_string();
        Ok((subject, attributes, extensions, uris, key))
    }

    fn our_reading(csr: &Csr) -> Reading {
        let uris = csr.alt_names.iter().filter_map(|n| match n {
            AltName::Uri(uri) => Some(uri.clone()),
            _ => None,
        });
        let key = match &csr.key {
            Key::Ec(_) => EC_PUBLIC_KEY.to_owned(),
            Key::Rsa(_) => RSA_ENCRYPTION.to_owned(),
            Key::Other(algorithm) => algorithm.clone(),
        };
        let (subject, attributes) = (csr.subject.clone(), csr.attributes.clone());
        (
            subject,
            attributes,
            csr.extensions.clone(),
            uris.collect(),
            key,
        )
    }

    /// The oracle: this walk and `x509-cert` accept and refuse the same requests, and
    /// read the same fields from those they accept.
    fn agree(der: &[u8], what: &str) {
        match (parse_der(der), x509_cert_reads(der)) {
            (Ok(ours), Ok(theirs)) => assert_eq!(our_reading(&ours), theirs, "{what}"),
            (Err(_), Err(_)) => {}
            (ours, theirs) => panic!("{what}: csr.rs says {ours:?}, x509-cert {theirs:?}"),
        }
    }

    const FIXTURES: [&str; 15] = [
        "ca-extension",
        "ed25519",
        "extra-dns",
        "extra-email",
        "extra-ip",
        "extra-subject",
        "extra-uri",
        "good-p256",
        "good-p384",
        "good-rsa2048",
        "mixed-identity",
        "no-san",
        "other-account",
        "other-namespace",
        "rsa1024",
    ];

    #[test]
    fn x509_cert_reads_every_fixture_and_each_truncation_as_the_walk_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e-tests/fixtures/guard/csr");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), FIXTURES.len());
        for case in FIXTURES {
            let der = fixture_der(case);
            assert!(
                parse_der(&der).is_ok() && x509_cert_reads(&der).is_ok(),
                "{case}"
            );
            agree(&der, case);
            for len in 0..der.len() {
                agree(&der[..len], &format!("{case} cut at {len}"));
            }
        }
    }

    #[test]
    fn x509_cert_reads_the_der_encodings_as_the_walk_does() {
        let der = fixture_der("good-p256");
        agree(&overlong_outer_length(&der), "overlong length");
        agree(&rewritten(&der, &critical_true), "critical TRUE");
    }

    /// Where the walk is stricter than `x509-cert` 0.2, as strict as Go's parser, which
    /// the issuer uses: `const-oid` 0.9 reads an arc padded with 0x80, and `der` 0.7 an
    /// encoded DEFAULT.
    #[test]
    fn the_walk_refuses_what_x509_cert_lets_through() {
        let der = fixture_der("good-p256");
        for (what, edited) in [
            ("padded arc", rewritten(&der, &padded_oid_arc)),
            ("critical FALSE", rewritten(&der, &encoded_default_critical)),
        ] {
            assert!(parse_der(&edited).is_err(), "{what}");
            assert!(
                x509_cert_reads(&edited).is_ok(),
                "{what}: x509-cert refuses it now"
            );
        }
    }

    /// Every string of the fuzz corpus that holds a CSR.
    fn corpus_requests(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        fn strings(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
            match v {
                serde_json::Value::String(s) => out.extend(der_of(s).ok()),
                serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                corpus_requests(&path, out);
            } else if let Ok(json) = serde_json::from_slice(&std::fs::read(&path).unwrap()) {
                strings(&json, out);
            }
        }
    }

    #[test]
    fn x509_cert_reads_the_fuzz_corpus_requests_as_the_walk_does() {
        let mut found = Vec::new();
        corpus_requests(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus")),
            &mut found,
        );
        assert!(!found.is_empty(), "the corpus holds a CertificateRequest");
        for (i, der) in found.iter().enumerate() {
            agree(der, &format!("corpus request {i}"));
            for len in 0..der.len() {
                agree(&der[..len], &format!("corpus request {i} cut at {len}"));
            }
        }
    }
}
