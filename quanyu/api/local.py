"""Run the API in-process for the CLI when no server owns the data dir."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

with warnings.catch_warnings():
    # Starlette nudges towards httpx2; httpx is what the rest of Quanyu speaks.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from quanyu.api.app import create_app
from quanyu.config import Settings


@contextmanager
def in_process(settings: Settings) -> Iterator[httpx.Client]:
    """An HTTP client wired straight to an app that opens the database itself."""
    token = secrets.token_urlsafe(32)
    app = create_app(settings, local_token=token)
    with TestClient(app, base_url="http://quanyu.local", raise_server_exceptions=True) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
