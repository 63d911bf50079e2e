"""Helpers for the chart tests: render and lint with the helm CLI (tools/go/helm, built from
the Go module proxy), split the output into objects, and validate them with kubeconform
(tools/go/kubeconform) against Kubernetes' and the CRDs' JSON schemas."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

CHARTS = Path(__file__).resolve().parent.parent
REPO = CHARTS.parent
POLICY_CHART = CHARTS / "iamra-sidecar-policy"
EXAMPLE_CHART = CHARTS / "iamra-example"
# The release version's one source (scripts/release.py keeps every other place equal).
VERSION = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]

CERT_MANAGER = "cert-manager.io/v1"
KUBEWARDEN = "policies.kubewarden.io/v1"
PROMETHEUS = "monitoring.coreos.com/v1"
ALL_APIS = (CERT_MANAGER, KUBEWARDEN, PROMETHEUS)

TRUST_ANCHOR = (
    "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"
)
ROLE = "arn:aws:iam::123456789012:role/iamra-example"
PROFILE = "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70"
REQUIRED = {"trustAnchorArn": TRUST_ANCHOR, "region": "eu-west-1"}
EXAMPLE_REQUIRED = {"roleArn": ROLE, "profileArn": PROFILE}

RELEASE = "iamra"
NAMESPACE = "iamra-system"


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge override into a copy of base (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class HelmError(Exception):
    """The helm CLI refused a chart or its values; str() is helm's message."""


class HelmValuesError(HelmError):
    """The values fail the chart's values.schema.json (checked before rendering)."""


class HelmRenderError(HelmError):
    """A template failed (e.g. the chart's own `fail` checks)."""


def go_tool(name: str, binary: str) -> str:
    """A test tool built by scripts/go-tools.sh from its pinned wrapper (tools/go/NAME), or
    $<BINARY> when set; skips, saying why, where Go is absent."""
    override = os.environ.get(binary.upper().replace("-", "_"))
    if override:
        return override
    return _built(name, binary)


