"""The bundle chart installed by Helm into a real control plane: kube-apiserver calls the
policy through the webhooks the Kubewarden controller made, cert-manager issues from the
chart's chain. Tests run in file order: the upgrade and the uninstall come last."""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

import install
from conftest import Cluster, poll

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PREFIX = "iamra.aws"
INJECT, GUARD = "iamra-sidecar", "iamra-sidecar-guard"
INJECT_WEBHOOK = f"clusterwide-{INJECT}.kubewarden.admission"
GUARD_WEBHOOK = f"clusterwide-{GUARD}.kubewarden.admission"
SIDECAR = "iamra-credential-helper"


def request_object(fixture: str) -> dict:
    return json.loads((FIXTURES / fixture).read_text())["request"]["object"]


def contains(stored, expected, path="") -> list[str]:
    """What of `expected` `stored` lacks: stored may add what the API server defaults
    (terminationMessagePath, the ServiceAccount token volume, ...), nothing else."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r} is not an object"]
        return [m for k, v in expected.items()
                for m in (contains(stored[k], v, f"{path}.{k}") if k in stored
                          else [f"{path}.{k}: missing"])]
    if isinstance(expected, list):
        if not isinstance(stored, list) or len(stored) < len(expected):
            return [f"{path}: {stored!r} lacks items of {expected!r}"]
        return [m for i, v in enumerate(expected) for m in contains(stored[i], v, f"{path}[{i}]")]
    return [] if stored == expected else [f"{path}: {stored!r} != {expected!r}"]


def named(items: list[dict], name: str) -> dict:
    return next(i for i in items if i["name"] == name)


def denied(done: subprocess.CompletedProcess, webhook: str) -> str:
    assert done.returncode != 0, f"admitted:\n{done.stdout[:2000]}"
    prefix = f'admission webhook "{webhook}" denied the request: '
    assert prefix in done.stderr, done.stderr
    return done.stderr.split(prefix, 1)[1]


@pytest.fixture(scope="module")
def payments(cluster: Cluster) -> str:
    cluster.namespace("payments", opted_in=True)
    cluster.service_account("payments", "payments-api")
    return "payments"


@pytest.fixture(scope="module")
def manifest(cluster: Cluster) -> dict[tuple[str, str], dict]:
    """What Helm installed, by (kind, name)."""
    text = cluster.helm("get", "manifest", "iamra", "-n", "kubewarden").stdout
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}


# the controller's translation of the chart ---------------------------------------------
def test_both_policies_are_active(cluster: Cluster):
    for name in (INJECT, GUARD):
        status = cluster.get("clusteradmissionpolicy", name)["status"]
        assert status["policyStatus"] == "active", status


# signed modules -----------------------------------------------------------------------------
def policy_server_log(cluster: Cluster, server: str) -> str:
    """What the policy-server pods of PolicyServer `server` printed (the kubelet stand-in
    keeps each container's output under STATE/pods/<namespace>_<pod>/)."""
    logs = sorted(cluster.state.glob(f"pods/kubewarden_policy-server-{server}-*/*/*.log"))
    return "".join(log.read_text(errors="replace") for log in logs)


def test_the_policy_server_verified_the_modules_signature(cluster: Cluster):
    # install.py published the module signed and set policyServer.verificationConfig
    log = policy_server_log(cluster, "iamra-sidecar")
    for status in ("verified-signatures", "verified-local-checksum"):
        assert f"status=\"{status}\"" in log or f"status={status}" in log, status


def test_a_policy_server_verifying_signatures_refuses_an_unsigned_module(
        cluster: Cluster, tmp_path):
    """The same module one custom section longer, pushed unsigned beside the release, on a
    PolicyServer of its own with the chart's verification config: policy-server refuses
    it and the policy never becomes active."""
    host = (cluster.state / "registry.host").read_text()
    module = tmp_path / "unsigned.wasm"
    module.write_bytes((install.ROOT / "dist/policy.wasm").read_bytes() + b"\x00\x0a\x08unsignedx")
    sources = tmp_path / "sources.yml"
    sources.write_text(json.dumps({"insecure_sources": [host]}))
    reference = f"{host}/iamra-sidecar/policies/iamra-sidecar-policy:unsigned"
    kwctl = shutil.which("kwctl") or str(install.controlplane.SHARED / "bin/kwctl")
    pushed = subprocess.run([kwctl, "push", "--sources-path", str(sources), str(module),
                             f"registry://{reference}"], capture_output=True, text=True,
                            env={**os.environ, "RUST_BACKTRACE": "0"})
    assert pushed.returncode == 0, pushed.stderr
    server = {"apiVersion": "policies.kubewarden.io/v1", "kind": "PolicyServer",
              "metadata": {"name": "unsigned-check"},
              "spec": {"image": "ghcr.io/kubewarden/policy-server:v1.35.0", "replicas": 1,
                       "verificationConfig": install.VERIFICATION,
                       "sigstoreTrustConfig": install.SIGSTORE_TRUST, "insecureSources": [host]}}
    policy = {"apiVersion": "policies.kubewarden.io/v1", "kind": "ClusterAdmissionPolicy",
              "metadata": {"name": "iamra-unsigned"},
              "spec": {"module": f"registry://{reference}", "policyServer": "unsigned-check",
                       "mutating": True, "settings": {"trustAnchorArn": install.TRUST_ANCHOR,
                                                      "region": "eu-west-1"},
                       "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                  "resources": ["pods"], "operations": ["CREATE"]}],
                       # no namespace carries this label: the webhook must not matter
                       "namespaceSelector": {"matchExpressions": [
                           {"key": "iamra.test/unsigned", "operator": "In",
                            "values": ["true"]}]}}}
    try:
        cluster.create(server)
        cluster.create(policy)
        poll("policy-server refusing the unsigned module", lambda:
             "policy cannot be verified" in policy_server_log(cluster, "unsigned-check"), 180, 1)
        status = cluster.get("clusteradmissionpolicy", "iamra-unsigned").get("status", {})
        assert status.get("policyStatus") != "active", status
    finally:
        cluster.kubectl("delete", "clusteradmissionpolicy", "iamra-unsigned", "--wait=false",
                        check=False)
        cluster.kubectl("delete", "policyserver", "unsigned-check", "--wait=false", check=False)


def test_the_inject_webhook_carries_the_opt_in_selector_failure_policy_and_timeout(
        cluster: Cluster, manifest):
    spec = manifest[("ClusterAdmissionPolicy", INJECT)]["spec"]
    config = cluster.get("mutatingwebhookconfiguration", f"clusterwide-{INJECT}")
    (webhook,) = config["webhooks"]
    assert webhook["name"] == INJECT_WEBHOOK
    expressions = webhook["namespaceSelector"]["matchExpressions"]
    assert {"key": "iamra.aws/enable", "operator": "In", "values": ["true"]} in expressions
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["kubewarden"]} in expressions
    assert "matchLabels" not in webhook["namespaceSelector"]
    assert webhook["failurePolicy"] == spec["failurePolicy"] == "Fail"
    assert webhook["timeoutSeconds"] == spec["timeoutSeconds"]
    assert webhook["clientConfig"]["service"] == {
        "namespace": "kubewarden", "name": "policy-server-iamra-sidecar", "port": 443,
        "path": f"/validate/clusterwide-{INJECT}"}


