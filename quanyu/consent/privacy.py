"""PIPL data-subject requests (个人信息主体权利): access and copy, correction, deletion,
each logged with the deadline and what came of it.

**Access** gathers everything held about a person through the public functions of the
capabilities that hold it (identities in clear, traits, events, tags, audience
memberships, consents) as JSON, and as CSV per table in a zip.

**Correction** writes an ``identify`` event for the person through the ingest path, so
trait survivorship (``latest``) picks the corrected values up like any other update and
the 360 view shows where they came from. Profiles have no trait override to use instead.

**Deletion** erases the person's data everywhere it lives: their events and event links,
the folded facts and tag history, the values of their identifiers (node rows keep their
numbers, the graph being a set of dense arrays, but lose key, value and ciphertext), their
links, profile changes, audience snapshot members, outbox messages and dead letters naming
them. Identity is then rebuilt so the graph agrees with the removed links. What stays is a
tombstone without personal data: the request row (the subject as a keyed hash) and the
consent ledger, whose entries keep their leaf hashes, so consent proofs still verify.

**Why the file is rewritten.** Deleting rows is not erasure in DuckDB: measured on
DuckDB 2.0, a deleted row's bytes stay in the file after ``CHECKPOINT``, ``FORCE
CHECKPOINT`` and ``VACUUM`` (a row group keeps deleted rows and only marks them), and
blocks a checkpoint frees are reused later but never zeroed, so even rewriting a table
(``CREATE TABLE AS`` + ``DROP``) leaves the old bytes in free blocks. What removed them:
rewriting each table the person was in (copy its rows out, drop and recreate it with its
constraints and indexes, copy them back), a checkpoint, then filling every free block with
random bytes (a scratch table as large as the free space, which the allocator places in
the free blocks first), dropping it and checkpointing again. That costs a copy of the
touched tables and of the free space, once per deletion; copying the whole database to a
new file would cost more and needs the server to let go of the file.
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
import pyarrow as pa
from pydantic import BaseModel, Field

from quanyu.consent import privacy_sql as q
from quanyu.consent import service as consent
from quanyu.consent import sql as cq
from quanyu.consent.models import Subject
from quanyu.engine import Session
from quanyu.engine.duckdb import DuckDBSession
from quanyu.errors import Conflict, NotFound, QuanyuError, ValidationFailed
from quanyu.identity import sql as identity_sql
from quanyu.identity.models import format_oneid
from quanyu.identity.secrets import decrypt
from quanyu.identity.service import Resolver
from quanyu.ids import new_id, utcnow
from quanyu.ingest.normalize import normalize
from quanyu.ingest.writer import Chunk
from quanyu.profiles.models import parse_oneid

#: Days a request may take. PIPL article 50 asks for a timely answer without a number;
#: 15 days is the practice of GB/T 35273-2020 (8.7) and of the regulators' app reviews.
DUE_DAYS = 15
Kind = Literal["access", "correct", "delete"]
#: Tables a deletion writes to: each is rewritten so no freed block keeps the old rows.
ERASED_TABLES = (
    "events", "event_nodes", "event_facts", "tag_history", "profile_changes", "id_nodes",
    "id_edges", "dead_letters", "delivery_outbox", "consent_subjects", "audience_snapshots",
    "privacy_requests",
)  # fmt: skip


class PrivacyRequestCreate(BaseModel):
    """A data subject's request."""

    kind: Kind
    subject: Subject
    detail: str | None = Field(
        default=None, max_length=2000, description="a note: how the request came in; no PII"
    )
    traits: dict[str, Any] | None = Field(
        default=None, description="correct: the trait values to set"
    )


class PrivacyRequest(BaseModel):
    """A request as logged: whom (by OneID; the identifier only as a keyed hash), when it
    is due and what came of it."""

    id: str
    kind: str
    subject_type: str
    profile: str | None
    status: Literal["received", "completed", "failed"]
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    actor: str
    detail: str | None
    outcome: dict[str, Any] | None
    overdue: bool = Field(description="not completed and past due_at")


def _request(r: tuple[Any, ...], now: datetime) -> PrivacyRequest:
    (rid, kind, _key, subject_type, profile, status, received, due, completed, actor,
     detail, outcome) = r  # fmt: skip
    return PrivacyRequest(
        id=rid, kind=kind, subject_type=subject_type,
        profile=format_oneid(profile) if profile is not None else None, status=status,
        received_at=received, due_at=due, completed_at=completed, actor=actor, detail=detail,
        outcome=orjson.loads(outcome) if outcome else None,
        overdue=status != "completed" and now > due,
    )  # fmt: skip


