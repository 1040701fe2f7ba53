"""A store with the delivery tables and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from quanyu.config import Settings
from quanyu.delivery import schema as delivery_schema
from quanyu.delivery.models import DestinationCreate, DestinationCreated, MessageStatus
from quanyu.delivery.sender import Policy
from quanyu.delivery.service import create_destination, list_messages
from quanyu.delivery.signing import SignatureInvalid, verify
from quanyu.delivery.worker import deliver_due
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.store import apply_migrations, open_store

MASTER = secrets.token_bytes(32)
TENANT = "ten_a"
#: Fast retries for tests: delays of at most a few milliseconds.
FAST = Policy(
    allow_private=True,
    timeout=2.0,
    max_attempts=8,
    backoff_base=0.002,
    backoff_max=0.02,
    give_up_after=0.0,
)


@pytest.fixture
def store(settings: Settings) -> Iterator[DuckDBEngine]:
    """The store, with the delivery migrations applied (a no-op once ``collect()`` has them)."""
    eng = open_store(settings)
    apply_migrations(eng, delivery_schema.MIGRATIONS)
    yield eng
    eng.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops connects under parallel requests


@dataclass
class Hit:
    id: str
    body: dict[str, Any]
    status: int
    at: float


@dataclass
class Receiver:
    """Verifies each request's signature and answers as told."""

    port: int
    secret: str = ""
    fail_first: int = 0
    status: int = 200
    reply: bytes = b'{"ok": true}'
    delay: float = 0.0
    retry_after: str | None = None
    hits: list[Hit] = field(default_factory=list)
    forged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _held: socket.socket | None = None  # the port of a receiver that is down

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # else small replies wait for delayed ACKs

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    msg_id = verify(receiver.secret, dict(self.headers.items()), body)
                except SignatureInvalid:
                    with receiver.lock:
                        receiver.forged += 1
                    self._answer(401, b"bad signature", None)
                    return
                time.sleep(receiver.delay)
                with receiver.lock:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 503
                    else:
                        status = receiver.status
                    receiver.hits.append(Hit(msg_id, json.loads(body), status, time.time()))
                self._answer(status, receiver.reply, receiver.retry_after)

            def _answer(self, status: int, reply: bytes, retry_after: str | None) -> None:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        if self._held is not None:  # back up on the port it held
            self._held.close()
            self._held = None
        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def acked(self) -> list[str]:
        """Ids answered 2xx, in the order they were answered."""
        with self.lock:
            return [h.id for h in self.hits if 200 <= h.status < 300]

    def assert_no_resend(self) -> None:
        """Each id acknowledged once, and never asked again after it."""
        with self.lock:
            hits = list(self.hits)
        counts = Counter(h.id for h in hits if 200 <= h.status < 300)
        assert all(n == 1 for n in counts.values()), counts
        for msg_id in counts:
            last = [h for h in hits if h.id == msg_id][-1]
            assert 200 <= last.status < 300, f"{msg_id} was sent again after its 2xx"


def down_receiver() -> Receiver:
    """A receiver that is down until :meth:`Receiver.start`: its port is bound but not
    listening, so connections to it are refused and no other test can take the port."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return Receiver(port=int(held.getsockname()[1]), _held=held)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(port=0).start()
    yield r
    r.stop()


def destination(
    engine: DuckDBEngine, receiver: Receiver, *, tenant: str = TENANT, name: str = "crm"
) -> DestinationCreated:
    """A destination pointing at ``receiver``, which learns its secret."""
    with engine.connect() as db:
        created = create_destination(
            db,
            DestinationCreate(name=name, url=receiver.url),
            tenant=tenant,
            master_key=MASTER,
            allow_private=True,
        )
    receiver.secret = created.secret
    return created


def settle(
    engine: DuckDBEngine, *, policy: Policy = FAST, tenant: str = TENANT, within: float = 5.0
) -> int:
    """Run passes until the tenant has nothing pending; return the number of passes."""
    end = time.monotonic() + within
    passes = 0
    while time.monotonic() < end:
        deliver_due(engine, master_key=MASTER, policy=policy)
        passes += 1
        with engine.connect() as db:
            if not list_messages(db, tenant=tenant, status=MessageStatus.pending):
                return passes
        time.sleep(0.002)
    raise AssertionError(f"messages still pending after {within} s")
