"""Chart metadata and documentation: every value documented in values.yaml and declared
in the schema, defaults in step with the policy's own defaults (policy-settings.json,
which the policy's tests write), and a
kubeVersion that admits native sidecars (1.29+) only."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from chartlib import EXAMPLE_CHART, POLICY_CHART, REPO, VERSION

CHARTS = [POLICY_CHART, EXAMPLE_CHART]
KEY = re.compile(r"^(?P<indent> *)(?P<commented># )?(?P<key>[A-Za-z][\w.-]*):(?: |$)")


def value_keys(chart):
    """(path, documented, commented_out) for every key line of values.yaml, where
    documented means a comment line directly above it."""
    lines = (chart / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    out = []
    in_list = None  # the indent of a list item's keys (values of list items are data)
    for i, line in enumerate(lines):
        item = re.match(r"^( *)- ", line)
        if item:
            in_list = len(item[1]) + 2
            continue
        m = KEY.match(line)
        if not m:
            continue
        indent = len(m["indent"])
        if in_list is not None and not m["commented"]:
            if indent >= in_list:
                continue
            in_list = None
        if m["commented"]:
            # A commented-out example value at top level (e.g. "# region: eu-west-1").
            if indent == 0 and re.fullmatch(r"# [A-Za-z]\w*: \S+", line):
                out.append(((m["key"],), True, True))
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        documented = i > 0 and lines[i - 1].strip().startswith("#")
        out.append((tuple(k for _, k in stack), documented, False))
    return out


def schema_at(schema, path):
    """The schema of path, and whether its last key is a declared property."""
    node, declared = schema, True
    for key in path:
        props = node.get("properties", {})
        if key in props:
            node, declared = props[key], True
        else:
            extra = node.get("additionalProperties")
            node, declared = (extra if isinstance(extra, dict) else {}), False
    return node, declared


def declared_paths(schema, prefix=()):
    for key, sub in schema.get("properties", {}).items():
        if key == "global":
            continue
        yield prefix + (key,)
        yield from declared_paths(sub, prefix + (key,))


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_every_value_is_documented(chart):
    schema = json.loads((chart / "values.schema.json").read_text())
    undocumented = [
        ".".join(path)
        for path, documented, _ in value_keys(chart)
        if schema_at(schema, path)[1] and not documented
    ]
    assert not undocumented, f"values without a comment above them: {undocumented}"


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_values_and_schema_agree(chart):
    schema = json.loads((chart / "values.schema.json").read_text())
    in_values = {path for path, _, _ in value_keys(chart)}
    undeclared = [".".join(p) for p in in_values if not schema_at(schema, p)[1]
                  and not schema_at(schema, p[:-1])[0].get("additionalProperties")]
    assert not undeclared, f"values.yaml keys the schema does not declare: {undeclared}"
    missing = [".".join(p) for p in declared_paths(schema) if p not in in_values]
    assert not missing, f"schema properties missing from values.yaml: {missing}"


def test_required_values_are_documented_but_unset():
    keys = {path: commented for path, _, commented in value_keys(POLICY_CHART)}
    assert keys[("trustAnchorArn",)] is True and keys[("region",)] is True
    values = yaml.safe_load((POLICY_CHART / "values.yaml").read_text())
    assert "trustAnchorArn" not in values and "region" not in values


def policy_defaults():
    """The policy's settings defaults, written by its test settings_contract_is_current."""
    return json.loads((REPO / "charts" / "tests" / "policy-settings.json").read_text())


# Set by the templates from other values, or required without a default.
NOT_IN_VALUES = {("mode",), ("trustAnchorArn",), ("region",), ("certificate", "issuer")}


def setting_defaults(defaults, path=()):
    """(path, default) of every policy setting, descending into settings groups."""
    for key, value in defaults.items():
        if isinstance(value, dict) and key != "resources":
            yield from setting_defaults(value, path + (key,))
        else:
            yield path + (key,), value


def image_ref(image):
    """An image's {registry, repository, tag} in values.yaml as one reference."""
    return f"{image['registry']}/{image['repository']}:{image['tag']}"


def test_setting_defaults_are_the_policys():
    values = yaml.safe_load((POLICY_CHART / "values.yaml").read_text())
    values["sidecar"]["image"] = image_ref(values["sidecar"]["image"])  # the settings get it joined
    drift = []
    for path, default in setting_defaults(policy_defaults()):
        if path in NOT_IN_VALUES or path[:2] in NOT_IN_VALUES:
            continue
        node = values
        for key in path:
            node = node.get(key, KeyError) if isinstance(node, dict) else KeyError
        if node != default:
            drift.append(f"{'.'.join(path)}: values.yaml {node!r}, policy {default!r}")
    assert not drift, "chart defaults differ from the policy's:\n" + "\n".join(drift)


