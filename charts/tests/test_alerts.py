"""The PrometheusRule (prometheus.enabled): promtool checks the rendered rules and runs
charts/tests/prometheus/rules-test.yaml against them (series shaped like cert-manager's,
the csi-driver's, kube-state-metrics' and policy-server's); every alert links to a
section of docs/troubleshooting.md that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chartlib import REPO, find, render_policy

TESTS = Path(__file__).resolve().parent / "prometheus" / "rules-test.yaml"
ON = {"prometheus": {"enabled": True}}


def promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: make test-deps installs Debian's prometheus package"
    return tool


def rule(values=None) -> dict:
    return find(render_policy({**ON, **(values or {})}), "PrometheusRule")


def run_promtool(tmp_path: Path, values=None) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule(values)["spec"]["groups"]}))
    shutil.copy(TESTS, tmp_path / "rules-test.yaml")
    check = subprocess.run([promtool(), "check", "rules", "rules.yaml"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return subprocess.run([promtool(), "test", "rules", "rules-test.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)


def test_promtool_passes_the_rules_tests(tmp_path):
    done = run_promtool(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_tests_catch_a_changed_threshold(tmp_path):
    # 10 % of the inject policy's evaluations reject: above 5 %, below 20 %.
    done = run_promtool(tmp_path, {"prometheus": {"enabled": True, "rules": {"rejectionRatio": 0.2}}})
    assert done.returncode == 1
    assert "alertname: IamraInjectPolicyRejectingPods" in done.stdout + done.stderr


def alerts(obj) -> dict[str, dict]:
    return {r["alert"]: r for g in obj["spec"]["groups"] for r in g["rules"]}


def test_default_alerts():
    assert set(alerts(rule())) == {
        "IamraRootCARenewalDue", "IamraRootCARenewed", "IamraRootCAExpiring", "IamraIntermediateCANotRenewing",
        "IamraPodCertificatesNotRenewing", "IamraPolicyServerUnavailable", "IamraPolicyServerDegraded",
        "IamraInjectPolicyRejectingPods"}


def test_no_rule_without_prometheus_or_when_switched_off():
    assert not [o for o in render_policy() if o["kind"] == "PrometheusRule"]
    off = render_policy({"prometheus": {"enabled": True, "rules": {"enabled": False}}})
    assert not [o for o in off if o["kind"] == "PrometheusRule"]
    assert find(off, "ServiceMonitor")


def test_an_existing_issuer_has_no_ca_alerts_and_its_pod_certificates_are_watched():
    obj = rule({"workloadIssuer": {"create": False, "name": "pca", "kind": "AWSPCAClusterIssuer",
                                   "group": "awspca.cert-manager.io"}})
    found = alerts(obj)
    assert not [a for a in found if "CA" in a]
    assert 'issuer_name="pca",issuer_kind="AWSPCAClusterIssuer"' in found["IamraPodCertificatesNotRenewing"]["expr"]


def test_alert_labels_and_the_rule_namespace():
    obj = rule({"prometheus": {"enabled": True, "labels": {"release": "kps"},
                               "rules": {"alertLabels": {"team": "platform"}}}})
    assert obj["metadata"]["namespace"] == "iamra-system"
    assert obj["metadata"]["labels"]["release"] == "kps"
    assert all(r["labels"]["team"] == "platform" for r in alerts(obj).values())


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_links_to_its_runbook_section():
    page = (REPO / "docs" / "troubleshooting.md").read_text()
    anchors = {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", page, re.M)}
    for name, r in alerts(rule()).items():
        url = r["annotations"]["runbook_url"]
        assert url.startswith("https://github.com/iamra-sidecar/iamra-sidecar-policy/blob/main/docs/troubleshooting.md#"), name
        assert url.split("#", 1)[1] in anchors, f"{name}: no section #{url.split('#', 1)[1]} in docs/troubleshooting.md"
