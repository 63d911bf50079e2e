"""What botocore's default credential chain resolves in this process's environment.

sdk_check.py runs this with nothing but an app container's environment (as the policy
patched it) plus an empty HOME and PATH, and reads the JSON it prints:

    sdk          "botocore <version>"
    method       the provider the chain chose (iam-role, env, assume-role-with-web-identity,
                 ...), null when it found no credentials
    credentials  the resolved access_key, secret_key and token, or null
    region       the region a client would use, or null
    error        why resolving failed, or null
    sts          AssumeRoleWithWebIdentity calls: {url, params}; answered in process with
                 `sts_served` (botocore's before-send hook), so STS is never called
    blocked      connections and lookups the fence refused: anything but loopback

The fence is an audit hook: the SDK may talk to 127.0.0.0/8 only, so a wrongly wired
container fails the test instead of reaching EC2's 169.254.169.254 or the internet.
"""
import ipaddress
import json
import sys
import urllib.parse

from rolesanywhere_standin import random_credentials

blocked = []


def is_loopback(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fence(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not is_loopback(address[0]):
            blocked.append(f"connect {address[0]}:{address[1]}")
            raise PermissionError(f"sdk_probe: no traffic to {address[0]} (loopback only)")
    elif event == "socket.getaddrinfo" and args[0] is not None and not is_loopback(args[0]):
        host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        blocked.append(f"lookup {host}")
        raise PermissionError(f"sdk_probe: no lookup of {host} (loopback only)")


sys.addaudithook(fence)

import botocore  # noqa: E402  (after the fence: nothing may connect before it)
import botocore.awsrequest  # noqa: E402
import botocore.session  # noqa: E402


class StsStandIn:
    """Answers AssumeRoleWithWebIdentity before it is sent, and records the request."""

    def __init__(self):
        self.calls = []
        self.served = random_credentials()

    def __call__(self, request, **_):
        body = request.body or ""
        params = urllib.parse.parse_qs(body.decode() if isinstance(body, bytes) else body)
        self.calls.append({"url": request.url, "params": {k: v[0] for k, v in params.items()}})
        c = self.served
        body = (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            f"<AccessKeyId>{c['accessKeyId']}</AccessKeyId>"
            f"<SecretAccessKey>{c['secretAccessKey']}</SecretAccessKey>"
            f"<SessionToken>{c['sessionToken']}</SessionToken>"
            f"<Expiration>{c['expiration']}</Expiration>"
            "</Credentials></AssumeRoleWithWebIdentityResult>"
            "<ResponseMetadata><RequestId>sdk-probe</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        ).encode()
        return botocore.awsrequest.AWSResponse(request.url, 200, {}, _Raw(body))


class _Raw:
    def __init__(self, body):
        self._body = body

    def stream(self, **_):
        yield self._body


def main():
    session = botocore.session.get_session()
    sts = StsStandIn()
    session.register("before-send.sts.AssumeRoleWithWebIdentity", sts)
    report = {"sdk": f"botocore {botocore.__version__}", "method": None, "credentials": None}
    report["region"] = session.get_config_variable("region")
    report["error"] = None
    try:
        credentials = session.get_credentials()
        if credentials is not None:
            report["method"] = credentials.method
            frozen = credentials.get_frozen_credentials()
            report["credentials"] = {
                "access_key": frozen.access_key,
                "secret_key": frozen.secret_key,
                "token": frozen.token,
            }
    except Exception as e:  # the test reports it: any failure of the chain counts
        report["error"] = f"{type(e).__name__}: {e}"
    report["sts"] = sts.calls
    report["sts_served"] = sts.served if sts.calls else None
    report["blocked"] = blocked
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
