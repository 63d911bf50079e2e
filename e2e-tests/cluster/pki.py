"""The cluster's keys and certificates, made once per state directory: the API server's
CA, serving certificate and client certificates (admin, kube-controller-manager), the
ServiceAccount signing key, and Kubewarden's CA (EC P-256 in SEC1 PEM, as the controller
reads it) with the controller's webhook serving certificate."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY))


def _write(directory: Path, name: str, cert: x509.Certificate, key,
           key_format=serialization.PrivateFormat.PKCS8) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, key_format, serialization.NoEncryption()))


def _ca(directory: Path, name: str, common_name: str, key_format) -> tuple:
    key = _key()
    cert = (_builder(_name(common_name), _name(common_name), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(directory, name, cert, key, key_format)
    return cert, key


def _leaf(directory: Path, name: str, ca: tuple, subject: x509.Name, usage,
          dns: list[str] = (), ips: list[str] = ()) -> None:
    ca_cert, ca_key = ca
    key = _key()
    builder = (_builder(subject, ca_cert.subject, key)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i))
                                                for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write(directory, name, builder.sign(ca_key, hashes.SHA256()), key)


def make(directory: Path, deployments_namespace: str, webhook_service: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pkcs8 = serialization.PrivateFormat.PKCS8
    ca = _ca(directory, "ca", "iamra-cluster-test-ca", pkcs8)
    server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
    _leaf(directory, "apiserver", ca, _name("kube-apiserver"), server,
          ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
          ["127.0.0.1"])
    _leaf(directory, "admin", ca, _name("iamra-admin", "system:masters"), client)
    _leaf(directory, "controller-manager", ca, _name("system:kube-controller-manager"),
          client)
    sa = _key()
    (directory / "sa.key").write_bytes(sa.private_bytes(
        serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    (directory / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    # The controller reads its CA key with x509.ParseECPrivateKey: SEC1, not PKCS#8.
    kubewarden = _ca(directory, "kubewarden-ca", "kubewarden-controller-ca",
                     serialization.PrivateFormat.TraditionalOpenSSL)
    _leaf(directory, "kubewarden-webhook", kubewarden, _name(webhook_service), server,
          [f"{webhook_service}.{deployments_namespace}.svc"])
