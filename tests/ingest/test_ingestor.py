"""The Ingestor's caches and limits on a real database file."""

from __future__ import annotations

import pytest

from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import RateLimited, Unauthorized
from quanyu.ingest.service import Ingestor, TokenBucket
from quanyu.ingest.writer import Writer
from quanyu.tenancy import service as tenancy
from quanyu.tenancy.models import SourceCreate, TenantCreate


@pytest.fixture
def ingestor(engine: DuckDBEngine) -> Ingestor:
    return Ingestor(engine, Writer(engine), default_rate_limit=1000)


def test_write_key_use_is_recorded(engine: DuckDBEngine, ingestor: Ingestor) -> None:
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test")
        src = tenancy.create_source(db, SourceCreate(name="POS"), tenant=t.id, actor="test")
    auth = ingestor.authenticate(src.write_key)
    with engine.connect() as db:
        assert tenancy.get_key(db, key_id=auth.key_id).last_used_at is None
    ingestor.flush_key_use()
    with engine.connect() as db:
        assert tenancy.get_key(db, key_id=auth.key_id).last_used_at is not None


def test_revocation_takes_effect_once_the_cache_is_dropped(
    engine: DuckDBEngine, ingestor: Ingestor
) -> None:
    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test")
        src = tenancy.create_source(db, SourceCreate(name="POS"), tenant=t.id, actor="test")
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
    import asyncio
    import json
    from datetime import UTC, datetime

    from quanyu.errors import Unavailable
    from quanyu.ingest.normalize import normalize

    with engine.connect() as db:
        t = tenancy.create_tenant(db, TenantCreate(name="T"), actor="test")
        src = tenancy.create_source(db, SourceCreate(name="POS"), tenant=t.id, actor="test")
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