def test_the_guard_webhook_carries_the_charts_match_conditions(cluster: Cluster, manifest):
    spec = manifest[("ClusterAdmissionPolicy", GUARD)]["spec"]
    (webhook,) = cluster.get("validatingwebhookconfiguration",
                             f"clusterwide-{GUARD}")["webhooks"]
    assert webhook["matchConditions"] == spec["matchConditions"]
    assert len(webhook["matchConditions"]) == 2
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["timeoutSeconds"] == spec["timeoutSeconds"]


# the inject policy through the API server --------------------------------------------
def test_a_pod_in_an_opted_in_namespace_is_stored_with_the_golden_injection(
        cluster: Cluster, payments):
    pod = json.loads(cluster.create(request_object("pod-plain.json")).stdout)
    golden = json.loads((FIXTURES / "golden/plain.pod.json").read_text())
    annotations = dict(golden["metadata"]["annotations"])
    # The hash covers the settings, which the chart sets beyond the golden file's.
    assert re.fullmatch(r"[0-9a-f]{16}", pod["metadata"]["annotations"].pop(
        f"{PREFIX}/config-hash")), pod["metadata"]["annotations"]
    del annotations[f"{PREFIX}/config-hash"]
    assert contains(pod["metadata"]["annotations"], annotations) == []
    sidecar = named(pod["spec"]["initContainers"], SIDECAR)
    assert contains(sidecar, named(golden["spec"]["initContainers"], SIDECAR)) == []
    app, golden_app = named(pod["spec"]["containers"], "app"), golden["spec"]["containers"][0]
    assert contains(app["env"], golden_app["env"]) == []
    assert contains(named(pod["spec"]["volumes"], "iamra-credentials"),
                    named(golden["spec"]["volumes"], "iamra-credentials")) == []
    # kube-apiserver's own ServiceAccount admission ran before the webhook and is kept
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])


