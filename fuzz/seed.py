#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/) from the e2e fixtures.

A `validate` seed is the payload the policy gets, `{"request": ..., "settings": ...}`,
plus `serviceAccount`: the ServiceAccount the fuzz targets' lookup answers with (from the
irsa/ session files; absent: the lookup fails, as for sa-missing.yml). The structure-aware
target starts from the same files (embedded in file name order by fuzz/build.rs): its
seed i is the one byte i, which picks payload i with no edits. Run this after changing a
fixture: python3 fuzz/seed.py
"""
import base64
import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "e2e-tests" / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"
GUARD = {"mode": "guard"}


def settings(name):
    return yaml.safe_load((FIXTURES / name).read_text())


def service_account(session):
    """The ServiceAccount a kwctl session file answers with, or None when it fails."""
    exchanges = yaml.safe_load((FIXTURES / "irsa" / session).read_text())
    response = exchanges[0]["response"]
    return json.loads(response["payload"]) if response["type"] == "Success" else None


def payload(fixture, with_settings, account=None):
    review = json.loads((FIXTURES / fixture).read_text())
    out = {"request": review["request"], "settings": with_settings}
    if account is not None:
        out["serviceAccount"] = account
    return out


def write(target, name, value):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def main():
    plain = settings("settings.yaml")
    for fixture in sorted(FIXTURES.glob("*.json")):
        write("validate", fixture.stem, payload(fixture.name, plain))
    write("validate", "pod-plain-classic", payload("pod-plain.json", settings("settings-classic.yaml")))
    write("validate", "pod-plain-guard", payload("pod-plain.json", GUARD))
    # A container behind a proxy, as in sdk.bats: the policy edits its NO_PROXY.
    proxied = payload("pod-plain.json", plain)
    proxied["request"]["object"]["spec"]["containers"][0]["env"] = [
        {"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"},
        {"name": "NO_PROXY", "value": "localhost,.svc"},
    ]
    write("validate", "pod-plain-proxy", proxied)
    for fixture in sorted((FIXTURES / "guard").glob("*.json")):
        write("validate", f"guard-{fixture.stem}", payload(f"guard/{fixture.name}", GUARD))
    # Real CSRs (the guard fixture's is a stub): seeds for csr.rs, and the corpus of its
    # oracle test against x509-cert.
    for csr in ["good-p256", "good-rsa2048", "extra-subject"]:
        request = payload("guard/certificaterequest.json", GUARD)
        pem = (FIXTURES / "guard" / "csr" / f"{csr}.pem").read_bytes()
        request["request"]["object"]["spec"]["request"] = base64.b64encode(pem).decode()
        write("validate", f"guard-csr-{csr}", request)
    irsa = settings("irsa/settings.yaml")
    for session in sorted((FIXTURES / "irsa").glob("sa-*.yml")):
        write("validate", f"irsa-{session.stem}", payload("irsa/pod.json", irsa, service_account(session.name)))
    for fixture in sorted(FIXTURES.glob("settings*.yaml")) + [FIXTURES / "irsa" / "settings.yaml"]:
        name = fixture.stem if fixture.parent == FIXTURES else f"irsa-{fixture.stem}"
        write("validate_settings", name, settings(str(fixture.relative_to(FIXTURES))))
    write("validate_settings", "guard", GUARD)
    structured = CORPUS / "validate_structured"
    structured.mkdir(exist_ok=True)
    for i, seed in enumerate(sorted((CORPUS / "validate").glob("*.json"))):
        (structured / seed.stem).write_bytes(bytes([i]))


if __name__ == "__main__":
    main()
