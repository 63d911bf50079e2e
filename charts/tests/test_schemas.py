"""Rendered objects validate: Kubernetes objects against the Kubernetes schemas
(kubernetes-validate, offline, strict), custom resources against the real CRD schemas
in ../shared/crds (Kubewarden, cert-manager, Prometheus operator)."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest

from chartlib import EXAMPLE_CHART, EXAMPLE_REQUIRED, merge, objects, render_policy, render_raw

# The oldest Kubernetes the charts support (kubeVersion >=1.29) and the newest known.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
CUSTOM_GROUPS = ("cert-manager.io/", "policies.kubewarden.io/", "monitoring.coreos.com/")

POLICY_SCENARIOS = {
    "defaults": {},
    "monitor": {"policy": {"mode": "monitor", "timeoutEvalSeconds": 5}},
    "guard-exclusions": {"guard": {"excludeNamespaces": ["kube-system"]}},
    "existing-issuer": {"workloadIssuer": {"create": False, "name": "pca", "kind": "AWSPCAClusterIssuer",
                                           "group": "awspca.cert-manager.io"}},
    "rsa": {"certificate": {"keyAlgorithm": "RSA", "keySize": 2048},
            "workloadIssuer": {"root": {"keyAlgorithm": "RSA", "keySize": 4096},
                               "intermediate": {"keyAlgorithm": "RSA", "keySize": 3072}}},
    "service-monitor": {"prometheus": {"enabled": True, "labels": {"release": "kps"}}},
    "pod-monitor": {"prometheus": {"enabled": True, "kind": "PodMonitor", "namespace": "monitoring"}},
    "numeric-quantities": {"sidecar": {"resources": {"requests": {"cpu": 1}}}},
    "policy-server-options": {"policyServer": {"minAvailable": "50%", "priorityClassName": "system-cluster-critical",
                                               "tolerations": [{"key": "infra", "operator": "Exists"}],
                                               "affinity": {"nodeAffinity": {}}}},
    "existing-policy-server": {"policyServer": {"create": False}},
}


def is_custom(obj) -> bool:
    return obj["apiVersion"].startswith(CUSTOM_GROUPS)


def all_objects():
    for scenario, values in POLICY_SCENARIOS.items():
        for obj in render_policy(values, hooks=True):
            yield f"policy-{scenario}", obj
    for obj in objects(render_raw(EXAMPLE_CHART, merge(EXAMPLE_REQUIRED, {"sessionDuration": "1h"}))):
        yield "example", obj
    for obj in objects(render_raw(EXAMPLE_CHART, merge(EXAMPLE_REQUIRED, {"serviceAccount": {"create": False}}))):
        yield "example-no-sa", obj


OBJECTS = list(all_objects())
CUSTOM = [(s, o) for s, o in OBJECTS if is_custom(o)]
NATIVE = [(s, o) for s, o in OBJECTS if not is_custom(o)]


def ident(item):
    scenario, obj = item
    return f"{scenario}:{obj['kind']}/{obj['metadata']['name']}"


def test_every_object_is_checked_by_one_validator():
    kinds = {o["kind"] for _, o in OBJECTS}
    native = {"Job", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Namespace", "Role",
              "RoleBinding", "ConfigMap", "Pod"}
    assert kinds == native | {"ClusterAdmissionPolicy", "ClusterIssuer", "Issuer", "Certificate", "ServiceMonitor",
                              "PodMonitor", "PrometheusRule", "PolicyServer"}
    assert {o["kind"] for _, o in NATIVE} == native


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("item", NATIVE, ids=ident)
def test_kubernetes_objects_validate(item, version):
    _, obj = item
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{obj['kind']} {obj['metadata']['name']} invalid for Kubernetes {version}: {e.message}")


@pytest.mark.parametrize("item", CUSTOM, ids=ident)
def test_custom_resources_validate_against_crds(item, crd_schemas):
    _, obj = item
    key = (obj["apiVersion"], obj["kind"])
    assert key in crd_schemas, f"no CRD schema for {key}"
    errors = sorted(jsonschema.Draft202012Validator(crd_schemas[key]).iter_errors(obj), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_crd_validation_catches_a_bad_field(crd_schemas):
    # The validator is strict: an unknown or mistyped field in a policy is an error.
    policy = next(o for _, o in CUSTOM if o["kind"] == "ClusterAdmissionPolicy")
    schema = crd_schemas[("policies.kubewarden.io/v1", "ClusterAdmissionPolicy")]
    bad = merge(policy, {"spec": {"timeoutEvalSeconds": 60, "namespaceSelctor": {}}})
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(bad)]
    assert any("60 is greater than the maximum of 30" in m for m in messages), messages
    assert any("namespaceSelctor" in m for m in messages), messages
