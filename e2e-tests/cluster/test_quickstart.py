"""README's quick start, run as written against the control plane, after test_cluster.py
has uninstalled its own release. Each command of the section's console blocks runs in bash
with the control plane's kubectl and helm first on PATH; what this machine cannot reach is
changed by the table CHANGES, nothing else:

- the charts and the module come from the loopback registry, which `make publish` filled
  under the same paths as ghcr.io/iamra-sidecar: helm gets `--plain-http`, and the first
  install names the registry as the mirror (`global.cattle.systemDefaultRegistry`, as an
  air-gapped install does, docs/install.md) and lets the PolicyServer pull over HTTP;
- `aws` is not called: a recorder on PATH keeps its arguments, and the test checks that the
  trust anchor would be created from the root that the chart made;
- the `<account>`, `<uuid>` and `<role>` placeholders get example values;
- the last two commands wait for the example Job to complete and print its log: the kubelet
  stand-in runs no application images, so instead the Job's pod is checked to be injected.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

import install
from conftest import Cluster, poll

README = install.ROOT / "README.md"
SIDECAR = "iamra-credential-helper"
ACCOUNT, UUID = "123456789012", "8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f"
NOT_RUN = ("kubectl -n demo wait job/iamra-example --for=condition=Complete --timeout=5m",
           "kubectl -n demo logs job/iamra-example -c aws-cli")
# Records its arguments as one JSON line, for the one `aws` call of the quick start.
AWS_RECORDER = '#!/bin/sh\npython3 -c \'import json, sys; print(json.dumps(sys.argv[1:]))\' "$@" >> "$AWS_CALLS"\n'


def quick_start_commands() -> list[str]:
    """The commands of README's Quick start, continuation lines joined."""
    section = README.read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, flags=re.S)
    return [command for block in blocks
            for command in block.replace("\\\n", " ").splitlines() if command.strip()]


def changed(command: str, host: str) -> str:
    """CHANGES: the command as this machine can run it (see the module's docstring)."""
    command = command.replace("oci://ghcr.io/iamra-sidecar/", f"oci://{host}/iamra-sidecar/")
    command = (command.replace("<account>", ACCOUNT).replace("<uuid>", UUID)
               .replace("<role>", "iamra-example"))
    if command.startswith(("helm install ", "helm upgrade ")):
        command += " --plain-http"
    if command.startswith("helm install iamra-sidecar-policy "):
        command += (f" --set global.cattle.systemDefaultRegistry={host}"
                    f" --set policyServer.insecureSources[0]={host}")
    return command


@pytest.fixture(scope="module")
def shell(cluster: Cluster, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A working directory and the environment the commands run in."""
    work = tmp_path_factory.mktemp("quick-start")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(cluster.kubectl_path)
    (bin_dir / "helm").symlink_to(install.controlplane.go_tools("helm") / "helm")
    (bin_dir / "aws").write_text(AWS_RECORDER)
    (bin_dir / "aws").chmod(0o755)
    state = cluster.state
    return work, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                  "KUBECONFIG": str(cluster.kubeconfig), "AWS_CALLS": str(work / "aws.calls"),
                  "HELM_CACHE_HOME": str(state / "helm/cache"),
                  "HELM_CONFIG_HOME": str(state / "helm/config"),
                  "HELM_DATA_HOME": str(state / "helm/data")}


def test_the_quick_start_runs_as_written(cluster: Cluster, shell):
    work, env = shell
    # test_cluster.py ends with its uninstall; a leftover release would hold the names.
    assert cluster.helm("status", "iamra", "-n", "kubewarden", check=False).returncode != 0
    commands = quick_start_commands()
    assert tuple(commands[-2:]) == NOT_RUN, commands[-2:]
    host = (cluster.state / "registry.host").read_text()
    for command in commands[:-2]:
        run = changed(command, host)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", run], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{run}\n{done.stdout}"

    # The trust anchor would trust the root the chart made, as one PEM certificate.
    (call,) = [json.loads(line) for line in (work / "aws.calls").read_text().splitlines()]
    assert call[:2] == ["rolesanywhere", "create-trust-anchor"], call
    source = json.loads(call[call.index("--source") + 1])
    assert source["sourceType"] == "CERTIFICATE_BUNDLE"
    root = x509.load_pem_x509_certificate(source["sourceData"]["x509CertificateData"].encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.issuer == root.subject

    # The example Job's pod, made by the job controller, got the credential helper.
    pods = poll("the example Job's pod", lambda: cluster.get(
        "pods", "-n", "demo", "-l", "batch.kubernetes.io/job-name=iamra-example")["items"], 60)
    assert SIDECAR in [c["name"] for c in pods[0]["spec"]["initContainers"]], shlex.join(
        c["name"] for c in pods[0]["spec"].get("initContainers", []))
