"""SQL of the delivery capability. Declares statements; runs nothing."""

from __future__ import annotations

from quanyu.delivery.schema import OUTBOX_COLUMNS
from quanyu.engine import Capability, statement

# --- destinations -----------------------------------------------------------------------

_DEST = "id, tenant_id, name, kind, url, batch_size, enabled, created_at"

INSERT_DESTINATION = statement(
    "delivery.insert_destination",
    "INSERT INTO delivery_destinations (id, tenant_id, name, kind, url, secret_sealed,"
    " batch_size, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
GET_DESTINATION = statement(
    "delivery.get_destination",
    f"SELECT {_DEST} FROM delivery_destinations WHERE tenant_id = ? AND id = ?",
)
DESTINATION_BY_NAME = statement(
    "delivery.destination_by_name",
    "SELECT id FROM delivery_destinations WHERE tenant_id = ? AND name = ?",
)
LIST_DESTINATIONS = statement(
    "delivery.list_destinations",
    f"SELECT {_DEST} FROM delivery_destinations WHERE tenant_id = ? ORDER BY created_at, id",
)
SET_DESTINATION_ENABLED = statement(
    "delivery.set_destination_enabled",
    "UPDATE delivery_destinations SET enabled = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
    requires=(Capability.ROW_UPDATES,),
)
DELETE_DESTINATION = statement(
    "delivery.delete_destination",
    "DELETE FROM delivery_destinations WHERE tenant_id = ? AND id = ?",
    requires=(Capability.ROW_UPDATES,),
)

# --- the outbox -------------------------------------------------------------------------

_COLS = ", ".join(OUTBOX_COLUMNS)
#: Append the staged messages (an Arrow table in :data:`OUTBOX_COLUMNS` order).
INSERT_MESSAGES = statement(
    "delivery.insert_messages",
    f"INSERT INTO delivery_outbox ({_COLS}) SELECT {_COLS} FROM staged_delivery_outbox",
)
#: Where the ordering sequence goes on from (messages of every tenant share it).
MAX_SEQ = statement(
    "delivery.max_seq",
    "SELECT coalesce(max(seq), 0) FROM delivery_outbox",
    tenant_scoped=False,
)

_MSG = (
    "id, tenant_id, destination_id, topic, ordering_key, status, attempts, next_attempt_at,"
    " last_attempt_at, last_error, last_status_code, response, created_at, delivered_at"
)
LIST_MESSAGES = statement(
    "delivery.list_messages",
    f"SELECT {_MSG} FROM delivery_outbox WHERE tenant_id = ?"
    " AND (CAST(? AS VARCHAR) IS NULL OR destination_id = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR status = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR ordering_key = ?)"
    " ORDER BY seq DESC LIMIT ?",
)
GET_MESSAGE = statement(
    "delivery.get_message",
    f"SELECT {_MSG}, payload FROM delivery_outbox WHERE tenant_id = ? AND id = ?",
)
MESSAGES_BY_KEY = statement(
    "delivery.messages_by_key",
    f"SELECT {_MSG} FROM delivery_outbox WHERE tenant_id = ? AND ordering_key = ? ORDER BY seq",
)
#: Settled messages (delivered, failed, skipped) of the given topics last touched before
#: ``?``: what a retention pass deletes. Params: cutoff, topics (a list).
PRUNE_SETTLED = statement(
    "delivery.prune_settled",
    "DELETE FROM delivery_outbox WHERE status IN ('delivered', 'failed', 'skipped')"
    " AND coalesce(delivered_at, last_attempt_at, created_at) < ?"
    " AND list_contains(?, topic)",
    tenant_scoped=False,
    requires=(Capability.ROW_UPDATES,),
)
#: Send a failed or skipped message again, as if it were new (it keeps its place in
#: its key's order, so later pending messages of the key wait for it).
REQUEUE_MESSAGE = statement(
    "delivery.requeue_message",
    "UPDATE delivery_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
    " last_error = NULL, last_status_code = NULL, response = NULL"
    " WHERE tenant_id = ? AND id = ? AND status IN ('failed', 'skipped')",
    requires=(Capability.ROW_UPDATES,),
)

# --- the worker -------------------------------------------------------------------------

#: Destinations (of any tenant) with pending messages that can no longer be sent.
UNDELIVERABLE = statement(
    "delivery.undeliverable",
    "SELECT DISTINCT o.tenant_id, o.destination_id, d.id IS NULL AS deleted"
    " FROM delivery_outbox AS o LEFT JOIN delivery_destinations AS d"
    " ON d.tenant_id = o.tenant_id AND d.id = o.destination_id"
    " WHERE o.status = 'pending' AND (d.id IS NULL OR NOT d.enabled)",
    tenant_scoped=False,
)
SKIP_PENDING = statement(
    "delivery.skip_pending",
    "UPDATE delivery_outbox SET status = 'skipped', last_error = ?, last_attempt_at = ?"
    " WHERE tenant_id = ? AND destination_id = ? AND status = 'pending'",
    requires=(Capability.ROW_UPDATES,),
)
#: The oldest pending message of each (destination, key), if due, across tenants.
DUE_HEADS = statement(
    "delivery.due_heads",
    "SELECT h.id, h.tenant_id, h.destination_id, h.payload, h.attempts, d.url,"
    " d.secret_sealed, h.topic, h.created_at"
    " FROM (SELECT id, seq, tenant_id, destination_id, payload, attempts, next_attempt_at,"
    "       topic, created_at,"
    "       row_number() OVER (PARTITION BY tenant_id, destination_id, ordering_key"
    "                          ORDER BY seq) AS place"
    "       FROM delivery_outbox WHERE status = 'pending') AS h"
    " JOIN delivery_destinations AS d ON d.tenant_id = h.tenant_id AND d.id = h.destination_id"
    " WHERE h.place = 1 AND h.next_attempt_at <= ? AND d.enabled"
    " ORDER BY h.seq LIMIT ?",
    tenant_scoped=False,
)
#: The body a send-time gate left of a message (what is sent from now on).
SET_PAYLOAD = statement(
    "delivery.set_payload",
    "UPDATE delivery_outbox SET payload = ? WHERE tenant_id = ? AND id = ? AND status = 'pending'",
    requires=(Capability.ROW_UPDATES,),
)
#: Record one attempt; a row no longer pending (requeued, skipped) is left alone.
FINISH_ATTEMPT = statement(
    "delivery.finish_attempt",
    "UPDATE delivery_outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
    " last_attempt_at = ?, last_error = ?, last_status_code = ?, response = ?, delivered_at = ?"
    " WHERE tenant_id = ? AND id = ? AND status = 'pending'",
    requires=(Capability.ROW_UPDATES,),
)
#: Messages by id (the ids staged as ``staged_message_ids``, one ``id`` column).
MESSAGES_BY_IDS = statement(
    "delivery.messages_by_ids",
    f"SELECT {_MSG} FROM delivery_outbox WHERE tenant_id = ?"
    " AND id IN (SELECT id FROM staged_message_ids) ORDER BY seq",
)
