"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from quanyu.api.deps import IngestorDep
from quanyu.errors import Unavailable
from quanyu.observability import IDENTITY_COMMITS_BEHIND, QUEUE_DEPTH, REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, ingestor: IngestorDep) -> dict[str, object]:
    """The database answers and the writer thread runs."""
    if not ingestor.writer.alive:
        raise Unavailable("The writer thread has stopped; restart the server.")
    with ingestor.engine.connect() as db:
        db.raw_ping()
    return {"status": "ready", "queued_events": ingestor.writer.depth}


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, ingestor: IngestorDep) -> Response:
    """Prometheus text exposition."""
    QUEUE_DEPTH.set(ingestor.writer.depth)
    resolver = getattr(request.app.state, "resolver", None)
    if resolver is not None:
        IDENTITY_COMMITS_BEHIND.set(resolver.commits_behind)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
