"""The registry round trip: make publish to Debian's docker-registry on 127.0.0.1, then
what comes back is what was published: kwctl pulls the same module and runs it to the same
answer, each pulled chart renders the same manifests as the local chart, the SBOM is
attached to the module and ArtifactHub's metadata sits in each chart repository; the module's
cosign signature and SBOM attestation verify with `kwctl verify` and `cosign verify`, and a
tampered module is refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import helm_python
import oras.client
import pytest
from helm_python import registry
from helm_python.errors import HelmError

from conftest import KWCTL_ENV, REPO, release

sys.path.insert(0, str(REPO / "charts" / "tests"))
sys.path.insert(0, str(REPO / "e2e-tests" / "tools"))
import chartlib  # noqa: E402
import sigstore_trust  # noqa: E402

FIXTURES = REPO / "e2e-tests" / "fixtures"
VALUES = {"iamra-sidecar-policy": chartlib.REQUIRED, "iamra-example": chartlib.EXAMPLE_REQUIRED}
SIGNER = "iamra release test <release@iamra-sidecar.invalid>"
PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"


@pytest.fixture(scope="module")
def signing_keyrings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A throwaway RSA signing key made with gpg: (secret keyring, public keyring)."""
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.skip("gpg not installed (make test-deps installs it): charts not signed")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        subprocess.run([gpg, "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", SIGNER,
                        "rsa2048", "sign", "never"], check=True, env=env, capture_output=True)
        secret, public = home / "secring.gpg", home / "pubring.export.gpg"
        secret.write_bytes(subprocess.run([gpg, "--batch", "--export-secret-keys"], check=True,
                                          env=env, capture_output=True).stdout)
        public.write_bytes(subprocess.run([gpg, "--batch", "--export"], check=True, env=env,
                                          capture_output=True).stdout)
        yield secret, public
    finally:
        # gpg started an agent for this home: stop it.
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, storing in a scratch directory;
    stopped by its process id."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry not installed (Debian package docker-registry; "
                    "make test-deps installs it): registry round trip not run")
    scratch = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = scratch / "config.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(scratch / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    log = (scratch / "registry.log").open("w")
    server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("docker-registry did not start:\n"
                                         + (scratch / "registry.log").read_text())
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def sources(registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kwctl's sources file: plain HTTP to the loopback registry."""
    path = tmp_path_factory.mktemp("kwctl") / "sources.yml"
    path.write_text(json.dumps({"insecure_sources": [registry_host]}))
    return path


def cosign_key_pair(cosign: str, directory: Path) -> tuple[Path, Path]:
    """A throwaway cosign key pair (empty password): (private, public)."""
    subprocess.run([cosign, "generate-key-pair", "--output-key-prefix", str(directory / "k")],
                   check=True, capture_output=True, env={**os.environ, "COSIGN_PASSWORD": ""})
    return directory / "k.key", directory / "k.pub"


@pytest.fixture(scope="module")
def cosign_keys(cosign: str | None, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Path, Path] | None:
    return cosign and cosign_key_pair(cosign, tmp_path_factory.mktemp("cosign"))


@pytest.fixture(scope="module")
def published(kwctl: str, registry_host: str, dist: Path, signing_keyrings: tuple[Path, Path],
              cosign: str | None, cosign_keys: tuple[Path, Path] | None
              ) -> dict[str, list[str]]:
    """make publish, the charts signed, the module too where cosign is to be had:
    {kind: [printed references]}. It runs make dist again, after the dist fixture, so that
    dist/ is what was published for every test that reads it."""
    signing = [f"COSIGN_KEY={cosign_keys[0]}"] if cosign and cosign_keys else []
    done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "publish",
                           f"REGISTRY={registry_host}/iamra", "PLAIN_HTTP=1",
                           f"SIGN_KEY={SIGNER}", f"KEYRING={signing_keyrings[0]}", *signing],
                          capture_output=True, text=True,
                          env={**KWCTL_ENV, "COSIGN": cosign or "", "COSIGN_PASSWORD": ""})
    assert done.returncode == 0, f"make publish failed:\n{done.stdout}\n{done.stderr}"
    out: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        kind, _, reference = line.partition(" ")
        if kind in ("module", "sbom", "chart", "signed"):
            out.setdefault(kind, []).append(reference.strip())
    return out


