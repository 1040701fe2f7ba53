"""The bare baseline for the HTTP ingest benchmark: decode with msgspec, append to a file.

It does the least an ingest endpoint can: no auth, no validation, no database.
Quanyu's figure is reported as a ratio to this one, measured in the same run.
"""

from __future__ import annotations

import os

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_decoder = msgspec.json.Decoder()
_sink = open(os.environ.get("BASELINE_SINK", os.devnull), "ab")  # noqa: SIM115


async def batch(request: Request) -> Response:
    body = await request.body()
    doc = _decoder.decode(body)
    _sink.write(body)
    return Response(
        b'{"success":true,"accepted":%d}' % len(doc["batch"]), media_type="application/json"
    )


app = Starlette(routes=[Route("/v1/batch", batch, methods=["POST"])])
