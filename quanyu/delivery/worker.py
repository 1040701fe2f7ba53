"""The delivery worker: sends due outbox messages, signed, and retries with backoff.

A message is POSTed with its stored body and Standard Webhooks headers, re-signed at
each attempt (:mod:`quanyu.delivery.sender` says which replies deliver, retry or fail).
Retries wait an exponential delay with full jitter (a ``Retry-After`` in seconds is
honoured, up to ``backoff_max``), until the message has had ``max_attempts`` and is
``give_up_after`` old; then it fails (:class:`~quanyu.delivery.sender.Policy`).
Messages of a disabled or deleted destination are skipped.

Delivery is **at least once**: a message recorded as delivered is never sent again,
but a crash between the receiver's reply and that record sends it again after the
restart. Receivers must treat a ``webhook-id`` they have processed as done.

Messages that carry people (:data:`PERSONAL_TOPICS`) pass a *gate* of their topic
right before each attempt (the consent check at send time, registered by the audiences
capability): the gate returns the body to send, which may hold fewer records, or None
to send nothing (the message is skipped). Such a message with no gate registered is
never sent: it fails, naming the missing gate.

Within one (destination, key) only the oldest pending message is ever in flight,
so messages of a key arrive in order; different keys and destinations go out in
parallel (``concurrency`` requests at a time).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from quanyu.delivery import netguard
from quanyu.delivery import sql as q
from quanyu.delivery.models import MessageStatus
from quanyu.delivery.sender import USER_AGENT, Due, Outcome, Policy, attempt, backoff
from quanyu.delivery.signing import SecretBox, SecretUnreadable
from quanyu.engine import Engine, Session, WriteConflict
from quanyu.ids import utcnow

log = logging.getLogger("quanyu.delivery")

#: Topics whose messages carry people: each needs a gate.
PERSONAL_TOPICS = frozenset({"audience.export"})


class Gate(Protocol):
    """A send-time check: the body to send now, or None to send nothing."""

    def __call__(
        self, db: Session, *, tenant: str, destination_id: str, message_id: str, body: str
    ) -> str | None: ...


#: Due messages fetched per round of a pass.
ROUND_SIZE = 100
#: Seconds between retention passes of a worker.
PRUNE_EVERY_S = 3600.0
_PASS_LOCK = threading.Lock()


def _record(
    db: Session, msg: Due, out: Outcome, policy: Policy, when: datetime, rng: random.Random | None
) -> None:
    attempts = msg.attempts + 1
    status, error, upcoming = out.status, out.error, when
    if status is MessageStatus.pending:
        old = (
            msg.created_at is None
            or (when - msg.created_at).total_seconds() >= policy.give_up_after
        )
        if attempts >= policy.max_attempts and old:
            status, error = MessageStatus.failed, f"gave up after {attempts} attempts: {error}"
        else:
            delay = backoff(attempts, policy, rng)
            if out.retry_after is not None:
                delay = max(delay, min(out.retry_after, policy.backoff_max))
            upcoming = when + timedelta(seconds=delay)
    delivered = when if status is MessageStatus.delivered else None
    if status is not MessageStatus.delivered:
        log.warning("webhook %s attempt %d: %s (%s)", msg.id, attempts, error, status.value)
    try:
        db.execute(
            q.FINISH_ATTEMPT,
            [status.value, attempts, upcoming, when, error, out.code, out.response, delivered]
            + [msg.tenant_id, msg.id],
        )
    except WriteConflict:
        # someone requeued or skipped it meanwhile; their state stands
        log.warning("webhook %s changed while being sent; its new state stands", msg.id)


#: Topics whose settled messages a retention pass deletes: pushes of audiences hold lists
#: of people. Consent news is kept (the propagation report is the evidence of who was
#: told; its bodies carry no phone or e-mail in the clear).
PRUNED_TOPICS = ("audience.export",)


def prune(engine: Engine, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete settled (delivered, failed, skipped) messages of :data:`PRUNED_TOPICS` last
    touched more than ``older_than`` ago; pending ones are never touched. Returns how many."""
    cutoff = (now or utcnow()) - older_than
    with engine.connect() as db:
        counted = db.execute(q.PRUNE_SETTLED, [cutoff, list(PRUNED_TOPICS)])
    return int(counted[0][0]) if counted and counted[0] else 0


def _skip_undeliverable(db: Session, when: datetime) -> int:
    skipped = 0
    for tenant, destination, deleted in db.execute(q.UNDELIVERABLE):
        reason = f"destination {destination} is {'deleted' if deleted else 'disabled'}"
        counted = db.execute(q.SKIP_PENDING, [reason, when, tenant, destination])
        skipped += int(counted[0][0]) if counted and counted[0] else 0
    return skipped


