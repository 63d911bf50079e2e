#!/usr/bin/env python3
"""Writes the guard's CSR fixtures: PKCS#10 requests as cert-manager's csi-driver sends
them (subject CN=ns/<ns>/sa/<sa>, one URI SAN spiffe://cluster/ns/<ns>/sa/<sa>, nothing
else) and forgeries of them, one PEM file per case, into the directory given.

The guard.bats suite runs it at test time; the unit tests read the committed copies in
e2e-tests/fixtures/guard/csr (regenerate them with
`python3 e2e-tests/tools/make_csrs.py e2e-tests/fixtures/guard/csr`).
"""

import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

NAMESPACE, ACCOUNT = "payments", "payments-api"


def spiffe(namespace=NAMESPACE, account=ACCOUNT):
    return x509.UniformResourceIdentifier(f"spiffe://cluster/ns/{namespace}/sa/{account}")


def subject(namespace=NAMESPACE, account=ACCOUNT, *extra):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ns/{namespace}/sa/{account}"), *extra])


# case name -> (key, subject, SANs, other extensions)
CASES = {
    "good-p256": ("p256", subject(), [spiffe()], []),
    "good-p384": ("p384", subject(), [spiffe()], []),
    "good-rsa2048": ("rsa2048", subject(), [spiffe()], []),
    "other-namespace": ("p256", subject("billing"), [spiffe("billing")], []),
    "other-account": ("p256", subject(NAMESPACE, "admin"), [spiffe(NAMESPACE, "admin")], []),
    "mixed-identity": ("p256", subject(NAMESPACE, "admin"), [spiffe()], []),
    "extra-dns": ("p256", subject(), [spiffe(), x509.DNSName("api.payments.svc")], []),
    "extra-ip": ("p256", subject(), [spiffe(), x509.IPAddress(ipaddress.ip_address("10.0.0.7"))], []),
    "extra-uri": ("p256", subject(), [spiffe(), spiffe(NAMESPACE, "admin")], []),
    "extra-email": ("p256", subject(), [spiffe(), x509.RFC822Name("ops@example.com")], []),
    "no-san": ("p256", subject(), [], []),
    "extra-subject": (
        "p256",
        subject(NAMESPACE, ACCOUNT, x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payments")),
        [spiffe()],
        [],
    ),
    "ca-extension": ("p256", subject(), [spiffe()], [x509.BasicConstraints(ca=True, path_length=None)]),
    "rsa1024": ("rsa1024", subject(), [spiffe()], []),
    "ed25519": ("ed25519", subject(), [spiffe()], []),
}


def key(kind):
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind])


def csr(kind, name, sans, extensions):
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    private = key(kind)
    digest = None if kind == "ed25519" else hashes.SHA256()
    return builder.sign(private, digest).public_bytes(serialization.Encoding.PEM)


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    for case, (kind, name, sans, extensions) in CASES.items():
        (out / f"{case}.pem").write_bytes(csr(kind, name, sans, extensions))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
