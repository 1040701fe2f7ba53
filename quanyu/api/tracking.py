"""The tracking API, compatible with Segment's HTTP spec (and so with its SDKs).

Routes only translate: find the write key, read the body within Segment's limits,
and hand raw messages to :class:`quanyu.ingest.service.Ingestor`.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from quanyu.api.deps import IngestorDep
from quanyu.errors import InvalidJson, InvalidRequest, PayloadTooLarge
from quanyu.ingest.models import Accepted
from quanyu.ingest.normalize import (
    MAX_REQUEST_BYTES,
    BadBody,
    decode_envelope,
    decode_write_key,
)
from quanyu.ingest.service import Ingestor

router = APIRouter(tags=["tracking"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
        },
        "description": 'A Segment message (or {"batch": [...]}) as JSON, whatever the'
        " Content-Type; gzip bodies with Content-Encoding: gzip.",
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON, a size limit, or every message invalid"},
    401: {"description": "No, unknown or revoked write key"},
    429: {"description": "Over the source's rate limit: see Retry-After"},
}


async def read_body(request: Request) -> bytes:
    """The request body, gunzipped, refusing anything over Segment's 500 KB."""
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_REQUEST_BYTES * 4:
            break
        parts.append(part)
    body = b"".join(parts)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
        except zlib.error as e:
            raise InvalidRequest(f"The body is marked gzip but does not inflate: {e}.") from e
        size = len(body)
    if size > MAX_REQUEST_BYTES:
        raise PayloadTooLarge(
            f"The request is over {MAX_REQUEST_BYTES // 1024} KB; send smaller batches."
        )
    if not body.strip():
        raise InvalidRequest("The request body is empty: send a JSON message.")
    return body


def header_write_key(request: Request) -> str | None:
    """The write key from basic auth (``writeKey:``), ``X-Write-Key`` or ``?writeKey=``."""
    auth = request.headers.get("authorization")
    if auth and auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise InvalidRequest(
                "The Authorization header is not valid basic auth: use base64('writeKey:')."
            ) from e
        return user.partition(":")[0] or None
    return request.headers.get("x-write-key") or request.query_params.get("writeKey")


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _answer(accepted: int, rejects: list[Any]) -> Response:
    body = {"success": True, "accepted": accepted, "rejected": [r.public() for r in rejects]}
    return Response(orjson.dumps(body), media_type="application/json")


def _body_error(e: BadBody, note: str = "") -> InvalidRequest:
    """The API error for an unusable body, keeping the decoder's code (invalid_json ...)."""
    cls = {"invalid_json": InvalidJson, "payload_too_large": PayloadTooLarge}.get(
        e.code, InvalidRequest
    )
    return cls(e.message + note)


async def _single(request: Request, ingestor: Ingestor, kind: str) -> Response:
    received_at = datetime.now(UTC)
    body = await read_body(request)
    key = header_write_key(request)
    if key is None:
        try:
            key = decode_write_key(body)
        except BadBody as e:  # no key anywhere: nowhere to keep the body
            raise _body_error(e) from e
    auth = ingestor.authenticate(key)
    # a malformed body becomes a dead letter inside accept(), answered as invalid_json
    accepted, rejects = await ingestor.accept(
        auth, [body], received_at=received_at, path_type=kind, ip=_client_ip(request)
    )
    return _answer(accepted, rejects)


async def _batch(request: Request, ingestor: Ingestor, *, historical: bool = False) -> Response:
    received_at = datetime.now(UTC)
    body = await read_body(request)
    key = header_write_key(request)
    try:
        env = decode_envelope(body)
    except BadBody as e:
        if key is None:
            raise _body_error(e) from e
        auth = ingestor.authenticate(key)
        await ingestor.reject_body(auth, body, e)
        raise _body_error(e, " The body is kept in the dead-letter store.") from e
    auth = ingestor.authenticate(key or env.writeKey)
    accepted, rejects = await ingestor.accept(
        auth,
        env.batch or [],
        received_at=received_at,
        batch_context=env.context,
        batch_integrations=env.integrations,
        batch_sent_at=env.sentAt,
        ip=_client_ip(request),
        correct_skew=not historical,
    )
    return _answer(accepted, rejects)


def _single_route(kind: str, *paths: str) -> None:
    async def handler(request: Request, ingestor: IngestorDep) -> Response:
        return await _single(request, ingestor, kind)

    handler.__doc__ = (
        f"Record a Segment `{kind}` call. The write key comes from basic auth, `X-Write-Key`,"
        " `?writeKey=` or the body. 200 means durable: committed, or (a commit later than"
        " `QUANYU_JOURNAL_ACK_MS`) synced to the ingest journal and committed a moment later."
    )
    for i, path in enumerate(paths):
        router.add_api_route(
            path,
            handler,
            methods=["POST"],
            response_model=Accepted,
            name=f"{kind}_{i}",
            openapi_extra=_BODY_DOC,
            responses=_RESPONSES,
            include_in_schema=i == 0,
            summary=f"{kind.capitalize()}" if i == 0 else None,
        )


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    _single_route(_kind, f"/v1/{_kind}", f"/v1/{_kind[0]}")


@router.post("/v1/batch", response_model=Accepted, openapi_extra=_BODY_DOC, responses=_RESPONSES)
async def batch(request: Request, ingestor: IngestorDep) -> Response:
    """Record up to 2,500 messages (500 KB). Invalid ones go to the dead-letter store and are
    listed in the answer; the rest are durable before the 200: committed, or (a commit later
    than `QUANYU_JOURNAL_ACK_MS`) synced to the ingest journal and committed a moment later."""
    return await _batch(request, ingestor)


@router.post("/v1/b", include_in_schema=False)
async def batch_short(request: Request, ingestor: IngestorDep) -> Response:
    return await _batch(request, ingestor)


@router.post("/v1/import", response_model=Accepted, openapi_extra=_BODY_DOC, responses=_RESPONSES)
async def import_(request: Request, ingestor: IngestorDep) -> Response:
    """Segment's historical import endpoint: a batch whose timestamps are kept as sent."""
    return await _batch(request, ingestor, historical=True)


@router.get("/v1/projects/{write_key}/settings")
def project_settings(write_key: str, request: Request, ingestor: IngestorDep) -> dict[str, Any]:
    """The settings document analytics.js fetches at load: it sends events back here."""
    ingestor.authenticate(write_key)
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{host}/v1",
                "protocol": request.url.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
