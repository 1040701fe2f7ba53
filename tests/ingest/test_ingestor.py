"""The Ingestor's caches and limits on a real database file."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import RateLimited, Unauthorized
from quanyu.ingest.journal import IngestJournal
from quanyu.ingest.normalize import normalize
from quanyu.ingest.service import Ingestor, TokenBucket
from quanyu.ingest.writer import Writer
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, SourceCreated, Tenant, TenantCreate


def pos_source(engine: DuckDBEngine) -> tuple[Tenant, SourceCreated]:
    """A new tenant and its POS source."""
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test")
        src = tenancy.create_source(db, SourceCreate(name="POS"), tenant=t.id, actor="test")
    return t, src


@pytest.fixture
def ingestor(engine: DuckDBEngine) -> Ingestor:
    return Ingestor(engine, Writer(engine), default_rate_limit=1000)


def test_write_key_use_is_recorded(engine: DuckDBEngine, ingestor: Ingestor) -> None:
    t, src = pos_source(engine)
    auth = ingestor.authenticate(src.write_key)
    with engine.connect() as db:
        assert tenancy.get_key(db, key_id=auth.key_id).last_used_at is None
    ingestor.flush_key_use()
    with engine.connect() as db:
        assert tenancy.get_key(db, key_id=auth.key_id).last_used_at is not None


def test_revocation_takes_effect_once_the_cache_is_dropped(
    engine: DuckDBEngine, ingestor: Ingestor
) -> None:
    t, src = pos_source(engine)
    auth = ingestor.authenticate(src.write_key)
    with engine.connect() as db:
        tenancy.revoke_key(db, key_id=auth.key_id, actor="test", tenant=t.id)
    ingestor.forget_keys()
    with pytest.raises(Unauthorized, match="revoked"):
        ingestor.authenticate(src.write_key)
    with pytest.raises(Unauthorized, match="No write key"):
        ingestor.authenticate(None)


def test_rate_limit_answers_with_the_wait(engine: DuckDBEngine, ingestor: Ingestor) -> None:
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test")
        src = tenancy.create_source(
            db, SourceCreate(name="POS", rate_limit=100), tenant=t.id, actor="test"
        )
    auth = ingestor.authenticate(src.write_key)
    ingestor.check_rate(auth, 100)
    with pytest.raises(RateLimited) as e:
        ingestor.check_rate(auth, 50)
    assert e.value.retry_after >= 1
    assert "100 events per second" in e.value.message


def test_token_bucket_lets_an_oversize_batch_through_a_full_bucket() -> None:
    bucket = TokenBucket(10)
    assert bucket.take(25) == 0.0  # full bucket: one large batch passes
    assert bucket.take(1) > 0  # then the source waits for the debt to refill


def test_backpressure_and_commit_timeout_answer_503(
    engine: DuckDBEngine, ingestor: Ingestor
) -> None:
    from quanyu.errors import Unavailable

    t, src = pos_source(engine)
    auth = ingestor.authenticate(src.write_key)
    msg = json.dumps({"type": "track", "event": "E", "userId": "u", "messageId": "m"}).encode()
    norm = normalize([msg], received_at=datetime.now(UTC))
    # the writer thread was never started: nothing commits
    ingestor.commit_timeout = 0.2
    with pytest.raises(Unavailable, match="not committed within"):
        asyncio.run(ingestor.store(auth, norm, received_at=datetime.now(UTC)))
    ingestor.max_queued_events = 0
    with pytest.raises(Unavailable, match="waiting to be written"):
        asyncio.run(ingestor.store(auth, norm, received_at=datetime.now(UTC)))
    # once the writer runs, the timed-out request's events do land, exactly once
    ingestor.writer.start()
    ingestor.writer.stop()
    with engine.connect() as db:
        assert db.raw("SELECT count(*) FROM events")[0][0] == 1  # type: ignore[attr-defined]


def test_a_late_commit_is_answered_from_the_journal_only_past_the_threshold(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    t, src = pos_source(engine)

    def stored(ack: float, message_id: str) -> tuple[float, int]:
        """Seconds until store() returned, and the events committed by then."""
        writer = Writer(engine, linger_ms=1500, journal=IngestJournal(tmp_path / "journal"))
        writer.start()  # it commits 1.5 s after a chunk arrives
        ingestor = Ingestor(engine, writer, default_rate_limit=1000, journal_ack=ack)
        auth = ingestor.authenticate(src.write_key)
        msg = {"type": "track", "event": "E", "userId": "u", "messageId": message_id}
        norm = normalize([json.dumps(msg).encode()], received_at=datetime.now(UTC))
        started = time.monotonic()
        asyncio.run(ingestor.store(auth, norm, received_at=datetime.now(UTC)))
        took = time.monotonic() - started
        with engine.connect() as db:
            n = db.raw("SELECT count(*) FROM events WHERE message_id = ?", [message_id])[0][0]  # type: ignore[attr-defined]
        writer.stop()
        return took, int(n)

    took, committed = stored(0.05, "from-journal")
    assert took < 1.0 and committed == 0  # answered from the journal, before the commit
    took, committed = stored(60.0, "from-commit")
    assert took >= 1.0 and committed == 1  # a threshold past the commit: its 200 waits
    with engine.connect() as db:
        assert db.raw("SELECT count(*) FROM events")[0][0] == 2  # type: ignore[attr-defined]
