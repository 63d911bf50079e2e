"""The chart's own PolicyServer and its RBAC, the guard's matchConditions (evaluated with
CEL as the API server evaluates them) and the `helm test` hook."""

from __future__ import annotations

import celpy
import pytest

from chartlib import find, kinds, render_policy

SERVER = "iamra-sidecar"
ACCOUNT = "policy-server-iamra-sidecar"
ROLE = "iamra-iamra-sidecar-read-serviceaccounts"


def policies(objs):
    return [o for o in objs if o["kind"] == "ClusterAdmissionPolicy"]


def test_defaults_bring_a_highly_available_policy_server():
    objs = render_policy()
    server = find(objs, "PolicyServer", SERVER)["spec"]
    assert server["replicas"] == 2 and server["minAvailable"] == 1
    assert server["image"] == "ghcr.io/kubewarden/policy-server:v1.35.0"
    assert server["serviceAccountName"] == ACCOUNT
    # Replicas spread over nodes, selected by the labels the controller puts on the pods.
    term = server["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == \
        f"policy-server-{SERVER}"
    account = find(objs, "ServiceAccount", ACCOUNT)
    assert account["metadata"]["namespace"] == "kubewarden"
    assert [p["spec"]["policyServer"] for p in policies(objs)] == [SERVER, SERVER]


def test_the_policy_server_may_only_get_service_accounts():
    objs = render_policy()
    role = find(objs, "ClusterRole", ROLE)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]
    binding = find(objs, "ClusterRoleBinding", ROLE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": "kubewarden"}]


def test_without_service_account_reads_nothing_is_granted():
    objs = render_policy({"readServiceAccounts": False})
    assert not [k for k in kinds(objs) if k[0] in ("ClusterRole", "ClusterRoleBinding")]
    assert "contextAwareResources" not in find(objs, "ClusterAdmissionPolicy", "iamra-sidecar")["spec"]
    assert find(objs, "PolicyServer", SERVER)


def test_policy_server_options():
    objs = render_policy({"policyServer": {
        "name": "creds", "namespace": "kw", "image": "ghcr.io/kubewarden/policy-server:v1.37.0",
        "replicas": 3, "minAvailable": "50%", "priorityClassName": "system-cluster-critical",
        "affinity": {"nodeAffinity": {}}, "tolerations": [{"key": "infra", "operator": "Exists"}],
        "requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}})
    spec = find(objs, "PolicyServer", "creds")["spec"]
    assert (spec["replicas"], spec["minAvailable"], spec["priorityClassName"]) == (3, "50%", "system-cluster-critical")
    assert spec["affinity"] == {"nodeAffinity": {}}
    assert spec["tolerations"] == [{"key": "infra", "operator": "Exists"}]
    assert (spec["requests"], spec["limits"]) == ({"cpu": "1", "memory": "128Mi"}, {"memory": "1Gi"})
    assert find(objs, "ServiceAccount", "policy-server-creds")["metadata"]["namespace"] == "kw"
    assert find(objs, "ClusterRoleBinding")["subjects"][0] == {
        "kind": "ServiceAccount", "name": "policy-server-creds", "namespace": "kw"}


def test_an_existing_policy_server_gets_the_read_granted():
    objs = render_policy({"policyServer": {"create": False}})
    assert not [k for k in kinds(objs) if k[0] in ("PolicyServer", "ServiceAccount")]
    assert [p["spec"]["policyServer"] for p in policies(objs)] == ["default", "default"]
    assert find(objs, "ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "policy-server", "namespace": "kubewarden"}]
    assert find(objs, "ClusterRole", "iamra-default-read-serviceaccounts")


def test_the_grant_to_an_existing_policy_server_can_be_left_to_the_operator():
    objs = render_policy({"policyServer": {"create": False, "grantServiceAccountRead": False}})
    assert not [k for k in kinds(objs) if k[0] in ("ClusterRole", "ClusterRoleBinding")]


def test_an_existing_policy_server_needs_its_account_named():
    from chartlib import HelmRenderError

    with pytest.raises(HelmRenderError) as err:
        render_policy({"policyServer": {"create": False, "serviceAccountName": ""}})
    assert "set policyServer.serviceAccountName to the ServiceAccount of the PolicyServer" in str(err.value)


# --- the guard's matchConditions -----------------------------------------------------------

ISSUER = {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def guard_sees(conditions, resource: str, obj: dict, user: str = "alice") -> bool:
    """True when every matchCondition holds: the API server then calls the webhook."""
    env = celpy.Environment()
    request = {"resource": {"group": "", "version": "v1", "resource": resource}, "userInfo": {"username": user}}
    activation = {"request": celpy.json_to_cel(request), "object": celpy.json_to_cel(obj)}
    results = [env.program(env.compile(c["expression"])).evaluate(activation) for c in conditions]
    assert all(isinstance(r, celpy.celtypes.BoolType) for r in results), results
    return all(results)


def csi_pod(driver: str = "csi.cert-manager.io") -> dict:
    return {"spec": {"containers": [{"name": "app"}],
                     "volumes": [{"name": "tmp", "emptyDir": {}},
                                 {"name": "cert", "csi": {"driver": driver, "volumeAttributes": {}}}]}}


@pytest.mark.parametrize(("resource", "obj", "seen"), [
    ("pods", csi_pod(), True),
    ("pods", csi_pod("secrets-store.csi.k8s.io"), False),
    ("pods", {"spec": {"containers": [{"name": "app"}]}}, False),
    ("pods", {"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}, False),
    ("certificates", {"spec": {"issuerRef": ISSUER}}, True),
    ("certificates", {"spec": {"issuerRef": {"name": "iamra-workload", "kind": "Issuer"}}}, True),
    ("certificates", {"spec": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}}, False),
    ("certificaterequests", {"spec": {"issuerRef": {"name": "iamra-workload"}}}, True),
    ("certificaterequests", {"spec": {"issuerRef": {"name": "vault"}}}, False),
], ids=["csi-pod", "other-csi-pod", "plain-pod", "emptydir-pod", "certificate", "same-named-issuer",
        "other-certificate", "certificaterequest", "other-certificaterequest"])
def test_guard_sees_only_what_could_mint_an_identity(resource, obj, seen):
    conditions = find(render_policy(), "ClusterAdmissionPolicy", "iamra-sidecar-guard")["spec"]["matchConditions"]
    assert guard_sees(conditions, resource, obj) is seen


def test_guard_conditions_follow_the_workload_issuer():
    objs = render_policy({"workloadIssuer": {"create": False, "name": "pca", "kind": "AWSPCAClusterIssuer",
                                             "group": "awspca.cert-manager.io"}})
    conditions = find(objs, "ClusterAdmissionPolicy", "iamra-sidecar-guard")["spec"]["matchConditions"]
    assert guard_sees(conditions, "certificates", {"spec": {"issuerRef": {"name": "pca"}}})
    assert not guard_sees(conditions, "certificates", {"spec": {"issuerRef": ISSUER}})


@pytest.mark.parametrize("binding", ["allowedRequesters", "requester"])
@pytest.mark.parametrize("user", ["system:serviceaccount:cert-manager:cert-manager-csi-driver",
                                  "system:serviceaccount:payments:payments-api", "alice"])
def test_guard_sees_certificate_requests_from_every_requester(binding, user):
    # The policy decides who may request: with the requester binding every pod's own
    # ServiceAccount does, so a filter on the csi-driver's user would let no request
    # through, and in either mode a request that skipped the guard would not be checked.
    objs = render_policy({"certificateRequests": {"binding": binding}})
    guard = find(objs, "ClusterAdmissionPolicy", "iamra-sidecar-guard")
    assert guard["spec"]["settings"]["certificateRequests"] == {"binding": binding}
    conditions = guard["spec"]["matchConditions"]
    assert guard_sees(conditions, "certificaterequests", {"spec": {"issuerRef": ISSUER}}, user)


# --- helm test ---------------------------------------------------------------------------------


def test_helm_test_dry_runs_an_annotated_pod_in_an_opted_in_namespace():
    objs = render_policy(hooks=True)
    hooks = [o for o in objs if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
    assert {o["metadata"]["annotations"]["helm.sh/hook"] for o in hooks} == {"test"}
    namespace = find(hooks, "Namespace", "iamra-helm-test")
    assert namespace["metadata"]["labels"]["iamra.aws/enable"] == "true"
    role = find(hooks, "Role", "iamra-helm-test")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    pod = find(hooks, "Pod", "iamra-helm-test")
    args = pod["spec"]["containers"][0]["args"]
    assert "--dry-run=server" in args and "--allow-missing-template-keys=false" in args
    assert "--output=jsonpath={.metadata.annotations.iamra\\.aws/injected}" in args
    import yaml

    app = yaml.safe_load(find(hooks, "ConfigMap", "iamra-helm-test")["data"]["pod.yaml"])
    annotations = app["metadata"]["annotations"]
    assert annotations["iamra.aws/role-arn"] == "arn:aws:iam::123456789012:role/iamra-helm-test"
    assert annotations["iamra.aws/signing-profile-arn"].startswith(
        "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/")
    assert app["metadata"]["namespace"] == "iamra-helm-test"


def test_no_helm_test_without_the_inject_policy():
    from chartlib import POLICY_CHART, objects, render_raw

    objs = objects(render_raw(POLICY_CHART, {"policy": {"enabled": False}}), hooks=True)
    assert not [o for o in objs if o["kind"] == "Pod"]


def test_notes_name_the_policy_server_and_its_grant():
    from chartlib import POLICY_CHART, REQUIRED, merge, notes, render_raw

    text = notes(render_raw(POLICY_CHART, REQUIRED))
    assert "Both policies run on the PolicyServer iamra-sidecar (2 replicas, minAvailable 1)" in text
    assert "kubewarden/policy-server-iamra-sidecar may get serviceaccounts" in text
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"policyServer": {
        "create": False, "grantServiceAccountRead": False}})))
    assert "Both policies run on the existing PolicyServer default." in text
    assert "WARNING: readServiceAccounts is on and the chart grants nothing" in text
