"""A loopback stand-in for the credentials sidecar, `aws_signing_helper serve`.

It answers the IMDSv2 calls the AWS SDKs make, the way the credential helper's serve.go
(aws/rolesanywhere-credential-helper) does:

    PUT /latest/api/token                  a session token; TTL from
                                           X-aws-ec2-metadata-token-ttl-seconds (1..21600,
                                           default 21600), 400 for another TTL or with
                                           X-Forwarded-For (a request that came via a proxy)
    GET /latest/meta-data/iam/security-credentials/         the role name (no path)
    GET /latest/meta-data/iam/security-credentials/<role>   the credentials JSON
                                           (Code, Type, AccessKeyId, SecretAccessKey,
                                           Token, Expiration, LastUpdated)

A GET without a valid X-aws-ec2-metadata-token is refused with 401, so IMDSv1 gets
nothing; a wrong method is 405, any other path 404. Instead of calling IAM Roles
Anywhere it serves random credentials, and it records every request so that a test can
check how the SDK talked to it.

Used by sdk_check.py, which runs it in a thread of its own process.
"""
import base64
import datetime
import http.server
import json
import secrets
import string
import threading
import time

TOKEN_PATH = "/latest/api/token"
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL_SECONDS = 21600


def _random(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_credentials():
    """Credentials as serve.go returns them, with random keys valid for an hour."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "AccessKeyId": "ASIA" + _random(string.ascii_uppercase + string.digits, 16),
        "SecretAccessKey": _random(string.ascii_letters + string.digits + "/+", 40),
        "Token": base64.b64encode(secrets.token_bytes(96)).decode(),
        "Code": "Success",
        "Type": "AWS-HMAC",
        # serve.go passes on CreateSession's RFC 3339 expiration; LastUpdated is Go's
        # time.Now(), with fractional seconds.
        "Expiration": (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "LastUpdated": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


class ImdsStandIn:
    """`aws_signing_helper serve` for ROLE_NAME on 127.0.0.1, on a free port."""

    def __init__(self, role_name):
        self.role_name = role_name
        self.credentials = random_credentials()
        self.requests = []  # {"method", "path", "token": none|valid|invalid, "status"}
        self._tokens = {}  # token -> expiry (monotonic seconds)
        self._lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self):
                standin._handle(self)

            def do_GET(self):
                standin._handle(self)

            def do_POST(self):
                standin._handle(self)

            def log_message(self, *args):
                pass  # the test reads self.requests, not a log

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self):
        return self._server.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _token_state(self, token):
        if token is None:
            return "none"
        expiry = self._tokens.get(token)
        return "valid" if expiry is not None and time.monotonic() < expiry else "invalid"

    def _handle(self, handler):
        path = handler.path.split("?", 1)[0]
        token = handler.headers.get(TOKEN_HEADER)
        with self._lock:
            state = self._token_state(token)
            status, body, headers = self._route(handler, path, state, time.monotonic())
            self.requests.append(
                {"method": handler.command, "path": path, "token": state, "status": status}
            )
        data = body.encode()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, handler, path, state, now):
        """(status, body, headers) as serve.go answers."""
        if path in (TOKEN_PATH, TOKEN_PATH + "/"):
            if handler.command != "PUT":
                return 405, "", {}
            if handler.headers.get("X-Forwarded-For"):
                return 400, "unable to process requests with X-Forwarded-For header", {}
            ttl = handler.headers.get(TTL_HEADER, str(MAX_TTL_SECONDS))
            if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL_SECONDS:
                return 400, "invalid token TTL", {}
            token = base64.b64encode(secrets.token_bytes(96)).decode()[:100]
            self._tokens[token] = now + int(ttl)
            return 200, token, {TTL_HEADER: ttl}
        role_paths = (CREDENTIALS_PATH, CREDENTIALS_PATH + "/")
        credentials_paths = tuple(f"{CREDENTIALS_PATH}/{self.role_name}{s}" for s in ("", "/"))
        if path not in role_paths + credentials_paths:
            return 404, "404 page not found\n", {}
        if handler.command != "GET":
            return 405, "", {}
        if state != "valid":
            return 401, "no token provided" if state == "none" else "invalid token provided", {}
        if path in role_paths:
            return 200, self.role_name, {}
        return 200, json.dumps(self.credentials) + "\n", {}
