"""Ingest services: accept tracking calls, read events, manage dead letters."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from quanyu.engine import Engine, Session
from quanyu.errors import (
    InvalidJson,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from quanyu.ids import utcnow
from quanyu.ingest import sql as q
from quanyu.ingest.models import (
    DeadLetter,
    DeadLetterPage,
    Event,
    EventPage,
    ReplayResult,
)
from quanyu.ingest.normalize import (
    BadBody,
    Normalized,
    PlanChecker,
    Reject,
    decode_envelope,
    normalize,
)
from quanyu.ingest.pii import Sealer
from quanyu.ingest.writer import Chunk, Writer
from quanyu.observability import (
    EVENTS_ACCEPTED,
    EVENTS_FLAGGED,
    EVENTS_JOURNAL_ACKED,
    EVENTS_REJECTED,
)
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import WriteKeyAuth


class TokenBucket:
    """Events-per-second limit of one source, with a one-second burst."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()

    def take(self, n: int) -> float:
        """Take ``n`` tokens; return 0, or the seconds to wait before they are there."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if n <= self.tokens or (self.tokens >= self.rate and n > self.rate):
            # a batch larger than the burst passes when the bucket is full
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class Ingestor:
    """Everything the tracking API needs at request time, owned by the server process."""

    key_ttl = 2.0
    #: Past this many events waiting for the writer, new requests get a 503 (backpressure).
    max_queued_events = 200_000
    #: How long a request waits for its commit before answering 503.
    commit_timeout = 60.0

    def __init__(
        self,
        engine: Engine,
        writer: Writer,
        *,
        default_rate_limit: int,
        sealers: Callable[[str], Sealer | None] | None = None,
        journal_ack: float | None = None,
    ) -> None:
        """``journal_ack``: seconds after which a request whose commit has not come is
        answered once its chunk is in the writer's journal (None: always at the commit)."""
        self.engine = engine
        self.journal_ack = journal_ack
        self._sealers = sealers
        self.writer = writer
        self.default_rate_limit = default_rate_limit
        self._keys: dict[str, tuple[float, WriteKeyAuth | Unauthorized]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._plans: dict[str, tuple[float, PlanChecker | None]] = {}
        self._used: dict[str, datetime] = {}
        self._lock = threading.Lock()

    # -- keys, limits and plans, cached ---------------------------------------------------

    def sealer_for(self, tenant_id: str) -> Sealer | None:
        """How the tenant's PII identifier values are sealed before they are stored."""
        return self._sealers(tenant_id) if self._sealers is not None else None

    def authenticate(self, write_key: str | None) -> WriteKeyAuth:
        """The source a write key sends for (cached for a couple of seconds).

        Raises:
            Unauthorized: no key, or an unknown or revoked one.
        """
        if not write_key:
            raise Unauthorized(
                "No write key: send it as HTTP basic auth user ('writeKey:'), an X-Write-Key"
                " header, a writeKey field in the body, or ?writeKey=."
            )
        now = time.monotonic()
        hit = self._keys.get(write_key)
        if hit is None or now - hit[0] > self.key_ttl:
            try:
                with self.engine.connect() as db:
                    result: WriteKeyAuth | Unauthorized = tenancy.authenticate_write_key(
                        db, write_key
                    )
            except Unauthorized as e:
                result = e
            hit = (now, result)
            self._keys[write_key] = hit
        if isinstance(hit[1], Unauthorized):
            raise hit[1]
        self._used[hit[1].key_id] = utcnow()
        return hit[1]

    def forget_keys(self) -> None:
        """Drop cached keys and plans (after a revocation or a plan change)."""
        self._keys.clear()
        self._plans.clear()

    def check_rate(self, auth: WriteKeyAuth, n: int) -> None:
        """Raises RateLimited when the source is over its events-per-second limit."""
        rate = auth.rate_limit or self.default_rate_limit
        bucket = self._buckets.get(auth.source_id)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[auth.source_id] = TokenBucket(rate)
        wait = bucket.take(n)
        if wait:
            raise RateLimited(
                f"Source {auth.source_id} is over its limit of {rate} events per second;"
                f" retry after {math.ceil(wait)} s or raise the source's rate_limit.",
                retry_after=math.ceil(wait),
                reset_at=time.time() + wait,
            )

    def plan_for(self, auth: WriteKeyAuth) -> PlanChecker | None:
        """The source's compiled tracking plan, if it has one (cached briefly)."""
        from quanyu.ingest import plans

        now = time.monotonic()
        hit = self._plans.get(auth.source_id)
        if hit is None or now - hit[0] > self.key_ttl:
            with self.engine.connect() as db:
                hit = (now, plans.compiled(db, tenant=auth.tenant_id, source=auth.source_id))
            self._plans[auth.source_id] = hit
        return hit[1]

    def flush_key_use(self) -> None:
        """Write the last-used times gathered since the previous flush."""
        used, self._used = self._used, {}
        if used:
            with self.engine.connect() as db:
                for key_id, at in used.items():
                    tenancy.touch_key(db, key_id=key_id, at=at)

    # -- accepting ------------------------------------------------------------------------

    async def accept(
        self,
        auth: WriteKeyAuth,
        items: Sequence[bytes | msgspec.Raw],
        *,
        received_at: datetime,
        path_type: str | None = None,
        batch_context: dict[str, Any] | None = None,
        batch_integrations: dict[str, Any] | None = None,
        batch_sent_at: datetime | None = None,
        ip: str | None = None,
        correct_skew: bool = True,
    ) -> tuple[int, list[Reject]]:
        """Validate, normalise and durably store messages; return (accepted, rejects).

        Returns once the valid messages and the dead letters are committed.

        Raises:
            RateLimited: the source is over its limit (nothing stored).
            ValidationFailed: every message was rejected (the dead letters are stored).
        """
        self.check_rate(auth, len(items))
        norm = normalize(
            items,
            received_at=received_at,
            path_type=path_type,
            batch_context=batch_context,
            batch_integrations=batch_integrations,
            batch_sent_at=batch_sent_at,
            ip=ip,
            brand=auth.brand_id,
            plan=self.plan_for(auth),
            correct_skew=correct_skew,
            sealer=self.sealer_for(auth.tenant_id),
        )
        accepted = await self.store(auth, norm, received_at=received_at)
        if not accepted and norm.rejects:
            first = norm.rejects[0]
            if len(items) == 1 and first.code == "invalid_json":
                raise InvalidJson(
                    f"{first.reason} The body is kept in the dead-letter store.",
                    details=[first.public()],
                )
            raise ValidationFailed(
                f"No message was accepted; {len(norm.rejects)} rejected, the first because:"
                f" {first.reason} They are in the dead-letter store.",
                details=[r.public() for r in norm.rejects],
            )
        return accepted, norm.rejects

    def scrub(self, tenant_id: str, letters: Sequence[Reject]) -> None:
        """Seal the phones and e-mails in dead letters' payloads before they are stored."""
        sealer = self.sealer_for(tenant_id)
        if sealer is not None:
            for r in letters:
                r.payload = sealer.scrub(r.payload)

    async def store(self, auth: WriteKeyAuth, norm: Normalized, *, received_at: datetime) -> int:
        """Hand normalised messages and their rejects to the writer; wait for the commit."""
        self.scrub(auth.tenant_id, [*norm.rejects, *norm.flagged])
        chunk = Chunk.normalized(
            norm,
            tenant_id=auth.tenant_id,
            source_id=auth.source_id,
            brand_id=auth.brand_id,
            received_at=received_at.astimezone(UTC).replace(tzinfo=None),
        )
        if chunk.count or chunk.dead:
            if self.writer.depth > self.max_queued_events:
                raise Unavailable(
                    f"The server has {self.writer.depth} events waiting to be written, more than"
                    f" its limit of {self.max_queued_events}: nothing of this request was stored;"
                    " retry it in a moment."
                )
            try:
                await self._durable(chunk)
            except TimeoutError as e:
                # it may still commit; a retry then finds its messageIds and adds nothing
                raise Unavailable(
                    f"The events were not committed within {self.commit_timeout:.0f} s;"
                    " retry the request (retries are deduplicated)."
                ) from e
            except Exception as e:  # noqa: BLE001 - the writer logged it; the client retries
                raise Unavailable(
                    "The events could not be committed (the server logged why); nothing of this"
                    " request was stored: retry it."
                ) from e
        for r in norm.rejects:
            EVENTS_REJECTED.labels(auth.source_id, r.code).inc()
        for r in norm.flagged:
            EVENTS_FLAGGED.labels(auth.source_id, r.code).inc()
        if chunk.count:
            EVENTS_ACCEPTED.labels(auth.source_id).inc(chunk.count)
        return chunk.count

    async def _durable(self, chunk: Chunk) -> None:
        """Submit ``chunk``; return once it is committed, or once it is in the journal and
        its commit is later than ``journal_ack``.

        Raises:
            TimeoutError: neither within ``commit_timeout``.
        """
        committed = asyncio.wrap_future(self.writer.submit(chunk))
        waiting: set[asyncio.Future[Any]] = {committed}
        # asyncio.wait cancels nothing: a client that hangs up leaves the commit under way
        first = self.commit_timeout
        if self.journal_ack is not None:
            first = min(self.journal_ack, first)
        done, _ = await asyncio.wait(waiting, timeout=first)
        if not done and first < self.commit_timeout:
            if self.writer.journal(chunk):
                waiting.add(asyncio.wrap_future(chunk.journaled))
            done, _ = await asyncio.wait(
                waiting, timeout=self.commit_timeout - first, return_when=asyncio.FIRST_COMPLETED
            )
        if not done:
            raise TimeoutError
        if committed not in done:
            # the writer logs a failure; nobody else will read it
            committed.add_done_callback(lambda f: f.cancelled() or f.exception())
            EVENTS_JOURNAL_ACKED.inc(chunk.count)
            return
        committed.result()

    async def reject_body(self, auth: WriteKeyAuth, body: bytes, err: BadBody) -> None:
        """Keep an unparseable body in the dead-letter store, then let the caller answer 400."""
        norm = Normalized()
        norm.rejects.append(Reject(0, None, None, None, err.code, err.message, body))
        await self.store(auth, norm, received_at=datetime.now(UTC))


# --- reading events ---------------------------------------------------------------------


def _json(v: str | None) -> Any:
    return orjson.loads(v) if v else None


def _event(r: tuple[Any, ...]) -> Event:
    return Event(
        message_id=r[0],
        type=r[1],
        event=r[2],
        name=r[3],
        user_id=r[4],
        anonymous_id=r[5],
        group_id=r[6],
        previous_id=r[7],
        timestamp=r[8],
        original_timestamp=r[9],
        sent_at=r[10],
        received_at=r[11],
        source_id=r[12],
        brand_id=r[13],
        properties=_json(r[14]),
        traits=_json(r[15]),
        context=_json(r[16]),
        integrations=_json(r[17]),
        identifiers=_json(r[18]),
    )


def list_events(
    db: Session,
    *,
    tenant: str,
    source: str | None = None,
    user: str | None = None,
    type: str | None = None,
    event: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> EventPage:
    """A tenant's events, newest received first, filtered and paged by cursor."""
    at: datetime | None = None
    after_id: str | None = None
    if cursor:
        stamp, _, after_id = cursor.partition("|")
        try:
            at = datetime.fromisoformat(stamp)
        except ValueError as e:
            raise NotFound(f"Cursor {cursor!r} is not one this API gave out.") from e
    rows = db.execute(
        q.LIST_EVENTS,
        [
            tenant,
            source,
            source,
            user,
            user,
            user,
            type,
            type,
            event,
            event,
            at,
            at,
            at,
            after_id,
            limit + 1,
        ],
    )
    items = [_event(r) for r in rows[:limit]]
    more = len(rows) > limit
    nxt = f"{items[-1].received_at.isoformat()}|{items[-1].message_id}" if more else None
    return EventPage(items=items, next_cursor=nxt)


def get_event(db: Session, *, tenant: str, message_id: str, source: str | None = None) -> Event:
    """One event by messageId. Raises NotFound."""
    row = db.one(q.GET_EVENT, [tenant, message_id, source, source])
    if row is None:
        raise NotFound(f"No event with messageId {message_id!r} in this tenant.")
    return _event(row)


def count_events(db: Session, *, tenant: str) -> int:
    """How many events a tenant has stored."""
    row = db.one(q.COUNT_EVENTS, [tenant])
    return int(row[0]) if row else 0


# --- dead letters -----------------------------------------------------------------------


def _payload(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _dead_letter(r: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        id=r[0],
        source_id=r[1],
        received_at=r[2],
        message_id=r[3],
        event_type=r[4],
        event=r[5],
        code=r[6],
        reason=r[7],
        rule=r[8],
        disposition=r[9],
        status=r[10],
        payload=_payload(r[11]),
        resolved_at=r[12],
    )


def list_dead_letters(
    db: Session,
    *,
    tenant: str,
    source: str | None = None,
    status: str | None = None,
    code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DeadLetterPage:
    """A tenant's dead letters, newest first."""
    rows = db.execute(
        q.LIST_DEAD_LETTERS,
        [tenant, source, source, status, status, code, code, cursor, cursor, limit + 1],
    )
    items = [_dead_letter(r) for r in rows[:limit]]
    return DeadLetterPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


def get_dead_letters(db: Session, *, tenant: str, ids: list[str]) -> list[DeadLetter]:
    """The named dead letters of a tenant. Raises NotFound naming any missing id."""
    found = [_dead_letter(r) for r in db.execute(q.GET_DEAD_LETTERS, [tenant, ids])]
    missing = set(ids) - {d.id for d in found}
    if missing:
        raise NotFound(f"No dead letter {', '.join(sorted(missing))} in this tenant.")
    return found


def fix_dead_letter(db: Session, *, tenant: str, id: str, payload: dict[str, Any]) -> DeadLetter:
    """Replace an open dead letter's payload with a corrected message (replay it next)."""
    (letter,) = get_dead_letters(db, tenant=tenant, ids=[id])
    if letter.status != "open":
        raise ValidationFailed(f"Dead letter {id} is {letter.status.value}; only open ones change.")
    db.execute(q.UPDATE_DEAD_LETTER_PAYLOAD, [orjson.dumps(payload).decode(), tenant, id])
    (letter,) = get_dead_letters(db, tenant=tenant, ids=[id])
    return letter


def discard_dead_letter(db: Session, *, tenant: str, id: str) -> DeadLetter:
    """Mark a dead letter as deliberately dropped."""
    get_dead_letters(db, tenant=tenant, ids=[id])
    db.execute(q.RESOLVE_DEAD_LETTER, ["discarded", utcnow(), tenant, id])
    (letter,) = get_dead_letters(db, tenant=tenant, ids=[id])
    return letter


async def replay_dead_letters(ingestor: Ingestor, *, tenant: str, ids: list[str]) -> ReplayResult:
    """Run open dead letters through ingest again, with the source's current plan.

    Idempotent: a message without its own messageId replays under the dead letter's id,
    and an event stored before is not stored twice. Letters that pass are marked
    ``replayed``; the rest stay open with the reason they failed this time.
    """
    with ingestor.engine.connect() as db:
        letters = [d for d in get_dead_letters(db, tenant=tenant, ids=ids) if d.status == "open"]
    replayed: list[str] = []
    still: list[dict[str, Any]] = []
    by_source: dict[str, list[DeadLetter]] = {}
    for d in letters:
        by_source.setdefault(d.source_id, []).append(d)
    for source_id, group in by_source.items():
        with ingestor.engine.connect() as db:
            src = tenancy.get_source(db, tenant=tenant, source=source_id)
        auth = WriteKeyAuth(
            key_id="replay",
            tenant_id=tenant,
            source_id=source_id,
            brand_id=src.brand_id,
            rate_limit=None,
        )
        items = []
        sealer = ingestor.sealer_for(tenant)
        for d in group:
            payload = d.payload if isinstance(d.payload, dict) else None
            if payload is not None:
                payload = {**payload, "messageId": payload.get("messageId") or d.id}
                payload.setdefault("type", d.event_type)
            raw = msgspec.json.encode(payload) if payload is not None else b"null"
            if sealer is not None:  # the payload as sent, its PII opened again
                raw = sealer.unscrub(raw.decode()).encode()
            items.append(raw)
        norm = normalize(
            items,
            received_at=datetime.now(UTC),
            brand=src.brand_id,
            plan=ingestor.plan_for(auth),
            sealer=ingestor.sealer_for(tenant),
        )
        failed = {r.index: r for r in norm.rejects}
        norm.rejects = []  # the letters themselves stay the record of a failure
        norm.flagged = []
        await ingestor.store(auth, norm, received_at=datetime.now(UTC))
        with ingestor.engine.connect() as db, db.transaction():
            for i, d in enumerate(group):
                if i in failed:
                    still.append({"id": d.id, "code": failed[i].code, "message": failed[i].reason})
                else:
                    db.execute(q.RESOLVE_DEAD_LETTER, ["replayed", utcnow(), tenant, d.id])
                    replayed.append(d.id)
    return ReplayResult(replayed=replayed, still_rejected=still)


__all__ = [
    "BadBody",
    "Ingestor",
    "decode_envelope",
    "discard_dead_letter",
    "fix_dead_letter",
    "get_event",
    "list_dead_letters",
    "list_events",
    "replay_dead_letters",
]
