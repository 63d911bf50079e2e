"""The users' documentation: a short README (what `kwctl annotate` embeds and ArtifactHub
shows), the docs/ pages the README links, relative links that resolve (files and their
headings), and no `--reuse-values` advice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = ["install", "aws-setup", "usage", "reference", "irsa", "kubevirt", "security", "operations",
         "troubleshooting", "upgrading"]


def markdown_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md"]
    files += sorted((REPO / "docs").rglob("*.md"))
    files += sorted((REPO / "charts").glob("*/README.md"))
    return files


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", re.sub(r"`", "", heading.strip().lower()))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


LINK = re.compile(r"\]\(([^)\s]+)\)")
# Pages shown outside the repository (the README in the module and on ArtifactHub, the
# charts' READMEs on ArtifactHub) link the repository's files absolutely; these links are
# checked against the checkout like relative ones.
BLOB = "https://github.com/iamra-sidecar/iamra-sidecar-policy/blob/main/"


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [m[1] for m in LINK.finditer(text)]


def broken_links(path: Path) -> list[str]:
    out = []
    for link in links(path):
        own = link.startswith(BLOB)
        if re.match(r"^[a-z]+:", link) and not own:
            continue  # https:, mailto:
        target, _, anchor = link.removeprefix(BLOB).partition("#")
        base = REPO if own else path.parent
        file = (base / target).resolve() if target else path
        rel = file.relative_to(REPO).as_posix() if file.is_relative_to(REPO) else str(file)
        if not file.exists():
            out.append(f"{link} (no {rel})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            out.append(f"{link} (no heading #{anchor} in {rel})")
    return out


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move material to docs/"


def test_readme_links_every_users_page():
    readme_links = set(links(REPO / "README.md"))
    missing = [page for page in PAGES if f"{BLOB}docs/{page}.md" not in readme_links]
    assert not missing, missing


@pytest.mark.parametrize("path", ["README.md", "charts/iamra-sidecar-policy/README.md",
                                  "charts/iamra-example/README.md"])
def test_pages_shown_outside_the_repository_link_absolutely(path):
    # ArtifactHub and the module's annotation have no repository to resolve them against.
    relative = [link for link in links(REPO / path) if not re.match(r"^([a-z]+:|#)", link)]
    assert not relative, relative


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(path):
    assert not broken_links(path)


def test_the_link_check_catches_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page.write_text("[ok](other.md#a-section) [gone](missing.md) [no heading](other.md#nope)\n"
                    f"[own ok]({BLOB}other.md) [own gone]({BLOB}docs/gone.md)\n"
                    "```\n[in code](ignored.md)\n```\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert broken_links(page) == ["missing.md (no missing.md)", "other.md#nope (no heading #nope in other.md)",
                                      f"{BLOB}docs/gone.md (no docs/gone.md)"]
    finally:
        REPO = saved


def test_no_reuse_values_advice():
    files = markdown_files() + [REPO / "charts" / "iamra-sidecar-policy" / "templates" / "NOTES.txt"]
    advice = []
    for path in files:
        text = path.read_text()
        for m in re.finditer(r"(?<!then)-(?:-)reuse-values", text):
            sentence = text[max(0, m.start() - 120): m.end()]
            if not re.search(r"\b(never|Never|not|instead of)\b", sentence):
                advice.append(f"{path.relative_to(REPO)}: ...{sentence[-80:]!r}")
    assert not advice, advice
