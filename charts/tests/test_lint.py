"""`helm lint --strict` (the helm CLI) passes for both charts, on the oldest supported
Kubernetes too."""

from __future__ import annotations

import pytest
import yaml

from chartlib import EXAMPLE_CHART, POLICY_CHART, lint

CHARTS = [POLICY_CHART, EXAMPLE_CHART]


@pytest.mark.parametrize("kube_version", [None, "v1.29.0"])
@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_lint_strict(chart, kube_version):
    values = yaml.safe_load((chart / "ci" / "default-values.yaml").read_text())
    done = lint(chart, values, kube_version=kube_version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout, done.stdout
    # --strict fails on warnings too; no [INFO] either, so nothing goes unnoticed.
    assert not [line for line in done.stdout.splitlines() if line.startswith("[")], done.stdout


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_lint_reports_missing_required_values(chart):
    done = lint(chart)
    assert done.returncode != 0
    assert "missing propert" in done.stdout + done.stderr, done.stdout + done.stderr
