"""The cluster tests run against a control plane that `make cluster-up` started (make
cluster-test starts it, runs them and stops it): CLUSTER_STATE names its state directory.
A failing test prints the tail of every component's log."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import controlplane  # noqa: E402
import install  # noqa: E402


class Cluster:
    def __init__(self, state: Path):
        self.plane = controlplane.Plane(state)
        self.state = self.plane.state
        self.kubeconfig = self.state / "admin.kubeconfig"
        self.kubectl_path = str(self.state / "bin" / "kubectl")
        self.api = controlplane.kubeapi.Client.admin(self.state)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                user: str | None = None) -> subprocess.CompletedProcess:
        argv = [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args]
        if user:
            argv.append(f"--as={user}")
        done = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def create(self, obj: dict, check: bool = True, user: str | None = None,
               dry_run: bool = False) -> subprocess.CompletedProcess:
        args = ["create", "-o", "json", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        return self.kubectl(*args, input=json.dumps(obj), check=check, user=user)

    def apply(self, obj: dict) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=json.dumps(obj))

    def namespace(self, name: str, opted_in: bool) -> None:
        labels = {"iamra.aws/enable": "true"} if opted_in else {}
        self.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels}})

    def service_account(self, namespace: str, name: str, annotations: dict | None = None):
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": name, "namespace": namespace, "annotations": annotations or {}}})

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return install.helm(self.plane, *args, check=check)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    state = os.environ.get("CLUSTER_STATE")
    if not state or not (Path(state) / "admin.kubeconfig").exists():
        pytest.fail("no control plane: run these tests with `make cluster-test` "
                    "(or `make cluster-up` first and set CLUSTER_STATE)")
    return Cluster(Path(state))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    state = os.environ.get("CLUSTER_STATE")
    if report.failed and state:
        tails = []
        for log in sorted(Path(state).glob("logs/*.log")) + sorted(
                Path(state).glob("pods/*/*/*.log")):
            lines = log.read_text(errors="replace").splitlines()[-25:]
            tails.append(f"--- {log.relative_to(state)} (last {len(lines)} lines)\n"
                         + "\n".join(lines))
        report.sections.append(("component logs", "\n".join(tails)))


def poll(what: str, check, seconds: float = 60, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {seconds:.0f}s")
        time.sleep(every)
