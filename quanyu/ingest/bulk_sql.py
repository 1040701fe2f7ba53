"""SQL of bulk import: validate and normalise a staged Arrow table of Segment-shaped rows.

Statements read only tables registered for the call (``bulk_rows``, ``bulk_sources``,
``bulk_values``, ``bulk_rejected``); the one that joins the tenant's sources filters them
on the tenant again. The identifier expression is generated once, at import time, from
the key lists of :mod:`quanyu.ingest.normalize`, so a bulk row yields the same
``identifiers`` as the same message sent to the tracking API.

Identifiers are the costly part, so each context is parsed once (``json_transform`` to
the few parts that can hold ids), and the ids are worked out once per distinct set of
those parts (a session's events repeat them), then joined back to the rows.
"""

from __future__ import annotations

from quanyu.engine import Capability, statement
from quanyu.ingest.normalize import APP_KEYS, BRAND_KEYS, ID_KEYS, MAX_MESSAGE_BYTES, TYPES


def _scalar(v: str, *, truthy: bool = False) -> str:
    """The text normalize._str gives the JSON value ``v``; NULL for null, "", objects, arrays.

    ``v`` is JSON as DuckDB writes it (no blanks, strings escaped only where they must
    be), so the first character tells the type and only an escaped string is parsed.
    With ``truthy``, values Python finds false (0, 0.0, false) are NULL too, as
    normalize._first skips them.
    """
    v = f"CAST({v} AS VARCHAR)"  # JSON compares and concatenates as JSON: treat as text
    d = f"TRY_CAST({v} AS DOUBLE)"
    text = (
        f"nullif(CASE WHEN contains({v}, chr(92)) THEN json_extract_string({v}, '$')"
        f" ELSE substring({v}, 2, length({v}) - 2) END, '')"
    )
    number = (
        f"CASE WHEN NOT regexp_matches({v}, '[.eE]') THEN {v}"
        f" WHEN {d} = floor({d}) AND abs({d}) < 9.0e15 THEN CAST(CAST({d} AS BIGINT) AS VARCHAR)"
        f" ELSE {v} END"
    )
    if truthy:
        number = f"CASE WHEN {d} <> 0 THEN {number} END"
    false = "NULL" if truthy else "'False'"
    return (
        f"CASE left({v}, 1) WHEN '\"' THEN {text} WHEN 't' THEN 'True' WHEN 'f' THEN {false}"
        f" WHEN 'n' THEN NULL WHEN '{{' THEN NULL WHEN '[' THEN NULL ELSE {number} END"
    )


def _first(values: list[str]) -> str:
    """The first truthy of some JSON ``values``, as text (normalize._first, then _str)."""
    return "coalesce(" + ", ".join(_scalar(v, truthy=True) for v in values) + ")"


def _paths(*keys: str) -> str:
    return "[" + ", ".join(f"'$.{k}'" for k in keys) + "]"


def _kind(t: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in ID_KEYS.items())
    return f"CASE {t} {whens} ELSE {t} END"


def _bag(m: str, app: str, brand: str) -> str:
    """The identifier structs of one traits bag (a map of JSON values), in its key order.

    ``app`` and ``brand`` are the bag's own scopes (columns computed once per row).
    """
    ids = ", ".join(f"'{k}'" for k in ID_KEYS)
    return (
        f"coalesce(list_transform(list_transform(list_filter(map_entries({m}),"
        f" lambda e: e.key IN ({ids})), lambda e: {{'k': {_kind('e.key')}, 'v': e.value}}),"
        f" lambda e: {{'type': e.k, 'value': {_scalar('e.v')}, 'scope': CASE e.k"
        f" WHEN 'openid' THEN coalesce({app}, ctx_app)"
        f" WHEN 'member_id' THEN coalesce({brand}, brand_id) END}}), [])"
    )