def test_the_pods_of_a_deployment_are_injected(cluster: Cluster, payments):
    deployment = request_object("deployment.json")
    deployment["metadata"]["name"] = "payments-deployment"
    cluster.create(deployment)
    labels = ",".join(f"{k}={v}" for k, v in
                      deployment["spec"]["selector"]["matchLabels"].items())
    # Other pods of the namespace carry the same labels (pod-plain.json's): waited for
    # are the Deployment's own, or a pod created before them ends the wait.
    pods = poll("the ReplicaSet's pods", lambda: [
        p for p in cluster.get("pods", "-n", "payments", "-l", labels)["items"]
        if p["metadata"]["name"].startswith("payments-deployment-")], 60)
    assert pods
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert pod["metadata"]["annotations"][f"{PREFIX}/injected"] == "true"
        assert SIDECAR in [c["name"] for c in pod["spec"]["initContainers"]]


def test_a_pod_in_another_namespace_is_untouched(cluster: Cluster):
    cluster.namespace("elsewhere", opted_in=False)
    cluster.service_account("elsewhere", "payments-api")
    pod = request_object("pod-plain.json")
    pod["metadata"]["namespace"] = "elsewhere"
    stored = json.loads(cluster.create(pod).stdout)
    assert f"{PREFIX}/injected" not in stored["metadata"]["annotations"]
    assert "initContainers" not in stored["spec"]
    assert "env" not in stored["spec"]["containers"][0]


def test_a_malformed_annotation_is_refused_with_the_policys_message(cluster, payments):
    pod = request_object("pod-plain.json")
    pod["metadata"]["name"] = "malformed"
    pod["metadata"]["annotations"][f"{PREFIX}/role-arn"] = "role/app"
    message = denied(cluster.create(pod, check=False), INJECT_WEBHOOK)
    assert f"{PREFIX}/role-arn" in message and "arn:" in message, message
    assert cluster.kubectl("get", "pod", "-n", "payments", "malformed",
                           check=False).returncode != 0


