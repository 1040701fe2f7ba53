"""A periodic background pass inside ``quanyu serve``: one daemon thread that runs
:meth:`Periodic.run_once` every ``interval`` seconds, or at once when poked."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("quanyu")


class Periodic:
    """Runs :meth:`run_once` on a period in a daemon thread; a failed pass is logged and
    the next one starts from the store. Subclasses implement :meth:`run_once` (and may
    override :meth:`before`, run once when the thread starts)."""

    #: What a failed pass says in the log.
    failure = "a background pass failed; retrying on the next pass"

    def __init__(self, *, interval: float, name: str) -> None:
        self.interval = interval
        self.passes = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def poke(self, *_: object) -> None:
        """Run a pass now."""
        self._wake.set()

    def before(self) -> None:
        """Work done once when the thread starts (nothing by default)."""

    def run_once(self) -> Any:
        raise NotImplementedError

    def _run(self) -> None:
        self.before()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - logged; the next pass starts from the store
                log.exception(self.failure)
