"""SQL of scans, rewards and alerts. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

SCAN_COLUMNS = (
    "id", "tenant_id", "code", "presented", "inner_code", "verdict", "state", "gtin",
    "scanned_at", "city", "lat", "lon", "ip", "device_id", "role", "party_id", "dealer_id",
    "region",
)  # fmt: skip
_SC = ", ".join(SCAN_COLUMNS)

INSERT_SCANS = statement(
    "scans.insert_scans",
    f"INSERT INTO code_scans ({_SC}) SELECT {_SC} FROM staged_scans",
)
#: How far the scan journal is folded (one row for every tenant's scans).
JOURNAL_FOLDED = statement(
    "scans.journal_folded",
    "SELECT segment, byte_offset FROM scan_journal WHERE id = 1",
    tenant_scoped=False,
)
SET_JOURNAL_FOLDED = statement(
    "scans.set_journal_folded",
    "UPDATE scan_journal SET segment = ?, byte_offset = ? WHERE id = 1",
    tenant_scoped=False,
)
#: Earlier consumer scans of one code: how many, and the first one's time and city.
SCAN_HISTORY = statement(
    "scans.history",
    "SELECT count(*), min(scanned_at), arg_min(city, scanned_at) FROM code_scans"
    " WHERE tenant_id = ? AND code = ? AND role = 'consumer' AND verdict = 'genuine'"
    " AND NOT inner_code",
)
LIST_SCANS = statement(
    "scans.list",
    f"SELECT {_SC} FROM code_scans WHERE tenant_id = ? AND (? IS NULL OR code = ?)"
    " ORDER BY scanned_at DESC LIMIT ?",
)

# -- rewards ------------------------------------------------------------------------------

_CAMP = (
    "id, name, gtin, odds, prize_cents, budget_count, budget_cents, per_person_cap,"
    " issued_count, issued_cents, active, created_at"
)
INSERT_CAMPAIGN = statement(
    "scans.insert_campaign",
    f"INSERT INTO reward_campaigns (tenant_id, {_CAMP}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?)",
)
GET_CAMPAIGN = statement(
    "scans.get_campaign",
    f"SELECT {_CAMP} FROM reward_campaigns WHERE tenant_id = ? AND id = ?",
)
LIST_CAMPAIGNS = statement(
    "scans.list_campaigns",
    f"SELECT {_CAMP} FROM reward_campaigns WHERE tenant_id = ? ORDER BY created_at",
)
#: Take one prize from the pool, only while the budget lasts: zero rows updated means
#: the pool is exhausted (the budget check and the take are one statement).
TAKE_PRIZE = statement(
    "scans.take_prize",
    "UPDATE reward_campaigns SET issued_count = issued_count + 1,"
    " issued_cents = issued_cents + prize_cents"
    " WHERE tenant_id = ? AND id = ? AND active"
    " AND (budget_count IS NULL OR issued_count + 1 <= budget_count)"
    " AND (budget_cents IS NULL OR issued_cents + prize_cents <= budget_cents)"
    " RETURNING issued_count",
)
INSERT_REDEMPTION = statement(
    "scans.insert_redemption",
    "INSERT INTO reward_redemptions (tenant_id, inner_hash, id, campaign_id, code, person,"
    " won, prize_cents, redeemed_at, ledger_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
GET_REDEMPTION = statement(
    "scans.get_redemption",
    "SELECT id, won, prize_cents, redeemed_at, ledger_index FROM reward_redemptions"
    " WHERE tenant_id = ? AND inner_hash = ?",
)
PERSON_WINS = statement(
    "scans.person_wins",
    "SELECT count(*) FROM reward_redemptions"
    " WHERE tenant_id = ? AND campaign_id = ? AND person = ? AND won",
)
LIST_REDEMPTIONS = statement(
    "scans.list_redemptions",
    "SELECT code, redeemed_at FROM reward_redemptions WHERE tenant_id = ? AND redeemed_at >= ?",
)

# -- anomalies ----------------------------------------------------------------------------

FORGED_BY_ORIGIN = statement(
    "scans.forged_by_origin",
    "SELECT coalesce(ip, '-'), coalesce(city, '-'), count(*), min(scanned_at),"
    " max(scanned_at), list(presented ORDER BY scanned_at)[1:5] FROM code_scans"
    " WHERE tenant_id = ? AND verdict = 'forged' AND scanned_at >= ?"
    " GROUP BY 1, 2 HAVING count(*) >= ? ORDER BY 3 DESC",
)
CONSUMER_CITIES = statement(
    "scans.consumer_cities",
    "SELECT code, gtin, city, scanned_at FROM code_scans WHERE tenant_id = ?"
    " AND role = 'consumer' AND verdict = 'genuine' AND NOT inner_code AND city IS NOT NULL"
    " AND scanned_at >= ? AND code IN (SELECT code FROM code_scans WHERE tenant_id = ?"
    " AND role = 'consumer' AND verdict = 'genuine' AND NOT inner_code AND scanned_at >= ?"
    " GROUP BY code HAVING count(DISTINCT city) >= 3) ORDER BY code, scanned_at",
)
BAD_STATE_SCANS = statement(
    "scans.bad_state_scans",
    "SELECT code, gtin, verdict, state, count(*), min(scanned_at), max(scanned_at),"
    " list(DISTINCT city) FROM code_scans WHERE tenant_id = ? AND scanned_at >= ?"
    " AND (verdict IN ('voided', 'unknown') OR state = 'issued'"
    " OR (inner_code AND verdict = 'recalled')) GROUP BY 1, 2, 3, 4",
)
PARTY_SCANS = statement(
    "scans.party_scans",
    "SELECT dealer_id, gtin, region, city, party_id, role, count(*), min(scanned_at),"
    " max(scanned_at), list(code ORDER BY scanned_at)[1:5] FROM code_scans"
    " WHERE tenant_id = ? AND role IN ('dealer', 'store') AND dealer_id IS NOT NULL"
    " AND verdict = 'genuine' AND scanned_at >= ? GROUP BY 1, 2, 3, 4, 5, 6",
)
ALERT_KEYS = statement(
    "scans.alert_keys",
    "SELECT kind, subject FROM scan_alerts WHERE tenant_id = ?",
)
INSERT_ALERT = statement(
    "scans.insert_alert",
    "INSERT INTO scan_alerts (tenant_id, id, kind, subject, dealer_id, gtin, severity,"
    " summary, evidence, first_at, last_at, detected_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_ALERT = (
    "id, kind, subject, dealer_id, gtin, severity, summary, evidence, first_at, last_at,"
    " detected_at"
)
LIST_ALERTS = statement(
    "scans.list_alerts",
    f"SELECT {_ALERT} FROM scan_alerts WHERE tenant_id = ? AND (? IS NULL OR kind = ?)"
    " AND (? IS NULL OR dealer_id = ?) ORDER BY detected_at DESC, id LIMIT ?",
)
SET_REDEMPTION_LEDGER = statement(
    "scans.set_redemption_ledger",
    "UPDATE reward_redemptions SET ledger_index = ? WHERE tenant_id = ? AND inner_hash = ?",
)

# -- the codes core, read by the scan adapter (see scans.CoreDirectory) -------------------

_STATE = "c.code, c.state, p.gtin, c.dealer_id, c.region"
#: One code by its key (the first 64 bits, which the core's zone maps serve) and text.
CODE_STATE = statement(
    "scans.code_state",
    f"SELECT {_STATE} FROM codes c JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ? AND c.code_key = ? AND c.code = ?",
)
INNER_STATE = statement(
    "scans.inner_state",
    f"SELECT {_STATE} FROM codes c JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ? AND c.inner_key = ? AND c.inner_hash = ?",
)
#: Tenants that have code products (and so, perhaps, codes to scan).
TENANTS_WITH_CODES = statement(
    "scans.tenants_with_codes",
    "SELECT DISTINCT tenant_id FROM code_products ORDER BY tenant_id",
    tenant_scoped=False,
)
LAST_CODE_EVENT = statement(
    "scans.last_code_event",
    "SELECT coalesce(max(id), 0) FROM code_events WHERE tenant_id = ?",
)
CODES_SNAPSHOT = statement(
    "scans.codes_snapshot",
    "SELECT c.code_key, c.code, c.state, p.gtin, c.dealer_id, c.region FROM codes c"
    " JOIN code_products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ?",
)
COUNT_CHANGED = statement(
    "scans.count_changed",
    "SELECT count(*), coalesce(max(event_id), ?) FROM code_event_items"
    " WHERE tenant_id = ? AND event_id > ?",
)
CHANGED_CODES = statement(
    "scans.changed_codes",
    f"SELECT {_STATE} FROM codes c JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ? AND c.code IN (SELECT code FROM code_event_items"
    " WHERE tenant_id = ? AND event_id > ? AND event_id <= ?)",
)
#: Every code's earlier consumer scans (the in-memory history's starting point).
ALL_HISTORY = statement(
    "scans.all_history",
    "SELECT code, count(*), min(scanned_at), arg_min(city, scanned_at) FROM code_scans"
    " WHERE tenant_id = ? AND role = 'consumer' AND verdict = 'genuine' AND NOT inner_code"
    " GROUP BY code",
)
#: The codes one lifecycle event touched, with what an EPC needs (GTIN, level, SSCC).
EVENT_EPCS = statement(
    "scans.event_epcs",
    "SELECT c.code, c.level, c.sscc, p.gtin FROM code_event_items i JOIN codes c"
    " ON c.tenant_id = i.tenant_id AND c.code = i.code JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE i.tenant_id = ? AND i.event_id = ? ORDER BY c.code",
)
CODE_EPC = statement(
    "scans.code_epc",
    "SELECT c.code, c.level, c.sscc, p.gtin FROM codes c JOIN code_products p"
    " ON p.tenant_id = c.tenant_id AND p.id = c.product_id"
    " WHERE c.tenant_id = ? AND c.code_key = ? AND c.code = ?",
)
