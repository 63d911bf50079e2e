#!/usr/bin/env python3
"""One version everywhere: Cargo.toml's [package] version is the source; every other file
that names the release version is checked against it and rewritten by `bump`.

    release.py version              print the version
    release.py check                list every place that disagrees (exit 1 if any)
    release.py bump [X.Y.Z]         set the version (default: keep Cargo.toml's) everywhere,
                                    roll CHANGELOG.md's Unreleased entries into X.Y.Z, feed
                                    the charts' artifacthub.io/changes and regenerate
                                    artifacthub-pkg.yml
    release.py artifacthub [--own] [--scaffold] [-o FILE]
                                    artifacthub-pkg.yml from metadata.yml: with kwctl's
                                    `scaffold artifacthub` when kwctl is on PATH, else (or
                                    with --own) with this script's generator; then the
                                    project's install text and recommendations (not with
                                    --scaffold)

Needs PyYAML (charts/tests/requirements.txt installs it).
"""

from __future__ import annotations

import datetime
import email.utils
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CHARTS = ("iamra-sidecar-policy", "iamra-example")
SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
V = rf"(?P<v>{SEMVER})"

# Every place that names the release version: (file, pattern whose group `v` is the
# version). Each pattern must match at least once, so deleting a line is caught too.
PLACES: list[tuple[str, str]] = [
    ("metadata.yml", rf"^  io\.kubewarden\.policy\.version: {V}$"),
    ("Cargo.lock", rf'^name = "iamra-sidecar-policy"\nversion = "{V}"$'),
    ("charts/iamra-sidecar-policy/values.yaml",
     rf"^    repository: iamra-sidecar/policies/iamra-sidecar-policy\n(?:    #.*\n)*    tag: v{V}$"),
    ("charts/iamra-sidecar-policy/README.md", rf"registry://\S+:v{V}"),
    ("README.md", rf"oci://\S+ --version {V}"),
    ("README.md", rf"/iamra-sidecar-policy:v{V}"),
] + [
    (f"charts/{chart}/Chart.yaml", pattern)
    for chart in CHARTS
    for pattern in (rf"^version: {V}$", rf'^appVersion: "{V}"$')
]

# Keep a Changelog's section kinds, as ArtifactHub's artifacthub.io/changes spells them.
CHANGE_KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")

ARTIFACTHUB_HEADER = """# Kubewarden Artifacthub Package config
#
# Use this config to submit the policy to https://artifacthub.io.
#
# This config can be saved to its default location with:
#   kwctl scaffold artifacthub > artifacthub-pkg.yml 
"""


class ReleaseError(Exception):
    pass


def version() -> str:
    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]


# --- the places ----------------------------------------------------------------------


def check_places(expected: str) -> list[str]:
    problems = []
    for path, pattern in PLACES:
        text = (REPO / path).read_text()
        found = [m.group("v") for m in re.finditer(pattern, text, re.M)]
        if not found:
            problems.append(f"{path}: no line matches {pattern!r} (the version's place is gone)")
        problems += [f"{path}: {v} (expected {expected}, from Cargo.toml)"
                     for v in found if v != expected]
    return problems


def set_places(new: str) -> None:
    def put(m: re.Match[str]) -> str:
        start, end = m.span("v")
        return m.group(0)[: start - m.start()] + new + m.group(0)[end - m.start():]

    for path, pattern in PLACES:
        file = REPO / path
        file.write_text(re.sub(pattern, put, file.read_text(), flags=re.M))


def set_cargo_version(new: str) -> None:
    file = REPO / "Cargo.toml"
    # The first `version =` line is [package]'s: Cargo.toml starts with that table.
    text = re.sub(r'^version = "[^"]*"$', f'version = "{new}"', file.read_text(), count=1,
                  flags=re.M)
    file.write_text(text)
    if version() != new:
        raise ReleaseError("Cargo.toml: could not set [package] version")


# --- CHANGELOG.md ----------------------------------------------------------------------