# RBAC of the ServiceAccount read ------------------------------------------------------
def test_the_service_account_read_works_with_exactly_the_charts_cluster_role(
        cluster: Cluster, payments, manifest):
    (role,) = [o for (kind, _), o in manifest.items() if kind == "ClusterRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"],
                              "verbs": ["get"]}]
    # The IAM Roles Anywhere annotations come from the ServiceAccount alone.
    golden = request_object("pod-plain.json")["metadata"]["annotations"]
    cluster.service_account("payments", "from-account", golden)
    pod = request_object("pod-plain.json")
    pod["metadata"].update(name="from-account", annotations={})
    pod["spec"]["serviceAccountName"] = "from-account"
    stored = json.loads(cluster.create(pod).stdout)
    args = named(stored["spec"]["initContainers"], SIDECAR)["args"]
    assert args[args.index("--role-arn") + 1] == golden[f"{PREFIX}/role-arn"]


def test_without_the_binding_the_pod_is_refused_naming_the_missing_grant(
        cluster: Cluster, payments, manifest):
    (binding,) = [o for (kind, _), o in manifest.items() if kind == "ClusterRoleBinding"]
    name = binding["metadata"]["name"]
    cluster.kubectl("delete", "clusterrolebinding", name)
    try:
        pod = request_object("pod-plain.json")
        pod["metadata"]["name"] = "unreadable-account"

        def refused():
            done = cluster.create(pod, check=False, dry_run=True)
            return done if done.returncode != 0 else None
        # policy-server caches a ServiceAccount read for a few seconds
        message = denied(poll("a refusal", refused, 30, 1), INJECT_WEBHOOK)
        assert "cannot read ServiceAccount" in message, message
        assert "serviceaccounts" in message and "get" in message, message
    finally:
        cluster.apply(binding)


# the guard ------------------------------------------------------------------------------
def test_a_forged_certificate_is_refused(cluster: Cluster):
    cluster.namespace("attacker", opted_in=False)
    message = denied(cluster.create(request_object("guard/certificate.json"), check=False),
                     GUARD_WEBHOOK)
    assert message.startswith('Certificate "payments-api" names the workload issuer '
                              "ClusterIssuer/iamra-workload"), message


def test_a_forged_certificate_request_is_refused(cluster: Cluster):
    cluster.namespace("attacker", opted_in=False)
    request = request_object("guard/certificaterequest.json")
    request["spec"]["request"] = base64.b64encode(
        (FIXTURES / "guard/csr/good-p256.pem").read_bytes()).decode()
    denied(cluster.create(request, check=False), GUARD_WEBHOOK)


def test_a_pod_volume_forging_another_identity_is_refused(cluster: Cluster):
    cluster.namespace("attacker", opted_in=False)
    cluster.service_account("attacker", "mallory")
    golden = json.loads((FIXTURES / "golden/plain.pod.json").read_text())
    volume = copy.deepcopy(named(golden["spec"]["volumes"], "iamra-credentials"))
    attributes = volume["csi"]["volumeAttributes"]
    attributes["csi.cert-manager.io/uri-sans"] = "spiffe://cluster/ns/payments/sa/payments-api"
    attributes["csi.cert-manager.io/common-name"] = "ns/payments/sa/payments-api"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "forger", "namespace": "attacker"},
           "spec": {"serviceAccountName": "mallory", "volumes": [volume], "containers": [{
               "name": "app", "image": "busybox", "volumeMounts": [
                   {"name": "iamra-credentials", "mountPath": "/creds"}]}]}}
    denied(cluster.create(pod, check=False), GUARD_WEBHOOK)


def test_a_certificate_for_another_issuer_is_admitted(cluster: Cluster):
    cluster.namespace("attacker", opted_in=False)
    certificate = request_object("guard/certificate.json")
    certificate["metadata"]["name"] = "other-issuer"
    certificate["spec"]["issuerRef"]["name"] = "someone-elses-issuer"
    cluster.create(certificate)


def test_the_issuer_chain_is_ready(cluster: Cluster, manifest):
    for (kind, name), _ in manifest.items():
        if kind in ("ClusterIssuer", "Issuer", "Certificate"):
            namespace = manifest[(kind, name)]["metadata"].get("namespace")
            where = ["-n", namespace] if namespace else []

            def ready(kind=kind, name=name, where=where):
                conditions = cluster.get(kind.lower(), name, *where).get(
                    "status", {}).get("conditions", [])
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            poll(f"{kind} {name} Ready", ready, 120, 1)