@functools.cache
def _built(name: str, binary: str) -> str:
    if shutil.which("go") is None:
        pytest.skip(f"Go is not installed: {binary} is built from the Go module proxy "
                    f"(tools/go/{name}); these chart tests need it", allow_module_level=True)
    done = subprocess.run([str(REPO / "scripts" / "go-tools.sh"), name], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"scripts/go-tools.sh {name} failed:\n{done.stderr}"
    return str(Path(done.stdout.strip()) / binary)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([go_tool("helm", "helm"), *args], capture_output=True, text=True)


NOTES_TEMPLATE = "iamra-tests.notes"
NOTES_KIND = "RenderedNotes"


@functools.cache
def _with_notes(chart: Path) -> Path:
    """A scratch copy of the chart whose NOTES.txt also renders as an object: the helm CLI
    prints NOTES.txt only from install/upgrade, which need a cluster, never from template."""
    scratch = Path(tempfile.mkdtemp(dir=_SCRATCH.name))
    if chart.is_file():
        with tarfile.open(chart) as archive:
            archive.extractall(scratch, filter="data")
        (copy_,) = scratch.iterdir()
    else:
        copy_ = scratch / chart.name
        shutil.copytree(chart, copy_)
    templates = copy_ / "templates"
    notes_ = templates / "NOTES.txt"
    if notes_.is_file():
        (templates / "_iamra_tests_notes.tpl").write_text(
            f'{{{{ define "{NOTES_TEMPLATE}" }}}}{notes_.read_text()}{{{{ end }}}}')
        (templates / "iamra-tests-notes.yaml").write_text(
            f'apiVersion: iamra.tests/v1\nkind: {NOTES_KIND}\n'
            f'notes: {{{{ include "{NOTES_TEMPLATE}" . | toJson }}}}\n')
    return copy_


SOURCE = re.compile(r"^# Source: (\S+)$", re.M)


def render_raw(
    chart: Path,
    values: dict[str, Any] | None,
    api_versions: tuple[str, ...] | list[str] | None = ALL_APIS,
    kube_version: str | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """`helm template iamra CHART --namespace NAMESPACE --api-versions ...` (None: Helm's
    built-in APIs only), as {template path: its manifests}, NOTES.txt's text included."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values_file:
        json.dump(values or {}, values_file)
        values_file.flush()
        args = ["template", RELEASE, str(_with_notes(Path(chart))), "--namespace", namespace,
                "--values", values_file.name]
        for api in api_versions or ():
            args += ["--api-versions", api]
        if kube_version:
            args += ["--kube-version", kube_version]
        done = helm(*args)
    if done.returncode != 0:
        message = done.stderr.strip()
        if "values don't meet the specifications of the schema" in message:
            raise HelmValuesError(message)
        raise HelmRenderError(message)
    manifests: dict[str, str] = {}
    for doc in re.split(r"^---$", done.stdout, flags=re.M):
        source = SOURCE.search(doc)
        if source is None:
            continue
        obj = yaml.safe_load(doc)
        if obj and obj.get("kind") == NOTES_KIND:
            manifests[source.group(1).replace("iamra-tests-notes.yaml", "NOTES.txt")] = obj["notes"]
        elif obj:
            manifests[source.group(1)] = manifests.get(source.group(1), "") + "---\n" + doc
    return manifests


def lint(chart: Path, values: dict[str, Any] | None = None,
         kube_version: str | None = None) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of the chart itself (no scratch copy)."""
    args = ["lint", "--strict", str(chart)]
    if kube_version:
        args += ["--kube-version", kube_version]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values_file:
        if values is not None:
            json.dump(values, values_file)
            values_file.flush()
            args += ["--values", values_file.name]
        return helm(*args)


def is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def objects(manifests: dict[str, str], hooks: bool = False) -> list[dict[str, Any]]:
    """The Kubernetes objects of a render (NOTES.txt excluded), in template order; Helm
    hooks (`helm test`) only with hooks=True, since an install does not create them."""
    out = []
    for name in sorted(manifests):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(manifests[name]):
            if doc and (hooks or not is_hook(doc)):
                out.append(doc)
    return out


def notes(manifests: dict[str, str]) -> str:
    return next((text for name, text in manifests.items() if name.endswith("NOTES.txt")), "")


def render_policy(values: dict[str, Any] | None = None, hooks: bool = False,
                  **kw: Any) -> list[dict[str, Any]]:
    return objects(render_raw(POLICY_CHART, merge(REQUIRED, values or {}), **kw), hooks)


def render_example(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return objects(render_raw(EXAMPLE_CHART, merge(EXAMPLE_REQUIRED, values or {})))


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


def kinds(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in objs)


# --- validation with kubeconform ----------------------------------------------------------

# kubeconform reads one standalone JSON schema per kind; the Kubernetes schemas come from
# kubernetes-validate (PyPI), which ships them split (each $ref into _definitions.json).
K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
SCHEMA_LOCATIONS = (
    "{root}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/"
    "{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
    "{root}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
)
_SCRATCH = tempfile.TemporaryDirectory(prefix="iamra-chart-tests-")


def crds_dir() -> Path:
    """`../shared/crds` beside the repository, or $CRDS_DIR."""
    return Path(os.environ.get("CRDS_DIR") or REPO.parent / "shared" / "crds")


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema that rejects unknown fields, as the API
    server does with field validation Strict (kubectl's default): objects with
    properties and no additionalProperties/x-kubernetes-preserve-unknown-fields get
    additionalProperties: false; nullable adds null to the type. Hand-written because
    kubeconform's own converter (its repository's openapi2jsonschema.py) is published on
    no registry these machines reach."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def write_crd_schemas(crds: list[Path], root: Path) -> list[tuple[str, str]]:
    """root/crds/<group>/<kind>_<version>.json for every served version of every CRD in
    the directories crds (kubeconform's layout); returns the (apiVersion, kind) pairs written."""
    written = []
    for path in sorted(p for directory in crds for p in directory.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                out = root / "crds" / group / f"{kind.lower()}_{version['name']}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(_strict(version["schema"]["openAPIV3Schema"])))
                written.append((f"{group}/{version['name']}", kind))
    return written


def _kubernetes_schema(root: Path, version: str, api_version: str, kind: str) -> None:
    """kubernetes-validate's strict schema of this kind with _definitions.json bundled in,
    under kubeconform's file name (nothing is written for kinds it lacks: kubeconform then
    reports the schema missing)."""
    group, _, ver = api_version.rpartition("/")
    name = f"{kind.lower()}-{group.split('.')[0] + '-' if group else ''}{ver}.json".lower()
    out = root / f"v{version}-standalone-strict" / name
    source = K8S_SCHEMAS / f"v{version}-local-strict" / name
    if out.exists() or not source.exists():
        return
    definitions = json.loads((source.parent / "_definitions.json").read_text())["$defs"]
    schema = json.loads(source.read_text().replace('"/api/_definitions.json#', '"#'))
    schema.pop("$id", None)
    schema["$defs"] = definitions
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(schema))


def kubeconform(sets: dict[str, list[dict[str, Any]]], version: str,
                crds: list[Path] | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
    """kubeconform -strict on each named set of objects for Kubernetes `version`, custom
    resources against the CRDs in the directories `crds`: {(set, kind, name): kubeconform's result}."""
    root = Path(_SCRATCH.name) / "schemas"
    if crds is not None and not (root / "crds").is_dir():
        write_crd_schemas(crds, root)
    work = Path(tempfile.mkdtemp(dir=_SCRATCH.name))
    files = []
    for name, objs in sets.items():
        for obj in objs:
            _kubernetes_schema(root, version, obj["apiVersion"], obj["kind"])
        files.append(work / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump_all(objs))
    args = [go_tool("kubeconform", "kubeconform"), "-strict", "-verbose", "-output", "json",
            "-kubernetes-version", version]
    for location in SCHEMA_LOCATIONS:
        args += ["-schema-location", location.format(root=root)]
    done = subprocess.run([*args, *map(str, files)], capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert done.returncode in (0, 1) and report["resources"], done.stdout + done.stderr
    return {(Path(r["filename"]).stem, r["kind"], r["name"]): r for r in report["resources"]}
