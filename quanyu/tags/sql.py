"""SQL of the tags capability. Builds statements; runs nothing.

Fixed statements are text with bound parameters; the SQL of rules is built as sqlglot
trees in ``compile.py``/``query.py`` and registered here through examples so the
registry tests transpile it to Spark and check its tenant filter.
"""

from __future__ import annotations

from datetime import datetime

from quanyu.engine import Capability, Statement, builder, statement
from quanyu.tags import rules as r
from quanyu.tags.compile import Compiled, TagSpec
from quanyu.tags.query import events_query, persons_query, tags_query, traits_query

# -- folding events into facts ------------------------------------------------------------
GET_STATE = statement(
    "tags.get_state",
    "SELECT folded_seq, folded_change, next_run FROM tag_state WHERE tenant_id = ?",
)
CREATE_STATE = statement(
    "tags.create_state",
    "INSERT INTO tag_state (tenant_id, folded_seq, folded_change, next_run, updated_at)"
    " VALUES (?, 0, 0, 1, ?)",
)
SET_FOLDED = statement(
    "tags.set_folded",
    "UPDATE tag_state SET folded_seq = ?, folded_change = ?, updated_at = ? WHERE tenant_id = ?",
    requires=(Capability.ROW_UPDATES,),
)
NEXT_RUN = statement(
    "tags.next_run",
    "UPDATE tag_state SET next_run = next_run + 1 WHERE tenant_id = ? RETURNING next_run - 1",
    requires=(Capability.ROW_UPDATES,),
)
#: What the audience index was built from: folds and runs move these on.
INDEX_VERSION = statement(
    "tags.index_version",
    "SELECT folded_seq, folded_change, next_run FROM tag_state WHERE tenant_id = ?",
)
#: How far identity has resolved events and numbered its changes.
IDENTITY_PROGRESS = statement(
    "tags.identity_progress",
    "SELECT resolved_seq, next_change FROM identity_state WHERE tenant_id = ?",
)
#: The events of commits (?, ?] with their person, as facts. ``amount`` is the event's
#: money figure: properties.revenue, else total, else value.
FOLD_EVENTS = statement(
    "tags.fold_events",
    "INSERT INTO event_facts (tenant_id, profile_id, node_id, commit_seq, ts, type, event, name,"
    " brand_id, source_id, channel, amount, properties, traits)"
    " SELECT n.tenant_id, d.profile_id, n.node_id, n.commit_seq, n.timestamp, n.type, n.event,"
    " n.name, n.brand_id, n.source_id, s.kind,"
    " TRY_CAST(coalesce(json_extract_string(e.properties, '$.revenue'),"
    " json_extract_string(e.properties, '$.total'), json_extract_string(e.properties, '$.value'))"
    " AS DOUBLE), e.properties, CASE WHEN n.type = 'identify' THEN e.traits END"
    " FROM event_nodes AS n"
    " JOIN id_nodes AS d ON d.tenant_id = n.tenant_id AND d.node_id = n.node_id"
    " JOIN events AS e ON e.tenant_id = n.tenant_id AND e.source_id = n.source_id"
    " AND e.message_id = n.message_id"
    " LEFT JOIN sources AS s ON s.id = n.source_id AND s.tenant_id = n.tenant_id"
    " WHERE n.tenant_id = ? AND n.commit_seq > ? AND n.commit_seq <= ? AND n.node_id >= 0"
    " AND e.tenant_id = ? AND coalesce(e.commit_seq, 0) > ? AND coalesce(e.commit_seq, 0) <= ?"
    " ORDER BY n.timestamp",
)
#: Persons a merge, split or rebuild changed since change ``?``: both sides.
AFFECTED = statement(
    "tags.affected",
    "SELECT profile_id FROM profile_changes WHERE tenant_id = ? AND change_id >= ?"
    " UNION SELECT other_profile_id FROM profile_changes WHERE tenant_id = ? AND change_id >= ?"
    " AND other_profile_id IS NOT NULL",
)
#: Facts of the staged persons follow their identifiers to their current person.
REMAP_FACTS = statement(
    "tags.remap_facts",
    "UPDATE event_facts SET profile_id = d.profile_id FROM id_nodes AS d"
    " WHERE event_facts.tenant_id = ? AND d.tenant_id = ? AND d.node_id = event_facts.node_id"
    " AND d.profile_id <> event_facts.profile_id"
    " AND event_facts.profile_id IN (SELECT profile_id FROM tag_affected)",
    requires=(Capability.ROW_UPDATES,),
)
#: Every person of a tenant (a full computation covers them all).
COUNT_PERSONS = statement(
    "tags.count_persons",
    "SELECT count(DISTINCT profile_id) FROM id_nodes WHERE tenant_id = ?",
)
#: Persons with facts folded from commits (?, ?].
FOLDED_PERSONS = statement(
    "tags.folded_persons",
    "SELECT DISTINCT profile_id FROM event_facts WHERE tenant_id = ? AND commit_seq > ?"
    " AND commit_seq <= ?",
)

