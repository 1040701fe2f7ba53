"""The console's pages, one module each; :data:`PAGES` is the order they are mounted in."""

from __future__ import annotations

from quanyu.console.pages import (
    audiences,
    audit,
    codes,
    consent,
    home,
    profiles,
    sources,
    tags,
)

PAGES = [
    home.router,
    sources.router,
    profiles.router,
    tags.router,
    audiences.router,
    consent.router,
    codes.router,
    audit.router,
]