def sealed_key(resolver: Resolver, tenant: str, key: str) -> str:
    """An identifier's graph key with no value in it: PII keys already are keyed hashes;
    other keys (``user_id:<source>:u1``) become one, the same way."""
    if ":h:" in key:
        return key
    type_key, scope = (key.split(":", 2) + ["", ""])[:2]
    digest = resolver.keys(tenant).keyed_hash(key.encode())[:16]
    return f"{type_key}:{scope}:h:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _subject(db: Session, resolver: Resolver, tenant: str, s: Subject) -> tuple[str, str, int]:
    """(identifier key, its type, OneID) of the person a request is about."""
    if s.profile is not None:
        number = parse_oneid(s.profile)
        row = db.one(cq.PROFILE_ROOT, [tenant, number])
        if row is None:
            raise NotFound(f"Tenant {tenant} has no person {s.profile}: check the OneID.")
        return str(row[0]), str(row[1]), number
    if not s.type or s.value is None:
        raise ValidationFailed(
            "subject needs an identifier (type and value, and scope for app-, brand- or"
            " source-scoped ones) or a profile (a OneID like 'P42')"
        )
    key = resolver.node_key(db, tenant, s.type, s.value, s.scope)
    rows = [r for r in db.execute(identity_sql.FIND_NODE, [key]) if r[0] == tenant]
    if not rows:
        raise NotFound(
            f"Tenant {tenant} holds no {s.type} identifier with that value"
            + (f" in scope {s.scope!r}" if s.scope else "")
            + ": check the value, or name the person by OneID"
        )
    return key, str(rows[0][3]), int(rows[0][2])


# --- the request log --------------------------------------------------------------------------


def create_request(
    db: Session, resolver: Resolver, *, tenant: str, kind: Kind, subject: Subject, actor: str,
    detail: str | None = None, now: datetime | None = None,
) -> PrivacyRequest:  # fmt: skip
    """Log a request about the person ``subject`` names; it is due in :data:`DUE_DAYS`.

    Raises:
        NotFound: nobody holds that identifier or OneID.
        ValidationFailed: an unknown kind or an incomplete subject.
    """
    if kind not in ("access", "correct", "delete"):
        raise ValidationFailed(f"kind {kind!r} is unknown: use access, correct or delete")
    key, id_type, profile = _subject(db, resolver, tenant, subject)
    received = now or utcnow()
    rid = new_id("prq")
    with db.transaction():
        db.execute(
            q.INSERT_REQUEST,
            [tenant, rid, kind, sealed_key(resolver, tenant, key), id_type, profile, received,
             received + timedelta(days=DUE_DAYS), actor, detail],
        )  # fmt: skip
        made = get_request(db, tenant=tenant, request_id=rid)
        consent._audit(db, tenant, actor, "privacy.request.create", made, "privacy_request", rid)
    return made


def list_requests(db: Session, *, tenant: str, limit: int = 100) -> list[PrivacyRequest]:
    """The tenant's requests, newest first, each flagged when overdue."""
    now = utcnow()
    return [_request(r, now) for r in db.execute(q.LIST_REQUESTS, [tenant, limit])]


def get_request(db: Session, *, tenant: str, request_id: str) -> PrivacyRequest:
    """One request. Raises NotFound."""
    row = db.one(q.GET_REQUEST, [tenant, request_id])
    if row is None:
        raise NotFound(
            f"Tenant {tenant} has no privacy request {request_id!r}: list them with"
            f" GET /v1/tenants/{tenant}/privacy/requests"
        )
    return _request(row, utcnow())


def _finish(
    db: Session, tenant: str, req: PrivacyRequest, actor: str, status: str, outcome: dict[str, Any]
) -> PrivacyRequest:
    with db.transaction():
        db.execute(
            q.FINISH_REQUEST,
            [status, utcnow(), orjson.dumps(outcome).decode(), tenant, req.id],
        )
        done = get_request(db, tenant=tenant, request_id=req.id)
        consent._audit(db, tenant, actor, f"privacy.request.{status}", done, "privacy_request",
                       req.id, req)  # fmt: skip
    return done


def _profile_of(req: PrivacyRequest) -> int:
    if req.profile is None:
        raise Conflict(f"Privacy request {req.id} names no person any more: nothing to do.")
    return parse_oneid(req.profile)


# --- access -----------------------------------------------------------------------------------


