#!/usr/bin/env python3
"""A CycloneDX 1.6 SBOM (JSON) of the policy module's Rust dependencies, written with
CycloneDX's own Python library (cyclonedx-python-lib) and validated against the CycloneDX
schema before it is written.

    sbom.py OUTPUT_JSON

The components are what cargo resolves for the module's target (`cargo metadata
--filter-platform wasm32-wasip1 --locked`): every crate reachable from iamra-sidecar-policy
through normal and build dependencies (dev-dependencies are not in the module), with its
licence, package URL, crates.io checksum from Cargo.lock and the dependency graph.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from cyclonedx.contrib.hash.factories import HashTypeFactory
from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.contrib.this.builders import this_component
from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

REPO = Path(__file__).resolve().parent.parent
TARGET = "wasm32-wasip1"
ROOT = "iamra-sidecar-policy"


def cargo_metadata() -> dict[str, Any]:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", TARGET,
         "--manifest-path", str(REPO / "Cargo.toml")],
        check=True, capture_output=True, text=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def lock_checksums() -> dict[tuple[str, str], str]:
    lock = tomllib.loads((REPO / "Cargo.lock").read_text())
    return {(p["name"], p["version"]): p["checksum"] for p in lock["package"] if "checksum" in p}


def component(package: dict[str, Any], checksums: dict[tuple[str, str], str],
              kind: ComponentType) -> Component:
    name, version = package["name"], package["version"]
    purl = PackageURL("cargo", name=name, version=version)
    checksum = checksums.get((name, version))
    references = [ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(package["repository"]))
                  ] if package.get("repository") else []
    return Component(
        type=kind, name=name, version=version, bom_ref=purl.to_string(), purl=purl,
        description=package.get("description"),
        # Cargo licence fields are SPDX expressions (old crates may use "MIT/Apache-2.0",
        # which the factory keeps as a licence name rather than guessing).
        licenses=[LicenseFactory().make_from_string(package["license"])]
        if package.get("license") else [],
        hashes=[HashTypeFactory().from_composite_str(f"sha256:{checksum}")] if checksum else [],
        external_references=references)


def sbom() -> str:
    meta = cargo_metadata()
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(i for i, p in packages.items() if p["name"] == ROOT and i in meta["workspace_members"])
    checksums = lock_checksums()

    # The crates the module is built from: the closure over normal and build edges.
    edges: dict[str, list[str]] = {}
    todo, seen = [root], {root}
    while todo:
        node = nodes[todo.pop()]
        deps = [d["pkg"] for d in node["deps"]
                if any(k["kind"] in (None, "build") for k in d["dep_kinds"])]
        edges[node["id"]] = deps
        for dep in deps:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)

    bom = Bom()
    bom.metadata.tools.components.add(this_component())
    made = {i: component(packages[i], checksums,
                         ComponentType.APPLICATION if i == root else ComponentType.LIBRARY)
            for i in seen}
    bom.metadata.component = made[root]
    for i in sorted(seen - {root}, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        bom.components.add(made[i])
    for i, deps in edges.items():
        bom.register_dependency(made[i], [made[d] for d in deps])

    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SystemExit(f"the generated SBOM is not valid CycloneDX 1.6: {error}")
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Path(sys.argv[1]).write_text(sbom() + "\n")
