"""A consent touchpoint on 127.0.0.1 as a real receiver would be written: it verifies
each webhook's signature, processes a ``webhook-id`` once (delivery is at least once)
and can be told to misbehave for its next requests."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quanyu.delivery.signing import SignatureInvalid, verify

#: What a touchpoint does with a request: answer 200 after processing; answer 500
#: without processing; hang past the sender's timeout without processing; process,
#: then answer 500 (its acknowledgement is lost, so the message comes again).
BEHAVIOURS = ("ok", "500", "hang", "lost_ack")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@dataclass
class Touchpoint:
    """A subscriber's webhook endpoint. ``plan`` is consumed one behaviour per request;
    once empty, every request is answered ``ok``."""

    port: int = 0
    secret: str = ""
    plan: list[str] = field(default_factory=list)
    hang: float = 1.0
    delay: float = 0.0
    #: each message processed, first arrival only: (webhook-id, data, arrival time)
    processed: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    behaved: Counter[str] = field(default_factory=Counter)
    forged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/consent"

    def start(self) -> Touchpoint:
        """Listen (again, on the same port once it had one)."""
        tp = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    msg_id = verify(tp.secret, dict(self.headers.items()), body)
                except SignatureInvalid:
                    with tp.lock:
                        tp.forged += 1
                    self._answer(401, b"bad signature")
                    return
                with tp.lock:
                    behaviour = tp.plan.pop(0) if tp.plan else "ok"
                    tp.behaved[behaviour] += 1
                    tp.received[msg_id] += 1
                if behaviour == "500":
                    self._answer(500, b"try later")
                    return
                if behaviour == "hang":
                    time.sleep(tp.hang)
                    self._answer(503, b"too late")
                    return
                time.sleep(tp.delay)
                with tp.lock:
                    first = msg_id not in {m for m, _, _ in tp.processed}
                    if first:
                        tp.processed.append((msg_id, json.loads(body)["data"], time.time()))
                if behaviour == "lost_ack":
                    self._answer(500, b"crashed before answering")
                    return
                reply = {"ok": True, "webhook_id": msg_id, "duplicate": not first}
                self._answer(200, json.dumps(reply).encode())

            def _answer(self, status: int, reply: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a hang): that is the point

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start`."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def entries(self) -> list[int]:
        """The ledger entries processed, in the order they were first processed."""
        with self.lock:
            return [int(d["entry"]) for _, d, _ in self.processed]

    def by_person(self) -> dict[str, list[int]]:
        """The entries processed per person (OneID, or the identifier for a person not
        resolved), in processing order."""
        out: dict[str, list[int]] = {}
        with self.lock:
            for _, d, _ in self.processed:
                who = d["profile"] or ",".join(
                    f"{i['type']}:{i['value']}" for i in d["identifiers"]
                )
                assert who, f"message for entry {d['entry']} names nobody: {d}"
                out.setdefault(who, []).append(int(d["entry"]))
        return out

    def duplicates(self) -> int:
        """Requests for a webhook-id beyond its first."""
        with self.lock:
            return sum(n - 1 for n in self.received.values())
