#!/usr/bin/env python3
"""The one stand-in of the cluster tests: a kubelet for two kinds of pod, and the route
from the API server to them.

    kubelet_standin.py STATE --policy-server=BIN --kubectl=BIN [--static=NS/SVC:PORT=LOCAL]

Pods:
- a pod with a policy-server container (the PolicyServer Deployments the Kubewarden
  controller makes) runs ../shared/bin/policy-server with the pod's own environment,
  Secret and ConfigMap volumes and a kubeconfig holding a token of the pod's
  ServiceAccount (TokenRequest), on free loopback ports; it turns Ready when
  policy-server answers its readiness probe, and is stopped when the pod goes;
- a `helm test` hook pod runs its command with the built kubectl under the pod's
  ServiceAccount, and its phase follows the exit code.
Other pods are left Pending, as on a cluster without nodes.

Network: kube-apiserver's "cluster" egress (an HTTP CONNECT proxy on STATE/egress.sock)
maps a Service's ClusterIP to the loopback port of the Ready pod its selector picks (or a
--static mapping for the Kubewarden controller's webhook), and splices bytes: TLS stays
end to end, with the real ServerName and caBundle.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).parent))
import kubeapi  # noqa: E402
from controlplane import free_port  # noqa: E402

log_lock = threading.Lock()


def log(*parts) -> None:
    with log_lock:
        print(datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], *parts, flush=True)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_test_hook(pod_meta: dict) -> bool:
    return "test" in pod_meta.get("annotations", {}).get("helm.sh/hook", "").split(",")


class Pod:
    """One running pod: its directory, its processes and its ports."""

    def __init__(self, kubelet: "Kubelet", pod: dict):
        self.kubelet = kubelet
        self.meta = pod["metadata"]
        self.spec = pod["spec"]
        self.key = f"{self.meta['namespace']}/{self.meta['name']}"
        self.dir = kubelet.state / "pods" / f"{self.meta['namespace']}_{self.meta['name']}" \
            / self.meta["uid"][:8]
        self.ports: dict[int, int] = {}   # container port -> loopback port
        self.ready = False
        self.stopped = threading.Event()
        self.process: subprocess.Popen | None = None

    @property
    def api_path(self) -> str:
        return f"/api/v1/namespaces/{self.meta['namespace']}/pods/{self.meta['name']}"

    # what a kubelet sets up before a container starts ---------------------------------
    def mounts(self, container: dict) -> dict[str, Path]:
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        paths = {}
        for mount in container.get("volumeMounts", []):
            source = self.volume(volumes.get(mount["name"], {}))
            paths[mount["mountPath"]] = source / mount.get("subPath", "")
        return paths

    def volume(self, volume: dict) -> Path:
        path = self.dir / "volumes" / volume.get("name", "unknown")
        if path.exists():
            return path
        path.mkdir(parents=True)
        api, namespace = self.kubelet.api, self.meta["namespace"]
        if "secret" in volume:
            data = api.get(f"/api/v1/namespaces/{namespace}/secrets/"
                           f"{volume['secret']['secretName']}").get("data", {})
            self.write(path, {k: pkcs8(base64.b64decode(v)) for k, v in data.items()},
                       volume["secret"].get("items"))
        elif "configMap" in volume:
            data = api.get(f"/api/v1/namespaces/{namespace}/configmaps/"
                           f"{volume['configMap']['name']}").get("data", {})
            self.write(path, {k: policies_1_35(k, v).encode() for k, v in data.items()},
                       volume["configMap"].get("items"))
        return path

    @staticmethod
    def write(path: Path, data: dict[str, bytes], items: list | None) -> None:
        for item in items or [{"key": k, "path": k} for k in data]:
            if item["key"] in data:
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data[item["key"]])

    def kubeconfig(self) -> Path:
        """What a pod's ServiceAccount token mount gives it, as a kubeconfig."""
        account = self.spec.get("serviceAccountName", "default")
        token = self.kubelet.api.create(
            f"/api/v1/namespaces/{self.meta['namespace']}/serviceaccounts/{account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 3600}})["status"]["token"]
        path = self.dir / "kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "pod",
            "clusters": [{"name": "c", "cluster": {
                "server": f"https://127.0.0.1:{self.kubelet.api.port}",
                "certificate-authority": str(self.kubelet.state / "pki" / "ca.crt")}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "pod", "context": {
                "cluster": "c", "user": account, "namespace": self.meta["namespace"]}}]}))
        return path

    def environment(self, container: dict, mounts: dict[str, Path]) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.dir),
               "KUBECONFIG": str(self.kubeconfig())}
        for var in container.get("env", []):
            value = var.get("value", "")
            field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if field in ("metadata.namespace", "metadata.name"):
                value = self.meta[field.split(".")[1]]
            env[var["name"]] = self.localise(value, mounts)
        return env

    def localise(self, value: str, mounts: dict[str, Path]) -> str:
        """A path under a mount becomes the mount's directory here; a port the pod
        listens on becomes its loopback port."""
        for mount, path in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(path) + value[len(mount.rstrip("/")):]
        if value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        return value

    def localise_argument(self, argument: str, mounts: dict[str, Path]) -> str:
        flag, equals, value = argument.partition("=")
        if equals and flag.startswith("-"):
            return f"{flag}={self.localise(value, mounts)}"
        return self.localise(argument, mounts)

    # the two kinds of pod --------------------------------------------------------------
    def run_policy_server(self, container: dict) -> None:
        probe = container.get("readinessProbe", {}).get("httpGet", {})
        listen = {p["containerPort"] for p in container.get("ports", [])}
        listen |= {int(v["value"]) for v in container.get("env", [])
                   if v["name"].endswith("_PORT") and v.get("value", "").isdigit()}
        if probe:
            listen.add(int(probe["port"]))
        self.ports = {port: free_port() for port in listen}
        mounts = self.mounts(container)
        env = self.environment(container, mounts)
        env["KUBEWARDEN_BIND_ADDRESS"] = "127.0.0.1"   # node networking: loopback only
        trust = self.sigstore_trust_config_1_35()
        if trust and SIGSTORE_TRUST_ENV not in env:
            env[SIGSTORE_TRUST_ENV] = str(trust)
        while not self.stopped.is_set():
            output = (self.dir / f"{container['name']}.log").open("ab")
            log(self.key, "starting policy-server on", self.ports)
            self.process = subprocess.Popen([self.kubelet.policy_server], env=env,
                                            cwd=self.dir, stdout=output,
                                            stderr=subprocess.STDOUT)
            while self.process.poll() is None and not self.stopped.is_set():
                ready = self.probe(probe)
                if ready != self.ready:
                    self.ready = ready
                    self.report(ready)
                self.stopped.wait(1)
            if self.process.poll() is None:
                self.process.terminate()
                self.process.wait(10)
            elif not self.stopped.is_set():
                log(self.key, "policy-server exited with", self.process.returncode)
                self.ready = False
                self.report(False, restarted=True)
                self.stopped.wait(2)   # the kubelet's restart back-off, shortened

    def sigstore_trust_config_1_35(self) -> Path | None:
        """The PolicyServer's spec.sigstoreTrustConfig, as the 1.35 controller gives it to
        policy-server (configureSigstoreTrustConfig in policyserver_controller_deployment.go:
        the ConfigMap's key sigstore-trust-config as a file, its path in
        KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH); 1.31 has no such field."""
        server = self.meta.get("labels", {}).get("kubewarden/policy-server")
        if not server:
            return None
        api = self.kubelet.api
        name = api.get(f"/apis/policies.kubewarden.io/v1/policyservers/{server}").get(
            "spec", {}).get("sigstoreTrustConfig")
        if not name:
            return None
        data = api.get(f"/api/v1/namespaces/{self.meta['namespace']}/configmaps/{name}").get(
            "data", {})
        path = self.dir / "volumes" / "sigstore-trust-config"
        self.write(path, {k: v.encode() for k, v in data.items()},
                   [{"key": "sigstore-trust-config", "path": "sigstore-trust-config.json"}])
        return path / "sigstore-trust-config.json"

    def probe(self, probe: dict) -> bool:
        if not probe:
            return True
        url = f"http://127.0.0.1:{self.ports[int(probe['port'])]}{probe.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return 200 <= answer.status < 400
        except OSError:
            return False

    def run_hook(self, _: dict) -> None:
        """Init containers, then the containers, in order, as a kubelet runs a pod with
        restartPolicy Never; the first failure fails the pod."""
        self.report(True)
        code = 0
        for container in self.spec.get("initContainers", []) + self.spec["containers"]:
            mounts = self.mounts(container)
            env = self.environment(container, mounts)
            env["PATH"] = f"{Path(self.kubelet.kubectl).parent}:{env['PATH']}"
            argv = [self.localise_argument(a, mounts) for a in
                    container.get("command", ["kubectl"]) + container.get("args", [])]
            log(self.key, container["name"], "running", argv)
            result = subprocess.run(argv, env=env, cwd=self.dir, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=300)
            (self.dir / f"{container['name']}.log").write_bytes(result.stdout)
            log(self.key, container["name"], "exit", result.returncode,
                result.stdout.decode(errors="replace")[-2000:])
            code = result.returncode
            if code != 0:
                break
        self.report(False, exit_code=code)

    # status ---------------------------------------------------------------------------
    def report(self, ready: bool, exit_code: int | None = None, restarted: bool = False):
        status = "True" if ready else "False"
        if exit_code is None:
            phase, state = "Running", {"running": {"startedAt": now()}}
        else:
            phase = "Succeeded" if exit_code == 0 else "Failed"
            state = {"terminated": {"exitCode": exit_code, "finishedAt": now()}}
        containers = [{"name": c["name"], "image": c["image"], "imageID": "",
                       "ready": ready, "restartCount": int(restarted), "started": ready,
                       "state": state} for c in self.spec["containers"]]
        conditions = [{"type": t, "status": s, "lastTransitionTime": now()} for t, s in
                      (("PodScheduled", "True"), ("Initialized", "True"),
                       ("ContainersReady", status), ("Ready", status))]
        try:
            self.kubelet.api.merge_patch(f"{self.api_path}/status", {"status": {
                "phase": phase, "conditions": conditions, "containerStatuses": containers,
                "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": now()}})
        except kubeapi.ApiError as error:
            if error.status != 404:
                log(self.key, "status update failed:", error)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        container = self.spec["containers"][0]
        target = self.run_hook if is_test_hook(self.meta) else self.run_policy_server
        threading.Thread(target=self.guarded, args=(target, container), daemon=True).start()

    def guarded(self, target, container) -> None:
        try:
            target(container)
        except Exception as error:  # noqa: BLE001 - one pod's failure is that pod's
            log(self.key, "failed:", repr(error))
            hook = target == self.run_hook
            self.report(False, exit_code=1 if hook else None)

    def stop(self) -> None:
        self.stopped.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()


