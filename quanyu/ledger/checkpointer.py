"""The checkpointer inside ``quanyu serve``: signs a checkpoint of every log that grew.

At start it loads every log's upper tiles (first proofs are then as fast as the rest).
Every ``interval`` seconds, each tenant whose log holds more leaves than its latest
signed checkpoint gets a new checkpoint; a log that did not grow is left alone, so the
checkpoint list grows with the log, not with time.
"""

from __future__ import annotations

import logging
import threading

from quanyu.engine import Engine
from quanyu.ledger import service

log = logging.getLogger("quanyu.ledger")


class Checkpointer:
    """A daemon thread signing checkpoints of grown logs on a period."""

    def __init__(self, engine: Engine, master_key: bytes, *, interval: float = 60.0) -> None:
        self._engine = engine
        self._master_key = master_key
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quanyu-checkpoint", daemon=True)
        self.passes = 0

    def start(self) -> None:
        """Start signing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def poke(self) -> None:
        """Run a pass now."""
        self._wake.set()

    def run_once(self) -> list[str]:
        """One pass; the tenants whose log got a new checkpoint. A failing tenant is
        logged and the others go on."""
        signed = []
        with self._engine.connect() as db:
            for tenant, size in service.logs(db):
                latest = service.latest_checkpoint(db, tenant)
                if latest is not None and latest.tree_size >= size:
                    continue
                try:
                    with db.transaction():
                        service.checkpoint(db, tenant, self._master_key)
                    signed.append(tenant)
                except Exception:  # noqa: BLE001 - one tenant's failure must not stop the rest
                    log.exception("signing a checkpoint of the ledger of %s failed", tenant)
        self.passes += 1
        return signed

    def warm(self) -> None:
        """Load every log's upper tiles, so first proofs after a start are fast."""
        with self._engine.connect() as db:
            for tenant, _ in service.logs(db):
                service.warm(db, tenant)

    def _run(self) -> None:
        try:
            self.warm()
        except Exception:  # noqa: BLE001 - a cold cache is slower, never wrong
            log.exception("warming the ledger's tile cache failed")
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.run_once()
