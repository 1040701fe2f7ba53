"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from quanyu import __version__
from quanyu.api import (
    audiences,
    codes,
    consent,
    consent_subscribers,
    delivery,
    errors,
    events,
    identity,
    imports,
    ledger,
    ops,
    plans,
    privacy,
    profiles,
    scans,
    tags,
    tenancy,
    tracking,
    users,
)
from quanyu.api.hot_scans import HotScans
from quanyu.api.middleware import RequestContext
from quanyu.audiences import sendgate
from quanyu.audiences.refresh import Refresher
from quanyu.config import Settings, get_settings
from quanyu.consent.capture import Capturer
from quanyu.console import app as console
from quanyu.delivery.worker import DeliveryWorker
from quanyu.identity.secrets import load_master_key
from quanyu.identity.service import Resolver
from quanyu.ingest.journal import IngestJournal
from quanyu.ingest.service import Ingestor
from quanyu.ingest.writer import Writer
from quanyu.ledger.checkpointer import Checkpointer
from quanyu.observability import COMMITS
from quanyu.store import open_store
from quanyu.store.journal import journal_dir

DESCRIPTION = """
Quanyu is an API-first omnichannel customer data platform.

* **Tracking** — Segment-compatible: point analytics.js, analytics-python or RudderStack SDKs
  here with a source's write key.
* **Management** — `Authorization: Bearer sk_...` with a secret key; ISVs manage the tenants
  they deliver for, tenants see only their own data.
"""


class QuanyuApp(FastAPI):
    """FastAPI with the request context (ids, latency, access log) and the consumer
    scan's fast path in front of its whole middleware stack, which a fast scan skips."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._front: ASGIApp = RequestContext(HotScans(partial(FastAPI.__call__, self), self))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, announce: bool = False, local_token: str | None = None
) -> FastAPI:
    """Build the app.

    With ``announce`` the server writes ``server.json`` (pid, URL and a local token
    readable only by its owner) so the CLI on this machine can find and call it.
    ``local_token`` sets that token for an in-process app.
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = open_store(settings)
        writer = Writer(
            engine,
            max_events=settings.max_commit_events,
            linger_ms=settings.commit_interval_ms,
            dedup_window=timedelta(hours=settings.dedup_window_hours),
            journal=IngestJournal(journal_dir(settings.data_dir)),
        )
        writer.start()
        master_key = load_master_key(settings.data_dir)
        resolver = Resolver(engine, master_key)
        ingestor = Ingestor(
            engine,
            writer,
            default_rate_limit=settings.default_rate_limit,
            sealers=resolver.sealer,
            journal_ack=settings.journal_ack_ms / 1000,
        )
        writer.add_listener(resolver.notify)
        resolver.start()
        deliverer = DeliveryWorker(
            engine,
            master_key=master_key,
            gates=sendgate.GATES,
            allow_private=settings.webhook_allow_private_networks,
            retention=timedelta(days=settings.delivery_retention_days)
            if settings.delivery_retention_days
            else None,
        )
        deliverer.start()
        capturer = Capturer(engine, on_change=deliverer.notify)
        resolver.add_listener(capturer.notify)
        capturer.start()
        refresher = Refresher(engine, interval=settings.refresh_interval)
        refresher.start()
        checkpointer = Checkpointer(engine, master_key, interval=settings.checkpoint_interval)
        checkpointer.start()
        app.state.capturer = capturer
        app.state.checkpointer = checkpointer
        app.state.refresher = refresher
        app.state.deliverer = deliverer
        app.state.master_key = master_key
        app.state.settings = settings
        app.state.resolver = resolver
        app.state.engine = engine
        app.state.ingestor = ingestor
        app.state.local_token = local_token
        if announce:
            app.state.local_token = local_token or secrets.token_urlsafe(32)
            fd = os.open(settings.server_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(
                    {
                        "pid": os.getpid(),
                        "url": settings.base_url,
                        "version": __version__,
                        "token": app.state.local_token,
                    },
                    f,
                )
        scans.recover(app.state)  # scans a killed process answered but did not fold
        if announce:  # a server (not a CLI command's in-process app) warms its scan path
            scans.warm(app.state)
        housekeeping = asyncio.create_task(_housekeeping(ingestor))
        try:
            yield
        finally:
            housekeeping.cancel()
            scanner = getattr(app.state, "scanner", None)
            if scanner is not None:  # its last fold goes through the ingest writer
                scanner.stop()
            writer.stop()
            capturer.stop()
            resolver.stop()
            refresher.stop()
            checkpointer.stop()
            deliverer.stop()
            ingestor.flush_key_use()
            if announce:
                settings.server_file.unlink(missing_ok=True)
            engine.close()

    app = QuanyuApp(
        title="Quanyu",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "X-RateLimit-Reset", "X-Request-ID"],
    )
    for module in (  # the hot paths first: a request is matched against routes in order
        tracking,
        scans,
        tenancy,
        events,
        imports,
        privacy,
        plans,
        identity,
        profiles,
        tags,
        audiences,
        codes,
        consent,
        consent_subscribers,
        delivery,
        ledger,
        users,
        ops,
    ):
        app.include_router(module.router)
    console.install(app)
    return app


async def _housekeeping(ingestor: Ingestor) -> None:
    """Every few seconds: record key use, export the commit count."""
    last = 0
    while True:
        await asyncio.sleep(5)
        await asyncio.to_thread(ingestor.flush_key_use)
        COMMITS.inc(ingestor.writer.commits - last)
        last = ingestor.writer.commits