def test_schema_declares_every_setting():
    schema = json.loads((POLICY_CHART / "values.schema.json").read_text())
    missing = [
        ".".join(path)
        for path, _ in setting_defaults(policy_defaults())
        if path not in NOT_IN_VALUES and path[:2] not in NOT_IN_VALUES and not schema_at(schema, list(path))[1]
    ]
    assert not missing, f"settings missing from values.schema.json: {missing}"


def test_sidecar_image_is_the_policys_default():
    values = yaml.safe_load((POLICY_CHART / "values.yaml").read_text())
    image = policy_defaults()["sidecar"]["image"]
    assert image_ref(values["sidecar"]["image"]) == image
    chart = yaml.safe_load((POLICY_CHART / "Chart.yaml").read_text())
    images = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert images == [{"name": "credential-helper", "image": image}]


def test_allowed_requesters_default_is_the_policys():
    values = yaml.safe_load((POLICY_CHART / "values.yaml").read_text())
    assert values["allowedRequesters"] == policy_defaults()["allowedRequesters"]


def test_example_image_matches_artifacthub_annotation():
    values = yaml.safe_load((EXAMPLE_CHART / "values.yaml").read_text())
    chart = yaml.safe_load((EXAMPLE_CHART / "Chart.yaml").read_text())
    images = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert images[0]["image"] == f"{values['image']['repository']}:{values['image']['tag']}"


def admits(constraint, version):
    """Helm's `>=X.Y.Z-0` constraint (the only form the charts use)."""
    m = re.fullmatch(r">=(\d+)\.(\d+)\.(\d+)-0", constraint)
    assert m, f"unexpected kubeVersion constraint {constraint!r}"
    wanted = tuple(int(x) for x in m.groups())
    have = tuple(int(x) for x in re.match(r"v?(\d+)\.(\d+)\.(\d+)", version).groups())
    return have >= wanted


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_kube_version_requires_native_sidecars(chart):
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    constraint = meta["kubeVersion"]
    assert admits(constraint, "v1.29.0") and admits(constraint, "v1.29.0-eks-1234")
    assert admits(constraint, "v1.33.2")
    assert not admits(constraint, "v1.28.15")


def test_chart_metadata():
    meta = yaml.safe_load((POLICY_CHART / "Chart.yaml").read_text())
    assert (meta["name"], meta["version"], meta["appVersion"]) == ("iamra-sidecar-policy", VERSION, VERSION)
    for key in ("artifacthub.io/license", "artifacthub.io/category", "artifacthub.io/links",
                "artifacthub.io/changes", "artifacthub.io/images"):
        assert key in meta["annotations"], key
    values = yaml.safe_load((POLICY_CHART / "values.yaml").read_text())
    assert values["policy"]["module"] == {"registry": "ghcr.io", "repository": "iamra-sidecar/policies/iamra-sidecar-policy",
                                          "tag": f"v{VERSION}"}


def test_generated_tables_are_fresh():
    """Each chart README's values table and docs/reference.md's values and settings tables
    are what scripts/docs.py (helm-docs) makes of values.yaml and the policy's defaults."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "docs.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_readme_lists_every_value_and_the_install_command(chart):
    readme = (chart / "README.md").read_text()
    paths = {path for path, _, _ in value_keys(chart)}
    leaves = [p for p in paths if not any(o[: len(p)] == p and o != p for o in paths)]
    missing = [".".join(p) for p in leaves
               if not any(f"| {'.'.join(p[:n])} |" in readme for n in range(1, len(p) + 1))]
    assert not missing, f"values missing from the README's table: {missing}"
    assert f"helm install {chart.name} ./charts/{chart.name}" in readme


def test_reference_lists_every_setting():
    reference = (REPO / "docs" / "reference.md").read_text()
    missing = [".".join(path) for path, _ in setting_defaults(policy_defaults())
               if f"| {'.'.join(path if path[-1] != 'resources' else path)} |" not in reference
               and path[:2] != ("certificate", "issuer")]
    assert not missing, f"settings missing from docs/reference.md: {missing}"


def test_stale_tables_are_caught(tmp_path):
    # The freshness check fails when values.yaml's comments change but the tables do not.
    import shutil

    copy = tmp_path / "repo"
    for part in ("charts", "docs", "scripts", "tools/go/helm-docs"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("tests"))
    (copy / "charts" / "tests").mkdir()
    shutil.copy(REPO / "charts" / "tests" / "policy-settings.json", copy / "charts" / "tests")
    values = copy / "charts" / "iamra-sidecar-policy" / "values.yaml"
    values.write_text(values.read_text().replace("# -- Name of this cluster, a DNS label.",
                                                 "# -- The name of this cluster, a DNS label."))
    done = subprocess.run([sys.executable, str(copy / "scripts" / "docs.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "charts/iamra-sidecar-policy/README.md" in done.stderr and "docs/reference.md" in done.stderr