#: Persons with facts dated after they withdrew the purpose collection rests on (staged
#: as ``tag_withheld``: profile_id, since).
WITHHELD_PERSONS = statement(
    "tags.withheld_persons",
    "SELECT DISTINCT f.profile_id FROM event_facts AS f"
    " JOIN tag_withheld AS w ON w.profile_id = f.profile_id"
    " WHERE f.tenant_id = ? AND f.ts > w.since",
)
#: Those facts go: collection consent is enforced before any rule reads them.
DROP_WITHHELD_FACTS = statement(
    "tags.drop_withheld_facts",
    "DELETE FROM event_facts WHERE tenant_id = ? AND EXISTS (SELECT 1 FROM tag_withheld AS w"
    " WHERE w.profile_id = event_facts.profile_id AND event_facts.ts > w.since)",
)

# -- taxonomy -------------------------------------------------------------------------------
INSERT_CATEGORY = statement(
    "tags.insert_category",
    "INSERT INTO tag_categories (tenant_id, id, parent_id, name_zh, name_en, position,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
)
LIST_CATEGORIES = statement(
    "tags.list_categories",
    "SELECT id, parent_id, name_zh, name_en, position, created_at FROM tag_categories"
    " WHERE tenant_id = ? ORDER BY position, id",
)
DELETE_CATEGORY = statement(
    "tags.delete_category",
    "DELETE FROM tag_categories WHERE tenant_id = ? AND id = ?",
)
_TAG_COLUMNS = (
    "key, category_id, name_zh, name_en, description, owner, value_type, allowed_values,"
    " rule, sql, template, refresh_seconds, status, created_at, updated_at, computed_at"
)
INSERT_TAG = statement(
    "tags.insert_tag",
    f"INSERT INTO tags (tenant_id, {_TAG_COLUMNS}) VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
DELETE_TAG = statement("tags.delete_tag", "DELETE FROM tags WHERE tenant_id = ? AND key = ?")
LIST_TAGS = statement(
    "tags.list_tags", f"SELECT {_TAG_COLUMNS} FROM tags WHERE tenant_id = ? ORDER BY key"
)
TAG_TYPES = statement(
    "tags.tag_types", "SELECT key, value_type FROM tags WHERE tenant_id = ? ORDER BY key"
)
GET_TAG = statement(
    "tags.get_tag", f"SELECT {_TAG_COLUMNS} FROM tags WHERE tenant_id = ? AND key = ?"
)
SET_COMPUTED = statement(
    "tags.set_computed",
    "UPDATE tags SET computed_at = ? WHERE tenant_id = ? AND key IN (SELECT key FROM tag_keys)",
    requires=(Capability.ROW_UPDATES,),
)

# -- runs and history -----------------------------------------------------------------------
INSERT_RUN = statement(
    "tags.insert_run",
    "INSERT INTO tag_runs (tenant_id, run_id, mode, tags, started_at, status)"
    " VALUES (?, ?, ?, ?, ?, 'running')",
)
FINISH_RUN = statement(
    "tags.finish_run",
    "UPDATE tag_runs SET finished_at = ?, profiles = ?, added = ?, removed = ?, status = ?,"
    " error = ? WHERE tenant_id = ? AND run_id = ?",
    requires=(Capability.ROW_UPDATES,),
)
LIST_RUNS = statement(
    "tags.list_runs",
    "SELECT run_id, mode, tags, started_at, finished_at, profiles, added, removed, status, error"
    " FROM tag_runs WHERE tenant_id = ? ORDER BY run_id DESC LIMIT ?",
)
#: Close the open rows of the computed tags (of the staged persons, when scoped) that
#: the new values do not repeat.
_CLOSE = (
    "UPDATE tag_history SET valid_to = ?, run_to = ? WHERE tenant_id = ? AND valid_to IS NULL"
    " AND tag_key IN (SELECT key FROM tag_keys) AND NOT EXISTS (SELECT 1 FROM tag_new AS n"
    " WHERE n.tag_key = tag_history.tag_key AND n.profile_id = tag_history.profile_id"
    " AND n.value = tag_history.value)"
)
CLOSE_CHANGED = statement("tags.close_changed", _CLOSE, requires=(Capability.ROW_UPDATES,))
#: The same, for the staged persons only (an incremental computation).
CLOSE_CHANGED_SCOPED = statement(
    "tags.close_changed_scoped",
    _CLOSE + " AND profile_id IN (SELECT profile_id FROM tag_scope)",
    requires=(Capability.ROW_UPDATES,),
)
#: Open a row for each new value no open row holds.
OPEN_NEW = statement(
    "tags.open_new",
    "INSERT INTO tag_history (tenant_id, tag_key, profile_id, value, num, valid_from, valid_to,"
    " run_from, run_to) SELECT ?, n.tag_key, n.profile_id, n.value, n.num, ?, NULL, ?, NULL"
    " FROM tag_new AS n WHERE NOT EXISTS (SELECT 1 FROM tag_history AS h WHERE h.tenant_id = ?"
    " AND h.valid_to IS NULL AND h.tag_key = n.tag_key AND h.profile_id = n.profile_id"
    " AND h.value = n.value)",
)
#: People per value of a tag at each of the given times (the history chart).
COUNTS_AT = statement(
    "tags.counts_at",
    "SELECT t.at, h.value, count(*) FROM tag_history AS h JOIN tag_times AS t"
    " ON h.valid_from <= t.at AND (h.valid_to IS NULL OR h.valid_to > t.at)"
    " WHERE h.tenant_id = ? AND h.tag_key = ? GROUP BY t.at, h.value ORDER BY t.at, h.value",
)
#: A person's tags now and before: every row, newest first.
PROFILE_TAGS = statement(
    "tags.profile_tags",
    "SELECT tag_key, value, num, valid_from, valid_to FROM tag_history"
    " WHERE tenant_id = ? AND profile_id = ? ORDER BY valid_to IS NULL DESC, valid_from DESC",
)
#: Current values of some tags (for the audience index).
CURRENT_VALUES = statement(
    "tags.current_values",
    "SELECT tag_key, profile_id, value, num FROM tag_history WHERE tenant_id = ?"
    " AND valid_to IS NULL AND tag_key IN (SELECT key FROM tag_keys)",
)
#: Current value counts of every tag.
VALUE_COUNTS = statement(
    "tags.value_counts",
    "SELECT tag_key, value, count(*) FROM tag_history WHERE tenant_id = ? AND valid_to IS NULL"
    " GROUP BY tag_key, value ORDER BY tag_key, count(*) DESC",
)
#: Each person's brands and channels (the sets rules test with ``brand``/``channel``).
PROFILE_BRANDS = statement(
    "tags.profile_brands",
    "SELECT DISTINCT profile_id, brand_id FROM event_facts WHERE tenant_id = ?"
    " AND brand_id IS NOT NULL",
)
PROFILE_CHANNELS = statement(
    "tags.profile_channels",
    "SELECT DISTINCT profile_id, channel FROM event_facts WHERE tenant_id = ?"
    " AND channel IS NOT NULL",
)


def compiled_statement(name: str, compiled: Compiled) -> Statement:
    """A compiled rule query as a statement (binds: ``compiled.params(tenant)``)."""
    return Statement(name, compiled.sql(), frozenset(), True)


def _example_rule() -> r.Node:
    return r.And(
        (
            r.Cmp(
                ">=",
                r.Agg("count", where=(r.EventFilter(r.EventField("event"), "=", "x"),)),
                r.Lit(2),
            ),
            r.In(r.Trait("city"), ("上海",)),
            r.Not(r.TagRef("churned")),
            r.HasIdentifier("openid", "wx"),
            r.Cmp("=", r.ProfileSet("brand"), r.Lit("b")),
        )
    )


def _example_tags() -> Statement:
    spec = TagSpec("t", "boolean", _example_rule())
    amount = r.Agg("sum", of=r.EventField("amount"), within="30d")
    compiled = tags_query(
        [spec, TagSpec("n", "number", amount)],
        now=datetime(2024, 1, 1),
        tag_types={"churned": "boolean"},
        scoped=True,
    )
    return compiled_statement("tags.compiled_tags", compiled)


def _example_persons() -> Statement:
    compiled = persons_query(
        _example_rule(), now=datetime(2024, 1, 1), tag_types={"churned": "boolean"}
    )
    return compiled_statement("tags.compiled_persons", compiled)


def _example_traits() -> Statement:
    return compiled_statement("tags.compiled_traits", traits_query(["city", "age"]))


def _example_events() -> Statement:
    brand = r.EventFilter(r.EventField("brand"), "=", "a")
    amount = r.Agg("sum", of=r.EventField("amount"), where=(brand,), within="30d")
    rule = r.Cmp(">=", amount, r.Lit(300))
    return compiled_statement(
        "tags.compiled_events", events_query(rule, now=datetime(2024, 1, 1), tag_types={})[0]
    )


builder(_example_tags)(tags_query)
builder(_example_events)(events_query)
builder(_example_traits)(traits_query)
builder(_example_persons)(persons_query)
