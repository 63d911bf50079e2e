"""Missing or malformed values fail, with a message an operator can act on: first the
values schema (what `helm install` checks before rendering), then the template checks
for what a schema cannot express."""

from __future__ import annotations

import pytest

from chartlib import POLICY_CHART, REQUIRED, HelmError, HelmValuesError, merge, render_raw


def render_error(values, **kw) -> str:
    with pytest.raises(HelmError) as err:
        render_raw(POLICY_CHART, values, **kw)
    return str(err.value)


def test_install_without_required_values_fails_readably():
    message = render_error({})
    assert "missing properties 'trustAnchorArn', 'region'" in message


def test_missing_region_alone():
    assert "missing property 'region'" in render_error({"trustAnchorArn": REQUIRED["trustAnchorArn"]})


def test_the_values_schema_is_checked_before_rendering():
    # The check `helm install` runs on the merged values, reported as a values error.
    render_raw(POLICY_CHART, REQUIRED)
    with pytest.raises(HelmValuesError, match="trustAnchorArn"):
        render_raw(POLICY_CHART, {"region": "eu-west-1"})


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"}, "/trustAnchorArn"),
        ({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:1234:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"}, "/trustAnchorArn"),
        ({"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/not-a-uuid"}, "/trustAnchorArn"),
        ({"region": "europe"}, "/region"),
        ({"region": "EU-WEST-1"}, "/region"),
        ({"annotationPrefix": "Not Valid"}, "/annotationPrefix"),
        ({"clusterName": "Prod_Cluster"}, "/clusterName"),
        ({"sidecar": {"port": 80}}, "/sidecar/port"),
        ({"sidecar": {"port": 70000}}, "/sidecar/port"),
        ({"sidecar": {"imagePullPolicy": "Sometimes"}}, "/sidecar/imagePullPolicy"),
        ({"sidecar": {"logLevel": "trace"}}, "/sidecar/logLevel"),
        ({"sidecar": {"image": "has space:1"}}, "/sidecar/image"),
        ({"sidecar": {"resources": {"limits": {"memory": "lots"}}}}, "/sidecar/resources/limits/memory"),
        ({"sidecar": {"resources": {"claims": []}}}, "/sidecar/resources"),
        ({"defaults": {"sessionDuration": "soon"}}, "/defaults/sessionDuration"),
        ({"defaults": {"sessionDuration": 900}}, "/defaults/sessionDuration"),
        ({"certificate": {"keyAlgorithm": "Ed25519"}}, "/certificate/keyAlgorithm"),
        ({"certificate": {"keySize": 521}}, "/certificate/keySize"),
        ({"certificate": {"keyAlgorithm": "RSA", "keySize": 1024}}, "/certificate/keySize"),
        ({"certificate": {"duration": "a day"}}, "/certificate/duration"),
        ({"certificate": {"issuer": {"name": "x"}}}, "/certificate"),
        ({"allowedRequesters": [""]}, "/allowedRequesters/0"),
        ({"allowedRequesters": []}, "/allowedRequesters"),
        ({"certificateRequests": {"binding": "pod"}}, "/certificateRequests/binding"),
        ({"irsa": {"tokenExpiration": 300}}, "/irsa/tokenExpiration"),
        ({"irsa": {"region": "moon-1"}}, "/irsa/region"),
        ({"policy": {"mode": "audit"}}, "/policy/mode"),
        ({"policy": {"failurePolicy": "Maybe"}}, "/policy/failurePolicy"),
        ({"policy": {"timeoutSeconds": 31}}, "/policy/timeoutSeconds"),
        ({"policy": {"timeoutEvalSeconds": 1}}, "/policy/timeoutEvalSeconds"),
        ({"policy": {"module": "ghcr.io/x/y:v1 "}}, "/policy/module"),
        ({"policy": {"name": "a" * 221}}, "/policy/name"),
        ({"guard": {"name": "Guard"}}, "/guard/name"),
        ({"optIn": {"value": True}}, "/optIn/value"),
        ({"optIn": {"key": "not a key"}}, "/optIn/key"),
        ({"guard": {"excludeNamespaces": ["Kube_System"]}}, "/guard/excludeNamespaces/0"),
        ({"workloadIssuer": {"kind": "Cluster Issuer"}}, "/workloadIssuer/kind"),
        ({"workloadIssuer": {"ca": {"duration": "2160h"}}}, "additional properties 'ca' not allowed"),
        ({"workloadIssuer": {"root": {"keySize": 4096}}}, "/workloadIssuer/root/keySize"),
        ({"workloadIssuer": {"intermediate": {"keyAlgorithm": "DSA"}}}, "/workloadIssuer/intermediate/keyAlgorithm"),
        ({"prometheus": {"kind": "Probe"}}, "/prometheus/kind"),
        ({"trustAnchroArn": "typo"}, "additional properties 'trustAnchroArn' not allowed"),
        ({"sidecar": {"nativ": True}}, "additional properties 'nativ' not allowed"),
    ],
)
def test_malformed_values_fail_the_schema(values, where):
    message = render_error(merge(REQUIRED, values))
    assert where in message, message