def helm_client() -> registry.RegistryClient:
    return registry.RegistryClient(plain_http=True)


def kwctl_run(kwctl: str, module: str, sources: Path) -> dict:
    done = subprocess.run(
        [kwctl, "run", "--sources-path", str(sources),
         "--request-path", str(FIXTURES / "pod-plain.json"),
         "--settings-path", str(FIXTURES / "settings.yaml"), module],
        capture_output=True, text=True, env=KWCTL_ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_publish_prints_each_reference_with_its_registry_digest(published, registry_host):
    version = release.version()
    base = f"{registry_host}/iamra"
    (module,) = published["module"]
    assert module.startswith(f"registry://{base}/policies/iamra-sidecar-policy:v{version}@sha256:")
    charts = [f"oci://{base}/charts/{chart}:{version}@sha256:" for chart in release.CHARTS]
    assert [ref[: len(prefix)] for ref, prefix in zip(published["chart"], charts)] == charts
    for ref in [module.removeprefix("registry://"), *published["chart"]]:
        name, digest = ref.removeprefix("oci://").split("@")
        assert helm_client().resolve(f"oci://{name}")["digest"] == digest


def test_kwctl_pulls_the_dist_module_and_runs_it_to_the_same_answer(
        kwctl, published, sources, dist, tmp_path):
    reference = published["module"][0].split("@")[0]
    pulled = tmp_path / "pulled.wasm"
    done = subprocess.run([kwctl, "pull", "--sources-path", str(sources), "-o", str(pulled),
                           reference], capture_output=True, text=True, env=KWCTL_ENV)
    assert done.returncode == 0, done.stderr
    assert pulled.read_bytes() == (dist / "policy.wasm").read_bytes()
    remote = kwctl_run(kwctl, reference, sources)
    assert remote["allowed"] is True and remote["patch"]
    assert remote == kwctl_run(kwctl, str(dist / "policy.wasm"), sources)


@pytest.mark.parametrize("chart", release.CHARTS)
def test_the_pulled_chart_renders_like_the_local_chart(published, registry_host, chart,
                                                       tmp_path):
    helm_client().pull(f"oci://{registry_host}/iamra/charts/{chart}",
                       version=release.version(), destination=tmp_path, plain_http=True)
    archive = tmp_path / f"{chart}-{release.version()}.tgz"
    remote = chartlib.render_raw(archive, VALUES[chart])
    local = chartlib.render_raw(REPO / "charts" / chart, VALUES[chart])
    assert chartlib.objects(remote)
    assert remote == local


def oras_manifest(registry_host: str, reference: str) -> tuple[oras.client.OrasClient, dict]:
    client = oras.client.OrasClient(hostname=registry_host, insecure=True)
    return client, client.get_manifest(reference)


def blob(client: oras.client.OrasClient, reference: str, digest: str, tmp_path: Path) -> bytes:
    out = tmp_path / digest.replace(":", "-")
    client.download_blob(reference, digest, str(out))
    return out.read_bytes()


def test_the_sbom_is_attached_to_the_module(published, registry_host, dist, tmp_path):
    module_digest = published["module"][0].split("@")[1]
    reference = (f"{registry_host}/iamra/policies/iamra-sidecar-policy:"
                 f"{module_digest.replace(':', '-')}.sbom")
    assert published["sbom"][0].startswith(reference + "@sha256:")
    client, manifest = oras_manifest(registry_host, reference)
    assert manifest["artifactType"] == "application/vnd.cyclonedx+json"
    assert manifest["subject"]["digest"] == module_digest
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cyclonedx+json"
    assert blob(client, reference, layer["digest"], tmp_path) == (dist / "sbom.cdx.json").read_bytes()


@pytest.mark.parametrize("chart", release.CHARTS)
def test_artifacthub_finds_its_metadata_in_each_chart_repository(published, registry_host, chart,
                                                                 tmp_path):
    reference = f"{registry_host}/iamra/charts/{chart}:artifacthub.io"
    client, manifest = oras_manifest(registry_host, reference)
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.artifacthub.config.v1+yaml"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == \
        "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml"
    assert blob(client, reference, layer["digest"], tmp_path) == \
        (REPO / "artifacthub-repo.yml").read_bytes()


@pytest.mark.parametrize("chart", release.CHARTS)
def test_the_pulled_chart_verifies_against_the_signing_key(published, registry_host, chart,
                                                           signing_keyrings, tmp_path):
    reference = f"{registry_host}/iamra/charts/{chart}:{release.version()}"
    client, manifest = oras_manifest(registry_host, reference)
    (provenance,) = [layer for layer in manifest["layers"] if layer["mediaType"] == PROVENANCE]
    prov = tmp_path / "chart.prov"
    prov.write_bytes(blob(client, reference, provenance["digest"], tmp_path))
    helm_client().pull(f"oci://{registry_host}/iamra/charts/{chart}",
                       version=release.version(), destination=tmp_path, plain_http=True)
    archive = tmp_path / f"{chart}-{release.version()}.tgz"
    _, public = signing_keyrings
    assert helm_python.verify(archive, public, provenance_file=prov)["signed_by"] == [SIGNER]
    tampered = tmp_path / "tampered.tgz"
    tampered.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(HelmError):
        helm_python.verify(tampered, public, provenance_file=prov)


# --- the module's cosign signature and SBOM attestation ------------------------------------

COSIGN_HTTP = ["--allow-insecure-registry", "--allow-http-registry"]


@pytest.fixture(scope="module")
def signed(published, cosign, cosign_keys) -> tuple[str, Path]:
    """(cosign, public key) of the signed publication; skipped, saying why, without cosign."""
    if not (cosign and cosign_keys):
        pytest.skip("cosign is not on PATH and Go, which builds it from the module proxy "
                    "(tools/go/cosign), is not installed: module signatures not tested")
    assert published.get("signed"), "make publish with COSIGN_KEY printed no signature"
    return cosign, cosign_keys[1]


def module_tag(registry_host: str, tag: str) -> str:
    return f"{registry_host}/iamra/policies/iamra-sidecar-policy:{tag}"


def cosign_verify(cosign: str, key: Path, reference: str, *extra: str
                  ) -> subprocess.CompletedProcess[str]:
    # --insecure-ignore-tlog: signed with --tlog-upload=false, so there is no Rekor entry.
    return subprocess.run([cosign, *extra[:1], "--key", str(key), "--insecure-ignore-tlog",
                           *COSIGN_HTTP, *extra[1:], reference], capture_output=True, text=True)


def kwctl_verify(kwctl: str, sources: Path, public_key: Path, reference: str, tmp_path: Path
                 ) -> subprocess.CompletedProcess[str]:
    """kwctl verify with a verification config naming the public key (the same document a
    PolicyServer's verificationConfig ConfigMap holds), and a local Sigstore trust config:
    kwctl verify otherwise fetches Sigstore's public trust root (TUF) and fails offline."""
    config = tmp_path / "verification-config.yml"
    config.write_text(json.dumps({"apiVersion": "v1", "allOf": [
        {"kind": "pubKey", "owner": "iamra release", "key": public_key.read_text()}]}))
    trust = tmp_path / "sigstore-trust-config.json"
    trust.write_text(json.dumps(sigstore_trust.trust_config()))
    return subprocess.run([kwctl, "verify", "--sources-path", str(sources),
                           "--sigstore-trust-config", str(trust),
                           "--verification-config-path", str(config), f"registry://{reference}"],
                          capture_output=True, text=True, env=KWCTL_ENV)


def test_cosign_verifies_the_published_module_with_the_public_key(signed, published,
                                                                  registry_host):
    cosign, public = signed
    digest = published["module"][0].split("@")[1]
    done = cosign_verify(cosign, public, module_tag(registry_host, f"v{release.version()}"),
                         "verify")
    assert done.returncode == 0, done.stderr
    (signature,) = json.loads(done.stdout)
    assert signature["critical"]["image"]["docker-manifest-digest"] == digest


def test_the_sbom_attestation_verifies_and_holds_the_dist_sbom(signed, published, registry_host,
                                                               dist):
    cosign, public = signed
    done = cosign_verify(cosign, public, module_tag(registry_host, f"v{release.version()}"),
                         "verify-attestation", "--type", "cyclonedx")
    assert done.returncode == 0, done.stderr
    (envelope,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["subject"][0]["digest"]["sha256"] == \
        published["module"][0].split("@sha256:")[1]
    assert statement["predicate"] == json.loads((dist / "sbom.cdx.json").read_text())


def test_kwctl_verify_accepts_the_signed_module(signed, kwctl, sources, registry_host, tmp_path):
    _, public = signed
    done = kwctl_verify(kwctl, sources, public,
                        module_tag(registry_host, f"v{release.version()}"), tmp_path)
    assert done.returncode == 0, done.stderr


def test_another_key_does_not_verify_the_module(signed, kwctl, sources, registry_host,
                                                tmp_path):
    cosign, _ = signed
    _, other = cosign_key_pair(cosign, tmp_path)
    reference = module_tag(registry_host, f"v{release.version()}")
    assert cosign_verify(cosign, other, reference, "verify").returncode != 0
    assert kwctl_verify(kwctl, sources, other, reference, tmp_path).returncode != 0


def test_a_tampered_module_is_refused_even_with_the_signature_copied_to_it(
        signed, kwctl, sources, published, registry_host, dist, tmp_path):
    """A module one custom section longer than the published one, pushed beside it, and the
    genuine signature manifest copied to its signature tag: both verifiers refuse it."""
    cosign, public = signed
    tampered = tmp_path / "tampered.wasm"
    # A custom section named "tampered" holding "x": still a valid module for kwctl push.
    tampered.write_bytes((dist / "policy.wasm").read_bytes() + b"\x00\x0a\x08tamperedx")
    reference = module_tag(registry_host, "tampered")
    done = subprocess.run([kwctl, "push", "--sources-path", str(sources), str(tampered),
                           f"registry://{reference}"], capture_output=True, text=True,
                          env=KWCTL_ENV)
    assert done.returncode == 0, done.stderr
    assert cosign_verify(cosign, public, reference, "verify").returncode != 0  # unsigned

    genuine = published["module"][0].split("@")[1].replace(":", "-")
    forged = helm_client().resolve(f"oci://{reference}")["digest"].replace(":", "-")
    client, signature = oras_manifest(registry_host, module_tag(registry_host, f"{genuine}.sig"))
    container = client.get_container(module_tag(registry_host, f"{forged}.sig"))
    assert client.upload_manifest(signature, container).ok
    done = cosign_verify(cosign, public, reference, "verify")
    assert done.returncode != 0 and "no matching signatures" in done.stderr, done.stderr
    done = kwctl_verify(kwctl, sources, public, reference, tmp_path)
    assert done.returncode != 0, done.stdout


@pytest.mark.parametrize("chart", release.CHARTS)
def test_a_signed_chart_names_its_key_for_artifacthub(published, registry_host, chart, signing_keyrings,
                                                      tmp_path):
    import tarfile

    import yaml

    helm_client().pull(f"oci://{registry_host}/iamra/charts/{chart}",
                       version=release.version(), destination=tmp_path, plain_http=True)
    with tarfile.open(tmp_path / f"{chart}-{release.version()}.tgz") as archive:
        meta = yaml.safe_load(archive.extractfile(f"{chart}/Chart.yaml").read())
    sign_key = yaml.safe_load(meta["annotations"]["artifacthub.io/signKey"])
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    listing = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--with-colons", "--import-options",
                              "show-only", "--import", str(signing_keyrings[1])],
                             capture_output=True, text=True, check=True).stdout
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    assert sign_key["fingerprint"] == fingerprints[0]
    assert sign_key["url"] == (f"https://github.com/iamra-sidecar/iamra-sidecar-policy/releases/download/"
                               f"v{release.version()}/signing-key.asc")
    assert (REPO / "dist" / "signing-key.asc").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # The charts in the repository stay unchanged: only the packaged copies name the key.
    assert "artifacthub.io/signKey" not in (REPO / "charts" / chart / "Chart.yaml").read_text()
