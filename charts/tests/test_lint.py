"""`helm lint --strict` (Helm v4's linter) passes for both charts, on the oldest
supported Kubernetes too."""

from __future__ import annotations

import helm_python as helm
import pytest
import yaml

from chartlib import EXAMPLE_CHART, POLICY_CHART

CHARTS = [POLICY_CHART, EXAMPLE_CHART]


@pytest.fixture(autouse=True, scope="module")
def quiet_helm_logs():
    # Lint logs every fail() it meets at INFO (the API check fails in lint's offline render).
    helm.disable_logging()


@pytest.mark.parametrize("kube_version", [None, "v1.29.0"])
@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_lint_strict(chart, kube_version):
    values = yaml.safe_load((chart / "ci" / "default-values.yaml").read_text())
    report = helm.lint(chart, values, strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_lint_reports_missing_required_values(chart):
    report = helm.lint(chart, strict=True)
    assert any("missing propert" in e for e in report["errors"]), report
