"""Helpers for the chart tests: render with Helm v4's engine (helm-python-sdk, no helm
binary), split the output into objects, and validate them against Kubernetes and CRD
schemas."""

from __future__ import annotations

import copy
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

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


def render_raw(
    chart: Path,
    values: dict[str, Any] | None,
    api_versions: tuple[str, ...] | list[str] | None = ALL_APIS,
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """Render like `helm template --api-versions ...` (None: Helm's built-in APIs only,
    as `helm template` without --api-versions and helm-python-sdk's Chart.render see).

    Chart.render does not expose api_versions; the library's helm_render takes them in
    its options JSON (helm-python-sdk 0.2.2, pinned in requirements.txt).
    """
    with helm.Chart.load(chart) as loaded:
        if api_versions is None:
            return loaded.render(values, name=RELEASE, namespace=namespace)
        opts = {"name": RELEASE, "namespace": namespace, "api_versions": list(api_versions)}
        rendered = _native.call_string(
            "helm_render", loaded._raw(), json.dumps(values or {}), json.dumps(opts)
        )
        manifests: dict[str, str] = json.loads(rendered)
        return manifests


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


# --- CRD schemas -----------------------------------------------------------------------


def crds_dir() -> Path:
    """`../shared/crds` beside the repository, or $CRDS_DIR."""
    return Path(os.environ.get("CRDS_DIR") or REPO.parent / "shared" / "crds")


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema that rejects unknown fields, as the API
    server does with field validation Strict (kubectl's default): objects with
    properties and no additionalProperties/x-kubernetes-preserve-unknown-fields get
    additionalProperties: false; nullable adds null to the type."""
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


def crd_schemas(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """{(apiVersion, kind): JSON schema} for every served version of every CRD file."""
    schemas = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return schemas
