"""Certificates as the chart's issuer chain and the cert-manager csi-driver make them.

    root CA (self-signed, ECDSA P-384)      what the IAM Roles Anywhere trust anchor holds
      intermediate CA (ECDSA P-384)         the workload ClusterIssuer's CA
        pod certificate (ECDSA P-256)       the csi volume's attributes in the patched pod:
                                            CN ns/<ns>/sa/<sa>, URI SAN spiffe://..., key
                                            usages digital signature + client auth, 24h

The volume holds what the csi-driver writes: tls.crt (the pod certificate, then the
intermediate: cert-manager's CA issuer returns the chain without the self-signed root),
tls.key (PKCS#8, the volume's key-encoding) and ca.crt (the root).

    pki.py DIR [CASE]    writes DIR/tls.crt, DIR/tls.key, DIR/ca.crt; CASE is one of CASES

CASES, the refusals IAM Roles Anywhere makes besides the good chain:
    good          the chain above
    single-ca     the chart's shape before the intermediate: the root signs the pod
                  certificate, and tls.crt holds only it
    expired       the pod certificate expired an hour ago (it was valid for 24h)
    wrong-chain   the intermediate and the pod certificate come from another root, so
                  nothing chains to the trust anchor's certificate
    wrong-key     tls.key is another P-256 key than the pod certificate's
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CASES = ("good", "single-ca", "expired", "wrong-chain", "wrong-key")
HOUR = datetime.timedelta(hours=1)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_usage():
    # cert-manager's default usages of an isCA Certificate.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def _builder(subject, issuer, key, not_before, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def make_ca(common_name, now, issuer=None, path_length=None):
    """(certificate, key) of a CA: self-signed without ISSUER, else signed by it."""
    key = ec.generate_private_key(ec.SECP384R1())
    signer_cert, signer_key = issuer or (None, key)
    # 90 days, issued 30 days ago: older than any pod certificate it signs.
    start = now - 720 * HOUR
    builder = _builder(_name(common_name), signer_cert, key, start, start + 2160 * HOUR)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    return builder.sign(signer_key, hashes.SHA384()), key


def make_pod_certificate(issuer, now, namespace="payments", service_account="payments-api",
                         cluster="cluster", lifetime=24 * HOUR):
    """(certificate, key) as the csi-driver asks the issuer for, valid from NOW."""
    issuer_cert, issuer_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    identity = f"ns/{namespace}/sa/{service_account}"
    builder = _builder(_name(identity), issuer_cert, key, now, now + lifetime)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{cluster}/{identity}")]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(issuer_key, hashes.SHA384()), key


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_volume(directory, case="good", now=None):
    """Writes the csi volume's files for CASE into DIRECTORY; returns the root's PEM."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}; one of {', '.join(CASES)}")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    root = make_ca("iamra-workload-root", now)
    if case == "single-ca":
        leaf, key = make_pod_certificate(root, now - HOUR)
        chain = [leaf]
    else:
        top = make_ca("iamra-workload-root", now) if case == "wrong-chain" else root
        intermediate = make_ca("iamra-workload-ca", now, issuer=top, path_length=0)
        start = now - 25 * HOUR if case == "expired" else now - HOUR
        leaf, key = make_pod_certificate(intermediate, start)
        chain = [leaf, intermediate[0]]
    if case == "wrong-key":
        key = ec.generate_private_key(ec.SECP256R1())
    os.makedirs(directory, exist_ok=True)
    files = {
        "tls.crt": b"".join(_pem(c) for c in chain),
        "tls.key": _key_pem(key),
        "ca.crt": _pem(root[0]),
    }
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return files["ca.crt"]


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} DIR [{'|'.join(CASES)}]")
    write_volume(sys.argv[1], *sys.argv[2:])
