"""SQL of :mod:`quanyu.consent.person_view`. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

_LEDGER = (
    "seq, id, purpose_id, channel, status, separate, notice_version, decided_at, recorded_at,"
    " surface, actor, evidence, subject_type, profile_id, origin, source_id, message_id,"
    " leaf_hash"
)
#: The person's identifiers now (an erased identifier keeps its node but loses its key).
PERSON_KEYS = statement(
    "consent_view.person_keys",
    "SELECT key FROM id_nodes WHERE tenant_id = ? AND profile_id = ? AND key IS NOT NULL",
)
#: The entries covering one identifier. The key's index answers ``key = ?`` in about a
#: millisecond, but DuckDB scans the whole table once another conjunct joins it; the
#: LIMIT keeps the tenant filter out of the indexed lookup (a bound no key comes near).
SUBJECT_SEQS = statement(
    "consent_view.subject_seqs",
    "SELECT s.seq FROM (SELECT tenant_id, seq FROM consent_subjects WHERE key = ?"
    " LIMIT 100000000) AS s WHERE s.tenant_id = ?",
)
#: Ledger entries by number; the numbers are registered as ``staged_person_seqs``.
ENTRIES = statement(
    "consent_view.entries",
    f"SELECT {_LEDGER} FROM consent_ledger WHERE tenant_id = ?"
    " AND seq IN (SELECT seq FROM staged_person_seqs)",
)