def trust_anchor_pem(cluster: Cluster) -> bytes:
    """The CA certificate, exported with the command NOTES gives the user."""
    notes = cluster.helm("get", "notes", "iamra", "-n", "kubewarden").stdout
    (command,) = [line.strip() for line in notes.splitlines()
                  if "get secret" in line and "base64 -d" in line]
    command = command.split(">")[0].replace("kubectl ", f"{cluster.kubectl_path} "
                                            f"--kubeconfig={cluster.kubeconfig} ", 1)
    return subprocess.run(["bash", "-c", command], check=True, stdout=subprocess.PIPE).stdout


def signed_by_the_workload_issuer(cluster: Cluster, name: str, csr: str, user: str | None):
    request = request_object("guard/certificaterequest.json")
    request["metadata"].update(name=name, namespace="payments")
    request["spec"]["duration"] = "24h"   # as the csi-driver sets it from the volume
    request["spec"]["request"] = base64.b64encode(
        (FIXTURES / f"guard/csr/{csr}.pem").read_bytes()).decode()
    return cluster.create(request, check=False, user=user)


def test_a_workload_certificate_request_is_signed_and_verifies_against_the_noted_ca(
        cluster: Cluster, payments):
    chain = signed_chain(cluster, "signed-by-the-chain")
    roots = x509.load_pem_x509_certificates(trust_anchor_pem(cluster))
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    verified = verifier.verify(chain[0], chain[1:])
    assert [s.value for s in verified.subjects] == [
        "spiffe://cluster/ns/payments/sa/payments-api"]
    assert verified.chain[-1] in roots


def test_after_a_forced_intermediate_renewal_old_and_new_certificates_chain_to_the_root(
        cluster: Cluster, manifest, payments):
    """The rotating intermediate needs nothing from anyone: a certificate signed before a
    renewal and one signed after both verify against the root exported at install."""
    root = trust_anchor_pem(cluster)
    (intermediate,) = [o for (kind, _), o in manifest.items() if kind == "Certificate"
                       and o["metadata"]["labels"].get("app.kubernetes.io/component")
                       == "intermediate-ca"]
    where = ["-n", intermediate["metadata"]["namespace"]]
    name = intermediate["metadata"]["name"]
    before = cluster.get("certificate", name, *where)["status"]
    issued_before = signed_chain(cluster, "before-renewal")
    # what `cmctl renew` does: the Issuing condition, set by hand
    conditions = [c for c in before["conditions"] if c["type"] != "Issuing"] + [{
        "type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
        "message": "forced by the cluster tests",
        "lastTransitionTime": before["conditions"][0]["lastTransitionTime"]}]
    cluster.kubectl("patch", "certificate", name, *where, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {"conditions": conditions}}))
    poll("the renewed intermediate", lambda: cluster.get("certificate", name, *where)[
        "status"].get("revision", 0) > before.get("revision", 0), 120, 1)
    issued_after = signed_chain(cluster, "after-renewal")
    assert issued_before[1] != issued_after[1], "the intermediate did not change"
    roots = x509.load_pem_x509_certificates(root)
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    for chain in (issued_before, issued_after):
        assert verifier.verify(chain[0], chain[1:]).chain[-1] in roots
    assert trust_anchor_pem(cluster) == root


CSI_DRIVER = "system:serviceaccount:cert-manager:cert-manager-csi-driver"