def changelog_sections(text: str) -> list[tuple[str, str]]:
    """[(heading name, body)] in file order: `## [Unreleased]`, `## [0.1.0] - date`..."""
    parts = re.split(r"^## \[([^\]]+)\][^\n]*\n", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def changes(body: str) -> list[dict[str, str]]:
    """A changelog section's entries as artifacthub.io/changes items: one per bullet,
    wrapped lines joined, the kind from the `### Added` (etc.) heading above it."""
    out: list[dict[str, str]] = []
    kind = None
    for line in body.splitlines():
        if line.startswith("### "):
            kind = line[4:].strip().lower()
            if kind not in CHANGE_KINDS:
                raise ReleaseError(f"CHANGELOG.md: unknown section '{line}' "
                                   f"(expected one of {', '.join(CHANGE_KINDS)})")
        elif line.startswith("- "):
            if kind is None:
                raise ReleaseError(f"CHANGELOG.md: entry outside a ### section: {line}")
            out.append({"kind": kind, "description": line[2:].strip()})
        elif line.startswith("  ") and out and line.strip():
            out[-1]["description"] += " " + line.strip()
    return out


def latest_release() -> tuple[str, list[dict[str, str]]]:
    """The newest released section of CHANGELOG.md: (version, changes)."""
    released = [(name, body) for name, body in
                changelog_sections((REPO / "CHANGELOG.md").read_text()) if name != "Unreleased"]
    if not released:
        raise ReleaseError("CHANGELOG.md has no released section (## [x.y.z] - date)")
    name, body = released[0]
    return name, changes(body)


def roll_changelog(new: str) -> None:
    """Move the Unreleased entries into a new `## [new] - today` section (no-op when new
    already has a section)."""
    file = REPO / "CHANGELOG.md"
    text = file.read_text()
    names = [name for name, _ in changelog_sections(text)]
    if new in names:
        return
    if "Unreleased" not in names:
        raise ReleaseError("CHANGELOG.md has no '## [Unreleased]' section to release")
    body = dict(changelog_sections(text))["Unreleased"]
    if not changes(body):
        print(f"warning: CHANGELOG.md has nothing under [Unreleased]: the {new} section "
              "is empty; add what changed", file=sys.stderr)
    today = datetime.date.today().isoformat()
    head = "## [Unreleased]\n"
    text = text.replace(head + body, f"{head}\n## [{new}] - {today}\n{body}", 1)
    file.write_text(text)


def chart_meta(chart: str) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((REPO / "charts" / chart / "Chart.yaml").read_text())
    return meta


def chart_changes(chart: str) -> Any:
    raw = (chart_meta(chart).get("annotations") or {}).get("artifacthub.io/changes")
    return None if raw is None else yaml.safe_load(raw)


def set_chart_changes(chart: str, entries: list[dict[str, str]]) -> None:
    """Rewrite the literal block of the artifacthub.io/changes annotation, leaving the
    rest of Chart.yaml (comments, order) as written."""
    file = REPO / "charts" / chart / "Chart.yaml"
    block = yaml.safe_dump(entries, sort_keys=False, width=1000, allow_unicode=True)
    indented = "".join(f"    {line}\n" for line in block.splitlines())
    key = "  artifacthub.io/changes: |\n"
    text = file.read_text()
    if key not in text:
        raise ReleaseError(f"{file.relative_to(REPO)}: no '{key.strip()}' annotation")
    before, after = text.split(key, 1)
    rest = re.sub(r"\A(?:    .*\n|\n)*", "", after)
    file.write_text(before + key + indented + rest)


# --- artifacthub-pkg.yml ---------------------------------------------------------------


class _KwctlDumper(yaml.SafeDumper):
    """YAML as serde_yaml (kwctl) writes it: multi-line strings as literal blocks."""


_KwctlDumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar(
        "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_KwctlDumper, sort_keys=False, width=1_000_000,
                     allow_unicode=True)


def maintainers(author: str) -> list[dict[str, str]]:
    """`Name <address>, Name <address>` as kwctl parses io.kubewarden.policy.author."""
    out = []
    for name, address in email.utils.getaddresses([author]):
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
            raise ReleaseError("metadata.yml: io.kubewarden.policy.author must be "
                               f"'Name <address>' (comma-separated), got {author!r}")
        out.append({"name": name, "email": address})
    return out


def artifacthub_pkg(metadata: dict[str, Any], created_at: str) -> dict[str, Any]:
    """What `kwctl scaffold artifacthub` (kwctl 1.35) makes of metadata.yml."""
    notes = metadata.get("annotations") or {}

    def need(key: str) -> str:
        if key not in notes:
            raise ReleaseError(f"metadata.yml: annotation {key} is missing")
        return str(notes[key])

    release = need("io.kubewarden.policy.version")
    if not re.fullmatch(SEMVER, release):
        raise ReleaseError(f"metadata.yml: io.kubewarden.policy.version {release!r} is not semver")
    image = f"{need('io.kubewarden.policy.ociUrl')}:v{release}"
    pkg: dict[str, Any] = {
        "version": release,
        "name": need("io.kubewarden.policy.title"),
        "displayName": need("io.artifacthub.displayName"),
        "createdAt": created_at,
        "description": need("io.kubewarden.policy.description"),
    }
    if "io.kubewarden.policy.license" in notes:
        pkg["license"] = notes["io.kubewarden.policy.license"]
    if "io.kubewarden.policy.url" in notes:
        pkg["homeURL"] = notes["io.kubewarden.policy.url"]
    pkg["containersImages"] = [{"name": "policy", "image": image}]
    if "io.artifacthub.keywords" in notes:
        pkg["keywords"] = [w.strip(" ") for w in notes["io.artifacthub.keywords"].split(",")]
    source = notes.get("io.kubewarden.policy.source")
    if source:
        links = [{"name": "source", "url": source}]
        if re.match(r"https?://github\.com/", source):
            tag = notes.get("com.github.release.tag", f"v{release}")
            links.insert(0, {"name": "policy",
                             "url": f"{source}/releases/download/{tag}/policy.wasm"})
        pkg["links"] = links
    pkg["install"] = (
        "The policy can be obtained using [`kwctl`](https://github.com/kubewarden/kwctl):\n"
        f"```console\nkwctl pull {image}\n```\n"
        "Then, generate the policy manifest and tune it to your liking. For example:\n"
        f"```console\nkwctl scaffold manifest -t ClusterAdmissionPolicy registry://{image}\n```\n"
    )
    if "io.kubewarden.policy.author" in notes:
        pkg["maintainers"] = maintainers(notes["io.kubewarden.policy.author"])
    pkg["provider"] = {"name": "kubewarden"}
    pkg["recommendations"] = [
        {"url": "https://artifacthub.io/packages/helm/kubewarden/kubewarden-controller"}]
    annotations = {}
    resources = sorted(metadata.get("contextAwareResources") or [],
                       key=lambda r: (r["apiVersion"], r["kind"]))
    if resources:
        annotations["kubewarden/contextAwareResources"] = _dump(
            [{"apiVersion": r["apiVersion"], "kind": r["kind"]} for r in resources])
    annotations["kubewarden/mutation"] = "true" if metadata.get("mutating") else "false"
    if "io.artifacthub.resources" in notes:
        annotations["kubewarden/resources"] = notes["io.artifacthub.resources"]
    annotations["kubewarden/rules"] = _dump([
        {key: rule.get(key, []) for key in ("apiGroups", "apiVersions", "resources", "operations")}
        for rule in metadata.get("rules") or []])
    if "io.kubewarden.hidden-ui" in notes:
        annotations["kubewarden/hidden-ui"] = notes["io.kubewarden.hidden-ui"]
    pkg["annotations"] = dict(sorted(annotations.items()))
    return pkg


# What the scaffold cannot know: install through the bundle chart (the policy needs its
# CA chain, its PolicyServer and the ServiceAccount read), and what to install first.
RECOMMENDATIONS = [
    {"url": "https://artifacthub.io/packages/helm/kubewarden/admission-controller"},
    {"url": "https://artifacthub.io/packages/helm/cert-manager/cert-manager"},
    {"url": "https://artifacthub.io/packages/helm/cert-manager/cert-manager-csi-driver"},
]


def project_fields(pkg: dict[str, Any]) -> dict[str, Any]:
    release = pkg["version"]
    chart = "oci://ghcr.io/iamra-sidecar/charts/iamra-sidecar-policy"
    out = dict(pkg)
    out["install"] = (
        "Install the policy with its Helm chart, which brings the cert-manager CA chain, a\n"
        "PolicyServer that may read ServiceAccounts, and both ClusterAdmissionPolicies (inject\n"
        "and guard). It needs Kubewarden, cert-manager and the cert-manager csi-driver. First\n"
        "the CA chain, then the inject policy once an IAM Roles Anywhere trust anchor trusts\n"
        "the chart's root CA (the release notes print the commands):\n"
        f"```console\nhelm install iamra-sidecar-policy {chart} --version {release} \\\n"
        "  -n kubewarden --set policy.enabled=false --wait\n"
        f"helm upgrade iamra-sidecar-policy {chart} --version {release} \\\n"
        "  -n kubewarden --reset-then-reuse-values --wait --set policy.enabled=true \\\n"
        "  --set trustAnchorArn=<trust anchor ARN> --set region=<its region>\n"
        "kubectl wait --for=jsonpath='{.status.policyStatus}'=active --timeout=5m \\\n"
        "  clusteradmissionpolicy/iamra-sidecar clusteradmissionpolicy/iamra-sidecar-guard\n```\n"
        "Every step, and running on an existing PolicyServer or issuer: "
        "https://github.com/iamra-sidecar/iamra-sidecar-policy/blob/main/docs/install.md\n"
    )
    out["recommendations"] = RECOMMENDATIONS
    return out


def own_artifacthub(created_at: str, scaffold: bool = False) -> str:
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    pkg = artifacthub_pkg(metadata, created_at)
    return ARTIFACTHUB_HEADER + _dump(pkg if scaffold else project_fields(pkg))


def without_created_at(text: str) -> str:
    return re.sub(r"^createdAt: .*\n", "", text, flags=re.M)


def write_artifacthub(output: Path, own: bool = False, scaffold: bool = False) -> str:
    """Write artifacthub-pkg.yml; returns which generator wrote it."""
    kwctl = None if own else shutil.which("kwctl")
    if kwctl:
        subprocess.run([kwctl, "scaffold", "artifacthub", "-m", str(REPO / "metadata.yml"),
                        "-o", str(output)], check=True, env={**os.environ, "RUST_BACKTRACE": "0"},
                       stderr=subprocess.DEVNULL)
        if not scaffold:
            output.write_text(ARTIFACTHUB_HEADER + _dump(project_fields(yaml.safe_load(output.read_text()))))
        return "kwctl scaffold artifacthub"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    output.write_text(own_artifacthub(now, scaffold))
    return "scripts/release.py"


# --- commands --------------------------------------------------------------------------


def check() -> list[str]:
    expected = version()
    problems = check_places(expected)
    released, entries = latest_release()
    if released != expected:
        problems.append(f"CHANGELOG.md: newest release is {released} (expected {expected}, "
                        "from Cargo.toml; make release moves Unreleased into it)")
    for chart in CHARTS:
        if chart_changes(chart) != entries:
            problems.append(f"charts/{chart}/Chart.yaml: artifacthub.io/changes differs from "
                            f"CHANGELOG.md's {released} section (make release rewrites it)")
    committed = without_created_at((REPO / "artifacthub-pkg.yml").read_text())
    if committed != without_created_at(own_artifacthub("")):
        problems.append("artifacthub-pkg.yml differs from what metadata.yml gives "
                        "(make release regenerates it)")
    author = yaml.safe_load((REPO / "metadata.yml").read_text())["annotations"].get(
        "io.kubewarden.policy.author", "")
    for chart in CHARTS:
        if chart_meta(chart).get("maintainers") != maintainers(author):
            problems.append(f"charts/{chart}/Chart.yaml: maintainers differ from metadata.yml's "
                            f"io.kubewarden.policy.author ({author})")
    return problems


def bump(new: str | None) -> None:
    new = new or version()
    if not re.fullmatch(SEMVER, new):
        raise ReleaseError(f"version {new!r} is not semver (X.Y.Z or X.Y.Z-pre)")
    set_cargo_version(new)
    set_places(new)
    roll_changelog(new)
    _, entries = latest_release()
    for chart in CHARTS:
        set_chart_changes(chart, entries)
    tool = write_artifacthub(REPO / "artifacthub-pkg.yml")
    print(f"version {new} everywhere; artifacthub-pkg.yml by {tool}")


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["version"]:
                print(version())
            case ["check"]:
                problems = check()
                for problem in problems:
                    print(problem, file=sys.stderr)
                if problems:
                    print("make release VERSION=x.y.z sets every place at once", file=sys.stderr)
                    return 1
                print(f"version {version()} everywhere")
            case ["bump"] | ["bump", _]:
                bump(argv[1] if len(argv) > 1 else None)
            case ["artifacthub", *rest]:
                own, scaffold = "--own" in rest, "--scaffold" in rest
                rest = [a for a in rest if a not in ("--own", "--scaffold")]
                output = Path(rest[1]) if rest[:1] == ["-o"] and len(rest) == 2 else None
                if rest and output is None:
                    raise ReleaseError(__doc__ or "")
                print(write_artifacthub(output or REPO / "artifacthub-pkg.yml", own, scaffold))
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
