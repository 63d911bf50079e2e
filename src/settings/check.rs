//! The settings' checks: each field's format and the rules between fields, every
//! problem reported at once (`Validatable`).

use super::*;

/// IAM Roles Anywhere sessions last 15 minutes to 12 hours.
pub const SESSION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43200;

/// Checks a session duration given as a setting or an annotation.
pub fn session_seconds(value: &str) -> Result<u64, Flaw> {
    let seconds = validation::duration_seconds(value)?;
    if SESSION_SECONDS.contains(&seconds) {
        Ok(seconds)
    } else {
        let message = format!(
            "{} is {seconds}s; it must be between 900s (15m) and 43200s (12h)",
            quote(value)
        );
        Err(Flaw::new(Kind::OutOfRange, message))
    }
}

/// A Kubernetes quantity such as `10m`, `64Mi`, `0.5` or `1e3`.
fn is_quantity(s: &str) -> bool {
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.' || *b == b'+' || *b == b'-')
        .count();
    let (number, suffix) = s.split_at(number_len);
    let number = number.trim_start_matches(['+', '-']);
    let digits_ok = !number.is_empty()
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.trim_start_matches(['+', '-']))
        .is_some_and(|exp| !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()));
    digits_ok && suffix_ok
}

/// An annotation key prefix is a DNS subdomain (`iamra.aws`, `example.com`).
fn check_prefix(field: &'static str, prefix: &str, errors: &mut Problems) {
    if !validation::is_dns_subdomain(prefix) {
        errors.error(Problem::new(
            Source::Setting(field),
            Kind::Malformed,
            format!(
                "{} is not a valid annotation prefix; use a DNS subdomain such as iamra.aws",
                quote(prefix)
            ),
        ));
    }
}