def deliver_due(
    engine: Engine,
    now: datetime | None = None,
    *,
    master_key: bytes,
    client: httpx.Client | None = None,
    policy: Policy | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
    gates: Mapping[str, Gate] | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> int:
    """One pass: skip messages of disabled or deleted destinations, then send every
    due message, round after round, until none is due (each at most once per pass).

    Args:
        engine: the store.
        now: the clock for due times and records (default: the real clock).
        master_key: decrypts the destinations' signing secrets.
        client: the HTTP client to reuse (default: a new one for this pass).
        policy: timeouts, attempts and backoff (default: :class:`Policy()`).
        stop: ends the pass between rounds once set.
        rng: randomness of the backoff jitter (for reproducible tests).
        gates: the send-time check of each topic that carries people.
        pool: the threads that send (default: new ones for this pass).

    Returns:
        How many messages were attempted or skipped.
    """
    policy = policy or Policy()
    own = client is None
    http = client or netguard.client(
        timeout=policy.timeout, headers=USER_AGENT, allow_private=policy.allow_private
    )
    box = SecretBox(master_key)
    handled = 0
    tried: set[str] = set()
    own_pool = pool is None
    senders = pool or ThreadPoolExecutor(policy.concurrency, thread_name_prefix="quanyu-webhook")
    try:
        with _PASS_LOCK, engine.connect() as db:
            handled += _skip_undeliverable(db, now or utcnow())
            while stop is None or not stop.is_set():
                rows = db.execute(q.DUE_HEADS, [now or utcnow(), ROUND_SIZE])
                due = [_due(r) for r in rows if r[0] not in tried]
                if not due:
                    break
                tried.update(m.id for m in due)
                handled += len(due)
                _round(db, senders, http, box, due, policy, now, rng, gates or {})
    finally:
        if own:
            http.close()
        if own_pool:
            senders.shutdown()
    return handled


def _round(
    db: Session,
    pool: ThreadPoolExecutor,
    http: httpx.Client,
    box: SecretBox,
    due: list[Due],
    policy: Policy,
    now: datetime | None,
    rng: random.Random | None,
    gates: Mapping[str, Gate],
) -> None:
    futures: dict[Future[Outcome], Due] = {}
    for msg in due:
        gated = _gate(db, msg, gates)
        if isinstance(gated, Outcome):
            _record(db, msg, gated, policy, _t(now), rng)
            continue
        msg = gated
        try:
            secret = box.open(msg.tenant_id, msg.destination_id, msg.sealed)
        except SecretUnreadable as e:
            _record(db, msg, Outcome(MessageStatus.failed, error=e.message), policy, _t(now), rng)
            continue
        futures[pool.submit(attempt, http, msg, secret)] = msg
    for done in as_completed(futures):
        msg = futures[done]
        try:
            out = done.result()
        except Exception as e:  # noqa: BLE001 - one odd message must not stall the others
            log.exception("webhook %s: sending failed unexpectedly", msg.id)
            out = Outcome(MessageStatus.pending, error=f"internal error while sending: {e!r}")
        _record(db, msg, out, policy, _t(now), rng)


def _gate(db: Session, msg: Due, gates: Mapping[str, Gate]) -> Due | Outcome:
    """The message as its topic's gate lets it go, or the outcome that stops it."""
    gate = gates.get(msg.topic)
    if gate is None:
        if msg.topic in PERSONAL_TOPICS:
            return Outcome(MessageStatus.failed, error=f"no send-time gate for {msg.topic}:"
                           " messages that carry people are never sent unchecked")  # fmt: skip
        return msg
    body = gate(db, tenant=msg.tenant_id, destination_id=msg.destination_id,
                message_id=msg.id, body=msg.payload)  # fmt: skip
    if body is None:
        return Outcome(
            MessageStatus.skipped, error="consent: every record was blocked at send time"
        )
    if body != msg.payload:
        db.execute(q.SET_PAYLOAD, [body, msg.tenant_id, msg.id])
        return dataclasses.replace(msg, payload=body)
    return msg


def _due(row: tuple[Any, ...]) -> Due:
    return Due(
        id=row[0],
        tenant_id=row[1],
        destination_id=row[2],
        payload=row[3],
        attempts=int(row[4]),
        url=row[5],
        sealed=bytes(row[6]),
        topic=row[7],
        created_at=row[8],
    )


def _t(now: datetime | None) -> datetime:
    return now or utcnow()


class DeliveryWorker:
    """Sends outbox messages in a background thread (one per process).

    It polls every ``poll_interval`` seconds; :meth:`notify` (called after an enqueue
    commits) wakes it at once.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        master_key: bytes,
        poll_interval: float = 0.5,
        timeout: float = 10.0,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        concurrency: int = 8,
        give_up_after: float = 3 * 86400.0,
        gates: Mapping[str, Gate] | None = None,
        allow_private: bool = False,
        retention: timedelta | None = None,
    ) -> None:
        self._engine = engine
        self._gates = dict(gates or {})
        self._master = master_key
        self.poll_interval = poll_interval
        self.policy = Policy(
            timeout,
            max_attempts,
            backoff_base,
            backoff_max,
            concurrency,
            give_up_after,
            allow_private,
        )
        self._client = netguard.client(
            timeout=timeout, headers=USER_AGENT, allow_private=allow_private
        )
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="quanyu-webhook")
        self._retention = retention
        self._pruned_at = 0.0  # monotonic time of the last retention pass
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, *_: Any) -> None:
        """Wake the thread now (after messages were enqueued or requeued)."""
        self._wake.set()

    def start(self) -> None:
        """Deliver in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="quanyu-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the requests in flight, stop the thread and close connections."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown()
        self._client.close()

    @property
    def alive(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _prune_hourly(self) -> None:
        if self._retention is None or time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        gone = prune(self._engine, older_than=self._retention)
        if gone:
            log.info("deleted %d settled webhook messages past retention", gone)

    def run_once(self) -> int:
        """One :func:`deliver_due` pass with this worker's client and policy."""
        return deliver_due(
            self._engine,
            master_key=self._master,
            client=self._client,
            policy=self.policy,
            stop=self._stopping,
            gates=self._gates,
            pool=self._pool,
        )

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
                self._prune_hourly()
            except Exception:  # noqa: BLE001 - logged; the next poll starts from the store
                log.exception("webhook delivery pass failed; retrying on the next poll")
            self._wake.wait(self.poll_interval)
            self._wake.clear()
