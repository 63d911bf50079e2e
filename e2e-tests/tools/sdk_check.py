#!/usr/bin/env python3
"""Runs an AWS SDK's default credential chain as one container of a patched pod would,
against the real credential helper in serve mode.

    sdk_check.py POD CONTAINER --sdk botocore|go|js|imds [options]   prints a JSON report

POD is a pod as the policy's patch left it (JSON file). When it has the credentials
sidecar, that sidecar runs for real: `aws_signing_helper` ($SIGNING_HELPER) with the
sidecar's args as patched, $(POD_NAME)-style references expanded from the pod, and only
these rewrites, which move things onto this machine:

- the csi volume's mount path becomes a temporary directory where pki.py writes the
  volume's files (--pki CASE: the chart's root + intermediate chain by default);
- --port becomes a free loopback port, and AWS_EC2_METADATA_SERVICE_ENDPOINT's port in
  the container's environment follows it (nothing else of the endpoint changes);
- --endpoint is added: the loopback CreateSession stand-in (rolesanywhere_standin.py),
  which knows one account: --trust-anchor (the root of the chain), --profile, --role;
- --helper-arg ARG adds ARG to the helper's args (mount paths rewritten too): a change
  the sidecar does not make yet, reported as `helper.added`.

AWS_WEB_IDENTITY_TOKEN_FILE (IRSA): the container's projected service account token
volumes are written under a temporary root (a made-up token at each mount path), and the
variable is prefixed with that root.

The SDK then runs in a clean environment: the container's variables, plus HOME and PATH
set to an empty directory so no ~/.aws file or program leaks in. --without VAR drops VAR
first, and --set VAR=VALUE sets one: controls that show a test depends on it. --sdk picks the probe: botocore
(sdk_probe.py), go ($SDK_PROBE_GO, tools/go/sdk-go), js (e2e-tests/sdk/js/probe.mjs under
node), or imds (raw IMDS calls to the helper: how it answers without and with a token).

The report: the probe's (sdk, method, credentials, region, error; botocore adds sts,
sts_served and blocked; imds gives `imds`), plus `sessions` (each CreateSession the
stand-in got: ARNs, algorithm, chain length, status, refusal, credentials issued),
`helper` (args, added, log), `endpoint` (as patched and as used), and `token_file` /
`token` (IRSA).
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pki
from rolesanywhere_standin import RolesAnywhereStandIn

SIDECAR = "iamra-credential-helper"
CERT_VOLUME = "iamra-credentials"
ENDPOINT = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"
HERE = os.path.dirname(os.path.abspath(__file__))
JS_PROBE = os.path.join(HERE, "..", "sdk", "js", "probe.mjs")
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
HELPER_START_SECONDS = 30


class CheckError(Exception):
    pass


def containers(pod):
    spec = pod.get("spec", {})
    return spec.get("initContainers", []) + spec.get("containers", [])


def find_container(pod, name):
    for container in containers(pod):
        if container.get("name") == name:
            return container
    return None


def container_env(container, pod=None):
    """The variables as the container would see them; refuses what needs a cluster.
    With POD, a fieldRef to the pod's metadata.name or metadata.namespace is resolved."""
    if container.get("envFrom"):
        raise CheckError(f"container {container['name']!r} uses envFrom, which needs a cluster")
    env = {}
    for entry in container.get("env", []):
        field = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if pod is not None and field in ("metadata.name", "metadata.namespace"):
            env[entry["name"]] = pod["metadata"][field.split(".")[1]]
            continue
        if "valueFrom" in entry:
            raise CheckError(f"{entry['name']} is set from a reference, which needs a cluster")
        value = entry.get("value", "")
        if "$(" in value:
            raise CheckError(f"{entry['name']} uses $(VAR) expansion, which this check does not do")
        env[entry["name"]] = value
    return env


