"""The checkpointer inside ``quanyu serve``: signs a checkpoint of every log that grew.

At start it loads every log's upper tiles (first proofs are then as fast as the rest).
Every ``interval`` seconds, each tenant whose log holds more leaves than its latest
signed checkpoint gets a new checkpoint; a log that did not grow is left alone, so the
checkpoint list grows with the log, not with time.
"""

from __future__ import annotations

import logging

from quanyu.background import Periodic
from quanyu.engine import Engine
from quanyu.ledger import service

log = logging.getLogger("quanyu.ledger")


class Checkpointer(Periodic):
    """A daemon thread signing checkpoints of grown logs on a period."""

    failure = "signing ledger checkpoints failed; retrying on the next pass"

    def __init__(self, engine: Engine, master_key: bytes, *, interval: float = 60.0) -> None:
        super().__init__(interval=interval, name="quanyu-checkpoint")
        self._engine = engine
        self._master_key = master_key

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

    def before(self) -> None:
        try:
            self.warm()
        except Exception:  # noqa: BLE001 - a cold cache is slower, never wrong
            log.exception("warming the ledger's tile cache failed")
