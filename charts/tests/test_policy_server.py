"""The chart's own PolicyServer and its RBAC, the guard's matchConditions (evaluated with
CEL as the API server evaluates them) and the `helm test` hook."""

from __future__ import annotations

import celpy
import pytest

from chartlib import NAMESPACE, HelmValuesError, find, kinds, render_policy

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
    assert account["metadata"]["namespace"] == NAMESPACE  # the release namespace
    assert [p["spec"]["policyServer"] for p in policies(objs)] == [SERVER, SERVER]


def test_the_policy_server_may_only_get_service_accounts():
    objs = render_policy()
    role = find(objs, "ClusterRole", ROLE)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]
    binding = find(objs, "ClusterRoleBinding", ROLE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]


def test_without_service_account_reads_nothing_is_granted():
    objs = render_policy({"readServiceAccounts": False})
    assert not [k for k in kinds(objs) if k[0] in ("ClusterRole", "ClusterRoleBinding")]
    assert "contextAwareResources" not in find(objs, "ClusterAdmissionPolicy", "iamra-sidecar")["spec"]
    assert find(objs, "PolicyServer", SERVER)


def test_policy_server_options():
    objs = render_policy({"policyServer": {
        "name": "creds", "namespace": "kw",
        "image": {"registry": "ghcr.io", "repository": "kubewarden/adm-controller/policy-server", "tag": "v1.37.2"},
        "replicas": 3, "minAvailable": "50%", "priorityClassName": "system-cluster-critical",
        "affinity": {"nodeAffinity": {}}, "tolerations": [{"key": "infra", "operator": "Exists"}],
        "requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}})
    spec = find(objs, "PolicyServer", "creds")["spec"]
    assert spec["image"] == "ghcr.io/kubewarden/adm-controller/policy-server:v1.37.2"
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
        {"kind": "ServiceAccount", "name": "policy-server", "namespace": NAMESPACE}]
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
    assert f"{NAMESPACE}/policy-server-iamra-sidecar may get serviceaccounts" in text
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"policyServer": {
        "create": False, "grantServiceAccountRead": False}})))
    assert "Both policies run on the existing PolicyServer default." in text
    assert "WARNING: readServiceAccounts is on and the chart grants nothing" in text


# --- Kubewarden's PolicyServer values (as its admission-controller chart has them) ---------


def test_the_policy_server_account_follows_the_release_namespace():
    # Rancher installs Kubewarden in cattle-kubewarden-system; the controller deploys the
    # (cluster-scoped) PolicyServer's pods there, so its ServiceAccount must be there too.
    from chartlib import POLICY_CHART, REQUIRED, objects, render_raw

    objs = objects(render_raw(POLICY_CHART, REQUIRED, namespace="cattle-kubewarden-system"))
    assert "namespace" not in find(objs, "PolicyServer", SERVER)["metadata"]
    assert find(objs, "ServiceAccount", ACCOUNT)["metadata"]["namespace"] == "cattle-kubewarden-system"
    assert find(objs, "ClusterRoleBinding", ROLE)["subjects"][0]["namespace"] == "cattle-kubewarden-system"


@pytest.mark.parametrize(("name", "accepted"), [("a" * 38, True), ("a" * 39, False)])
def test_policy_server_name_is_capped_for_the_controllers_app_label(name, accepted):
    # kubewarden-controller labels the Deployment app: kubewarden-policy-server-<name>:
    # 25 + 38 = 63, a label value's limit.
    if accepted:
        server = find(render_policy({"policyServer": {"name": name}}), "PolicyServer", name)
        assert len(f"kubewarden-policy-server-{server['metadata']['name']}") == 63
    else:
        with pytest.raises(HelmValuesError) as err:
            render_policy({"policyServer": {"name": name}})
        assert "/policyServer/name': maxLength: got 39, want 38" in str(err.value)


