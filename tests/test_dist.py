"""make dist: the annotated module, both charts packaged by Helm, a valid CycloneDX SBOM of
the module's crates and checksums; annotation by kwctl and by the project's stand-in give
modules with the same metadata that answer the same."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import helm_python
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from conftest import KWCTL_ENV, REPO, release

FIXTURES = REPO / "e2e-tests" / "fixtures"


def leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def custom_sections(module: bytes) -> dict[str, bytes]:
    assert module[:8] == b"\0asm\1\0\0\0", "not a WebAssembly module"
    out, at = {}, 8
    while at < len(module):
        kind = module[at]
        size, at = leb128(module, at + 1)
        if kind == 0:
            length, start = leb128(module, at)
            out[module[start:start + length].decode()] = module[start + length:at + size]
        at += size
    return out


def embedded_metadata(module: Path) -> dict:
    return json.loads(custom_sections(module.read_bytes())["io.kubewarden.metadata"])


def test_dist_holds_the_module_two_charts_the_sbom_and_their_checksums(dist: Path):
    version = release.version()
    names = {"policy.wasm", "sbom.cdx.json", "SHA256SUMS",
             *(f"{chart}-{version}.tgz" for chart in release.CHARTS)}
    assert {p.name for p in dist.iterdir()} == names
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(check.stdout.splitlines()) == len(names) - 1


def test_the_module_carries_metadata_and_readme(dist: Path):
    metadata = embedded_metadata(dist / "policy.wasm")
    notes = metadata["annotations"]
    assert notes["io.kubewarden.policy.version"] == release.version()
    assert notes["io.kubewarden.policy.usage"] == (REPO / "README.md").read_text()
    assert metadata["contextAwareResources"] == [{"apiVersion": "v1", "kind": "ServiceAccount"}]


@pytest.mark.parametrize("chart", release.CHARTS)
def test_the_chart_packages_load_with_the_release_version(dist: Path, chart: str):
    archive = dist / f"{chart}-{release.version()}.tgz"
    with helm_python.Chart.load_archive(archive.read_bytes()) as loaded:
        assert (loaded.name, loaded.version) == (chart, release.version())
        assert loaded.metadata["appVersion"] == release.version()
        # Helm packages the templates tree, subfolders (the helm test hooks) included.
        root = REPO / "charts" / chart
        assert {t["name"] for t in loaded.templates} == {
            p.relative_to(root).as_posix() for p in (root / "templates").rglob("*") if p.is_file()}


def test_the_sbom_is_valid_cyclonedx_of_the_module_crates(dist: Path):
    text = (dist / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["metadata"]["component"]["name"] == "iamra-sidecar-policy"
    assert bom["metadata"]["component"]["version"] == release.version()
    lock = {(p["name"], p["version"]): p.get("checksum")
            for p in tomllib.loads((REPO / "Cargo.lock").read_text())["package"]}
    components = {(c["name"], c["version"]): c for c in bom["components"]}
    sdk = [c for (name, _), c in components.items() if name == "kubewarden-policy-sdk"]
    assert len(sdk) == 1
    assert sdk[0]["purl"] == f"pkg:cargo/kubewarden-policy-sdk@{sdk[0]['version']}"
    assert sdk[0]["hashes"] == [{"alg": "SHA-256",
                                 "content": lock[("kubewarden-policy-sdk", sdk[0]["version"])]}]
    # Every component is a locked crate; the runner's and the dev-dependencies' are not in it.
    assert set(components) <= set(lock)
    assert not {"rstest", "wasmtime", "policy-runner"} & {name for name, _ in components}
    root = next(d for d in bom["dependencies"] if d["ref"] == bom["metadata"]["component"]["bom-ref"])
    assert any(ref.startswith("pkg:cargo/kubewarden-policy-sdk@") for ref in root["dependsOn"])


def test_kwctl_and_the_stand_in_annotate_alike(kwctl: str, tmp_path: Path):
    by_kwctl, by_us = tmp_path / "kwctl.wasm", tmp_path / "ours.wasm"
    subprocess.run([str(REPO / "scripts" / "annotate.sh"), str(REPO / "policy.wasm"),
                    str(by_kwctl)], check=True, env=KWCTL_ENV, capture_output=True)
    subprocess.run(["python3", str(REPO / "e2e-tests" / "tools" / "annotate.py"),
                    str(REPO / "metadata.yml"), str(REPO / "policy.wasm"), str(by_us),
                    "-u", str(REPO / "README.md")], check=True)
    theirs = embedded_metadata(by_kwctl)
    # kwctl records its own version; the stand-in has none to record.
    assert theirs["annotations"].pop("io.kubewarden.kwctl")
    assert embedded_metadata(by_us) == theirs

    def answer(module: Path) -> dict:
        done = subprocess.run(
            [kwctl, "run", "--request-path", str(FIXTURES / "pod-plain.json"),
             "--settings-path", str(FIXTURES / "settings.yaml"), str(module)],
            capture_output=True, text=True, env=KWCTL_ENV)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    response = answer(by_us)
    assert response["allowed"] is True and response["patch"]
    assert answer(by_kwctl) == response