def identities(
    db: Session, resolver: Resolver, *, tenant: str, profile_id: int
) -> list[dict[str, Any]]:
    """The person's identifiers, in clear (PII decrypted where it is stored encrypted)."""
    keys = resolver.keys(tenant)
    out = []
    for node, id_type, scope, key, value, blob, masked, source, first in db.execute(
        q.PERSON_NODES, [tenant, profile_id]
    ):
        if value is None and blob is not None:
            value = decrypt(keys, blob, aad=key.encode())
        out.append({"node_id": node, "type": id_type, "scope": scope,
                    "value": value if value is not None else masked, "source_id": source,
                    "first_seen": first})  # fmt: skip
    return out


def access(db: Session, resolver: Resolver, *, tenant: str, profile_id: int) -> dict[str, Any]:
    """Everything held about a person, as JSON-ready tables (PIPL art. 45 access and copy).

    Raises:
        NotFound: no such person.
    """
    from quanyu.audiences import service as audiences
    from quanyu.profiles.service import get_profile
    from quanyu.tags import service as tags

    view = get_profile(db, tenant=tenant, profile_id=profile_id, history_limit=1000)
    events = db.arrow(q.PERSON_EVENTS, [tenant, tenant, tenant, profile_id]).to_pylist()
    for e in events:
        for col in ("properties", "traits", "context"):
            e[col] = orjson.loads(e[col]) if e[col] else None
    memberships = []
    for aud in audiences.list_audiences(db, tenant=tenant):
        if not audiences.snapshots(db, tenant=tenant, audience_id=aud.id, limit=1):
            continue
        snap, members = audiences.latest_members(db, tenant=tenant, audience_id=aud.id)
        if profile_id in members:
            memberships.append(
                {
                    "audience_id": aud.id,
                    "name": aud.name,
                    "snapshot_id": snap.snapshot_id,
                    "as_of": snap.created_at,
                }
            )
    data = {
        "person": format_oneid(profile_id),
        "exported_at": utcnow(),
        "identities": identities(db, resolver, tenant=tenant, profile_id=profile_id),
        "traits": [
            {"key": k, "value": t.value, "source_id": t.source_id, "at": t.at}
            for k, t in view.traits.items()
        ],
        "events": events,
        "tags": [t.model_dump() for t in tags.profile_tags(db, tenant=tenant,
                                                           profile_id=profile_id)],
        "audiences": memberships,
        "consent_states": [s.model_dump() for s in consent.states(db, tenant=tenant,
                                                                  profile_id=profile_id)],
        "consent_history": [e.model_dump() for e in consent.history(db, tenant=tenant,
                                                                    profile_id=profile_id)],
        # the one-item-one-code capability adds the person's code scans here
        "code_scans": [],
    }  # fmt: skip
    return orjson.loads(orjson.dumps(data, default=str))  # type: ignore[no-any-return]