class Kubelet:
    def __init__(self, state: Path, policy_server: str, kubectl: str,
                 static: dict[tuple[str, str, int], int]):
        self.state, self.policy_server, self.kubectl = state, policy_server, kubectl
        self.static = static
        self.api = kubeapi.Client.admin(state)
        self.pods: dict[str, Pod] = {}
        self.lock = threading.Lock()

    @staticmethod
    def runs(pod: dict) -> bool:
        return is_test_hook(pod["metadata"]) or any(
            "policy-server" in c.get("image", "") for c in pod["spec"]["containers"])

    def seen(self, kind: str, pod: dict) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        uid = pod["metadata"]["uid"]
        with self.lock:
            current = self.pods.get(key)
            gone = kind == "DELETED" or pod["metadata"].get("deletionTimestamp")
            if current and (gone or current.meta["uid"] != uid):
                log(key, "stopping")
                current.stop()
                del self.pods[key]
                current = None
            if not gone and current is None and self.runs(pod) \
                    and pod.get("status", {}).get("phase") in (None, "Pending"):
                self.pods[key] = Pod(self, pod)
                self.pods[key].start()

    def watch_pods(self) -> None:
        while True:
            try:
                listing = self.api.get("/api/v1/pods")
                for pod in listing["items"]:
                    self.seen("ADDED", pod)
                version = listing["metadata"]["resourceVersion"]
                while True:
                    for event in self.api.watch("/api/v1/pods", version):
                        if event["type"] == "ERROR":
                            raise kubeapi.ApiError(410, str(event["object"]))
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.seen(event["type"], event["object"])
            except Exception as error:  # noqa: BLE001 - relist, as informers do
                log("pod watch:", repr(error))
                time.sleep(1)

    # the egress proxy -----------------------------------------------------------------
    def resolve(self, host: str, port: int) -> int:
        for service in self.api.get("/api/v1/services")["items"]:
            if service["spec"].get("clusterIP") != host:
                continue
            meta = service["metadata"]
            static = self.static.get((meta["namespace"], meta["name"], port))
            if static:
                return static
            selector = service["spec"].get("selector") or {}
            target = next(p.get("targetPort", port) for p in service["spec"]["ports"]
                          if p["port"] == port)
            with self.lock:
                candidates = [p for p in self.pods.values() if p.ready
                              and p.meta["namespace"] == meta["namespace"] and selector
                              and all(p.meta.get("labels", {}).get(k) == v
                                      for k, v in selector.items())]
            for pod in sorted(candidates, key=lambda p: p.meta["creationTimestamp"],
                              reverse=True):
                if int(target) in pod.ports:
                    return pod.ports[int(target)]
            raise LookupError(f"no ready endpoint for {meta['namespace']}/{meta['name']}")
        raise LookupError(f"no Service has ClusterIP {host}")

    def serve_egress(self) -> None:
        path = self.state / "egress.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(64)
        while True:
            client, _ = server.accept()
            threading.Thread(target=self.tunnel, args=(client,), daemon=True).start()

    def tunnel(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            request = head.split(b"\r\n", 1)[0].decode()
            method, authority, _ = request.split(" ", 2)
            host, port = authority.rsplit(":", 1)
            try:
                local = self.resolve(host, int(port))
            except LookupError as error:
                log("egress:", authority, error)
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", local), 5)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            threading.Thread(target=splice, args=(upstream, client), daemon=True).start()
            splice(client, upstream)
        except Exception as error:  # noqa: BLE001 - one connection's failure is its own
            log("egress:", repr(error))
            client.close()


# The version-skew bridge, and the only changes to what a pod is given. The Kubewarden
# controller the Go module proxy serves is 1.31.0 (1.32.0 to 1.35.0 are refused there);
# policy-server is 1.35.0 (../shared/bin). Two things 1.31 writes that 1.35 reads
# differently are given as the 1.35 controller writes them, and nothing else.


SIGSTORE_TRUST_ENV = "KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH"


def policies_1_35(key: str, text: str) -> str:
    """policies.yml: policy-server 1.35 grants a policy only the host capabilities its
    entry lists, and the 1.35 controller lists "*" for every cluster-wide policy
    (hostCapabilitiesForPolicy in policyserver_controller_configmap.go); 1.31 writes no
    such field."""
    if key != "policies.yml":
        return text
    policies = json.loads(text)
    for entry in policies.values():
        if not entry.get("namespacedName", {}).get("Namespace"):
            entry.setdefault("hostCapabilities", ["*"])
    return json.dumps(policies)


def pkcs8(data: bytes) -> bytes:
    """The PolicyServer's TLS key: 1.31 writes an EC key in SEC1 form under the PEM label
    "RSA PRIVATE KEY", which policy-server 1.35 refuses; the 1.35 controller writes
    PKCS#8. The same key, re-encoded as PKCS#8; the certificate is untouched."""
    label = b"RSA PRIVATE KEY"
    if not data.startswith(b"-----BEGIN " + label):
        return data
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        key = serialization.load_pem_private_key(data.replace(label, b"EC PRIVATE KEY"),
                                                 password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def splice(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state", type=Path)
    parser.add_argument("--policy-server", required=True)
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--static", action="append", default=[],
                        help="NAMESPACE/SERVICE:PORT=LOCALPORT")
    args = parser.parse_args()
    static = {}
    for entry in args.static:
        service, local = entry.split("=")
        name, port = service.split(":")
        namespace, name = name.split("/")
        static[(namespace, name, int(port))] = int(local)
    kubelet = Kubelet(args.state.resolve(), args.policy_server, args.kubectl, static)
    shutil.rmtree(kubelet.state / "pods", ignore_errors=True)
    threading.Thread(target=kubelet.watch_pods, daemon=True).start()
    kubelet.serve_egress()


if __name__ == "__main__":
    main()