def test_bootstrap_does_not_need_the_trust_anchor_but_checks_it_when_given():
    render_raw(POLICY_CHART, {"policy": {"enabled": False}})
    assert "/region" in render_error({"policy": {"enabled": False}, "region": "nowhere"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"region": "eu-west-2"}, 'region "eu-west-2" differs from the trust anchor\'s region "eu-west-1"'),
        ({"policy": {"timeoutSeconds": 5, "timeoutEvalSeconds": 8}},
         "policy.timeoutEvalSeconds (8) is longer than policy.timeoutSeconds (5)"),
        ({"defaults": {"sessionDuration": "5m"}}, 'defaults.sessionDuration "5m" must be between 900s (15m) and 43200s (12h)'),
        ({"defaults": {"sessionDuration": "43201"}}, "defaults.sessionDuration \"43201\" must be between"),
        ({"certificate": {"duration": "30m", "renewBefore": "10m"}}, "shorter than cert-manager's minimum of 1h"),
        ({"certificate": {"duration": "8h", "renewBefore": "8h"}}, 'certificate.renewBefore "8h" must be shorter than certificate.duration "8h"'),
        ({"workloadIssuer": {"intermediate": {"duration": "720h", "renewBefore": "720h"}}},
         "workloadIssuer.intermediate.renewBefore \"720h\" must be shorter than workloadIssuer.intermediate.duration"),
        ({"workloadIssuer": {"root": {"renewBefore": "87600h"}}},
         "workloadIssuer.root.renewBefore \"87600h\" must be shorter than workloadIssuer.root.duration"),
        ({"workloadIssuer": {"intermediate": {"duration": "20h", "renewBefore": "10h"}}},
         "not longer than a pod certificate"),
        ({"workloadIssuer": {"intermediate": {"secretName": "iamra-workload-root"}}},
         "the two CAs need their own Secrets"),
        ({"workloadIssuer": {"create": False, "name": "", "kind": "", "group": "cert-manager.io"}},
         "workloadIssuer.create=false needs a complete reference to your existing issuer, but workloadIssuer.name, workloadIssuer.kind are empty"),
        ({"workloadIssuer": {"create": False, "group": ""}}, "but workloadIssuer.group is empty"),
        ({"workloadIssuer": {"name": ""}}, "workloadIssuer.name is empty"),
        ({"workloadIssuer": {"kind": "Issuer"}}, "workloadIssuer.create=true creates a cert-manager.io ClusterIssuer"),
    ],
)
def test_template_checks_fail_with_a_message(values, message):
    error = render_error(merge(REQUIRED, values))
    assert message in error, error


@pytest.mark.parametrize(
    "values",
    [
        {"policy": {"timeoutSeconds": 8, "timeoutEvalSeconds": 8}},
        {"defaults": {"sessionDuration": "900"}},
        {"defaults": {"sessionDuration": "12h"}},
        {"defaults": {"sessionDuration": "1h30m"}},
        {"certificate": {"duration": "1h", "renewBefore": "59m"}},
        {"certificateRequests": {"binding": "requester"}, "allowedRequesters": []},
        {"region": "us-gov-west-1", "trustAnchorArn":
            "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"},
    ],
)
def test_boundary_values_render(values):
    render_raw(POLICY_CHART, merge(REQUIRED, values))