_MAP = "'\"MAP(VARCHAR, JSON)\"'"
_LIST = "'[\"JSON\"]'"
#: What an externalIds item is read for: type, id, collection, app keys, brand keys.
_EXT_PATHS = _paths("type", "id", "collection", *APP_KEYS, *BRAND_KEYS)


def _external() -> str:
    """context.externalIds items as identifier structs (items without a type skipped)."""
    apps = [f"x.f[{4 + i}]" for i in range(len(APP_KEYS))]
    brands = [f"x.f[{4 + len(APP_KEYS) + i}]" for i in range(len(BRAND_KEYS))]
    typed = f"lambda f: {{'t': {_scalar('f[1]', truthy=True)}, 'f': f}}"
    return (
        f"list_transform(list_transform(list_filter(list_transform(list_transform("
        f"json_transform(k3, {_LIST}), lambda e: json_extract(e, {_EXT_PATHS})), {typed}),"
        f" lambda x: x.t IS NOT NULL), lambda x: {{'k': {_kind('x.t')}, 'f': x.f}}),"
        f" lambda x: {{'type': x.k, 'value': {_scalar('x.f[2]')}, 'scope': CASE x.k"
        f" WHEN 'openid' THEN coalesce({_first(apps)}, ctx_app)"
        f" WHEN 'member_id' THEN coalesce({_first(brands)}, brand_id)"
        f" ELSE {_scalar('x.f[3]')} END}})"
    )


def _object(col: str) -> str:
    """True when ``col`` is set but is not JSON text of an object."""
    # valid JSON whose first non-blank character is "{" is an object: one parse, not two
    return f"({col} IS NOT NULL AND NOT (json_valid({col}) AND starts_with(ltrim({col}), '{{')))"


def _parse_ts(col: str) -> str:
    """ISO-8601 text to naive UTC: an offset is applied, a time without one is UTC."""
    offset = r"'[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$'"
    return (
        f"CASE WHEN regexp_matches({col}, {offset})"
        f" THEN TRY_CAST({col} AS TIMESTAMPTZ) AT TIME ZONE 'UTC'"
        f" ELSE TRY_CAST({col} AS TIMESTAMP) END"
    )


_TYPES = ", ".join(f"'{t}'" for t in sorted(TYPES))
_SIZE = " + ".join(
    f"coalesce(strlen({c}), 0)"
    for c in ("properties", "traits", "context", "integrations", "event", "name", "message_id")
)
#: What a row without a messageId is known by (NUL marks a missing value).
_HASHED = (
    "concat_ws(chr(31), "
    + ", ".join(
        f"coalesce({c}, chr(0))"
        for c in (
            "type",
            "event",
            "name",
            "user_id",
            "anonymous_id",
            "group_id",
            "previous_id",
            "CAST(coalesce(ts, original_ts) AS VARCHAR)",
            "properties",
            "traits",
            "context",
            "integrations",
        )
    )
    + ")"
)
#: The parts of a context identifiers come from, parsed in one pass.
_CTX_SHAPE = (
    """'{"traits": "JSON", "externalIds": "JSON", "device": {"id": "JSON"}, "app": "JSON"}'"""
)
_ID_HINT = (
    "(traits IS NOT NULL OR contains(context, 'traits')"
    " OR contains(context, 'externalIds') OR contains(context, 'device'))"
)