def export_zip(data: dict[str, Any]) -> bytes:
    """An access export as a zip: ``export.json`` and one CSV per table."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export.json", orjson.dumps(data, option=orjson.OPT_INDENT_2))
        for name, rows in data.items():
            if not isinstance(rows, list):
                continue
            text = io.StringIO()
            cols = list(dict.fromkeys(k for r in rows for k in r))
            w = csv.DictWriter(text, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: v if isinstance(v, str | int | float | None) else
                            orjson.dumps(v).decode() for k, v in r.items()})  # fmt: skip
            z.writestr(f"{name}.csv", text.getvalue())
    return buf.getvalue()


# --- correction -------------------------------------------------------------------------------

#: Commits a chunk of events (the server's writer, or ``write_chunks`` without one).
Commit = Callable[[Chunk], object]


def correct(
    db: Session, resolver: Resolver, *, tenant: str, profile_id: int, traits: dict[str, Any],
    message_id: str, commit: Commit,
) -> dict[str, Any]:  # fmt: skip
    """Correct a person's traits: an ``identify`` event carrying ``traits`` on one of the
    person's own user or anonymous ids, so survivorship takes the new values as the latest.

    Returns the outcome (the event's source and message id, the corrected keys; no values).

    Raises:
        ValidationFailed: no traits, or the person has no user or anonymous id to carry it.
    """
    from quanyu.tenancy.service import get_source

    if not traits:
        raise ValidationFailed("traits is empty: give the trait values to correct, by key")
    ids = {(i["type"], i["scope"]): i for i in identities(db, resolver, tenant=tenant,
                                                           profile_id=profile_id)}  # fmt: skip
    found = next((i for (t, _), i in ids.items() if t == "user_id"), None) or next(
        (i for (t, _), i in ids.items() if t == "anonymous_id"), None
    )
    if found is None:
        raise ValidationFailed(
            f"{format_oneid(profile_id)} has no user_id or anonymous_id to attach a correction"
            " to: correct the traits at the source that knows them, or send an identify event"
        )
    source = get_source(db, tenant=tenant, source=found["scope"])
    field = "userId" if found["type"] == "user_id" else "anonymousId"
    at = utcnow()
    msg = {"type": "identify", field: found["value"], "messageId": message_id,
           "timestamp": at.isoformat() + "Z", "traits": traits,
           "context": {"library": {"name": "quanyu-privacy"}}}  # fmt: skip
    norm = normalize([orjson.dumps(msg)], received_at=at, sealer=resolver.sealer(tenant))
    if norm.rejects:
        raise ValidationFailed(f"the correction is not a valid event: {norm.rejects[0].reason}")
    commit(Chunk.normalized(norm, tenant_id=tenant, source_id=source.id,
                            brand_id=source.brand_id, received_at=at))  # fmt: skip
    resolver.catch_up(tenant)
    return {"source_id": source.id, "message_id": message_id, "traits": sorted(traits)}


# --- deletion ---------------------------------------------------------------------------------


def delete(
    db: Session, resolver: Resolver, *, tenant: str, profile_id: int, actor: str
) -> dict[str, Any]:
    """Erase a person's personal data from every table and derived store, re-resolve
    identity and scrub the database file. Running it again finds nothing and changes
    nothing but the scrub.

    Returns counts of what was erased.
    """
    from quanyu.audiences import service as audiences

    resolver.catch_up(tenant)
    people = identities(db, resolver, tenant=tenant, profile_id=profile_id)
    nodes = pa.table({"node_id": pa.array([i["node_id"] for i in people], pa.int64())})
    needles = sorted({str(i["value"]) for i in people if i["value"]} - {""})
    keys = [str(r[3]) for r in db.execute(q.PERSON_NODES, [tenant, profile_id])]
    done: dict[str, Any] = {"identifiers": len(people)}
    with db.transaction():
        done["events"] = db.with_table("privacy_nodes", nodes, q.DELETE_EVENTS, [tenant, tenant])
        for name, stmt, params in (
            ("event_links", q.DELETE_EVENT_NODES, [tenant]),
            ("facts", q.DELETE_FACTS, [tenant, profile_id]),
            ("profile_changes", q.DELETE_CHANGES, [tenant, profile_id, profile_id]),
            ("links", q.REMOVE_EDGES, [utcnow(), tenant]),
            ("identifiers_erased", q.ERASE_NODES, [tenant]),
        ):
            done[name] = db.with_table("privacy_nodes", nodes, stmt, params)
        done["tag_rows"] = _count(db.execute(q.DELETE_TAG_HISTORY, [tenant, profile_id]))
        if needles:
            found = pa.table({"needle": pa.array(needles, pa.string())})
            done["dead_letters"] = db.with_table("privacy_needles", found,
                                                 q.DELETE_DEAD_LETTERS, [tenant])  # fmt: skip
            done["outbox_messages"] = db.with_table("privacy_needles", found,
                                                    q.DELETE_OUTBOX, [tenant])  # fmt: skip
        for key in keys:
            db.execute(q.RENAME_CONSENT_KEY, [sealed_key(resolver, tenant, key), tenant, key])
        done["snapshots"] = _drop_from_snapshots(db, tenant, profile_id)
    audiences.CACHE.drop(tenant)
    # the resolver's graph indexes the erased keys in memory: reload it from the store
    resolver.set_rules(db, tenant, resolver.rules(db, tenant))
    if people:
        resolver.rebuild(tenant, actor=actor)
    done["scrubbed_tables"] = scrub_file(db, ERASED_TABLES)
    return done


def _count(rows: list[tuple[Any, ...]]) -> int:
    return int(rows[0][0]) if rows and rows[0] else 0


def _drop_from_snapshots(db: Session, tenant: str, profile_id: int) -> int:
    """Take the person out of every stored audience snapshot."""
    from quanyu.audiences import service as audiences

    changed = 0
    for aud in audiences.list_audiences(db, tenant=tenant):
        for snap in audiences.snapshots(db, tenant=tenant, audience_id=aud.id, limit=100_000):
            _, members = audiences.snapshot_members(db, tenant=tenant, snapshot_id=snap.snapshot_id)
            if profile_id in members:
                members.discard(profile_id)
                blob = members.serialize()
                db.execute(q.SET_SNAPSHOT_MEMBERS, [blob, len(members), tenant, snap.snapshot_id])
                changed += 1
    return changed


def scrub_file(db: Session, tables: tuple[str, ...]) -> list[str]:
    """Make deleted rows unrecoverable from the database file (the module docstring says
    why each step is needed). Returns the tables rewritten; an engine without a local
    database file has nothing to scrub and returns none.
    """
    if not isinstance(db, DuckDBSession):
        return []
    for table in tables:
        where = " WHERE database_name = current_database() AND schema_name = 'main'"
        ddl = db.raw(f"SELECT sql FROM duckdb_tables(){where} AND table_name = ?", [table])
        indexes = db.raw(f"SELECT sql FROM duckdb_indexes(){where} AND table_name = ?", [table])
        with db.transaction():
            db.raw(f"CREATE OR REPLACE TEMP TABLE privacy_keep AS SELECT * FROM {table}")
            db.raw(f"DROP TABLE {table}")
            db.raw(str(ddl[0][0]))
            db.raw(f"INSERT INTO {table} SELECT * FROM temp.privacy_keep")
            for (sql,) in indexes:
                db.raw(str(sql))
            db.raw("DROP TABLE temp.privacy_keep")
    db.checkpoint()
    block, free = db.raw("SELECT block_size, free_blocks FROM pragma_database_size()")[0]
    if free:
        # rows of 512 random bytes, a quarter more than the free space: the allocator fills
        # free blocks before it grows the file
        rows = int(free) * int(block) * 5 // 4 // 512 + 64
        random = " || ".join(["md5(random()::VARCHAR)"] * 32)
        db.raw("CREATE OR REPLACE TABLE privacy_fill (b BLOB)")
        db.raw(f"INSERT INTO privacy_fill SELECT unhex({random}) FROM range(?)", [rows])
        db.checkpoint()
        db.raw("DROP TABLE privacy_fill")
        db.checkpoint()
    return list(tables)


# --- running a request ------------------------------------------------------------------------


def run(
    db: Session, resolver: Resolver, *, tenant: str, request_id: str, actor: str,
    traits: dict[str, Any] | None = None, commit: Commit | None = None,
) -> PrivacyRequest:  # fmt: skip
    """Carry out a request and log the outcome. A completed request is not run again
    (a deletion is idempotent anyway); a failed one may be retried.

    Args:
        traits: correct: the values to set.
        commit: correct: how the correction event is committed.

    Raises:
        ValidationFailed: a correction without traits or a way to commit them.
    """
    req = get_request(db, tenant=tenant, request_id=request_id)
    if req.status == "completed":
        return req
    profile_id = _profile_of(req)
    if req.kind == "correct" and (commit is None or not traits):
        raise ValidationFailed(
            f"privacy request {req.id} is a correction: give the traits to set, by key"
        )
    try:
        if req.kind == "access":
            data = access(db, resolver, tenant=tenant, profile_id=profile_id)
            outcome = {k: len(v) for k, v in data.items() if isinstance(v, list)}
        elif req.kind == "correct":
            assert commit is not None and traits
            outcome = correct(db, resolver, tenant=tenant, profile_id=profile_id, traits=traits,
                              message_id=f"privacy-{req.id}", commit=commit)  # fmt: skip
        else:
            outcome = delete(db, resolver, tenant=tenant, profile_id=profile_id, actor=actor)
    except QuanyuError as e:
        # logged as failed with the reason, so the log shows it and a retry may follow
        _finish(db, tenant, req, actor, "failed", {"error": e.code, "message": e.message})
        raise
    return _finish(db, tenant, req, actor, "completed", outcome)


def submit(
    db: Session, resolver: Resolver, body: PrivacyRequestCreate, *, tenant: str, actor: str,
    commit: Commit,
) -> PrivacyRequest:  # fmt: skip
    """Log a request and carry it out at once (what the API and CLI do).

    Raises:
        ValidationFailed: a correction without traits (nothing is logged then).
    """
    if body.kind == "correct" and not body.traits:
        raise ValidationFailed("a correct request needs traits: give the values to set, by key")
    made = create_request(db, resolver, tenant=tenant, kind=body.kind, subject=body.subject,
                          actor=actor, detail=body.detail)  # fmt: skip
    return run(db, resolver, tenant=tenant, request_id=made.id, actor=actor, traits=body.traits,
               commit=commit)  # fmt: skip


def export(db: Session, resolver: Resolver, *, tenant: str, request_id: str) -> bytes:
    """The zip of an access request, made from what is held now.

    Raises:
        Conflict: the request is not an access request.
    """
    req = get_request(db, tenant=tenant, request_id=request_id)
    if req.kind != "access":
        raise Conflict(f"Privacy request {req.id} is a {req.kind} request: only access"
                       " requests have an export")  # fmt: skip
    return export_zip(access(db, resolver, tenant=tenant, profile_id=_profile_of(req)))
