"""Pure ASGI middleware: request ids, latency metrics, one JSON access-log line."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyu.observability import REQUEST_LATENCY, request_id

log = logging.getLogger("quanyu.access")


class RequestContext:
    """Give every request an id (or keep the caller's ``X-Request-ID``) and measure it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._timers: dict[tuple[str, str, int], Any] = {}  # the histogram's children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:128]
                break
        # a request id need not be unpredictable: no system call for it
        rid = rid or f"{random.getrandbits(64):016x}"
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            key = (scope["method"], path, status)
            timer = self._timers.get(key)
            if timer is None:
                timer = self._timers[key] = REQUEST_LATENCY.labels(key[0], path, str(status))
            timer.observe(elapsed)
            if status >= 400 or log.isEnabledFor(logging.DEBUG):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                            "path": scope["path"],
                            "method": scope["method"],
                        }
                    },
                )
            request_id.reset(token)
