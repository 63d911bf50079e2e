#!/usr/bin/env python3
"""Publishes dist/ (make dist) to an OCI registry and prints every reference with its
digest:

    publish.py REGISTRY [--plain-http] [--cosign-key KEY]

REGISTRY is host[:port]/path, e.g. ghcr.io/iamra-sidecar (metadata.yml's ociUrl lives
under it). --plain-http talks HTTP without TLS, for a registry on loopback.

- the module, with `kwctl push`, to REGISTRY/policies/iamra-sidecar-policy:vX.Y.Z;
- with --cosign-key (a cosign key pair's private key, its password in $COSIGN_PASSWORD):
  the module signed by digest with cosign, and the SBOM attached to it as a signed
  CycloneDX attestation (cosign's `.sig` and `.att` tags), offline: nothing is uploaded
  to a transparency log. cosign is $COSIGN, else on PATH, else built from the Go module
  proxy (scripts/go-tools.sh cosign);
- each chart, with Helm's registry client (helm-python-sdk), to
  oci://REGISTRY/charts/<chart>:X.Y.Z, so `helm install oci://...` works;
- the SBOM, with oras-py, as an OCI 1.1 artifact whose `subject` is the module's manifest
  (registries with the Referrers API list it as a referrer of the module), tagged
  `sha256-<module digest>.sbom` beside the module so that it can also be found on
  registries without that API (cosign's tag scheme for attached SBOMs);
- artifacthub-repo.yml to each chart repository with the tag `artifacthub.io`, where
  ArtifactHub looks for the metadata of an OCI Helm repository.

Credentials: kwctl and oras-py read Docker's config.json (`docker login`); Helm's client
reads its own registry config and Docker's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import oras.client
import oras.oci
from helm_python import registry

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
sys.path.insert(0, str(REPO / "scripts"))
from release import CHARTS, version  # noqa: E402

POLICY = "iamra-sidecar-policy"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
ARTIFACTHUB_CONFIG = "application/vnd.cncf.artifacthub.config.v1+yaml"
ARTIFACTHUB_LAYER = "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml"


class PublishError(Exception):
    pass


def push_module(module: Path, reference: str, plain_http: bool) -> None:
    kwctl = shutil.which("kwctl")
    if kwctl is None:
        raise PublishError("kwctl is needed to push the module and is not on PATH: "
                           "https://github.com/kubewarden/kubewarden-controller/releases")
    command = [kwctl, "push", str(module), f"registry://{reference}"]
    with tempfile.TemporaryDirectory() as scratch:
        if plain_http:
            # kwctl talks plain HTTP only to hosts listed as insecure sources.
            sources = Path(scratch) / "sources.yml"
            sources.write_text(json.dumps({"insecure_sources": [reference.split("/")[0]]}))
            command[2:2] = ["--sources-path", str(sources)]
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, "RUST_BACKTRACE": "0"})
    if done.returncode != 0:
        raise PublishError(f"kwctl push to {reference} failed:\n{done.stderr.strip()}")


def cosign_binary() -> str:
    """cosign: $COSIGN, else on PATH, else built from tools/go/cosign (needs Go)."""
    found = os.environ.get("COSIGN") or shutil.which("cosign")
    if found:
        return found
    if shutil.which("go") is None:
        raise PublishError("cosign is needed to sign the module; it is not on PATH and Go, "
                           "which builds it (scripts/go-tools.sh cosign), is not installed")
    done = subprocess.run([str(REPO / "scripts" / "go-tools.sh"), "cosign"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PublishError(f"building cosign failed:\n{done.stderr.strip()}")
    return str(Path(done.stdout.strip()) / "cosign")


def cosign(*args: str) -> None:
    done = subprocess.run([cosign_binary(), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise PublishError(f"cosign {args[0]} failed:\n{done.stderr.strip()}")


def sign_module(reference: str, key: Path, sbom: Path, plain_http: bool) -> None:
    """Signs the module (by digest) and attests its SBOM with a key pair, offline."""
    flags = ["--key", str(key), "--tlog-upload=false", "--yes"]
    if plain_http:
        flags += ["--allow-insecure-registry", "--allow-http-registry"]
    cosign("sign", *flags, reference)
    cosign("attest", *flags, "--type", "cyclonedx", "--predicate", str(sbom), reference)


def oras_client(host: str, plain_http: bool) -> oras.client.OrasClient:
    return oras.client.OrasClient(hostname=host, insecure=plain_http)


def ok(response, what: str) -> None:
    if not response.ok:
        raise PublishError(f"{what}: HTTP {response.status_code} {response.text.strip()[:300]}")


def push_artifact(client: oras.client.OrasClient, reference: str, files: list[tuple[Path, str]],
                  config_type: str, config: bytes, extra: dict[str, object]) -> None:
    """An OCI image manifest with these layers, uploaded through oras-py's blob and
    manifest calls (its push() cannot set artifactType)."""
    container = client.get_container(reference)
    client.auth.load_configs(container)
    with tempfile.TemporaryDirectory() as scratch:
        config_path = Path(scratch) / "config"
        config_path.write_bytes(config)
        config_descriptor = oras.oci.NewLayer(str(config_path), media_type=config_type)
        config_descriptor.pop("annotations", None)
        ok(client.upload_blob(str(config_path), container, config_descriptor),
           f"upload of {reference}'s config")
    layers = []
    for path, media_type in files:
        layer = oras.oci.NewLayer(str(path), media_type=media_type)
        layer["annotations"] = {"org.opencontainers.image.title": path.name}
        ok(client.upload_blob(str(path), container, layer), f"upload of {path.name}")
        layers.append(layer)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **extra, "config": config_descriptor, "layers": layers}
    ok(client.upload_manifest(manifest, container), f"manifest of {reference}")


def publish(target: str, plain_http: bool, cosign_key: Path | None = None
            ) -> list[tuple[str, str]]:
    release = version()
    module = DIST / "policy.wasm"
    sbom = DIST / "sbom.cdx.json"
    charts = [DIST / f"{chart}-{release}.tgz" for chart in CHARTS]
    missing = [p.name for p in (module, sbom, *charts) if not p.is_file()]
    if missing:
        raise PublishError(f"dist/ lacks {', '.join(missing)}: run make dist first")

    host = target.split("/")[0]
    helm = registry.RegistryClient(plain_http=plain_http)
    oras_ = oras_client(host, plain_http)
    published = []

    module_ref = f"{target}/policies/{POLICY}:v{release}"
    push_module(module, module_ref, plain_http)
    subject = helm.resolve(f"oci://{module_ref}")
    published.append(("module", f"registry://{module_ref}@{subject['digest']}"))
    if cosign_key is not None:
        by_digest = f"{target}/policies/{POLICY}@{subject['digest']}"
        sign_module(by_digest, cosign_key, sbom, plain_http)
        tag = f"{target}/policies/{POLICY}:{subject['digest'].replace(':', '-')}"
        published.append(("signed", f"{tag}.sig {tag}.att (SBOM attestation)"))
    else:
        print("warning: the module is NOT signed (make publish COSIGN_KEY=cosign.key signs it)",
              file=sys.stderr)

    sbom_ref = f"{target}/policies/{POLICY}:{subject['digest'].replace(':', '-')}.sbom"
    push_artifact(oras_, sbom_ref, [(sbom, SBOM_TYPE)], EMPTY_CONFIG, b"{}", {
        "artifactType": SBOM_TYPE,
        "subject": {"mediaType": subject["media_type"], "digest": subject["digest"],
                    "size": subject["size"]}})
    sbom_digest = helm.resolve(f"oci://{sbom_ref}")["digest"]
    published.append(("sbom", f"{sbom_ref}@{sbom_digest} (subject: the module)"))

    for chart, archive in zip(CHARTS, charts):
        helm.push(archive, f"oci://{target}/charts", plain_http=plain_http)
        chart_ref = f"{target}/charts/{chart}:{release}"
        published.append(("chart", f"oci://{chart_ref}@{helm.resolve(f'oci://{chart_ref}')['digest']}"))
        push_artifact(oras_, f"{target}/charts/{chart}:artifacthub.io",
                      [(REPO / "artifacthub-repo.yml", ARTIFACTHUB_LAYER)], ARTIFACTHUB_CONFIG,
                      b"", {})
    return published


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--plain-http"]
    key = None
    if "--cosign-key" in args:
        at = args.index("--cosign-key")
        key = Path(args[at + 1]) if at + 1 < len(args) and args[at + 1] else None
        del args[at:at + 2]
        if key is None or not key.is_file():
            print(f"error: --cosign-key needs a cosign private key file, got {key}",
                  file=sys.stderr)
            return 2
    if len(args) != 1 or not args[0] or args[0].startswith(("oci://", "registry://")):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        for kind, reference in publish(args[0].rstrip("/"), "--plain-http" in argv, key):
            print(f"{kind:<7}{reference}")
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
