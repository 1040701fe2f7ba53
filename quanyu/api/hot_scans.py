"""The consumer scan's fast path: pure ASGI, in front of FastAPI and its middleware.

Routing, dependency solving and a worker thread cost a scan more than the scan itself
(a code looked up in memory, a record appended to the scan log). When the scanner can
answer from memory (:meth:`quanyu.codes.scans.Scanner.scan_now`), this answers on the
event loop once the record is durable. Anything else goes on to the route itself with
the body replayed — a body that does not validate, a tenant or code not in memory yet,
a caller over its rate limit, another content type, a browser's cross-origin call (CORS
answers those) — so errors and documentation come from one place:
``POST /v1/public/tenants/{tenant_id}/scans`` in ``api/scans.py``.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyu.api.errors import error_response
from quanyu.codes.scan_models import ScanRequest
from quanyu.codes.scans import Scanner
from quanyu.store.journal import JournalError

log = logging.getLogger("quanyu.api.hot_scans")

_PATH = re.compile(r"/v1/public/tenants/([A-Za-z0-9_-]{1,100})/scans")
#: What the request context reads of a matched route (its path labels the latency metric).
_LABEL = SimpleNamespace(path="/v1/public/tenants/{tenant_id}/scans")
#: Larger bodies take the route (a scan request is a few hundred bytes).
MAX_BODY = 16 << 10
_JSON = (b"content-type", b"application/json")


class HotScans:
    """Answer consumer scans the scanner can answer from memory; pass on the rest."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi  # its state holds the scanner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        m = _PATH.fullmatch(scope["path"])
        scanner: Scanner | None = getattr(self.fastapi.state, "scanner", None) if m else None
        if m is None or scanner is None or not _plain_json(scope):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        if more:  # too large for a scan: the route reads the rest and answers
            await self.app(scope, _replay(body, receive, done=False), send)
            return
        try:
            req = ScanRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)
            return
        tenant = m.group(1)
        client = scope.get("client")
        try:
            now = scanner.scan_now(req, tenant=tenant, ip=client[0] if client else None)
        except JournalError as e:  # the server is stopping
            why = f"The scan could not be stored ({e}); scan again in a moment."
            await error_response(503, "unavailable", why)(scope, receive, send)
            return
        except Exception:  # answered as the app answers any unexpected error
            log.exception("consumer scan failed on the fast path")
            why = "An internal error occurred; it is logged with this request's id."
            await error_response(500, "internal_error", why)(scope, receive, send)
            return
        if now is None:
            await self.app(scope, _replay(body, receive), send)
            return
        result, durable = now
        scope["route"] = _LABEL
        try:
            await durable
        except JournalError as e:
            err = scanner.failed(result, tenant, e)
            await error_response(err.status, err.code, err.message)(scope, receive, send)
            return
        data = result.model_dump_json().encode()
        headers = [_JSON, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _plain_json(scope: Scope) -> bool:
    """A JSON body and no ``Origin`` (mini-programs and apps send none; browsers do)."""
    json = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            json = value.split(b";")[0].strip().lower() == b"application/json"
        elif name == b"origin":
            return False
    return json


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The request body up to :data:`MAX_BODY` bytes, and whether more is to come."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), False
        if size > MAX_BODY:
            return b"".join(parts), True


def _replay(body: bytes, receive: Receive, *, done: bool = True) -> Receive:
    """``receive`` that gives ``body`` first (the whole body unless ``done`` is false)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": not done}
        return await receive()

    return replay
