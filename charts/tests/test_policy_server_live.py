"""The chart's policies in Kubewarden's real policy-server, on 127.0.0.1.

The rendered ClusterAdmissionPolicies become a policy-server `policies.yml` (the module
swapped for the built one, annotated with the rendered contextAwareResources; mode,
mutation and settings as rendered), and whole AdmissionReviews go to /validate/<policy>.
There is no Kubernetes API server here, so a ServiceAccount read fails as it does on a
PolicyServer whose account may not get serviceaccounts.

Needs `policy-server` on PATH or in ../shared/bin; skipped, saying so, without it.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from chartlib import REPO, find, render_policy
from test_contract import annotate, apply_patch, pod_request, policy_cli  # noqa: F401 (fixture)

INJECT, GUARD, INJECT_POD_ONLY = "iamra-sidecar", "iamra-sidecar-guard", "iamra-sidecar-pod-only"
SIDECAR = "iamra-credential-helper"


def tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in [REPO.parent / "shared" / "bin" / name] if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def annotated(spec: dict, tmp_path: Path) -> Path:
    """The built module annotated like `kwctl annotate` (kwctl itself when present)."""
    kwctl = tool("kwctl")
    if not kwctl:
        return annotate(spec.get("contextAwareResources", []), tmp_path)
    metadata = yaml.safe_load((REPO / "metadata.yml").read_text())
    metadata["contextAwareResources"] = spec.get("contextAwareResources", [])
    meta_path = tmp_path / "metadata.yml"
    meta_path.write_text(yaml.safe_dump(metadata))
    out = tmp_path / "annotated-policy.wasm"
    policy = Path(os.environ.get("POLICY") or REPO / "policy.wasm")
    subprocess.run([kwctl, "annotate", "-m", str(meta_path), "-o", str(out), str(policy)],
                   check=True, capture_output=True, env={**os.environ, "RUST_BACKTRACE": "0"}, timeout=120)
    return out


def policies_yml(named_specs: dict[str, dict], tmp_path: Path) -> dict:
    """policy-server's policies.yml entries for ClusterAdmissionPolicy specs."""
    out = {}
    for name, spec in named_specs.items():
        directory = tmp_path / name
        directory.mkdir()
        entry = {
            "module": annotated(spec, directory).resolve().as_uri(),
            "policyMode": spec["mode"],
            "allowedToMutate": spec["mutating"],
            "settings": spec["settings"],
        }
        if spec.get("contextAwareResources"):
            entry["contextAwareResources"] = spec["contextAwareResources"]
        out[name] = entry
    return out


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    binary = tool("policy-server")
    if not binary:
        pytest.skip("policy-server integration test SKIPPED: policy-server is neither on PATH nor in "
                    f"{REPO.parent / 'shared' / 'bin'}")
    request.getfixturevalue("policy_cli")  # the module, built as the contract tests build it
    tmp_path = tmp_path_factory.mktemp("policy-server")
    defaults = render_policy()
    pod_only = render_policy({"readServiceAccounts": False})
    specs = {
        INJECT: find(defaults, "ClusterAdmissionPolicy", INJECT)["spec"],
        GUARD: find(defaults, "ClusterAdmissionPolicy", GUARD)["spec"],
        INJECT_POD_ONLY: find(pod_only, "ClusterAdmissionPolicy", INJECT)["spec"],
    }
    config = tmp_path / "policies.yml"
    config.write_text(yaml.safe_dump(policies_yml(specs, tmp_path)))
    port, ready = free_port(), free_port()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    log = (tmp_path / "policy-server.log").open("w")
    proc = subprocess.Popen(
        [binary, "--policies", str(config), "--addr", "127.0.0.1", "--port", str(port),
         "--readiness-probe-port", str(ready), "--ignore-kubernetes-connection-failure",
         "--policies-download-dir", str(downloads)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_BACKTRACE": "0"})
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"policy-server exited {proc.returncode}:\n"
                            f"{(tmp_path / 'policy-server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ready}/readiness", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("policy-server not ready within 120 s:\n"
                            f"{(tmp_path / 'policy-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def review(url: str, policy: str, body: dict) -> dict:
    data = json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/validate/{policy}", data=data,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["kind"] == "AdmissionReview" and answer["apiVersion"] == "admission.k8s.io/v1", answer
    response = answer["response"]
    assert response["uid"] == body["request"]["uid"], response
    return response


def plain_pod() -> dict:
    request = pod_request()
    del request["request"]["object"]["metadata"]["annotations"]
    return request


def forged_pod() -> dict:
    request = plain_pod()
    request["request"]["object"]["spec"]["volumes"] = [{"name": "stolen", "csi": {
        "driver": "csi.cert-manager.io", "readOnly": True, "volumeAttributes": {
            "csi.cert-manager.io/issuer-name": "iamra-workload",
            "csi.cert-manager.io/issuer-kind": "ClusterIssuer",
            "csi.cert-manager.io/issuer-group": "cert-manager.io",
            "csi.cert-manager.io/uri-sans": "spiffe://cluster/ns/payments/sa/payments-api",
            "csi.cert-manager.io/common-name": "ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}"}}}]
    return request


def forged_certificate() -> dict:
    request = copy.deepcopy(json.loads((REPO / "e2e-tests" / "fixtures" / "guard" / "certificate.json").read_text()))
    assert request["request"]["object"]["spec"]["issuerRef"]["name"] == "iamra-workload"
    return request


def test_an_annotated_pod_is_injected(server):
    request = pod_request()
    response = review(server, INJECT_POD_ONLY, request)
    assert response["allowed"] is True, response
    pod = apply_patch(request["request"]["object"], json.loads(base64.b64decode(response["patch"])))
    assert pod["spec"]["initContainers"][0]["name"] == SIDECAR
    assert pod["metadata"]["annotations"]["iamra.aws/injected"] == "true"


def test_an_unannotated_pod_is_untouched(server):
    response = review(server, INJECT_POD_ONLY, plain_pod())
    assert response["allowed"] is True and "patch" not in response, response


def test_the_guard_rejects_a_forged_pod(server):
    response = review(server, GUARD, forged_pod())
    assert response["allowed"] is False, response
    assert 'volume "stolen"' in response["status"]["message"]
    assert review(server, GUARD, plain_pod())["allowed"] is True


def test_the_guard_rejects_a_forged_certificate(server):
    response = review(server, GUARD, forged_certificate())
    assert response["allowed"] is False, response
    assert "iamra-workload" in response["status"]["message"]


def test_an_unreadable_service_account_is_named_with_the_missing_grant(server):
    # No API server here: the read fails as without `get` on serviceaccounts.
    response = review(server, INJECT, pod_request())
    assert response["allowed"] is False, response
    message = response["status"]["message"]
    assert message.startswith("cannot read ServiceAccount team-a/default, which the pod runs as: "), message
    assert "PolicyServer's ServiceAccount is granted `get` on `serviceaccounts`" in message
    assert "\n" not in message and "backtrace" not in message.lower(), message
