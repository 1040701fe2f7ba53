"""Fixtures: the real ``quanyu serve`` on 127.0.0.1 with a temporary data dir.

``server`` is shared by the whole session (each test makes its own tenant, so tests
never see each other's data); ``fresh_server`` is a server of one's own, for tests
that kill or restart it. When a test fails, the tail of the server's stderr is
added to the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Server, Tenant


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running server shared by the session."""
    srv = Server(tmp_path_factory.mktemp("quanyu-server"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A running server of this test's own (it may kill and restart it)."""
    srv = Server(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tenant(server: Server) -> Tenant:
    """A new tenant on the shared server, with one source and an admin secret key."""
    return server.new_tenant()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, append the stderr tail of every server the test used to the report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for name, value in funcargs.items():
        if isinstance(value, Server):
            report.sections.append(
                (f"quanyu serve stderr ({name}, {value.url})", value.log_tail(60))
            )
