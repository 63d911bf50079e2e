#!/usr/bin/env python3
"""A real Kubernetes control plane on loopback for the cluster tests.

    controlplane.py up STATE      start everything, print `export KUBECONFIG=...` last
    controlplane.py down STATE    stop what `up` started and remove STATE

What runs, each built from the Go module proxy (scripts/go-tools.sh) or taken from
../shared/bin, each logging to STATE/logs/<name>.log:
  etcd 3.6, kube-apiserver and kube-controller-manager 1.35 (RBAC, the admission chain
  with both webhook plugins; the deployment, replicaset, serviceaccount, namespace and
  garbage-collector controllers), the Kubewarden, cert-manager and Prometheus-operator
  CRDs, the Kubewarden controller (out of cluster, with its CA Secret and its own
  defaulting and validating webhooks), cert-manager's controllers, and the kubelet
  stand-in (kubelet_standin.py): the only thing stood in for.
`up` does not install the chart: install.py does (make cluster-up runs both).
"""
from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
import kubeapi  # noqa: E402
import pki  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
DEPLOYMENTS_NAMESPACE = "kubewarden"
WEBHOOK_SERVICE = "kubewarden-controller-webhook-service"
# cert-manager's --cluster-resource-namespace, as the chart's workloadIssuer.ca.namespace
CERT_MANAGER_NAMESPACE = "cert-manager"
SERVICE_CIDR = "10.96.0.0/24"
CONTROLLERS = ("deployment-controller,replicaset-controller,garbage-collector-controller,"
               "namespace-controller,serviceaccount-controller,"
               "serviceaccount-token-controller")


class StartError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def go_tools(name: str) -> Path:
    out = subprocess.run([str(ROOT / "scripts/go-tools.sh"), name], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip())


def wait_for(what: str, check, seconds: float, log: Path | None = None):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - any failure means "not yet"
            last = error
        time.sleep(0.5)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise StartError(f"{what} not ready after {seconds:.0f}s (last error: {last})\n{tail}")


