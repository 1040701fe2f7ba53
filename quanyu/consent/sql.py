"""SQL of the consent capability. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

# --- entities and purposes ---------------------------------------------------------------

INSERT_ENTITY = statement(
    "consent.insert_entity",
    "INSERT INTO consent_entities (tenant_id, id, name, credit_code, is_default, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)",
)
LIST_ENTITIES = statement(
    "consent.list_entities",
    "SELECT id, name, credit_code, is_default, created_at FROM consent_entities"
    " WHERE tenant_id = ? ORDER BY created_at, id",
)
ENTITY_BRANDS = statement(
    "consent.entity_brands",
    "SELECT entity_id, brand_id FROM consent_brand_entities WHERE tenant_id = ? ORDER BY brand_id",
)
DELETE_BRAND_ENTITY = statement(
    "consent.delete_brand_entity",
    "DELETE FROM consent_brand_entities WHERE tenant_id = ? AND brand_id = ?",
)
INSERT_BRAND_ENTITY = statement(
    "consent.insert_brand_entity",
    "INSERT INTO consent_brand_entities (tenant_id, brand_id, entity_id) VALUES (?, ?, ?)",
)
_PURPOSE = (
    "id, entity_id, key, name_zh, name_en, legal_basis, separate_consent, valid_days,"
    " retention_days, destinations, on_withdrawal, collects, marketing, categories, created_at"
)
INSERT_PURPOSE = statement(
    "consent.insert_purpose",
    f"INSERT INTO consent_purposes (tenant_id, {_PURPOSE}, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
LIST_PURPOSES = statement(
    "consent.list_purposes",
    f"SELECT {_PURPOSE} FROM consent_purposes WHERE tenant_id = ? ORDER BY entity_id, key",
)
INSERT_NOTICE = statement(
    "consent.insert_notice",
    "INSERT INTO consent_notices (tenant_id, purpose_id, version, text, created_at)"
    " VALUES (?, ?, ?, ?, ?)",
)
LIST_NOTICES = statement(
    "consent.list_notices",
    "SELECT purpose_id, version, text, created_at FROM consent_notices WHERE tenant_id = ?"
    " ORDER BY purpose_id, created_at, version",
)
GET_NOTICE = statement(
    "consent.get_notice",
    "SELECT purpose_id, version, text, created_at FROM consent_notices"
    " WHERE tenant_id = ? AND purpose_id = ? AND version = ?",
)

# --- state and settings ------------------------------------------------------------------

NEXT_SEQ = statement("consent.next_seq", "SELECT next_seq FROM consent_state WHERE tenant_id = ?")
INSERT_STATE = statement(
    "consent.insert_state",
    "INSERT INTO consent_state (tenant_id, guardian_under, marketing_min_age, next_seq,"
    " captured_seq, updated_at) VALUES (?, NULL, NULL, ?, 0, ?)",
)
SET_NEXT_SEQ = statement(
    "consent.set_next_seq",
    "UPDATE consent_state SET next_seq = ?, updated_at = ? WHERE tenant_id = ?",
)
GET_SETTINGS = statement(
    "consent.get_settings",
    "SELECT guardian_under, marketing_min_age, next_seq, captured_seq FROM consent_state"
    " WHERE tenant_id = ?",
)
SET_SETTINGS = statement(
    "consent.set_settings",
    "UPDATE consent_state SET guardian_under = ?, marketing_min_age = ?, updated_at = ?"
    " WHERE tenant_id = ?",
)

# --- the ledger ---------------------------------------------------------------------------

_LEDGER = (
    "seq, id, purpose_id, channel, status, separate, notice_version, decided_at, recorded_at,"
    " surface, actor, evidence, subject_key, subject_type, profile_id, origin, source_id,"
    " message_id, recorded_by, leaf_hash"
)
INSERT_LEDGER = statement(
    "consent.insert_ledger",
    f"INSERT INTO consent_ledger (tenant_id, {_LEDGER})"
    f" SELECT tenant_id, {_LEDGER} FROM staged_consent_ledger",
)
INSERT_SUBJECTS = statement(
    "consent.insert_subjects",
    "INSERT INTO consent_subjects (tenant_id, seq, key)"
    " SELECT tenant_id, seq, key FROM staged_consent_subjects",
)
GET_ENTRY = statement(
    "consent.get_entry",
    f"SELECT {_LEDGER} FROM consent_ledger WHERE tenant_id = ? AND seq = ?",
)
_PROFILE_KEYS = "SELECT key FROM id_nodes WHERE tenant_id = ? AND profile_id = ?"
#: The person's identifiers now (an erased identifier keeps its node but loses its key).
PERSON_KEYS = statement("consent.person_keys", _PROFILE_KEYS + " AND key IS NOT NULL")
#: The entries covering one identifier. The key's index answers ``key = ?`` in about a
#: millisecond, but DuckDB scans the whole table once another conjunct joins it; the
#: LIMIT keeps the tenant filter out of the indexed lookup (a bound no key comes near).
SUBJECT_SEQS = statement(
    "consent.subject_seqs",
    "SELECT s.seq FROM (SELECT tenant_id, seq FROM consent_subjects WHERE key = ?"
    " LIMIT 100000000) AS s WHERE s.tenant_id = ?",
)
#: Ledger entries by number; the numbers are registered as ``staged_person_seqs``.
ENTRIES_BY_SEQ = statement(
    "consent.entries_by_seq",
    f"SELECT {_LEDGER} FROM consent_ledger WHERE tenant_id = ?"
    " AND seq IN (SELECT seq FROM staged_person_seqs)",
)
COVERED_FOR_PROFILE = statement(
    "consent.covered_for_profile",
    f"""
    SELECT s.key, l.seq, l.purpose_id, l.channel, l.status, l.separate, l.decided_at
    FROM ({_PROFILE_KEYS}) AS k
    JOIN consent_subjects AS s ON s.key = k.key AND s.tenant_id = ?
    JOIN consent_ledger AS l ON l.tenant_id = ? AND l.seq = s.seq
    """,
)
HISTORY_FOR_PROFILE = statement(
    "consent.history_for_profile",
    f"""
    SELECT {", ".join("l." + c.strip() for c in _LEDGER.split(","))}
    FROM consent_ledger AS l
    WHERE l.seq IN (
        SELECT s.seq FROM ({_PROFILE_KEYS}) AS k
        JOIN consent_subjects AS s ON s.key = k.key AND s.tenant_id = ?
    ) AND l.tenant_id = ?
    ORDER BY l.decided_at DESC, l.seq DESC
    LIMIT ?
    """,
)
#: The rule of :mod:`quanyu.consent.ledger` over a whole tenant, for one purpose and
#: channel: each person with any word, their state's rank (0 granted, 1 expired or
#: unknown, 2 denied, 3 withdrawn), its status, the entry it rests on, and whether their
#: identifiers disagree. Parameters: now, tenant, purpose, channel, now, tenant, tenant.
STATES = statement(
    "consent.states",
    """
    WITH covered AS (
        SELECT s.key, l.seq, l.decided_at,
            CASE
                WHEN l.status <> 'granted' THEN l.status
                WHEN p.separate_consent AND NOT l.separate THEN 'unknown'
                WHEN p.valid_days IS NOT NULL
                    AND l.decided_at + to_days(p.valid_days) < CAST(? AS TIMESTAMP)
                    THEN 'expired'
                ELSE 'granted'
            END AS status
        FROM consent_ledger AS l
        JOIN consent_purposes AS p ON p.tenant_id = l.tenant_id AND p.id = l.purpose_id
        JOIN consent_subjects AS s ON s.tenant_id = l.tenant_id AND s.seq = l.seq
        WHERE l.tenant_id = ? AND l.purpose_id = ? AND l.channel IN (?, '*')
            AND l.decided_at <= CAST(? AS TIMESTAMP)
    ), words AS (
        SELECT key, seq, decided_at, status,
            CASE status WHEN 'granted' THEN 0 WHEN 'expired' THEN 1 WHEN 'unknown' THEN 1
                WHEN 'denied' THEN 2 ELSE 3 END AS rank,
            row_number() OVER (PARTITION BY key ORDER BY decided_at DESC, seq DESC) AS nth
        FROM covered
    )
    SELECT n.profile_id,
        max(w.rank) AS rank,
        arg_max(w.status, w.rank * 1000000000000 + w.seq) AS status,
        arg_max(w.seq, w.rank * 1000000000000 + w.seq) AS entry_seq,
        min(w.status) <> max(w.status) AS conflict
    FROM words AS w
    JOIN id_nodes AS n ON n.tenant_id = ? AND n.key = w.key
    WHERE w.nth = 1 AND n.tenant_id = ?
    GROUP BY n.profile_id
    """,
)
#: Numbers that change whenever any person's state may have: the ledger's next entry
#: and the identity graph's next change (merges and splits).
VERSION = statement(
    "consent.version",
    "SELECT (SELECT coalesce(max(next_seq), 0) FROM consent_state WHERE tenant_id = ?),"
    " (SELECT coalesce(max(next_change), 0) FROM identity_state WHERE tenant_id = ?)",
)
#: Whatever enforcement reads besides the ledger, as three numbers: the ledger's next
#: entry, the configuration's version and the identity graph's next change.
CONFIG_VERSION = statement(
    "consent.config_version",
    "SELECT c.next_seq, c.config_version,"
    " (SELECT coalesce(max(next_change), 0) FROM identity_state WHERE tenant_id = ?)"
    " FROM consent_state AS c WHERE c.tenant_id = ?",
)
BUMP_CONFIG = statement(
    "consent.bump_config",
    "UPDATE consent_state SET config_version = coalesce(config_version, 0) + 1 WHERE tenant_id = ?",
)


# --- decisions ----------------------------------------------------------------------------

_DECISION = (
    "tenant_id, decided_at, act, act_id, profile_id, purpose_id, channel, destination,"
    " decision, reason, entry_seq"
)
INSERT_DECISIONS = statement(
    "consent.insert_decisions",
    f"INSERT INTO consent_decisions ({_DECISION}) SELECT {_DECISION} FROM staged_decisions",
)
LIST_DECISIONS = statement(
    "consent.list_decisions",
    f"""
    SELECT {_DECISION} FROM consent_decisions
    WHERE tenant_id = ? AND (? IS NULL OR profile_id = ?) AND (? IS NULL OR decision = ?)
        AND (? IS NULL OR act_id = ?) AND (? IS NULL OR purpose_id = ?)
    ORDER BY decided_at DESC, profile_id
    LIMIT ?
    """,
)

# --- identifiers (read to name subjects; the identity capability owns them) ---------------

PROFILE_ROOT = statement(
    "consent.profile_root",
    "SELECT key, id_type FROM id_nodes WHERE tenant_id = ? AND node_id = ?"
    " AND profile_id = node_id",
)
PROFILE_KEYS = statement(
    "consent.profile_keys",
    "SELECT key FROM id_nodes WHERE tenant_id = ? AND profile_id = ? ORDER BY node_id",
)
PROFILE_IDENTIFIERS = statement(
    "consent.profile_identifiers",
    "SELECT id_type, scope, value FROM id_nodes WHERE tenant_id = ? AND profile_id = ?"
    " AND value IS NOT NULL ORDER BY node_id",
)

# --- subscribers and propagation -----------------------------------------------------------

INSERT_SUBSCRIBER = statement(
    "consent.insert_subscriber",
    "INSERT INTO consent_subscribers (tenant_id, id, name, destination_id, purposes, brands,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
)
LIST_SUBSCRIBERS = statement(
    "consent.list_subscribers",
    "SELECT id, name, destination_id, purposes, brands, created_at FROM consent_subscribers"
    " WHERE tenant_id = ? ORDER BY created_at, id",
)
DELETE_SUBSCRIBER = statement(
    "consent.delete_subscriber",
    "DELETE FROM consent_subscribers WHERE tenant_id = ? AND id = ?",
)
INSERT_PROPAGATION = statement(
    "consent.insert_propagation",
    "INSERT INTO consent_propagation (tenant_id, seq, subscriber_id, message_id)"
    " SELECT tenant_id, seq, subscriber_id, message_id FROM staged_propagation",
)
PROPAGATION_OF = statement(
    "consent.propagation_of",
    "SELECT subscriber_id, message_id FROM consent_propagation WHERE tenant_id = ? AND seq = ?"
    " ORDER BY subscriber_id",
)

# --- canaries -------------------------------------------------------------------------------

CANARY_PROFILES = statement(
    "consent.canary_profiles",
    "SELECT DISTINCT n.profile_id FROM consent_canaries AS c"
    " JOIN id_nodes AS n ON n.key = c.subject_key AND n.tenant_id = ?"
    " WHERE c.tenant_id = ?",
)
INSERT_CANARY = statement(
    "consent.insert_canary",
    "INSERT INTO consent_canaries (tenant_id, user_id, subject_key, created_at)"
    " VALUES (?, ?, ?, ?)",
)
COUNT_CANARIES = statement(
    "consent.count_canaries", "SELECT count(*) FROM consent_canaries WHERE tenant_id = ?"
)
_CANARY_IDS = (
    "SELECT n.profile_id FROM consent_canaries AS c JOIN id_nodes AS n"
    " ON n.key = c.subject_key AND n.tenant_id = c.tenant_id WHERE c.tenant_id = ?"
)
CANARY_DECISION_COUNTS = statement(
    "consent.canary_decision_counts",
    f"SELECT decision, count(*) FROM consent_decisions WHERE tenant_id = ?"
    f" AND profile_id IN ({_CANARY_IDS}) GROUP BY decision",
)
CANARY_DECISIONS = statement(
    "consent.canary_decisions",
    f"SELECT decided_at, profile_id, act, act_id, destination, decision, reason"
    f" FROM consent_decisions WHERE tenant_id = ? AND profile_id IN ({_CANARY_IDS})"
    f" ORDER BY decided_at DESC LIMIT ?",
)