#: Validate and normalise ``bulk_rows`` against the tenant's ``bulk_sources``.
#: Params: tenant, default source, received_at, profiles?, tenant. Returns, per ``_row``,
#: the columns the staged row does not already hold in final form, plus ``reason_code``,
#: ``reason_field`` and ``reason_value`` (what was wrong, for the message).
PREPARE_EVENTS = statement(
    "ingest.bulk_prepare_events",
    f"""
WITH p AS (
  SELECT CAST(? AS VARCHAR) AS tenant_id, CAST(? AS VARCHAR) AS default_source,
         CAST(? AS TIMESTAMP) AS received_at, CAST(? AS BOOLEAN) AS profiles
), base AS (
  SELECT b._row, p.received_at, p.profiles,
    coalesce(b.source, p.default_source) AS source_id, coalesce(b.type, 'track') AS type,
    b.event, b.name, b.user_id, b.anonymous_id, b.group_id, b.previous_id, b.message_id,
    coalesce(b.ts, {_parse_ts("b.ts_text")}) AS ts,
    coalesce(b.original_ts, {_parse_ts("b.original_text")}) AS original_ts,
    coalesce(b.sent_ts, {_parse_ts("b.sent_text")}) AS sent_ts,
    b.ts_text, b.original_text, b.sent_text, b.properties, b.traits,
    coalesce(b.context, '{{}}') AS context, b.integrations, b.pre_code, b.pre_value
  FROM bulk_rows AS b CROSS JOIN p
), typed AS (
  SELECT base.*, s.id AS known_source, s.brand_id,
    CASE WHEN ts_text IS NOT NULL AND ts IS NULL THEN 'timestamp'
      WHEN original_text IS NOT NULL AND original_ts IS NULL THEN 'originalTimestamp'
      WHEN sent_text IS NOT NULL AND sent_ts IS NULL THEN 'sentAt'
      WHEN {_object("traits")} THEN 'traits'
      WHEN {_object("context")} THEN 'context'
      WHEN {_object("integrations")} THEN 'integrations' END AS bad_field
  FROM base LEFT JOIN bulk_sources AS s ON s.id = base.source_id AND s.tenant_id = ?
), checked AS (
  SELECT typed.*, CASE
      WHEN pre_code IS NOT NULL THEN pre_code
      WHEN known_source IS NULL THEN 'unknown_source'
      WHEN {_SIZE} > {MAX_MESSAGE_BYTES} THEN 'message_too_large'
      WHEN bad_field IS NOT NULL THEN 'invalid_field'
      WHEN type NOT IN ({_TYPES}) THEN 'unknown_type'
      WHEN type = 'alias' AND (previous_id IS NULL OR user_id IS NULL) THEN 'missing_field'
      WHEN type <> 'alias' AND NOT profiles AND user_id IS NULL AND anonymous_id IS NULL
        THEN 'missing_identity'
      WHEN type = 'track' AND event IS NULL THEN 'missing_field'
      WHEN type = 'group' AND group_id IS NULL THEN 'missing_field'
      WHEN {_object("properties")} THEN 'invalid_field' END AS code
  FROM typed
), ctx AS MATERIALIZED (
  -- parsed once: inlined, DuckDB would parse each context for both branches below
  SELECT checked.*, CASE WHEN code IS NULL AND {_ID_HINT}
    THEN json_transform(context, {_CTX_SHAPE}) END AS cx
  FROM checked
), keyed AS (
  SELECT ctx.*, CASE WHEN cx IS NOT NULL THEN traits END AS k1, cx.traits AS k2,
    cx.externalIds AS k3, cx.device.id AS k4, cx.app AS k5
  FROM ctx
), parts AS (
  -- rows of a session repeat the same ids: work them out once per distinct set
  SELECT DISTINCT k1, k2, k3, k4, k5, brand_id FROM keyed WHERE cx IS NOT NULL
), bags AS (
  SELECT parts.*, json_transform(k1, {_MAP}) AS m1,
    CASE WHEN starts_with(k2, '{{') THEN json_transform(k2, {_MAP}) END AS m2,
    json_extract(k5, {_paths("id", *APP_KEYS)}) AS app
  FROM parts
), texts AS (
  SELECT bags.*, {_scalar("k4")} AS device_id,
    {_first([f"app[{i + 1}]" for i in range(len(APP_KEYS) + 1)])} AS ctx_app,
    {_first([f"m1['{k}']" for k in APP_KEYS])} AS app1,
    {_first([f"m1['{k}']" for k in BRAND_KEYS])} AS brand1,
    {_first([f"m2['{k}']" for k in APP_KEYS])} AS app2,
    {_first([f"m2['{k}']" for k in BRAND_KEYS])} AS brand2
  FROM bags
), found AS (
  -- a lambda costs per batch of rows even where its list is NULL: CASE skips those
  SELECT texts.*, list_filter(list_concat(
      CASE WHEN m1 IS NOT NULL THEN {_bag("m1", "app1", "brand1")} ELSE [] END,
      CASE WHEN m2 IS NOT NULL THEN {_bag("m2", "app2", "brand2")} ELSE [] END,
      CASE WHEN starts_with(k3, '[') THEN coalesce({_external()}, []) ELSE [] END,
      [{{'type': 'device_id', 'value': device_id, 'scope': CAST(NULL AS VARCHAR)}}]),
    lambda x: x.value IS NOT NULL) AS ids
  FROM texts
), uniq AS (
  SELECT k1, k2, k3, k4, k5, brand_id, CASE WHEN len(ids) < 2 THEN ids ELSE list_filter(ids,
      lambda x, i: NOT list_contains(list_transform(list_slice(ids, 1, i - 1),
      lambda y: y.type || chr(0) || y.value), x.type || chr(0) || x.value)) END AS idents
  FROM found
), coded AS (
  SELECT keyed.*, CASE WHEN len(u.idents) > 0 THEN to_json(u.idents) END AS identifiers
  FROM keyed LEFT JOIN uniq AS u ON keyed.cx IS NOT NULL
    AND u.k1 IS NOT DISTINCT FROM keyed.k1 AND u.k2 IS NOT DISTINCT FROM keyed.k2
    AND u.k3 IS NOT DISTINCT FROM keyed.k3 AND u.k4 IS NOT DISTINCT FROM keyed.k4
    AND u.k5 IS NOT DISTINCT FROM keyed.k5 AND u.brand_id IS NOT DISTINCT FROM keyed.brand_id
), reasoned AS (
  SELECT coded.*, coalesce(code, CASE WHEN profiles AND user_id IS NULL AND anonymous_id IS NULL
      AND identifiers IS NULL THEN 'no_identifier' END) AS reason_code
  FROM coded
)
SELECT _row, source_id, brand_id, type,
  coalesce(message_id, 'imp-' || md5({_HASHED})) AS message_id,
  coalesce(anonymous_id, CASE WHEN profiles AND user_id IS NULL AND identifiers IS NOT NULL
    THEN 'imp-' || md5(identifiers) END) AS anonymous_id,
  coalesce(ts, original_ts, received_at) AS timestamp,
  coalesce(original_ts, ts) AS original_timestamp, sent_ts AS sent_at, identifiers, reason_code,
  CASE WHEN reason_code = 'invalid_field' THEN coalesce(bad_field, 'properties') END
    AS reason_field,
  CASE reason_code WHEN 'unknown_type' THEN type WHEN 'unknown_source' THEN source_id
    WHEN 'invalid_json' THEN pre_value
    WHEN 'message_too_large' THEN CAST({_SIZE} AS VARCHAR)
    WHEN 'invalid_field' THEN CASE bad_field WHEN 'timestamp' THEN ts_text
      WHEN 'originalTimestamp' THEN original_text WHEN 'sentAt' THEN sent_text END
    ELSE type END AS reason_value
FROM reasoned
""",
    requires=(Capability.MATERIALIZED_CTE,),
)

#: Arrow struct, map or list values as JSON text; null fields are left out (a struct
#: cannot tell a missing key from a null one).
VALUES_TO_JSON = statement(
    "ingest.bulk_values_to_json",
    "SELECT CASE WHEN v IS NULL THEN NULL ELSE json_merge_patch('{}', to_json(v)) END AS v"
    " FROM bulk_values",
    tenant_scoped=False,
)

#: Each rejected row as a JSON object without its empty cells (for the dead-letter store
#: and the report).
ROWS_TO_JSON = statement(
    "ingest.bulk_rows_to_json",
    "SELECT json_merge_patch('{}', to_json(r)) AS row FROM bulk_rejected AS r",
    tenant_scoped=False,
)