def test_policy_server_defaults_set_the_log_level_and_nothing_else():
    spec = find(render_policy(), "PolicyServer", SERVER)["spec"]
    assert spec["env"] == [{"name": "KUBEWARDEN_LOG_LEVEL", "value": "info"}]
    for field in ("annotations", "securityContexts", "imagePullSecret", "insecureSources",
                  "sourceAuthorities", "verificationConfig", "sigstoreTrustConfig", "maxUnavailable"):
        assert field not in spec, field


def test_policy_server_kubewarden_values_pass_through():
    security = {"pod": {"runAsUser": 1000610000}, "container": {"readOnlyRootFilesystem": True}}
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    spec = find(render_policy({"policyServer": {
        "env": [{"name": "KUBEWARDEN_LOG_LEVEL", "value": "debug"},
                {"name": "NO_PROXY", "valueFrom": {"configMapKeyRef": {"name": "proxy", "key": "no"}}}],
        "annotations": {"example.com/team": "platform"},
        "securityContexts": security,
        "imagePullSecret": "registry-creds",
        "insecureSources": ["registry.local:5000"],
        "sourceAuthorities": {"registry.corp:5000": [pem]},
        "verificationConfig": "iamra-verification", "sigstoreTrustConfig": "sigstore-offline",
        "minAvailable": None, "maxUnavailable": 1}}), "PolicyServer", SERVER)["spec"]
    assert spec["env"][0] == {"name": "KUBEWARDEN_LOG_LEVEL", "value": "debug"}
    assert spec["env"][1]["valueFrom"] == {"configMapKeyRef": {"name": "proxy", "key": "no"}}
    assert spec["annotations"] == {"example.com/team": "platform"}
    assert spec["securityContexts"] == security
    assert spec["imagePullSecret"] == "registry-creds"
    assert spec["insecureSources"] == ["registry.local:5000"]
    assert spec["sourceAuthorities"] == {"registry.corp:5000": [pem]}
    assert spec["verificationConfig"] == "iamra-verification"
    assert spec["sigstoreTrustConfig"] == "sigstore-offline"
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec


def test_min_available_and_max_unavailable_exclude_each_other():
    with pytest.raises(HelmValuesError) as err:
        render_policy({"policyServer": {"maxUnavailable": 1}})  # minAvailable is 1 by default
    assert "/policyServer" in str(err.value)


def test_one_registry_override_reaches_every_image_and_the_module():
    objs = render_policy({"global": {"cattle": {"systemDefaultRegistry": "mirror.corp:5000"}}}, hooks=True)
    policy = find(objs, "ClusterAdmissionPolicy", "iamra-sidecar")["spec"]
    assert policy["module"].startswith("registry://mirror.corp:5000/iamra-sidecar/policies/iamra-sidecar-policy:v")
    assert policy["settings"]["sidecar"]["image"] == "mirror.corp:5000/rolesanywhere/credential-helper:1.8.5"
    assert find(objs, "ClusterAdmissionPolicy", "iamra-sidecar-guard")["spec"]["module"] == policy["module"]
    assert find(objs, "PolicyServer", SERVER)["spec"]["image"] == "mirror.corp:5000/kubewarden/policy-server:v1.35.0"
    assert find(objs, "Pod", "iamra-helm-test")["spec"]["containers"][0]["image"] == "mirror.corp:5000/kubectl:v1.33.0"


def test_images_by_default_and_by_digest():
    digest = "sha256:" + "ab" * 32
    objs = render_policy({"sidecar": {"image": {"tag": digest}}})
    settings = find(objs, "ClusterAdmissionPolicy", "iamra-sidecar")["spec"]["settings"]
    assert settings["sidecar"]["image"] == f"public.ecr.aws/rolesanywhere/credential-helper@{digest}"
    assert find(objs, "PolicyServer", SERVER)["spec"]["image"] == "ghcr.io/kubewarden/policy-server:v1.35.0"


