#!/usr/bin/env python3
"""Runs botocore's default credential chain as one container of a patched pod would.

    sdk_check.py POD CONTAINER [--without VAR]...    prints a JSON report

POD is a pod as the policy's patch left it (JSON file). The container's environment is
taken exactly as patched, with two rewrites that only move things onto this machine:

- AWS_EC2_METADATA_SERVICE_ENDPOINT: when the pod has the credentials sidecar, a
  stand-in for it (imds_standin.py) listens on 127.0.0.1 on a free port, and the
  endpoint's port is rewritten from the sidecar's --port to that one, nothing else. An
  endpoint on another port or host is left as written.
- AWS_WEB_IDENTITY_TOKEN_FILE: the container's projected service account token volumes
  are written under a temporary root (a made-up token at each mount path), and the
  variable is prefixed with that root; a path that no such volume mounts stays missing.

botocore then runs (sdk_probe.py) in a clean environment: the container's variables,
plus HOME and PATH set to an empty directory so no ~/.aws file or program leaks in.
--without VAR drops VAR from the environment first: a control that shows a test depends
on it.

The report: the probe's (method, credentials, region, error, sts, sts_served, blocked),
plus `imds` (each request the stand-in got: method, path, token none/valid/invalid,
status), `imds_served` (its credentials), `endpoint` (as patched and as used), and
`token_file` / `token` (the rewritten path and the token written, for IRSA).
"""
import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.parse

from imds_standin import ImdsStandIn

SIDECAR = "iamra-credential-helper"
ENDPOINT = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_probe.py")


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


def container_env(container):
    """The variables as the container would see them; refuses what needs a cluster."""
    if container.get("envFrom"):
        raise CheckError(f"container {container['name']!r} uses envFrom, which needs a cluster")
    env = {}
    for entry in container.get("env", []):
        if "valueFrom" in entry:
            raise CheckError(f"{entry['name']} is set from a reference, which needs a cluster")
        value = entry.get("value", "")
        if "$(" in value:
            raise CheckError(f"{entry['name']} uses $(VAR) expansion, which this check does not do")
        env[entry["name"]] = value
    return env


def sidecar_arg(sidecar, flag):
    args = sidecar.get("args", [])
    if flag not in args[:-1]:
        raise CheckError(f"the sidecar has no {flag} argument: {args}")
    return args[args.index(flag) + 1]


def rewrite_port(url, old, new):
    """URL with port OLD replaced by NEW; any other URL unchanged."""
    parts = urllib.parse.urlsplit(url)
    if parts.port != old:
        return url
    return parts._replace(netloc=f"{parts.hostname}:{new}").geturl()


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


def run_probe(env, workdir):
    clean = {"HOME": workdir, "PATH": workdir, **env}
    result = subprocess.run(
        [sys.executable, PROBE], env=clean, cwd=workdir, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise CheckError(f"the SDK probe failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def check(pod, name, without):
    container = find_container(pod, name)
    if container is None:
        raise CheckError(f"the pod has no container {name!r}")
    env = container_env(container)
    for var in without:
        env.pop(var, None)
    sidecar = find_container(pod, SIDECAR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = os.path.join(tmp, "empty")
        os.mkdir(workdir)
        report = {"endpoint": None, "token_file": None, "token": None}
        if TOKEN_FILE in env:
            root = os.path.join(tmp, "root")
            report["token"] = mount_token_volumes(pod, container, root)
            env[TOKEN_FILE] = root + env[TOKEN_FILE]
            report["token_file"] = env[TOKEN_FILE]
        if sidecar is None:
            report.update(run_probe(env, workdir), imds=[], imds_served=None)
            return report
        port = int(sidecar_arg(sidecar, "--port"))
        role_name = sidecar_arg(sidecar, "--role-arn").rsplit("/", 1)[-1]
        with ImdsStandIn(role_name) as standin:
            if ENDPOINT in env:
                patched = env[ENDPOINT]
                env[ENDPOINT] = rewrite_port(patched, port, standin.port)
                report["endpoint"] = {"patched": patched, "used": env[ENDPOINT]}
            report.update(run_probe(env, workdir))
            report["imds"] = list(standin.requests)
            report["imds_served"] = standin.credentials
        return report


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pod", help="the patched pod (JSON file)")
    parser.add_argument("container", help="the container whose environment the SDK gets")
    parser.add_argument("--without", action="append", default=[], metavar="VAR",
                        help="drop VAR from the environment (a control)")
    args = parser.parse_args(argv[1:])
    try:
        with open(args.pod, encoding="utf-8") as f:
            report = check(json.load(f), args.container, args.without)
    except (CheckError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"sdk_check.py: {e}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
