"""SQL of the ingest capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import Capability, statement
from quanyu.ingest.schema import EVENT_COLUMNS

_COLS = ", ".join(EVENT_COLUMNS)

#: What deduplicates an event: a 128-bit hash of its (source, messageId).
EVENT_KEY = "md5_number(source_id || chr(31) || message_id)"
#: Append staged events (the group's first try: see INSERT_NEW_KEYS).
INSERT_NEW_EVENTS = statement(
    "ingest.insert_new_events",
    f"INSERT INTO events (commit_seq, {_COLS}) SELECT ?, {_COLS} FROM staged_events",
)
#: Claim the keys of the events just appended (params: seq); a key claimed before (or
#: twice here) fails the statement (``DuplicateKey``) and the writer rolls back and
#: falls back to the two statements below. Reading the appended rows back, rather than
#: the staged Arrow table a second time, keeps the GIL out of it: DuckDB's scan of a
#: Python object takes the GIL again and again, and waits for it under load.
INSERT_NEW_KEYS = statement(
    "ingest.insert_new_keys",
    f"INSERT INTO event_keys (key, commit_seq, received_at)"
    f" SELECT {EVENT_KEY}, commit_seq, received_at FROM events WHERE commit_seq = ?",
    requires=(Capability.HASH_KEYS,),
    tenant_scoped=False,
)
#: Claim the keys not claimed before, once each.
CLAIM_KEYS = statement(
    "ingest.claim_keys",
    f"INSERT INTO event_keys (key, commit_seq, received_at)"
    f" SELECT {EVENT_KEY}, ?, received_at FROM staged_events ON CONFLICT DO NOTHING",
    requires=(Capability.HASH_KEYS, Capability.INSERT_IGNORE),
    tenant_scoped=False,
)
#: Append one staged event per key this commit claimed (params: seq, seq); returns the
#: source of each. The commit's keys are the table's last rows: zone maps find them.
INSERT_EVENTS = statement(
    "ingest.insert_events",
    f"INSERT INTO events (commit_seq, {_COLS}) SELECT ?, {_COLS} FROM ("
    f"SELECT *, row_number() OVER (PARTITION BY {EVENT_KEY}) AS copy FROM staged_events"
    f" WHERE {EVENT_KEY} IN (SELECT key FROM event_keys WHERE commit_seq = ?)) AS s"
    " WHERE copy = 1 RETURNING source_id",
    requires=(Capability.HASH_KEYS,),
)
#: Let go of at most N keys received before a time (the dedup window's start).
PRUNE_KEYS = statement(
    "ingest.prune_keys",
    "DELETE FROM event_keys WHERE key IN"
    " (SELECT key FROM event_keys WHERE received_at < ? LIMIT ?)",
    tenant_scoped=False,
)
INSERT_DEAD_LETTERS = statement(
    "ingest.insert_dead_letters",
    "INSERT INTO dead_letters (id, tenant_id, source_id, received_at, message_id, event_type,"
    " event, code, reason, rule, disposition, status, payload)"
    " SELECT id, tenant_id, source_id, received_at, message_id, event_type, event, code, reason,"
    " rule, disposition, status, payload FROM staged_dead_letters",
)
INSERT_COMMIT_STATS = statement(
    "ingest.insert_commit_stats",
    "INSERT INTO ingest_commits (tenant_id, source_id, committed_at, received, inserted)"
    " VALUES (?, ?, ?, ?, ?)",
)

_EVENT_VIEW = (
    "message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, timestamp,"
    " original_timestamp, sent_at, received_at, source_id, brand_id, properties, traits, context,"
    " integrations, identifiers"
)
LIST_EVENTS = statement(
    "ingest.list_events",
    f"SELECT {_EVENT_VIEW} FROM events WHERE tenant_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR source_id = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR user_id = ? OR anonymous_id = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR type = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR event = ?)"
    " AND (CAST(? AS TIMESTAMP) IS NULL OR received_at < ?"
    "      OR (received_at = ? AND message_id < ?))"
    " ORDER BY received_at DESC, message_id DESC LIMIT ?",
)
GET_EVENT = statement(
    "ingest.get_event",
    f"SELECT {_EVENT_VIEW} FROM events WHERE tenant_id = ? AND message_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR source_id = ?)",
)
#: The last group commit's number, where the writer goes on from.
LAST_COMMIT_SEQ = statement(
    "ingest.last_commit_seq", "SELECT coalesce(max(commit_seq), 0) FROM events", tenant_scoped=False
)
COUNT_EVENTS = statement("ingest.count_events", "SELECT count(*) FROM events WHERE tenant_id = ?")

_DL_COLS = (
    "id, source_id, received_at, message_id, event_type, event, code, reason, rule, disposition,"
    " status, payload, resolved_at"
)
LIST_DEAD_LETTERS = statement(
    "ingest.list_dead_letters",
    f"SELECT {_DL_COLS} FROM dead_letters WHERE tenant_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR source_id = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR status = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR code = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR id < ?)"
    " ORDER BY id DESC LIMIT ?",
)
GET_DEAD_LETTERS = statement(
    "ingest.get_dead_letters",
    f"SELECT {_DL_COLS} FROM dead_letters WHERE tenant_id = ? AND list_contains(?, id)",
)
RESOLVE_DEAD_LETTER = statement(
    "ingest.resolve_dead_letter",
    "UPDATE dead_letters SET status = ?, resolved_at = ? WHERE tenant_id = ? AND id = ?",
    requires=(Capability.ROW_UPDATES,),
)
UPDATE_DEAD_LETTER_PAYLOAD = statement(
    "ingest.update_dead_letter_payload",
    "UPDATE dead_letters SET payload = ? WHERE tenant_id = ? AND id = ? AND status = 'open'",
    requires=(Capability.ROW_UPDATES,),
)

#: Note that a commit holds the journal records first..last (params: first, last, seq).
INSERT_JOURNAL_RANGE = statement(
    "ingest.insert_journal_range",
    "INSERT INTO ingest_journal (first_record, last_record, commit_seq) VALUES (?, ?, ?)",
    tenant_scoped=False,
)
#: The committed runs of journal records that end at or after a record.
JOURNAL_RANGES = statement(
    "ingest.journal_ranges",
    "SELECT first_record, last_record FROM ingest_journal WHERE last_record >= ?",
    tenant_scoped=False,
)
LAST_JOURNAL_RECORD = statement(
    "ingest.last_journal_record",
    "SELECT coalesce(max(last_record), 0) FROM ingest_journal",
    tenant_scoped=False,
)
#: Forget the runs of records in journal files already deleted (params: oldest kept).
PRUNE_JOURNAL_RANGES = statement(
    "ingest.prune_journal_ranges",
    "DELETE FROM ingest_journal WHERE last_record < ?",
    tenant_scoped=False,
)
