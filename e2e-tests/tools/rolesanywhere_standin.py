"""A loopback stand-in for IAM Roles Anywhere's CreateSession, the only AWS part the SDK
suite writes: the real aws_signing_helper calls it through --endpoint.

    POST /sessions?profileArn=..&roleArn=..&trustAnchorArn=..   (rolesanywhere API 2018-05-10)

It checks what the service checks, in its order, and refuses as the service does
(x-amzn-ErrorType and {"message"}: 403 AccessDeniedException, 400 ValidationException,
404 ResourceNotFoundException):

- the SigV4-X.509 Authorization header: AWS4-X509-ECDSA-SHA256 or AWS4-X509-RSA-SHA256,
  Credential=<the X-Amz-X509 certificate's serial, decimal>/<date>/<region>/rolesanywhere/
  aws4_request, SignedHeaders covering host, x-amz-date, x-amz-x509 (and x-amz-x509-chain
  when sent), X-Amz-Date within 5 minutes;
- the signature: the string to sign (algorithm, X-Amz-Date, scope, SHA-256 of the
  canonical request: method, path, sorted query, signed headers, SHA-256 of the body)
  verified with the public key of the certificate in X-Amz-X509;
- the trust anchor ARN and the profile ARN exist in this region, the role is one of the
  profile's;
- the certificate chains to the trust anchor's certificate through the certificates of
  X-Amz-X509-Chain (RFC 5280 path validation at this moment, so validity dates count:
  cryptography's client verifier), and the session duration is 900..43200 seconds.

Then it answers as the service does: credentialSet[0] with credentials (ASIA access key
id, secret, session token, RFC 3339 expiration after durationSeconds), assumedRoleUser,
roleArn, sourceIdentity (CN=...) and subjectArn. Every request is recorded (`sessions`):
the ARNs, algorithm, chain length, status and refusal, and the credentials issued; and
as sent (`raw`), so that a test can replay it altered.
"""
import base64
import binascii
import datetime
import hashlib
import http.server
import json
import secrets
import string
import threading
import urllib.parse
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

ALGORITHMS = {"AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256"}
SERVICE = "rolesanywhere"
MAX_SKEW = datetime.timedelta(minutes=5)
REQUIRED_SIGNED = ("host", "x-amz-date", "x-amz-x509")


