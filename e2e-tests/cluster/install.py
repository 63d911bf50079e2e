#!/usr/bin/env python3
"""The real install, on a control plane that controlplane.py started:

    install.py STATE

`make publish` pushes the annotated module, signed with a throwaway cosign key pair, and
the charts to a docker-registry on loopback (started here, logging to
STATE/logs/registry.log); `helm install` installs the bundle chart from its packaged .tgz
with the module reference pointing there and the PolicyServer verifying the module's
signature with the public key (`policyServer.verificationConfig`, and a Sigstore trust
root given offline in `policyServer.sigstoreTrustConfig`), so that policy-server
pulls and verifies the module as in production; then it waits until both policies are
`active`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
import controlplane  # noqa: E402
import sigstore_trust  # noqa: E402

ROOT = controlplane.ROOT
RELEASE = "iamra"
NAMESPACE = controlplane.DEPLOYMENTS_NAMESPACE
TRUST_ANCHOR = ("arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/"
                "8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f")
POLICIES = ("iamra-sidecar", "iamra-sidecar-guard")
VERIFICATION = "iamra-verification"
SIGSTORE_TRUST = "sigstore-offline"


def registry(plane: controlplane.Plane) -> str:
    port = controlplane.free_port()
    config = plane.state / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(plane.state / "registry")}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    plane.spawn("registry", ["docker-registry", "serve", str(config)])
    controlplane.wait_for("docker-registry", lambda: urllib.request.urlopen(
        f"http://127.0.0.1:{port}/v2/", timeout=2), 30, plane.logs / "registry.log")
    host = f"127.0.0.1:{port}"
    (plane.state / "registry.host").write_text(host)
    return host


def cosign_key_pair(plane: controlplane.Plane) -> Path:
    """STATE/cosign.key and .pub, with an empty password; returns the private key."""
    key = plane.state / "cosign.key"
    if not key.exists():
        subprocess.run([str(controlplane.go_tools("cosign") / "cosign"), "generate-key-pair",
                        "--output-key-prefix", str(plane.state / "cosign")], check=True,
                       cwd=plane.state, capture_output=True, env={**os.environ, "COSIGN_PASSWORD": ""})
    return key


def verification_config(plane: controlplane.Plane) -> None:
    """The ConfigMaps a PolicyServer's verificationConfig and sigstoreTrustConfig name:
    modules must be signed with the key pair's key (Kubewarden's verification config
    format), checked with a trust root given offline (without one, policy-server skips
    verification: docs/install.md)."""
    public = (plane.state / "cosign.pub").read_text()
    config = {"apiVersion": "v1", "allOf": [
        {"kind": "pubKey", "owner": "iamra release", "key": public}]}
    api = controlplane.kubeapi.Client.admin(plane.state)
    for name, key, value in ((VERIFICATION, "verification-config", config),
                             (SIGSTORE_TRUST, "sigstore-trust-config",
                              sigstore_trust.trust_config())):
        api.create(f"/api/v1/namespaces/{NAMESPACE}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {key: json.dumps(value)}})


def publish(plane: controlplane.Plane, host: str) -> dict[str, str]:
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "publish",
                           f"REGISTRY={host}/iamra-sidecar", "PLAIN_HTTP=1",
                           f"COSIGN_KEY={cosign_key_pair(plane)}"],
                          stdout=subprocess.PIPE, text=True, check=True,
                          env={**os.environ, "COSIGN_PASSWORD": ""})
    references = {}
    for line in done.stdout.splitlines():
        kind, _, reference = line.partition(" ")
        if kind in ("module", "chart"):
            references.setdefault(kind, reference.strip())
    return references


def helm(plane: controlplane.Plane, *args: str, check: bool = True,
         timeout: float = 600) -> subprocess.CompletedProcess:
    binary = controlplane.go_tools("helm") / "helm"
    return subprocess.run([str(binary), *args], env={
        **os.environ, "KUBECONFIG": str(plane.state / "admin.kubeconfig"),
        "HELM_CACHE_HOME": str(plane.state / "helm/cache"),
        "HELM_CONFIG_HOME": str(plane.state / "helm/config"),
        "HELM_DATA_HOME": str(plane.state / "helm/data")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=check,
        timeout=timeout)


def chart_archive() -> Path:
    archives = sorted((ROOT / "dist").glob("iamra-sidecar-policy-*.tgz"))
    if len(archives) != 1:
        raise controlplane.StartError(f"dist/ holds {len(archives)} bundle charts")
    return archives[0]


def values(plane: controlplane.Plane) -> list[str]:
    """The install's values: the module from the loopback registry by digest, which the
    PolicyServer reaches over plain HTTP (insecureSources, as Kubewarden's own chart
    offers) and verifies with the cosign public key (verificationConfig)."""
    host = (plane.state / "registry.host").read_text()
    reference = (plane.state / "module.ref").read_text().removeprefix("registry://")
    name, digest = reference.split("@")
    repository = name.split("/", 1)[1].rsplit(":", 1)[0]
    return ["--set", f"trustAnchorArn={TRUST_ANCHOR}", "--set", "region=eu-west-1",
            "--set", f"policy.module.registry={host}",
            "--set", f"policy.module.repository={repository}",
            "--set", f"policy.module.tag={digest}",
            "--set", f"policyServer.insecureSources[0]={host}",
            "--set", f"policyServer.verificationConfig={VERIFICATION}",
            "--set", f"policyServer.sigstoreTrustConfig={SIGSTORE_TRUST}"]


def wait_active(plane: controlplane.Plane, seconds: float = 300) -> None:
    api = controlplane.kubeapi.Client.admin(plane.state)

    def active() -> bool:
        return all(api.get(f"/apis/policies.kubewarden.io/v1/clusteradmissionpolicies/{p}")
                   .get("status", {}).get("policyStatus") == "active" for p in POLICIES)
    controlplane.wait_for("both policies active", active, seconds,
                          plane.logs / "kubewarden-controller.log")


def install(plane: controlplane.Plane) -> None:
    host = registry(plane)
    references = publish(plane, host)
    verification_config(plane)
    (plane.state / "module.ref").write_text(references["module"])
    started = time.monotonic()
    helm(plane, "install", RELEASE, str(chart_archive()), "--namespace", NAMESPACE,
         "--wait", *values(plane))
    wait_active(plane)
    print(f"both policies active {time.monotonic() - started:.0f}s after helm install",
          file=sys.stderr)


def main() -> int:
    plane = controlplane.Plane(Path(sys.argv[1]))
    try:
        install(plane)
    except (controlplane.StartError, subprocess.CalledProcessError) as error:
        output = getattr(error, "stdout", None) or ""
        print(f"install failed: {error}\n{output}", file=sys.stderr)
        print(f"logs: {plane.logs}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
