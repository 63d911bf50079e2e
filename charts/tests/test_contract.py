"""Contract between the chart and the policy: the settings the chart renders into its
ClusterAdmissionPolicies are accepted by the built policy's validate_settings, and a pod
evaluated with the inject policy's settings gets the certificate volume of the issuer the
chart rendered.

Runs the module through $KWCTL (real kwctl works too) or else the workspace's
kwctl-compatible runner. Missing artifacts are built with `make policy.wasm runner`:
this test never skips.

The inject policy reads the pod's ServiceAccount through the host. As in a cluster,
where Kubewarden grants the policy what its ClusterAdmissionPolicy lists in
contextAwareResources, the module is annotated with the rendered list (kwctl and the
runner grant what the module's metadata lists) and the lookup is answered from a
replayed session (kwctl's --replay-host-capabilities-interactions format).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import jsonpatch
import pytest
import yaml

from chartlib import PROFILE, REPO, ROLE, find, render_policy

CSI_DRIVER = "csi.cert-manager.io"
NAMESPACE = "team-a"

SCENARIOS = {
    "defaults": ({}, {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"}),
    "renamed-ca": ({"workloadIssuer": {"name": "pods-ca"}},
                   {"name": "pods-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}),
    "aws-pca": ({"workloadIssuer": {"create": False, "name": "pca", "kind": "AWSPCAClusterIssuer",
                                    "group": "awspca.cert-manager.io"}},
                {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}),
    "namespaced-issuer": ({"workloadIssuer": {"create": False, "name": "team-ca", "kind": "Issuer",
                                              "group": "cert-manager.io"}},
                          {"name": "team-ca", "kind": "Issuer", "group": "cert-manager.io"}),
    "pod-annotations-only": ({"readServiceAccounts": False},
                             {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"}),
    "every-option": (
        {"annotationPrefix": "example.com", "clusterName": "prod-eu-1",
         "sidecar": {"port": 19911, "native": False, "logLevel": "debug", "imagePullPolicy": "Always",
                     "resources": {"requests": {"cpu": 1, "memory": "16Mi"}, "limits": {"memory": "1Gi"}}},
         "defaults": {"sessionDuration": "3600", "audience": "sts.amazonaws.com"},
         "certificate": {"keyAlgorithm": "RSA", "keySize": 2048, "duration": "12h", "renewBefore": "4h"},
         "allowedRequesters": ["system:serviceaccount:certs:csi-driver"],
         "irsa": {"region": "eu-west-1", "stsRegionalEndpoints": True, "tokenExpiration": 3600},
         "kubevirt": {"shareTokenWithGuest": True, "virtiofsImage": "registry.example/launcher:v1",
                      "translateUid": False}},
        {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"},
    ),
}


# --- running the policy ------------------------------------------------------------------


_BUILD_FAILURE: list[str] = []


@pytest.fixture(scope="session")
def policy_cli() -> list[str]:
    """The command that runs the policy: $KWCTL, or the workspace runner. The module
    and (without $KWCTL) the runner are brought up to date with make (once; a failed
    build fails every contract test without building again)."""
    if _BUILD_FAILURE:
        pytest.fail(_BUILD_FAILURE[0])
    kwctl = os.environ.get("KWCTL")
    targets = ["policy.wasm"] + ([] if kwctl else ["runner"])
    if not os.environ.get("POLICY"):
        build = subprocess.run(["make", "-C", str(REPO), *targets],
                               capture_output=True, text=True, timeout=1800)
        if build.returncode != 0:
            _BUILD_FAILURE.append(f"`make {' '.join(targets)}` failed:\n"
                                  f"{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
            pytest.fail(_BUILD_FAILURE[0])
    runner = kwctl or str(REPO / "target" / "runner" / "policy-runner")
    if not Path(runner).exists() and "/" in runner:
        pytest.fail(f"policy runner {runner} does not exist")
    if not module().is_file():
        pytest.fail(f"policy module {module()} does not exist")
    return [runner]


def module() -> Path:
    return Path(os.environ.get("POLICY") or REPO / "policy.wasm")


def _load_annotate():
    """e2e-tests/tools/annotate.py: one implementation of `kwctl annotate` for both suites."""
    spec = importlib.util.spec_from_file_location(
        "annotate", REPO / "e2e-tests" / "tools" / "annotate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def annotate(context_aware_resources: list, tmp_path: Path) -> Path:
    """The module with Kubewarden metadata (the repository's metadata.yml, with the
    rendered contextAwareResources) in its io.kubewarden.metadata custom section, as
    `kwctl annotate` writes it."""
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    metadata["contextAwareResources"] = context_aware_resources
    out = tmp_path / "annotated-policy.wasm"
    out.write_bytes(_load_annotate().annotated(module().read_bytes(), metadata))
    return out


def service_account_session(namespace: str, name: str, tmp_path: Path) -> Path:
    """A replay session in which the ServiceAccount namespace/name exists, plain."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": name, "namespace": namespace,
                            "uid": "0d6f3c8e-2a4b-4f1e-9c7d-5e8a1b2c3d4f"}}
    request = (f"!KubernetesGetResource\napi_version: v1\nkind: ServiceAccount\nname: {name}\n"
               f"namespace: {namespace}\ndisable_cache: false\n")
    session = [{"type": "Exchange", "request": request,
                "response": {"type": "Success", "payload": json.dumps(account)}}]
    path = tmp_path / "session.yml"
    path.write_text(yaml.safe_dump(session, sort_keys=False))
    return path