def expand(arg, env):
    """Kubernetes' $(VAR) expansion of a container arg."""
    for name, value in env.items():
        arg = arg.replace(f"$({name})", value)
    if "$(" in arg:
        raise CheckError(f"an arg references a variable the sidecar does not set: {arg}")
    return arg


def rewrite_port(url, old, new):
    """URL with port OLD replaced by NEW; any other URL unchanged."""
    parts = urllib.parse.urlsplit(url)
    if parts.port != old:
        return url
    return parts._replace(netloc=f"{parts.hostname}:{new}").geturl()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mount_token_volumes(pod, container, root):
    """Writes a token into every projected service account token volume the container
    mounts, under ROOT; returns the token."""
    token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(32) + "." + secrets.token_urlsafe(32)
    volumes = {v.get("name"): v for v in pod.get("spec", {}).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        sources = volumes.get(mount.get("name"), {}).get("projected", {}).get("sources", [])
        for source in sources:
            if "serviceAccountToken" in source:
                path = os.path.join(root + mount["mountPath"], source["serviceAccountToken"]["path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(token)
    return token


class Helper:
    """The sidecar's aws_signing_helper, run on this machine (see the module doc)."""

    def __init__(self, pod, sidecar, volume_dir, endpoint, added, workdir):
        binary = os.environ.get("SIGNING_HELPER")
        if not binary or not os.access(binary, os.X_OK):
            raise CheckError("set SIGNING_HELPER to the aws_signing_helper binary (tools/go/signing-helper)")
        mounts = [m["mountPath"] for m in sidecar.get("volumeMounts", []) if m.get("name") == CERT_VOLUME]
        if len(mounts) != 1:
            raise CheckError(f"the sidecar does not mount {CERT_VOLUME} once: {sidecar.get('volumeMounts')}")
        env = container_env(sidecar, pod)
        args = [expand(a, env) for a in sidecar.get("args", [])]
        if "--port" not in args[:-1]:
            raise CheckError(f"the sidecar has no --port argument: {args}")
        i = args.index("--port") + 1
        self.patched_port, self.port = int(args[i]), free_port()
        args[i] = str(self.port)
        args += ["--endpoint", endpoint] + added
        prefix = mounts[0].rstrip("/") + "/"
        self.args = [volume_dir + "/" + a[len(prefix):] if a.startswith(prefix) else a for a in args]
        self.added = added
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [binary] + self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env={"PATH": os.path.dirname(binary), "HOME": workdir}, cwd=workdir,
            start_new_session=True,
        )

    def wait_listening(self):
        """Returns once the helper accepts connections; raises if it exits first."""
        deadline = time.monotonic() + HELPER_START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise CheckError(f"the helper exited with {self._process.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise CheckError(f"the helper did not listen within {HELPER_START_SECONDS}s: {self.log()}")

    def log(self):
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self):
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def report(self):
        return {"args": self.args, "added": self.added, "exit": self._process.returncode,
                "log": self.log().splitlines()}


def imds_calls(endpoint):
    """How the helper answers IMDS calls: without a token, then as IMDSv2 does."""
    import http.client

    host = urllib.parse.urlsplit(endpoint)
    calls = []

    def call(method, path, **headers):
        c = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read().decode()
        calls.append({"method": method, "path": path, "headers": sorted(headers), "status": r.status})
        return body

    call("GET", CREDENTIALS_PATH)
    call("PUT", "/latest/api/token", **{"X-Forwarded-For": "10.0.0.1"})
    token = call("PUT", "/latest/api/token", **{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    call("GET", CREDENTIALS_PATH, **{"X-aws-ec2-metadata-token": "forged"})
    role = call("GET", CREDENTIALS_PATH, **{"X-aws-ec2-metadata-token": token})
    served = json.loads(call("GET", CREDENTIALS_PATH + role, **{"X-aws-ec2-metadata-token": token}))
    return {"imds": calls, "role": role, "imds_served": served}


def probe_command(sdk):
    if sdk == "botocore":
        return [sys.executable, os.path.join(HERE, "sdk_probe.py")]
    if sdk == "go":
        binary = os.environ.get("SDK_PROBE_GO")
        if not binary:
            raise CheckError("set SDK_PROBE_GO to sdk-probe-go (tools/go/sdk-go)")
        return [binary]
    if sdk == "js":
        node = shutil.which("node")
        if not node:
            raise CheckError("node is not installed")
        return [node, os.path.abspath(JS_PROBE)]
    raise CheckError(f"unknown SDK {sdk!r}")


def run_probe(sdk, env, workdir):
    clean = {"HOME": workdir, "PATH": workdir, **env}
    result = subprocess.run(
        probe_command(sdk), env=clean, cwd=workdir, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise CheckError(f"the {sdk} probe failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def check(pod, name, args):
    container = find_container(pod, name)
    if container is None:
        raise CheckError(f"the pod has no container {name!r}")
    env = container_env(container)
    for var in args.without:
        env.pop(var, None)
    for assignment in args.set:
        var, _, value = assignment.partition("=")
        env[var] = value
    sidecar = find_container(pod, SIDECAR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = os.path.join(tmp, "empty")
        os.mkdir(workdir)
        report = {"endpoint": None, "token_file": None, "token": None, "sessions": [], "helper": None}
        if TOKEN_FILE in env:
            root = os.path.join(tmp, "root")
            report["token"] = mount_token_volumes(pod, container, root)
            env[TOKEN_FILE] = root + env[TOKEN_FILE]
            report["token_file"] = env[TOKEN_FILE]
        if sidecar is None:
            if args.sdk == "imds":
                raise CheckError("the pod has no credentials sidecar to call")
            report.update(run_probe(args.sdk, env, workdir))
            return report
        volume = os.path.join(tmp, "volume")
        root_pem = pki.write_volume(volume, args.pki)
        region = args.trust_anchor.split(":")[3]
        account = RolesAnywhereStandIn({args.trust_anchor: root_pem}, {args.profile: args.role}, region)
        with account as standin:
            helper = Helper(pod, sidecar, volume, standin.endpoint, args.helper_arg, workdir)
            try:
                helper.wait_listening()
                helper_endpoint = f"http://127.0.0.1:{helper.port}"
                if ENDPOINT in env:
                    patched = env[ENDPOINT]
                    env[ENDPOINT] = rewrite_port(patched, helper.patched_port, helper.port)
                    report["endpoint"] = {"patched": patched, "used": env[ENDPOINT]}
                if args.sdk == "imds":
                    report.update(imds_calls(helper_endpoint))
                else:
                    report.update(run_probe(args.sdk, env, workdir))
            finally:
                helper.stop()
            report["helper"] = helper.report()
            report["sessions"] = list(standin.sessions)
        return report


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pod", help="the patched pod (JSON file)")
    parser.add_argument("container", help="the container whose environment the SDK gets")
    parser.add_argument("--sdk", choices=("botocore", "go", "js", "imds"), default="botocore")
    parser.add_argument("--without", action="append", default=[], metavar="VAR",
                        help="drop VAR from the environment (a control)")
    parser.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                        help="set VAR to VALUE after --without (a control)")
    parser.add_argument("--pki", choices=pki.CASES, default="good",
                        help="the certificate volume's case (pki.py)")
    parser.add_argument("--helper-arg", action="append", default=[], metavar="ARG",
                        help="an arg the helper gets beyond the sidecar's")
    parser.add_argument("--trust-anchor", required=True, help="the account's trust anchor ARN")
    parser.add_argument("--profile", required=True, help="the account's profile ARN")
    parser.add_argument("--role", action="append", required=True,
                        help="a role ARN of the profile (repeatable)")
    args = parser.parse_args(argv[1:])
    try:
        with open(args.pod, encoding="utf-8") as f:
            report = check(json.load(f), args.container, args)
    except (CheckError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"sdk_check.py: {e}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
