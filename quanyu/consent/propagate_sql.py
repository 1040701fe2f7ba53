"""SQL of consent propagation beyond :mod:`quanyu.consent.sql`. Builds statements; runs
nothing."""

from __future__ import annotations

from quanyu.engine import statement

#: The identifier key of each entry in a range of seqs (for a person not resolved yet,
#: the entry covers that one key): the ordering key of such a person.
SUBJECT_KEYS = statement(
    "consent.propagate_subject_keys",
    "SELECT seq, min(key) FROM consent_subjects WHERE tenant_id = ? AND seq BETWEEN ? AND ?"
    " GROUP BY seq",
)
GET_SUBSCRIBER = statement(
    "consent.propagate_get_subscriber",
    "SELECT id, name, destination_id, purposes, brands, created_at FROM consent_subscribers"
    " WHERE tenant_id = ? AND id = ?",
)
SUBSCRIBER_BY_NAME = statement(
    "consent.propagate_subscriber_by_name",
    "SELECT id FROM consent_subscribers WHERE tenant_id = ? AND name = ?",
)
