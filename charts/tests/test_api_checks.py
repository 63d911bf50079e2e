"""The chart fails fast when the cluster lacks the APIs it needs, and the documented
switch (apiCheck.enabled=false) lets offline renderers through."""

from __future__ import annotations

import pytest

from chartlib import (
    CERT_MANAGER,
    KUBEWARDEN,
    HelmRenderError,
    POLICY_CHART,
    PROMETHEUS,
    REQUIRED,
    kinds,
    merge,
    objects,
    render_raw,
)

HINT = "Pass --api-versions {api}, or set apiCheck.enabled=false."


def error(values, api_versions) -> str:
    with pytest.raises(HelmRenderError) as err:
        render_raw(POLICY_CHART, merge(REQUIRED, values), api_versions=api_versions)
    return str(err.value)


def test_offline_render_sees_only_builtin_apis_and_fails():
    # `helm template` without --api-versions.
    message = error({}, None)
    assert "the cluster does not serve the API cert-manager.io/v1; install cert-manager" in message
    assert HINT.format(api=CERT_MANAGER) in message


def test_missing_kubewarden_fails():
    message = error({}, [CERT_MANAGER])
    assert "the cluster does not serve the API policies.kubewarden.io/v1; install Kubewarden" in message
    assert HINT.format(api=KUBEWARDEN) in message


def test_missing_cert_manager_fails_even_with_kubewarden():
    assert "API cert-manager.io/v1" in error({}, [KUBEWARDEN])


def test_cluster_with_both_apis_renders():
    objs = objects(render_raw(POLICY_CHART, REQUIRED, api_versions=[CERT_MANAGER, KUBEWARDEN]))
    assert len(objs) == 11


def test_prometheus_needs_the_operator_api():
    values = {"prometheus": {"enabled": True}}
    message = error(values, [CERT_MANAGER, KUBEWARDEN])
    assert "API monitoring.coreos.com/v1; install the Prometheus operator CRDs" in message
    objs = objects(render_raw(POLICY_CHART, merge(REQUIRED, values),
                              api_versions=[CERT_MANAGER, KUBEWARDEN, PROMETHEUS]))
    assert ("ServiceMonitor", "iamra-iamra-sidecar") in kinds(objs)


def test_kubewarden_not_needed_without_policies():
    values = {"policy": {"enabled": False}, "guard": {"enabled": False}, "policyServer": {"create": False},
              "readServiceAccounts": False}
    objs = objects(render_raw(POLICY_CHART, values, api_versions=[CERT_MANAGER]))
    assert [k for k, _ in kinds(objs)] == ["Certificate", "Certificate", "ClusterIssuer", "ClusterIssuer", "Issuer"]


def test_the_policy_server_needs_kubewarden_even_without_policies():
    # The first step of an uninstall keeps the PolicyServer while the webhooks go.
    values = {"policy": {"enabled": False}, "guard": {"enabled": False}}
    assert "API policies.kubewarden.io/v1" in error(values, [CERT_MANAGER])


def test_switch_lets_offline_renderers_through():
    values = merge(REQUIRED, {"apiCheck": {"enabled": False}, "prometheus": {"enabled": True}})
    objs = objects(render_raw(POLICY_CHART, values, api_versions=None))  # built-in APIs only
    assert len(objs) == 13  # with the PrometheusRule


def test_switch_does_not_skip_the_other_checks():
    message = error({"apiCheck": {"enabled": False}, "region": "eu-west-2"}, None)
    assert "differs from the trust anchor's region" in message
