"""A small Python client of Quanyu's management API, used by the CLI.

It talks to the server that owns the data dir when one runs (found through
``server.json``), and otherwise to the same app run in-process, so every CLI
command goes through one code path: the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from quanyu import errors
from quanyu.config import Settings
from quanyu.store import running_server

_BY_CODE: dict[str, type[errors.QuanyuError]] = {}
for _cls in (
    errors.InvalidRequest,
    errors.InvalidJson,
    errors.PayloadTooLarge,
    errors.ValidationFailed,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.Unavailable,
    errors.StoreLocked,
):
    _BY_CODE[_cls.code] = _cls


class Client:
    """Management API calls that raise :class:`quanyu.errors.QuanyuError` on failure."""

    def __init__(self, http: httpx.Client, *, remote: str | None = None) -> None:
        self.http = http
        self.remote = remote

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON body."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise errors.Unavailable(
                f"Cannot reach the Quanyu server at {self.remote}: {e}."
            ) from e
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = body.get("code", "error"), body.get("message", response.text)
            except ValueError:
                code, message = "error", response.text
            cls = _BY_CODE.get(code, errors.QuanyuError)
            raise cls(message, details=body.get("rejected") if isinstance(body, dict) else None)
        return response.json() if response.content else None

    def download(self, path: str, **params: Any) -> bytes:
        """GET a file: the raw body (errors raise as for JSON calls)."""
        response = self.http.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        )
        if response.status_code >= 400:
            self.request("GET", path, params=params)  # raises the decoded error
        return response.content

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request(
            "DELETE", path, params={k: v for k, v in params.items() if v is not None}
        )


@contextmanager
def connect(settings: Settings, *, timeout: float = 300.0) -> Iterator[Client]:
    """A client of the running server, or of an in-process app when none runs."""
    server = running_server(settings)
    if server:
        headers = {"Authorization": f"Bearer {server.get('token', '')}"}
        with httpx.Client(base_url=server["url"], headers=headers, timeout=timeout) as http:
            yield Client(http, remote=server["url"])
        return
    from quanyu.api.local import in_process

    with in_process(settings) as http:
        yield Client(http)
