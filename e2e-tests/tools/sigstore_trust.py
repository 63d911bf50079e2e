"""A Sigstore ClientTrustConfig for verifying key-pair signatures offline, for kwctl verify
(`--sigstore-trust-config`) and policy-server (`KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH`,
which a 1.35 PolicyServer's `sigstoreTrustConfig` ConfigMap provides)."""
from __future__ import annotations

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def trust_config() -> dict:
    """Sigstore's ClientTrustConfig (protobuf-specs) with no log nor timestamp authority and
    one throwaway CA: a key-pair signature without Rekor needs none of them, but kwctl's
    Sigstore client refuses a trust root without a Fulcio CA, and policy-server without
    any trust root (it cannot fetch Sigstore's offline) skips verification altogether."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "unused test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "ctlogs": [], "timestampAuthorities": [],
            "certificateAuthorities": [{
                "subject": {"organization": "iamra tests", "commonName": "unused test CA"},
                "uri": "https://fulcio.invalid", "certChain": {"certificates": [{"rawBytes": der}]},
                "validFor": {"start": (now - datetime.timedelta(days=1)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")}}]},
        "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                          "caUrls": [], "oidcUrls": [], "rekorTlogUrls": [], "tsaUrls": [],
                          "rekorTlogConfig": {"selector": "ANY"},
                          "tsaConfig": {"selector": "ANY"}},
    }