@pytest.mark.parametrize(("name", "severity"), [("iamra-sidecar", "medium"), ("iamra-sidecar-guard", "high")])
def test_policies_carry_kubewardens_severity_and_category(name, severity):
    annotations = find(render_policy(), "ClusterAdmissionPolicy", name)["metadata"]["annotations"]
    assert annotations == {"io.kubewarden.policy.category": "Credentials", "io.kubewarden.policy.severity": severity}


def helm_test_pod(values=None):
    return find(render_policy(values, hooks=True), "Pod", "iamra-helm-test")


def init_args(pod):
    return {c["name"]: c["args"] for c in pod["spec"]["initContainers"]}


@pytest.mark.parametrize("mode", ["protect", "monitor"])
def test_helm_test_checks_both_policies_and_the_guards_match_conditions_in_both_modes(mode):
    pod = helm_test_pod({"policy": {"mode": mode}})
    checks = init_args(pod)
    assert checks["policies-active"] == [
        "wait", "--for=jsonpath={.status.policyStatus}=active", "--timeout=60s",
        "clusteradmissionpolicy/iamra-sidecar", "clusteradmissionpolicy/iamra-sidecar-guard"]
    assert checks["inject-webhook-registered"][:2] == ["get", "mutatingwebhookconfiguration/clusterwide-iamra-sidecar"]
    # kubectl exits 1 on a missing field or index with --allow-missing-template-keys=false,
    # so a guard webhook without (both of) its matchConditions fails the test.
    assert checks["guard-has-match-conditions"] == [
        "get", "validatingwebhookconfiguration/clusterwide-iamra-sidecar-guard", "--allow-missing-template-keys=false",
        '--output=jsonpath={.webhooks[0].matchConditions[0].name}{" "}{.webhooks[0].matchConditions[1].name}']
    guard = find(render_policy({"policy": {"mode": mode}}), "ClusterAdmissionPolicy", "iamra-sidecar-guard")
    assert len(guard["spec"]["matchConditions"]) == 2  # what the check indexes
    args = pod["spec"]["containers"][0]["args"]
    if mode == "protect":
        assert "--output=jsonpath={.metadata.annotations.iamra\\.aws/injected}" in args
    else:  # Kubewarden only logs in monitor mode: no injection to look for
        assert args == ["create", "--dry-run=server", "--filename=/etc/iamra-helm-test/pod.yaml", "--output=name"]


def test_helm_test_may_read_only_what_it_checks():
    objs = render_policy(hooks=True)
    role = find(objs, "ClusterRole", "iamra-iamra-helm-test")
    assert role["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert role["rules"] == [
        {"apiGroups": ["policies.kubewarden.io"], "resources": ["clusteradmissionpolicies"],
         "resourceNames": ["iamra-sidecar", "iamra-sidecar-guard"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
         "resourceNames": ["clusterwide-iamra-sidecar"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
         "resourceNames": ["clusterwide-iamra-sidecar-guard"], "verbs": ["get", "list", "watch"]}]
    binding = find(objs, "ClusterRoleBinding", "iamra-iamra-helm-test")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "iamra-helm-test", "namespace": "iamra-helm-test"}]


def test_helm_test_without_the_guard_checks_the_inject_policy_only():
    pod = helm_test_pod({"guard": {"enabled": False}})
    assert set(init_args(pod)) == {"policies-active", "inject-webhook-registered"}
    assert init_args(pod)["policies-active"][-1] == "clusteradmissionpolicy/iamra-sidecar"


def test_switching_the_policies_off_keeps_the_policy_server_and_its_grant():
    # The uninstall order's first step: the webhooks go, what they call stays.
    objs = render_policy({"policy": {"enabled": False}, "guard": {"enabled": False}})
    assert not [o for o in objs if o["kind"] == "ClusterAdmissionPolicy"]
    assert find(objs, "PolicyServer", SERVER) and find(objs, "ServiceAccount", ACCOUNT)
    assert find(objs, "ClusterRoleBinding", ROLE)