class Refusal(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _denied(message):
    return Refusal(403, "AccessDeniedException", message)


def _invalid(message):
    return Refusal(400, "ValidationException", message)


def _random(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_credentials(seconds=3600):
    """Temporary credentials in the service's shape, valid for SECONDS."""
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return {
        "accessKeyId": "ASIA" + _random(string.ascii_uppercase + string.digits, 16),
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "secretAccessKey": _random(string.ascii_letters + string.digits + "/+", 40),
        "sessionToken": base64.b64encode(secrets.token_bytes(96)).decode(),
    }


def _uri_encode(text):
    # SigV4's encoding: everything but the unreserved characters, spaces as %20.
    return urllib.parse.quote(text, safe="-_.~")


def canonical_query(raw_query):
    pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(pairs))


def _der_certificate(text, what):
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise _invalid(f"{what} is not a base64 DER certificate") from None


class RolesAnywhereStandIn:
    """CreateSession on 127.0.0.1, a free port, for one account's configuration:
    TRUST_ANCHORS {arn: root certificate PEM}, PROFILES {arn: [role ARNs]}, in REGION."""

    def __init__(self, trust_anchors, profiles, region):
        self.trust_anchors = {
            arn: x509.load_pem_x509_certificates(pem) for arn, pem in trust_anchors.items()
        }
        self.profiles = profiles
        self.region = region
        self.sessions = []
        self.raw = []  # (method, path, headers, body) of each request, for replays
        self._lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                standin._handle(self)

            def do_GET(self):
                standin._handle(self)

            def log_message(self, *args):
                pass  # the test reads self.sessions, not a log

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        self.raw.append((handler.command, handler.path, dict(handler.headers), body))
        record = {"status": 200, "refusal": None}
        try:
            answer = self._create_session(handler, body, record)
            data, headers = json.dumps(answer).encode(), {}
        except Refusal as r:
            record.update(status=r.status, refusal=f"{r.kind}: {r.message}")
            data = json.dumps({"message": r.message}).encode()
            headers = {"x-amzn-ErrorType": r.kind}
        with self._lock:
            self.sessions.append(record)
        handler.send_response(record["status"])
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _create_session(self, handler, body, record):
        url = urllib.parse.urlsplit(handler.path)
        if handler.command != "POST" or url.path != "/sessions":
            raise Refusal(404, "UnknownOperationException", f"{handler.command} {url.path}")
        query = dict(urllib.parse.parse_qsl(url.query))
        record.update({k: query.get(k) for k in ("trustAnchorArn", "profileArn", "roleArn")})
        leaf, chain = self._check_signature(handler, url, body, record)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise _invalid("the body is not JSON") from None
        record["durationSeconds"] = duration = params.get("durationSeconds", 3600)
        record["roleSessionName"] = params.get("roleSessionName")
        self._check_arns(query)
        self._check_chain(query["trustAnchorArn"], leaf, chain)
        if not isinstance(duration, int) or not 900 <= duration <= 43200:
            raise _invalid(f"durationSeconds {duration!r} is outside 900..43200")
        answer = self._credentials(query, leaf, duration, params.get("roleSessionName"))
        record["issued"] = answer["credentialSet"][0]["credentials"]
        return answer

    def _check_signature(self, handler, url, body, record):
        """The certificate, the chain sent with it; raises unless the SigV4-X.509
        signature verifies with the certificate's key."""
        headers = handler.headers
        auth = headers.get("Authorization") or ""
        algorithm, _, rest = auth.partition(" ")
        record["algorithm"] = algorithm
        if algorithm not in ALGORITHMS:
            raise _denied(f"unsupported signing algorithm {algorithm!r}")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        credential = fields.get("Credential", "").split("/")
        signed = fields.get("SignedHeaders", "").split(";")
        if len(credential) != 5 or credential[3:] != [SERVICE, "aws4_request"]:
            raise _denied(f"malformed Credential {fields.get('Credential')!r}")
        serial, day, region = credential[:3]
        if region != self.region:
            raise _denied(f"credential scope region {region!r}, this endpoint is {self.region!r}")
        missing = [h for h in REQUIRED_SIGNED if h not in signed]
        if "x-amz-x509-chain" in {k.lower() for k in headers} and "x-amz-x509-chain" not in signed:
            missing.append("x-amz-x509-chain")
        if missing:
            raise _denied(f"headers not signed: {', '.join(missing)}")
        amz_date = headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc
            )
        except ValueError:
            raise _denied(f"bad X-Amz-Date {amz_date!r}") from None
        if abs(datetime.datetime.now(datetime.timezone.utc) - when) > MAX_SKEW or day != amz_date[:8]:
            raise _denied("Signature expired or not yet valid (X-Amz-Date)")
        leaf = _der_certificate(headers.get("X-Amz-X509", ""), "X-Amz-X509")
        if str(leaf.serial_number) != serial:
            raise _denied("the Credential's serial number is not the certificate's")
        chain_header = headers.get("X-Amz-X509-Chain")
        chain = [_der_certificate(c, "X-Amz-X509-Chain") for c in chain_header.split(",")] if chain_header else []
        record["chain"] = len(chain)
        canonical_headers = "".join(
            f"{name}:{','.join(' '.join(v.split()) for v in headers.get_all(name, []))}\n" for name in signed
        )
        canonical_request = "\n".join([
            handler.command, url.path, canonical_query(url.query), canonical_headers,
            ";".join(signed), hashlib.sha256(body).hexdigest(),
        ])
        string_to_sign = "\n".join([
            algorithm, amz_date, f"{day}/{region}/{SERVICE}/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ])
        try:
            signature = bytes.fromhex(fields.get("Signature", ""))
            key = leaf.public_key()
            if algorithm == "AWS4-X509-ECDSA-SHA256" and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, string_to_sign.encode(), ec.ECDSA(hashes.SHA256()))
            elif algorithm == "AWS4-X509-RSA-SHA256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
            else:
                raise InvalidSignature
        except (InvalidSignature, ValueError):
            raise _denied("The request signature we calculated does not match the signature you provided") from None
        return leaf, chain

    def _check_arns(self, query):
        for name in ("trustAnchorArn", "profileArn", "roleArn"):
            if not query.get(name):
                raise _invalid(f"{name} is required")
        if query["trustAnchorArn"] not in self.trust_anchors:
            raise Refusal(404, "ResourceNotFoundException", "Unable to find trust anchor")
        roles = self.profiles.get(query["profileArn"])
        if roles is None:
            raise Refusal(404, "ResourceNotFoundException", "Unable to find profile")
        if query["roleArn"] not in roles:
            raise _denied("Role is not associated with the profile")

    def _check_chain(self, trust_anchor_arn, leaf, chain):
        store = Store(self.trust_anchors[trust_anchor_arn])
        verifier = (
            PolicyBuilder().store(store).time(datetime.datetime.now(datetime.timezone.utc))
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, chain)
        except VerificationError as e:
            raise _denied(f"Untrusted signing certificate: {e}") from None

    def _credentials(self, query, leaf, duration, role_session_name):
        account = query["roleArn"].split(":")[4]
        role_name = query["roleArn"].rsplit("/", 1)[-1]
        session = role_session_name or format(leaf.serial_number, "x")
        role_id = "AROA" + _random(string.ascii_uppercase + string.digits, 17)
        common_names = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return {
            "credentialSet": [{
                "assumedRoleUser": {
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
                    "assumedRoleId": f"{role_id}:{session}",
                },
                "credentials": random_credentials(duration),
                "packedPolicySize": 0,
                "roleArn": query["roleArn"],
                "sourceIdentity": f"CN={common_names[0].value}" if common_names else "",
            }],
            "subjectArn": f"arn:aws:rolesanywhere:{self.region}:{account}:subject/{uuid.uuid4()}",
        }