def csi_driver_may_request(cluster: Cluster) -> None:
    """The grant cert-manager csi-driver's own chart gives its ServiceAccount."""
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "cert-manager-csi-driver"},
                   "rules": [{"apiGroups": ["cert-manager.io"],
                              "resources": ["certificaterequests"],
                              "verbs": ["get", "list", "watch", "create", "delete"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1",
                   "kind": "ClusterRoleBinding",
                   "metadata": {"name": "cert-manager-csi-driver"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                               "kind": "ClusterRole", "name": "cert-manager-csi-driver"},
                   "subjects": [{"kind": "ServiceAccount", "name": "cert-manager-csi-driver",
                                 "namespace": "cert-manager"}]})


def signed_chain(cluster: Cluster, name: str) -> list[x509.Certificate]:
    csi_driver_may_request(cluster)
    done = signed_by_the_workload_issuer(
        cluster, name, "good-p256", CSI_DRIVER)
    assert done.returncode == 0, done.stderr

    def certificate():
        return cluster.get("certificaterequest", "-n", "payments", name).get(
            "status", {}).get("certificate")
    return x509.load_pem_x509_certificates(base64.b64decode(
        poll(f"the certificate of {name}", certificate, 120, 1)))


# KubeVirt --------------------------------------------------------------------------------
def test_a_virt_launcher_pod_gets_irsa_and_no_iam_roles_anywhere(cluster: Cluster):
    cluster.namespace("vms", opted_in=True)
    # the ServiceAccount the kwctl replay session of the same fixture serves
    session = yaml.safe_load((FIXTURES / "kubevirt/sa-irsa.yml").read_text())
    annotations = json.loads(session[0]["response"]["payload"])["metadata"]["annotations"]
    cluster.service_account("vms", "example-sa", annotations)
    pod = request_object("kubevirt/vm-iamra.json")
    pod["metadata"].pop("ownerReferences")   # no VirtualMachineInstance kind here
    stored = json.loads(cluster.create(pod).stdout)
    assert SIDECAR not in [c["name"] for c in stored["spec"].get("initContainers", [])]
    compute = named(stored["spec"]["containers"], "compute")
    env = {e["name"]: e.get("value") for e in compute["env"]}
    assert env["AWS_ROLE_ARN"].startswith("arn:aws:iam::")
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"].endswith("/token")
    assert "aws-iam-token" in [v["name"] for v in stored["spec"]["volumes"]]


# blast radius ----------------------------------------------------------------------------
def test_without_policy_servers_opted_in_pods_fail_closed_and_the_rest_goes_on(
        cluster: Cluster, payments):
    cluster.kubectl("patch", "policyserver", "iamra-sidecar", "--type=merge",
                    "-p", '{"spec":{"replicas":0}}')
    try:
        poll("the policy-server pods gone", lambda: not cluster.get(
            "pods", "-n", "kubewarden", "-l", "kubewarden/policy-server=iamra-sidecar")[
            "items"], 60)
        pod = request_object("pod-plain.json")
        pod["metadata"]["name"] = "while-down"
        refused = cluster.create(pod, check=False, dry_run=True)
        assert refused.returncode != 0 and INJECT_WEBHOOK in refused.stderr, refused.stderr
        pod["metadata"]["namespace"] = "elsewhere"
        cluster.create(pod, dry_run=True)
        certificate = request_object("guard/certificate.json")
        certificate["metadata"]["name"] = "other-issuer-while-down"
        certificate["spec"]["issuerRef"]["name"] = "someone-elses-issuer"
        cluster.create(certificate, dry_run=True)
    finally:
        cluster.kubectl("patch", "policyserver", "iamra-sidecar", "--type=merge",
                        "-p", '{"spec":{"replicas":2}}')
    poll("both policy-server pods Ready again", lambda: cluster.get(
        "deployment", "-n", "kubewarden", "policy-server-iamra-sidecar")["status"].get(
        "readyReplicas") == 2, 180, 1)
    install.wait_active(cluster.plane)


# Helm's lifecycle ---------------------------------------------------------------------------
def test_helm_test_passes(cluster: Cluster):
    done = cluster.helm("test", "iamra", "-n", "kubewarden", "--timeout", "3m", check=False)
    assert done.returncode == 0, done.stdout


def test_helm_upgrade_with_a_changed_setting_rolls_the_policy_server(cluster: Cluster,
                                                                     payments):
    before = {p["metadata"]["name"] for p in cluster.get(
        "pods", "-n", "kubewarden", "-l", "kubewarden/policy-server=iamra-sidecar")["items"]}
    cluster.helm("upgrade", "iamra", str(install.chart_archive()), "-n", "kubewarden",
                 *install.values(cluster.plane), "--set", "sidecar.port=9922",
                 "--set", "certificateRequests.binding=requester")
    install.wait_active(cluster.plane)

    def rolled():
        pods = cluster.get("pods", "-n", "kubewarden", "-l",
                           "kubewarden/policy-server=iamra-sidecar")["items"]
        return pods and not ({p["metadata"]["name"] for p in pods} & before)
    poll("new policy-server pods", rolled, 180, 1)
    pod = request_object("pod-plain.json")
    pod["metadata"]["name"] = "after-upgrade"
    stored = json.loads(cluster.create(pod).stdout)
    args = named(stored["spec"]["initContainers"], SIDECAR)["args"]
    assert args[args.index("--port") + 1] == "9922"


def test_under_the_requester_binding_a_pod_identity_requests_only_its_own(
        cluster: Cluster, payments):
    account = "system:serviceaccount:payments:payments-api"
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "request-certificates", "namespace": "payments"},
                   "rules": [{"apiGroups": ["cert-manager.io"],
                              "resources": ["certificaterequests"], "verbs": ["create"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "request-certificates", "namespace": "payments"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "request-certificates"},
                   "subjects": [{"kind": "ServiceAccount", "name": "payments-api",
                                 "namespace": "payments"}]})
    own = signed_by_the_workload_issuer(cluster, "own-identity", "good-p256", account)
    assert own.returncode == 0, own.stderr
    poll("the signed certificate", lambda: cluster.get(
        "certificaterequest", "-n", "payments", "own-identity").get("status", {})
        .get("certificate"), 120, 1)
    other = signed_by_the_workload_issuer(cluster, "other-identity", "other-account", account)
    denied(other, GUARD_WEBHOOK)