impl Settings {
    fn inject_errors(&self, errors: &mut Problems) {
        match validation::rolesanywhere_arn(&self.trust_anchor_arn, "trust-anchor") {
            Ok(arn) if !self.region.is_empty() && arn.region != self.region => {
                errors.error(Problem::new(
                    Source::Setting("region"),
                    Kind::Conflicting,
                    format!(
                        "{} differs from the trust anchor's region {:?}; IAM Roles Anywhere \
                         serves a trust anchor only in its own region",
                        quote(&self.region),
                        arn.region
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) if self.trust_anchor_arn.is_empty() => errors.error(Problem::sentence(
                Source::Setting("trustAnchorArn"),
                Kind::Missing,
                "is required: the ARN of your IAM Roles Anywhere trust anchor, \
                 arn:<partition>:rolesanywhere:<region>:<12-digit account>:trust-anchor/<uuid>",
            )),
            Err(e) => errors.error(e.at(Source::Setting("trustAnchorArn"))),
        }
        if self.region.is_empty() {
            errors.error(Problem::sentence(
                Source::Setting("region"),
                Kind::Missing,
                format!("is required: {REGION_FORM}"),
            ));
        } else if !validation::is_region(&self.region) {
            errors.error(Problem::new(
                Source::Setting("region"),
                Kind::Malformed,
                format!("{} is not {REGION_FORM}", quote(&self.region)),
            ));
        }
    }

    fn sidecar_errors(&self, errors: &mut Problems) {
        let sidecar = &self.sidecar;
        let image = sidecar.image.trim();
        if image.is_empty() || image.chars().any(char::is_whitespace) {
            errors.error(Problem::new(
                Source::Setting("sidecar.image"),
                Kind::Malformed,
                format!(
                    "{} is not an image reference such as {DEFAULT_SIDECAR_IMAGE}",
                    quote(&sidecar.image)
                ),
            ));
        }
        if !(1024..=65535).contains(&sidecar.port) {
            errors.error(Problem::new(
                Source::Setting("sidecar.port"),
                Kind::OutOfRange,
                format!(
                    "{} is out of range; use an unprivileged port 1024..65535",
                    sidecar.port
                ),
            ));
        }
        let quantities = [&sidecar.resources.requests, &sidecar.resources.limits];
        for (name, quantity) in quantities.into_iter().flatten().flatten() {
            if !is_quantity(quantity) {
                errors.error(Problem::new(
                    Source::Setting("sidecar.resources"),
                    Kind::Malformed,
                    format!(
                        "{}: {} is not a Kubernetes quantity such as 10m or 64Mi",
                        cut(name),
                        quote(quantity)
                    ),
                ));
            }
        }
    }

    fn certificate_errors(&self, errors: &mut Problems) {
        let cert = &self.certificate;
        let issuer = &cert.issuer;
        let mut not = |field: &'static str, value: &str, what: &str| {
            let message = format!("{} is not {what}", quote(value));
            errors.error(Problem::new(
                Source::Setting(field),
                Kind::Malformed,
                message,
            ));
        };
        if !validation::is_dns_subdomain(&issuer.name) {
            not(
                "certificate.issuer.name",
                &issuer.name,
                "a valid resource name (a DNS subdomain)",
            );
        }
        if issuer.kind.is_empty() || !issuer.kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            not(
                "certificate.issuer.kind",
                &issuer.kind,
                "a kind such as ClusterIssuer, Issuer or AWSPCAClusterIssuer",
            );
        }
        if !validation::is_dns_subdomain(&issuer.group) {
            not(
                "certificate.issuer.group",
                &issuer.group,
                "an API group such as cert-manager.io",
            );
        }
        self.lifetime_errors(errors);
        self.key_errors(errors);
    }

    fn lifetime_errors(&self, errors: &mut Problems) {
        let cert = &self.certificate;
        let duration = validation::duration_seconds(&cert.duration)
            .map_err(|e| errors.error(e.at(Source::Setting("certificate.duration"))));
        let renew = validation::duration_seconds(&cert.renew_before)
            .map_err(|e| errors.error(e.at(Source::Setting("certificate.renewBefore"))));
        if let (Ok(duration), Ok(renew)) = (duration, renew) {
            if renew >= duration {
                errors.error(Problem::new(
                    Source::Setting("certificate.renewBefore"),
                    Kind::Conflicting,
                    format!(
                        "{} must be shorter than certificate.duration {}",
                        quote(&cert.renew_before),
                        quote(&cert.duration)
                    ),
                ));
            }
            // cert-manager refuses certificates shorter than an hour.
            if duration < 3600 {
                errors.error(Problem::new(
                    Source::Setting("certificate.duration"),
                    Kind::OutOfRange,
                    format!(
                        "{} is shorter than cert-manager's minimum of 1h",
                        quote(&cert.duration)
                    ),
                ));
            }
        }
    }

    fn key_errors(&self, errors: &mut Problems) {
        let cert = &self.certificate;
        match cert.key_algorithm {
            KeyAlgorithm::Ecdsa if ![256, 384].contains(&cert.key_size) => errors.error(Problem::new(Source::Setting("certificate.keySize"), Kind::OutOfRange, format!("{} is not an ECDSA curve IAM Roles Anywhere accepts; use 256 (P-256) or 384 (P-384)",
                cert.key_size
            ))),
            KeyAlgorithm::Rsa if !(2048..=8192).contains(&cert.key_size) => errors.error(Problem::new(Source::Setting("certificate.keySize"), Kind::OutOfRange, format!("{} is not an RSA key size IAM Roles Anywhere accepts; use 2048 to 8192",
                cert.key_size
            ))),
            _ => {}
        }
    }

    fn irsa_errors(&self, errors: &mut Problems) {
        check_prefix(
            "irsa.annotationPrefix",
            &self.irsa.annotation_prefix,
            errors,
        );
        if self.irsa.token_expiration < 600 {
            errors.error(Problem::new(
                Source::Setting("irsa.tokenExpiration"),
                Kind::OutOfRange,
                format!(
                    "{} is too short; a projected token lives at least 600 seconds",
                    self.irsa.token_expiration
                ),
            ));
        }
        if !self.irsa.region.is_empty() && !validation::is_region(&self.irsa.region) {
            errors.error(Problem::new(
                Source::Setting("irsa.region"),
                Kind::Malformed,
                format!("{} is not {REGION_FORM}", quote(&self.irsa.region)),
            ));
        }
    }

    fn kubevirt_errors(&self, errors: &mut Problems) {
        let image = &self.kubevirt.virtiofs_image;
        if image.chars().any(char::is_whitespace) {
            errors.error(Problem::new(
                Source::Setting("kubevirt.virtiofsImage"),
                Kind::Malformed,
                format!(
                    "{image:?} is not an image reference; leave it empty for the image of \
                     the pod's compute container"
                ),
            ));
        }
    }
}

impl Settings {
    /// Every problem of the settings, in the order of their fields.
    pub(super) fn problems(&self) -> Problems {
        let mut errors = Problems::default();
        if self.mode == Mode::Inject {
            self.inject_errors(&mut errors);
        }
        check_prefix("annotationPrefix", &self.annotation_prefix, &mut errors);
        if !validation::is_dns_label(&self.cluster_name) {
            errors.error(Problem::new(
                Source::Setting("clusterName"),
                Kind::Malformed,
                format!(
                    "{} is not a DNS label (lowercase letters, digits and '-', at most 63)",
                    quote(&self.cluster_name)
                ),
            ));
        }
        self.sidecar_errors(&mut errors);
        if let Err(e) = session_seconds(&self.defaults.session_duration) {
            errors.error(e.at(Source::Setting("defaults.sessionDuration")));
        }
        if let Err(e) = validation::audience(&self.defaults.audience) {
            errors.error(e.at(Source::Setting("defaults.audience")));
        }
        self.certificate_errors(&mut errors);
        if self.allowed_requesters.iter().any(|u| u.trim().is_empty()) {
            errors.error(Problem::new(
                Source::Setting("allowedRequesters"),
                Kind::Malformed,
                "user names must not be empty",
            ));
        }
        if self.certificate_requests.binding == Binding::AllowedRequesters
            && self.allowed_requesters.is_empty()
        {
            errors.error(Problem::new(
                Source::Setting("allowedRequesters"),
                Kind::Missing,
                "is empty, so the guard would refuse every workload certificate; list the \
                 csi-driver's ServiceAccount, or set certificateRequests.binding to requester",
            ));
        }
        self.irsa_errors(&mut errors);
        self.kubevirt_errors(&mut errors);
        errors
    }
}

impl kubewarden_policy_sdk::settings::Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        let errors = self.problems();
        if errors.has_errors() {
            Err(errors.error_message())
        } else {
            Ok(())
        }
    }
}
