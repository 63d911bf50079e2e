"""A small client of the Kubernetes API over HTTPS, standard library only: what the
control plane's start-up and the kubelet stand-in need (get, create, patch, watch),
authenticated by the admin client certificate of the cluster's state directory."""
from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"{status}: {body[:500]}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, host: str, port: int, ca: Path, cert: Path | None = None,
                 key: Path | None = None, token: str | None = None):
        self.host, self.port, self.token = host, port, token
        self.context = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            self.context.load_cert_chain(str(cert), str(key))

    @classmethod
    def admin(cls, state: Path) -> "Client":
        port = int((state / "apiserver.port").read_text())
        pki = state / "pki"
        return cls("127.0.0.1", port, pki / "ca.crt", pki / "admin.crt", pki / "admin.key")

    def _connection(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=timeout)

    def request(self, method: str, path: str, body: object = None,
                content_type: str = "application/json", timeout: float = 30) -> dict:
        connection = self._connection(timeout)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status >= 300:
            raise ApiError(response.status, text)
        if not text:
            return {}
        return json.loads(text) if response.getheader("Content-Type", "").startswith(
            "application/json") else {"text": text}

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path: str) -> dict:
        return self.request("DELETE", path)

    def watch(self, path: str, resource_version: str, timeout: int = 300) -> Iterator[dict]:
        """The events of one watch (ends after timeout seconds, as the server closes it)."""
        connection = self._connection(timeout + 30)
        separator = "&" if "?" in path else "?"
        connection.request("GET", f"{path}{separator}watch=1&resourceVersion={resource_version}"
                           f"&allowWatchBookmarks=true&timeoutSeconds={timeout}",
                           headers={"Accept": "application/json"})
        response = connection.getresponse()
        if response.status >= 300:
            raise ApiError(response.status, response.read().decode())
        try:
            for line in response:
                if line.strip():
                    yield json.loads(line)
        finally:
            connection.close()
