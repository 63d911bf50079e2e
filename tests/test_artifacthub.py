"""ArtifactHub metadata: artifacthub-pkg.yml is what `kwctl scaffold artifacthub` makes of
metadata.yml, and the project's own generator (for machines without kwctl) makes the
same; the author parses as kwctl requires; artifacthub-repo.yml names the same owners."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import KWCTL_ENV, REPO, release, run_release


def test_the_committed_package_file_is_what_generation_gives(tmp_path: Path):
    out = tmp_path / "artifacthub-pkg.yml"
    done = run_release(REPO, "artifacthub", "--own", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert release.without_created_at(out.read_text()) == release.without_created_at(
        (REPO / "artifacthub-pkg.yml").read_text())


def test_kwctl_scaffold_and_the_project_generator_agree(kwctl: str, tmp_path: Path):
    theirs = subprocess.run([kwctl, "scaffold", "artifacthub", "-m", str(REPO / "metadata.yml"),
                             "-o", str(tmp_path / "kwctl.yml")],
                            capture_output=True, text=True, env=KWCTL_ENV)
    assert theirs.returncode == 0, theirs.stderr
    ours = run_release(REPO, "artifacthub", "--own", "--scaffold", "-o", str(tmp_path / "ours.yml"))
    assert ours.returncode == 0, ours.stderr
    assert release.without_created_at((tmp_path / "ours.yml").read_text()) == \
        release.without_created_at((tmp_path / "kwctl.yml").read_text())


def test_the_package_carries_the_metadata():
    pkg = yaml.safe_load((REPO / "artifacthub-pkg.yml").read_text())
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    notes = metadata["annotations"]
    assert pkg["version"] == release.version()
    assert pkg["description"] == notes["io.kubewarden.policy.description"]
    assert pkg["keywords"] == [k.strip() for k in notes["io.artifacthub.keywords"].split(",")]
    assert pkg["annotations"]["kubewarden/resources"] == notes["io.artifacthub.resources"]
    assert yaml.safe_load(pkg["annotations"]["kubewarden/rules"]) == metadata["rules"]
    assert pkg["maintainers"] == [{"name": "iamra-sidecar-policy developers",
                                   "email": "maintainers@iamra-sidecar.invalid"}]


def test_the_minimum_kubewarden_version_is_the_one_the_chart_runs():
    """The module's minimum is the release the bundle chart's PolicyServer defaults to."""
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    values = yaml.safe_load((REPO / "charts/iamra-sidecar-policy/values.yaml").read_text())
    tag = values["policyServer"]["image"]["tag"]
    assert tag == "v" + metadata["minimumKubewardenVersion"]


@pytest.mark.parametrize("author", ["iamra-sidecar-policy developers",
                                    "Someone <not an address>"])
def test_an_author_without_an_address_is_refused(checkout: Path, author: str):
    metadata = checkout / "metadata.yml"
    metadata.write_text(metadata.read_text().replace(
        "iamra-sidecar-policy developers <maintainers@iamra-sidecar.invalid>", author))
    done = run_release(checkout, "artifacthub", "--own", "-o", str(checkout / "out.yml"))
    assert done.returncode == 1
    assert "io.kubewarden.policy.author must be 'Name <address>'" in done.stderr


def test_the_repository_file_names_the_maintainers():
    repo = yaml.safe_load((REPO / "artifacthub-repo.yml").read_text())
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    assert repo["owners"] == release.maintainers(metadata["annotations"]["io.kubewarden.policy.author"])


def test_the_package_installs_through_the_chart_and_recommends_its_prerequisites():
    pkg = yaml.safe_load((REPO / "artifacthub-pkg.yml").read_text())
    assert "kwctl scaffold manifest" not in pkg["install"]
    assert (f"helm install iamra-sidecar-policy oci://ghcr.io/iamra-sidecar/charts/iamra-sidecar-policy "
            f"--version {release.version()}") in pkg["install"]
    assert "--reuse-values" not in pkg["install"].replace("--reset-then-reuse-values", "")
    assert [r["url"].rsplit("/", 2)[-2:] for r in pkg["recommendations"]] == [
        ["kubewarden", "admission-controller"], ["cert-manager", "cert-manager"],
        ["cert-manager", "cert-manager-csi-driver"]]


def test_every_resource_the_policies_read_is_listed():
    pkg = yaml.safe_load((REPO / "artifacthub-pkg.yml").read_text())
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    kinds = {"pods": "Pod", "certificates": "Certificate", "certificaterequests": "CertificateRequest"}
    read = [kinds[r] for rule in metadata["rules"] for r in rule["resources"]]
    read += [r["kind"] for r in metadata["contextAwareResources"]]
    listed = [k.strip() for k in pkg["annotations"]["kubewarden/resources"].split(",")]
    assert sorted(listed) == sorted(read)
