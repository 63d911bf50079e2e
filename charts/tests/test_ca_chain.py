"""The CA chain the chart renders, issued the way cert-manager's self-signed and CA issuers
issue (subject key identifiers from the key, the issuer's name and key identifier on what
it signs) and renewed the way its rotationPolicy says, then checked with `openssl verify`
against the root certificate exported at install, as IAM Roles Anywhere checks a chain
against its trust anchor. The real controllers' part is in the cluster tests."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chartlib import find, render_policy

NOW = datetime.datetime.now(datetime.timezone.utc)


def new_key(spec):
    if spec["privateKey"]["algorithm"] == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec["privateKey"]["size"])
    return ec.generate_private_key({256: ec.SECP256R1(), 384: ec.SECP384R1()}[spec["privateKey"]["size"]])


def issue(subject_cn, key, issuer=None, ca=True, uri=None, days=30):
    """A certificate for key, signed by issuer (cert, key) or self-signed."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer_cert, issuer_key = issuer or (None, key)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(minutes=1))
               .not_valid_after(NOW + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = (builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                         critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


class CertManager:
    """The chart's chain, issued and renewed as its Certificates say."""

    def __init__(self):
        objs = render_policy()
        self.root_spec = find(objs, "Certificate", "iamra-workload-root")["spec"]
        self.intermediate_spec = find(objs, "Certificate", "iamra-workload-intermediate")["spec"]
        self.root_key = new_key(self.root_spec)
        self.root = issue(self.root_spec["commonName"], self.root_key, days=3650)
        self.renew_intermediate()

    def renew(self, spec, key):
        return key if spec["privateKey"]["rotationPolicy"] == "Never" else new_key(spec)

    def renew_root(self):
        self.root_key = self.renew(self.root_spec, self.root_key)
        self.root = issue(self.root_spec["commonName"], self.root_key, days=3650)
        self.renew_intermediate()  # the next intermediate is signed by the renewed root

    def renew_intermediate(self):
        key = new_key(self.intermediate_spec) if not hasattr(self, "intermediate_key") else \
            self.renew(self.intermediate_spec, self.intermediate_key)
        self.intermediate_key = key
        self.intermediate = issue(self.intermediate_spec["commonName"], key, (self.root, self.root_key), days=90)

    def pod_certificate(self, identity="spiffe://cluster/ns/payments/sa/api"):
        """A pod's tls.crt: its certificate and the intermediate, as the CA issuer returns them."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = issue("ns/payments/sa/api", key, (self.intermediate, self.intermediate_key), ca=False, uri=identity,
                     days=1)
        return [leaf, self.intermediate]


def pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def verifies(tmp_path: Path, trust_anchor, tls_crt, present_intermediate=True) -> bool:
    """openssl verify of the pod's certificate against the trust anchor's root, with the
    intermediate it presents (the helper's --intermediates sends tls.crt's certificates)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl not found"
    (tmp_path / "anchor.pem").write_bytes(pem(trust_anchor))
    (tmp_path / "leaf.pem").write_bytes(pem(tls_crt[0]))
    (tmp_path / "chain.pem").write_bytes(pem(*tls_crt))
    args = [openssl, "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", "anchor.pem"]
    if present_intermediate:
        args += ["-untrusted", "chain.pem"]
    return subprocess.run(args + ["leaf.pem"], cwd=tmp_path, capture_output=True).returncode == 0


@pytest.fixture
def cm():
    return CertManager()


def test_a_pod_certificate_chains_to_the_root_through_the_intermediate(cm, tmp_path):
    exported = cm.root  # what the trust anchor got at install
    assert verifies(tmp_path, exported, cm.pod_certificate())
    # Without the intermediate the root alone cannot verify it: the sidecar must present it.
    assert not verifies(tmp_path, exported, cm.pod_certificate(), present_intermediate=False)


def test_an_intermediate_renewal_keeps_old_and_new_pods_valid_against_the_same_root(cm, tmp_path):
    exported = cm.root
    before = cm.pod_certificate()
    cm.renew_intermediate()  # rotationPolicy Always: a new key
    after = cm.pod_certificate()
    assert after[1].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
        before[1].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert verifies(tmp_path, exported, before)
    assert verifies(tmp_path, exported, after)


def test_a_root_renewal_keeps_everything_valid_against_the_exported_root(cm, tmp_path):
    # rotationPolicy Never: the renewed root has the old key and name, so the certificate
    # already in the trust anchor verifies chains from the renewed root; the renewed one
    # can replace it any time before it expires.
    exported = cm.root
    cm.renew_root()
    assert cm.root.serial_number != exported.serial_number
    after = cm.pod_certificate()
    assert verifies(tmp_path, exported, after)
    assert verifies(tmp_path, cm.root, after)


def test_a_root_with_a_new_key_is_not_trusted_by_the_old_anchor(cm, tmp_path):
    # Why the root keeps its key, and why a key roll needs a second trust anchor.
    exported = cm.root
    cm.root_spec = {**cm.root_spec, "privateKey": {**cm.root_spec["privateKey"], "rotationPolicy": "Always"}}
    cm.renew_root()
    assert not verifies(tmp_path, exported, cm.pod_certificate())