def test_helm_uninstall_in_the_documented_order_leaves_only_what_the_docs_say(
        cluster: Cluster, payments):
    """docs/upgrading.md: the policies off first, their webhooks gone, then uninstall, so
    that no webhook outlives the PolicyServer and its permissions."""
    cluster.helm("upgrade", "iamra", str(install.chart_archive()), "-n", "kubewarden",
                 "--reset-then-reuse-values", "--set", "policy.enabled=false",
                 "--set", "guard.enabled=false")
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        poll(f"{kind} of the policies gone", lambda kind=kind: not [
            w for w in cluster.get(kind)["items"]
            if w["metadata"]["name"].startswith("clusterwide-iamra")], 60)
    pod = request_object("pod-plain.json")
    pod["metadata"]["name"] = "while-uninstalling"
    stored = json.loads(cluster.create(pod, dry_run=True).stdout)
    assert f"{PREFIX}/injected" not in stored["metadata"]["annotations"]
    cluster.helm("uninstall", "iamra", "-n", "kubewarden", "--wait")
    for kind in ("clusteradmissionpolicies", "policyservers", "clusterissuers",
                 "clusterroles", "clusterrolebindings"):
        assert cluster.get(kind, "-l", "app.kubernetes.io/instance=iamra")["items"] == [], kind
    # kept by design (docs/upgrading.md, "What stays behind"): the CA Secrets, with their keys
    for secret in ("iamra-workload-root", "iamra-workload-intermediate"):
        assert cluster.kubectl("get", "secret", "-n", "cert-manager", secret,
                               check=False).returncode == 0, secret