def run_policy(cli, settings, request, tmp_path, spec=None) -> subprocess.CompletedProcess:
    """`run` with these settings. With a ClusterAdmissionPolicy spec: the module grants
    its contextAwareResources, and the pod's ServiceAccount is replayed."""
    settings_path = tmp_path / "settings.yaml"
    request_path = tmp_path / "request.json"
    settings_path.write_text(yaml.safe_dump(settings))
    request_path.write_text(json.dumps(request))
    policy, extra = module(), []
    if spec is not None:
        policy = annotate(spec.get("contextAwareResources", []), tmp_path)
        pod = request["request"]["object"]
        session = service_account_session(
            request["request"]["namespace"], pod["spec"].get("serviceAccountName", "default"), tmp_path)
        extra = ["--allow-context-aware", "--replay-host-capabilities-interactions", str(session)]
    return subprocess.run(
        [*cli, "run", *extra, "--settings-path", str(settings_path), "--request-path",
         str(request_path), f"file://{policy.resolve()}"],
        capture_output=True, text=True, timeout=120,
    )


def admission_response(cli, settings, request, tmp_path, spec=None) -> dict:
    done = run_policy(cli, settings, request, tmp_path, spec)
    assert done.returncode == 0, f"policy run failed ({done.returncode}):\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
    assert lines, f"no AdmissionResponse on stdout:\n{done.stdout}\n{done.stderr[-2000:]}"
    response = json.loads(lines[-1])
    assert response["uid"] == request["request"]["uid"]
    return response


# --- requests and patches ----------------------------------------------------------------


