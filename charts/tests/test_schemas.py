"""Rendered objects validate with kubeconform, strictly (no field the schema lacks):
Kubernetes objects against Kubernetes' schemas (from kubernetes-validate), custom resources
against the real CRDs in ../shared/crds (Kubewarden, cert-manager, Prometheus operator)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from chartlib import (
    EXAMPLE_CHART,
    EXAMPLE_REQUIRED,
    kubeconform,
    merge,
    objects,
    render_policy,
    render_raw,
    write_crd_schemas,
)

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


def ident(item):
    scenario, obj = item
    return f"{scenario}:{obj['kind']}/{obj['metadata']['name']}"


def by_scenario(items):
    sets: dict[str, list] = {}
    for scenario, obj in items:
        sets.setdefault(scenario, []).append(obj)
    return sets


@pytest.fixture(scope="module", params=K8S_VERSIONS)
def results(request, crds):
    """kubeconform's verdict on every rendered object, per Kubernetes version."""
    return kubeconform(by_scenario(OBJECTS), request.param, crds)


def test_the_objects_cover_native_and_custom_kinds():
    kinds = {o["kind"] for _, o in OBJECTS}
    native = {"Job", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Namespace", "Role",
              "RoleBinding", "ConfigMap", "Pod"}
    assert kinds == native | {"ClusterAdmissionPolicy", "ClusterIssuer", "Issuer", "Certificate", "ServiceMonitor",
                              "PodMonitor", "PrometheusRule", "PolicyServer"}
    assert {o["kind"] for _, o in OBJECTS if not is_custom(o)} == native


@pytest.mark.parametrize("item", OBJECTS, ids=ident)
def test_objects_validate(item, results):
    scenario, obj = item
    result = results[(scenario, obj["kind"], obj["metadata"]["name"])]
    # Valid, not skipped: a kind without a schema is an error, never a pass.
    assert result["status"] == "statusValid", result


def test_crd_schemas_cover_every_custom_kind(crds, tmp_path):
    written = set(write_crd_schemas(crds, tmp_path))
    assert {(o["apiVersion"], o["kind"]) for _, o in CUSTOM} <= written


def test_validation_catches_bad_fields(crds):
    # Strict: an unknown or out-of-range field is an error, in a CRD's kind and a native one.
    policy = next(o for _, o in CUSTOM if o["kind"] == "ClusterAdmissionPolicy")
    bad_policy = merge(policy, {"spec": {"timeoutEvalSeconds": 60, "namespaceSelctor": {}}})
    job = next(o for _, o in OBJECTS if o["kind"] == "Job")
    bad_job = merge(job, {"spec": {"backofLimit": 1}})
    results = kubeconform({"bad": [bad_policy, bad_job]}, K8S_VERSIONS[0], crds)
    for obj, expected in ((bad_policy, ("timeoutEvalSeconds", "namespaceSelctor")),
                          (bad_job, ("backofLimit",))):
        result = results[("bad", obj["kind"], obj["metadata"]["name"])]
        assert result["status"] == "statusInvalid", result
        found = result["msg"] + " ".join(e["path"] for e in result["validationErrors"])
        assert all(word in found for word in expected), result