class Plane:
    def __init__(self, state: Path):
        self.state = state.resolve()
        self.logs = self.state / "logs"
        self.pki = self.state / "pki"

    # processes -----------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, **(env or {})})
        with (self.state / "pids").open("a") as pids:
            pids.write(f"{process.pid} {name}\n")
        return process

    def kubeconfig(self, name: str, cert: str, key: str) -> Path:
        port = (self.state / "apiserver.port").read_text().strip()
        path = self.state / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "iamra",
            "clusters": [{"name": "iamra", "cluster": {
                "server": f"https://127.0.0.1:{port}",
                "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": name, "user": {"client-certificate": str(self.pki / cert),
                                               "client-key": str(self.pki / key)}}],
            "contexts": [{"name": "iamra", "context": {"cluster": "iamra", "user": name}}],
        }))
        return path

    # the start ------------------------------------------------------------------------
    def up(self) -> Path:
        policy_server = SHARED / "bin" / "policy-server"
        if not policy_server.exists():
            raise StartError(f"{policy_server} is missing: the kubelet stand-in runs "
                             "Kubewarden's own policy-server")
        if self.state.exists():
            raise StartError(f"{self.state} exists: run `make cluster-down` first")
        self.state.mkdir(parents=True)
        k8s, kubewarden, cert_manager = (go_tools(n) for n in
                                         ("k8s", "kubewarden", "cert-manager"))
        (self.state / "bin").symlink_to(k8s)
        pki.make(self.pki, DEPLOYMENTS_NAMESPACE, WEBHOOK_SERVICE)
        self.etcd(k8s)
        self.apiserver(k8s)
        admin = self.kubeconfig("admin", "admin.crt", "admin.key")
        kcm = self.kubeconfig("controller-manager", "controller-manager.crt",
                              "controller-manager.key")
        api = kubeapi.Client.admin(self.state)
        self.spawn("kube-controller-manager", [
            str(k8s / "kube-controller-manager"), f"--kubeconfig={kcm}",
            f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            "--leader-elect=false", f"--controllers={CONTROLLERS}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}", "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}"])
        self.crds(api)
        self.kubewarden_prerequisites(api, kubewarden)
        self.spawn("kubewarden-controller", [
            str(kubewarden / "kubewarden-controller"), f"--kubeconfig={admin}",
            f"--deployments-namespace={DEPLOYMENTS_NAMESPACE}",
            f"--webhook-service-name={WEBHOOK_SERVICE}", "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{free_port()}", "--zap-log-level=debug"],
            env={"TMPDIR": str(self.state / "kubewarden-tmp")})
        self.spawn("cert-manager-controllers", [
            str(cert_manager / "cert-manager-controllers"), f"--kubeconfig={admin}",
            f"--cluster-resource-namespace={CERT_MANAGER_NAMESPACE}"])
        self.spawn("kubelet-standin", [
            sys.executable, str(Path(__file__).parent / "kubelet_standin.py"),
            str(self.state), f"--policy-server={policy_server}",
            f"--kubectl={k8s / 'kubectl'}",
            f"--static={DEPLOYMENTS_NAMESPACE}/{WEBHOOK_SERVICE}:443=9443"])
        wait_for("the egress proxy", (self.state / "egress.sock").exists, 30,
                 self.logs / "kubelet-standin.log")
        # The controller's webhooks answer once it serves on 9443.
        wait_for("the Kubewarden controller's webhook server",
                 lambda: socket.create_connection(("127.0.0.1", 9443), 1).close() or True,
                 120, self.logs / "kubewarden-controller.log")
        wait_for("the default ServiceAccount", lambda: api.get(
            "/api/v1/namespaces/default/serviceaccounts/default"), 60,
            self.logs / "kube-controller-manager.log")
        return admin

    def etcd(self, k8s: Path) -> None:
        port, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        (self.state / "etcd.url").write_text(url)
        self.spawn("etcd", [str(k8s / "etcd"), f"--data-dir={self.state / 'etcd'}",
                            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
                            f"--listen-peer-urls=http://127.0.0.1:{peer}",
                            "--unsafe-no-fsync", "--log-level=warn"])
        wait_for("etcd", lambda: socket.create_connection(("127.0.0.1", port), 1).close()
                 or True, 60, self.logs / "etcd.log")

    def apiserver(self, k8s: Path) -> None:
        port = free_port()
        (self.state / "apiserver.port").write_text(str(port))
        egress = self.state / "egress-selector.yaml"
        # Webhook calls to Services dial through the "cluster" egress: an HTTP CONNECT
        # proxy on a Unix socket (the kubelet stand-in) that maps each Service's
        # ClusterIP to the local process serving it.
        egress.write_text(yaml.safe_dump({
            "apiVersion": "apiserver.k8s.io/v1beta1", "kind": "EgressSelectorConfiguration",
            "egressSelections": [{"name": "cluster", "connection": {
                "proxyProtocol": "HTTPConnect",
                "transport": {"uds": {"udsName": str(self.state / "egress.sock")}}}}]}))
        self.spawn("kube-apiserver", [
            str(k8s / "kube-apiserver"), f"--etcd-servers={(self.state / 'etcd.url').read_text()}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.state / 'apiserver-certs'}",
            f"--tls-cert-file={self.pki / 'apiserver.crt'}",
            f"--tls-private-key-file={self.pki / 'apiserver.key'}",
            f"--client-ca-file={self.pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
            "ValidatingAdmissionPolicy,MutatingAdmissionPolicy",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer=https://127.0.0.1:{port}",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            f"--egress-selector-config-file={egress}",
            "--enable-priority-and-fairness=false", "--profiling=false"])
        api = kubeapi.Client.admin(self.state)
        wait_for("kube-apiserver /readyz", lambda: api.request("GET", "/readyz") is not None,
                 120, self.logs / "kube-apiserver.log")

    def crds(self, api: kubeapi.Client) -> None:
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        names = []
        for path in sorted((SHARED / "crds").glob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text()):
                if crd and crd.get("kind") == "CustomResourceDefinition":
                    api.create(base, crd)
                    names.append(crd["metadata"]["name"])

        def established() -> bool:
            return all(any(c["type"] == "Established" and c["status"] == "True"
                           for c in api.get(f"{base}/{n}").get("status", {})
                           .get("conditions", [])) for n in names)
        wait_for("the CRDs", established, 60)

    def kubewarden_prerequisites(self, api: kubeapi.Client, kubewarden: Path) -> None:
        """What Kubewarden's controller chart installs besides the controller: its
        namespace, its CA Secret, its webhook Service and webhook configurations (taken
        from the controller release's own config/webhook/manifests.yaml)."""
        for namespace in (DEPLOYMENTS_NAMESPACE, CERT_MANAGER_NAMESPACE):
            api.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        ca = (self.pki / "kubewarden-ca.crt").read_bytes()
        api.create(f"/api/v1/namespaces/{DEPLOYMENTS_NAMESPACE}/secrets", {
            "metadata": {"name": "kubewarden-ca"},
            "data": {"ca.crt": base64.b64encode(ca).decode(), "ca.key": base64.b64encode(
                (self.pki / "kubewarden-ca.key").read_bytes()).decode()}})
        api.create(f"/api/v1/namespaces/{DEPLOYMENTS_NAMESPACE}/services", {
            "metadata": {"name": WEBHOOK_SERVICE},
            "spec": {"ports": [{"port": 443, "targetPort": 9443, "protocol": "TCP"}]}})
        certs = self.state / "kubewarden-tmp" / "k8s-webhook-server" / "serving-certs"
        certs.mkdir(parents=True)
        shutil.copy(self.pki / "kubewarden-webhook.crt", certs / "tls.crt")
        shutil.copy(self.pki / "kubewarden-webhook.key", certs / "tls.key")
        release = json.loads(subprocess.run(
            ["go", "list", "-m", "-json", "github.com/kubewarden/kubewarden-controller"],
            cwd=ROOT / "tools/go/kubewarden", check=True, stdout=subprocess.PIPE).stdout)
        manifests = Path(release["Dir"]) / "config/webhook/manifests.yaml"
        for config in yaml.safe_load_all(manifests.read_text()):
            if not config:
                continue
            kind = config["kind"]
            config["metadata"]["name"] = f"kubewarden-controller-{kind.lower()}"
            for webhook in config["webhooks"]:
                service = webhook["clientConfig"]["service"]
                service.update(name=WEBHOOK_SERVICE, namespace=DEPLOYMENTS_NAMESPACE)
                webhook["clientConfig"]["caBundle"] = base64.b64encode(ca).decode()
            resource = "mutatingwebhookconfigurations" if kind.startswith("Mutating") \
                else "validatingwebhookconfigurations"
            api.create(f"/apis/admissionregistration.k8s.io/v1/{resource}", config)

    # the stop -------------------------------------------------------------------------
    def down(self) -> None:
        pids = self.state / "pids"
        if pids.exists():
            entries = [line.split() for line in pids.read_text().splitlines() if line]
            for pid, _ in reversed(entries):
                try:
                    os.killpg(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 15
            for pid, _ in entries:
                while time.monotonic() < deadline and _alive(int(pid)):
                    time.sleep(0.2)
                if _alive(int(pid)):
                    os.killpg(int(pid), signal.SIGKILL)
        shutil.rmtree(self.state, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a child of ours that exited but was not reaped
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    plane = Plane(Path(sys.argv[2]))
    if sys.argv[1] == "down":
        plane.down()
        return 0
    try:
        kubeconfig = plane.up()
    except (StartError, kubeapi.ApiError, subprocess.CalledProcessError) as error:
        print(f"cluster-up failed: {error}", file=sys.stderr)
        print(f"logs: {plane.logs}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
