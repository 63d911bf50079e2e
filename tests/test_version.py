"""One version everywhere: Cargo.toml's is the source, `release.py check` (run by make
test and make dist) catches any place that disagrees, `release.py bump` (make release)
moves them all at once."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, release, run_release


def test_the_repository_has_one_version():
    done = run_release(REPO, "check")
    assert done.returncode == 0, done.stderr
    assert f"version {release.version()} everywhere" in done.stdout


@pytest.mark.parametrize("place", range(len(release.PLACES)),
                         ids=lambda i: f"{release.PLACES[i][0]}:{i}")
def test_a_hand_edit_in_any_place_fails_the_check(checkout: Path, place: int):
    path, pattern = release.PLACES[place]
    file = checkout / path
    m = re.search(pattern, file.read_text(), re.M)
    assert m, f"{path} has no version line"
    file.write_text(file.read_text()[: m.start("v")] + "9.9.9" + file.read_text()[m.end("v"):])
    done = run_release(checkout, "check")
    assert done.returncode == 1
    assert f"{path}: 9.9.9 (expected {release.version()}" in done.stderr


def test_a_removed_place_fails_the_check(checkout: Path):
    values = checkout / "charts/iamra-sidecar-policy/values.yaml"
    values.write_text(re.sub(r"^    repository: iamra-sidecar/policies/iamra-sidecar-policy$",
                             "    repository: elsewhere/policy", values.read_text(), flags=re.M))
    done = run_release(checkout, "check")
    assert done.returncode == 1
    assert "charts/iamra-sidecar-policy/values.yaml: no line matches" in done.stderr


@pytest.mark.parametrize("edit, complaint", [
    (("CHANGELOG.md", "## [0.1.0]", "## [0.0.9]"), "CHANGELOG.md: newest release is 0.0.9"),
    (("charts/iamra-example/Chart.yaml", "- kind: added", "- kind: fixed"),
     "charts/iamra-example/Chart.yaml: artifacthub.io/changes differs"),
    (("charts/iamra-sidecar-policy/Chart.yaml", "email: maintainers@", "email: someone@"),
     "charts/iamra-sidecar-policy/Chart.yaml: maintainers differ"),
    (("artifacthub-pkg.yml", "- aws\n", "- amazon\n"), "artifacthub-pkg.yml differs"),
], ids=["changelog", "changes", "maintainers", "artifacthub-pkg"])
def test_derived_metadata_that_drifts_fails_the_check(checkout: Path, edit, complaint):
    path, old, new = edit
    file = checkout / path
    assert old in file.read_text()
    file.write_text(file.read_text().replace(old, new, 1))
    done = run_release(checkout, "check")
    assert done.returncode == 1
    assert complaint in done.stderr


def versions(checkout: Path) -> set[str]:
    return {m.group("v") for path, pattern in release.PLACES
            for m in re.finditer(pattern, (checkout / path).read_text(), re.M)}


def set_unreleased(checkout: Path, entries: str) -> Path:
    """The checkout's CHANGELOG with `entries` as its whole Unreleased section, whatever
    the repository's own holds now."""
    changelog = checkout / "CHANGELOG.md"
    changelog.write_text(re.sub(r"## \[Unreleased\]\n.*?(?=## \[)",
                                lambda _: f"## [Unreleased]\n{entries}\n", changelog.read_text(),
                                count=1, flags=re.S))
    return changelog


def test_bump_sets_every_place_and_releases_the_unreleased_entries(checkout: Path):
    changelog = set_unreleased(
        checkout, "\n### Fixed\n\n- The next fix, described\n  on two lines.\n")
    done = run_release(checkout, "bump", "0.2.0")
    assert done.returncode == 0, done.stderr
    assert versions(checkout) == {"0.2.0"}
    assert run_release(checkout, "version").stdout.strip() == "0.2.0"
    assert run_release(checkout, "check").returncode == 0

    today = datetime.date.today().isoformat()
    text = changelog.read_text()
    assert f"## [Unreleased]\n\n## [0.2.0] - {today}\n\n### Fixed\n" in text
    assert "## [0.1.0] - " in text
    for chart in release.CHARTS:
        meta = yaml.safe_load((checkout / "charts" / chart / "Chart.yaml").read_text())
        assert yaml.safe_load(meta["annotations"]["artifacthub.io/changes"]) == [
            {"kind": "fixed", "description": "The next fix, described on two lines."}]
    pkg = yaml.safe_load((checkout / "artifacthub-pkg.yml").read_text())
    assert pkg["version"] == "0.2.0"
    assert pkg["containersImages"][0]["image"].endswith(":v0.2.0")


def test_editing_the_source_then_bumping_leaves_the_check_green(checkout: Path):
    set_unreleased(checkout, "")
    cargo = checkout / "Cargo.toml"
    cargo.write_text(cargo.read_text().replace('version = "', 'version = "1.0.0-rc.1" #', 1))
    assert run_release(checkout, "check").returncode == 1
    done = run_release(checkout, "bump")
    assert done.returncode == 0, done.stderr
    assert "empty" in done.stderr  # nothing under Unreleased: said, not invented
    assert versions(checkout) == {"1.0.0-rc.1"}
    assert run_release(checkout, "check").returncode == 0


def test_bump_refuses_a_version_that_is_not_semver(checkout: Path):
    done = run_release(checkout, "bump", "v2")
    assert done.returncode == 1
    assert "not semver" in done.stderr
    assert versions(checkout) == {release.version()}


def test_an_unknown_changelog_section_is_named(checkout: Path):
    changelog = checkout / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("### Added", "### Improved"))
    done = run_release(checkout, "check")
    assert done.returncode == 1
    assert "unknown section '### Improved'" in done.stderr