def pod_request(prefix: str = "iamra.aws") -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app",
            "namespace": NAMESPACE,
            "annotations": {f"{prefix}/role-arn": ROLE, f"{prefix}/signing-profile-arn": PROFILE},
        },
        "spec": {
            "serviceAccountName": "default",
            "containers": [{"name": "app", "image": "public.ecr.aws/aws-cli/aws-cli:2.22.35"}],
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c9a52-0d8e-4b8e-9d65-6a0f2c1e7b10",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "app",
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def apply_patch(doc, patch):
    """RFC 6902 JSON patch, by the jsonpatch package (PyPI)."""
    return jsonpatch.apply_patch(doc, patch)


def policies(values):
    objs = render_policy(values)
    return (find(objs, "ClusterAdmissionPolicy", "iamra-sidecar")["spec"],
            find(objs, "ClusterAdmissionPolicy", "iamra-sidecar-guard")["spec"])


# --- the contract --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_injected_pod_uses_the_rendered_issuer(scenario, policy_cli, tmp_path):
    values, issuer = SCENARIOS[scenario]
    inject, _ = policies(values)
    settings = inject["settings"]
    assert settings["certificate"]["issuer"] == issuer

    request = pod_request(settings["annotationPrefix"])
    response = admission_response(policy_cli, settings, request, tmp_path, spec=inject)
    assert response["allowed"] is True, response
    assert response.get("patchType") == "JSONPatch", response
    patch = json.loads(base64.b64decode(response["patch"]))
    pod = apply_patch(request["request"]["object"], patch)

    volumes = [v for v in pod["spec"].get("volumes", []) if v.get("csi", {}).get("driver") == CSI_DRIVER]
    assert len(volumes) == 1, f"expected one {CSI_DRIVER} volume: {pod['spec'].get('volumes')}"
    attributes = volumes[0]["csi"]["volumeAttributes"]
    assert {
        "name": attributes["csi.cert-manager.io/issuer-name"],
        "kind": attributes["csi.cert-manager.io/issuer-kind"],
        "group": attributes["csi.cert-manager.io/issuer-group"],
    } == issuer
    # The sidecar is the one the chart configured, native or not.
    sidecar = settings["sidecar"]
    pool = pod["spec"].get("initContainers", []) if sidecar["native"] else pod["spec"]["containers"]
    assert [c for c in pool if c.get("image") == sidecar["image"]], pool


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_guard_settings_are_accepted(scenario, policy_cli, tmp_path):
    _, guard = policies(SCENARIOS[scenario][0])
    assert guard["settings"]["mode"] == "guard"
    response = admission_response(policy_cli, guard["settings"], pod_request(), tmp_path, spec=guard)
    assert isinstance(response["allowed"], bool)


def test_guard_never_mutates(policy_cli, tmp_path):
    # The guard is registered with mutating: false; a patch from it would make the
    # PolicyServer reject the request.
    _, guard = policies({})
    response = admission_response(policy_cli, guard["settings"], pod_request(), tmp_path, spec=guard)
    assert "patch" not in response and "patchType" not in response, response


def test_inject_policy_needs_its_context_aware_resources(policy_cli, tmp_path):
    # Control: without the ServiceAccount grant the chart declares, the lookup fails and
    # the pod is rejected; so the grant in the rendered policy is what makes it work.
    inject, _ = policies({})
    assert inject["contextAwareResources"] == [{"apiVersion": "v1", "kind": "ServiceAccount"}]
    response = admission_response(policy_cli, inject["settings"], pod_request(), tmp_path,
                                  spec={**inject, "contextAwareResources": []})
    assert response["allowed"] is False
    assert "cannot read ServiceAccount team-a/default" in response["status"]["message"]


def test_bootstrap_guard_settings_are_accepted(policy_cli, tmp_path):
    from chartlib import POLICY_CHART, objects, render_raw

    objs = objects(render_raw(POLICY_CHART, {"policy": {"enabled": False}}))
    guard = find(objs, "ClusterAdmissionPolicy", "iamra-sidecar-guard")["spec"]
    assert guard["settings"]["trustAnchorArn"] == ""
    admission_response(policy_cli, guard["settings"], pod_request(), tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(trustAnchroArn="typo"), "trustAnchroArn"),
        (lambda s: s.update(region="eu-west-2"), "region"),
        (lambda s: s["sidecar"].update(port=80), "sidecar.port"),
    ],
    ids=["unknown-key", "region-mismatch", "bad-port"],
)
def test_runner_rejects_settings_the_chart_would_not_render(change, message, policy_cli, tmp_path):
    # Control: the contract tests above would mean nothing if the runner skipped
    # validate_settings.
    inject, _ = policies({})
    settings = copy.deepcopy(inject["settings"])
    change(settings)
    done = run_policy(policy_cli, settings, pod_request(), tmp_path)
    assert done.returncode != 0, done.stdout
    assert message in done.stderr + done.stdout


def _settings_defaults() -> dict:
    """The policy's settings with their defaults, every field included, as the policy
    writes them (src/settings/mod.rs, test settings_contract_is_current)."""
    return json.loads((REPO / "charts" / "tests" / "policy-settings.json").read_text())


def test_chart_renders_every_setting_the_policy_knows():
    # A setting added to the policy (or renamed) must be added to the chart's values too.
    inject, _ = policies({})

    def compare(fields: dict, rendered: dict, path: str) -> list[str]:
        problems = [f"{path}{k}: a policy setting, not rendered" for k in fields if k not in rendered]
        problems += [f"{path}{k}: rendered, unknown to the policy" for k in rendered if k not in fields]
        for key, default in fields.items():
            if isinstance(default, dict) and isinstance(rendered.get(key), dict):
                problems += compare(default, rendered[key], f"{path}{key}.")
        return problems

    problems = compare(_settings_defaults(), inject["settings"], "")
    assert not problems, "chart settings and the policy's differ:\n" + "\n".join(problems)
