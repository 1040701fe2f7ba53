"""SQL of bulk import: validate and normalise a staged Arrow table of Segment-shaped rows.

Statements read only tables registered for the call (``bulk_rows``, ``bulk_sources``,
``bulk_values``, ``bulk_rejected``); the one that joins the tenant's sources filters them
on the tenant again. The identifier expression is generated once, at import time, from
the key lists of :mod:`quanyu.ingest.normalize`, so a bulk row yields the same
``identifiers`` as the same message sent to the tracking API.
"""

from __future__ import annotations

from quanyu.engine import statement
from quanyu.ingest.normalize import _APP_KEYS, _BRAND_KEYS, _ID_KEYS, MAX_MESSAGE_BYTES, TYPES


def _scalar(j: str) -> str:
    """The text normalize._str gives a JSON scalar; NULL for null, "", objects and arrays."""
    s = f"json_extract_string({j}, '$')"
    d = f"TRY_CAST({s} AS DOUBLE)"
    return (
        f"CASE json_type({j}) WHEN 'VARCHAR' THEN nullif({s}, '')"
        f" WHEN 'BIGINT' THEN {s} WHEN 'UBIGINT' THEN {s}"
        f" WHEN 'DOUBLE' THEN CASE WHEN {d} = floor({d}) AND abs({d}) < 9.0e15"
        f" THEN CAST(CAST({d} AS BIGINT) AS VARCHAR) ELSE {s} END"
        f" WHEN 'BOOLEAN' THEN CASE WHEN {s} = 'true' THEN 'True' ELSE 'False' END END"
    )


def _truthy(j: str) -> str:
    """The text of a JSON scalar as an id's scope: NULL where Python finds it falsy.

    normalize._first skips falsy values (0, 0.0, false, "") before turning one into text.
    """
    s = f"json_extract_string({j}, '$')"
    return (
        f"CASE json_type({j}) WHEN 'VARCHAR' THEN nullif({s}, '')"
        f" WHEN 'BIGINT' THEN nullif({s}, '0') WHEN 'UBIGINT' THEN {s}"
        f" WHEN 'DOUBLE' THEN CASE WHEN TRY_CAST({s} AS DOUBLE) <> 0 THEN {_scalar(j)} END"
        f" WHEN 'BOOLEAN' THEN CASE WHEN {s} = 'true' THEN 'True' END END"
    )


def _first(m: str, keys: tuple[str, ...]) -> str:
    """The first truthy value of ``keys`` in the map ``m`` (a JSON object), as text."""
    return "coalesce(" + ", ".join(_truthy(f"{m}['{k}']") for k in keys) + ")"


def _kind(t: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _ID_KEYS.items())
    return f"CASE {t} {whens} ELSE {t} END"


def _bag(m: str, app: str, brand: str) -> str:
    """The identifier structs of one traits bag (a map of JSON values), in its key order.

    ``app`` and ``brand`` are the bag's own scopes (columns computed once per row).
    """
    ids = ", ".join(f"'{k}'" for k in _ID_KEYS)
    return (
        f"coalesce(list_transform(list_filter(map_entries({m}), lambda e: e.key IN ({ids})),"
        f" lambda e: {{'type': {_kind('e.key')}, 'value': {_scalar('e.value')},"
        f" 'scope': CASE {_kind('e.key')} WHEN 'openid' THEN coalesce({app}, ctx_app)"
        f" WHEN 'member_id' THEN coalesce({brand}, brand_id) END}}), [])"
    )


def _external() -> str:
    """context.externalIds items (maps of {type, id, collection, app and brand keys})."""
    kind, ty = _kind("x.t"), _truthy("e['type']")
    value, collection = _scalar("x.e['id']"), _scalar("x.e['collection']")
    return (
        f"list_transform(list_filter(list_transform(cx.externalIds,"
        f" lambda e: {{'t': {ty}, 'e': e}}), lambda x: x.t IS NOT NULL),"
        f" lambda x: {{'type': {kind}, 'value': {value},"
        f" 'scope': CASE {kind} WHEN 'openid' THEN coalesce({_first('x.e', _APP_KEYS)}, ctx_app)"
        f" WHEN 'member_id' THEN coalesce({_first('x.e', _BRAND_KEYS)}, brand_id)"
        f" ELSE {collection} END}})"
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
_MAP = "MAP(VARCHAR, JSON)"
#: The parts of a context identifiers come from, parsed in one pass. A part of another
#: shape (or an object with a repeated key) comes out NULL.
_CTX_SHAPE = (
    f'{{"traits": "{_MAP}", "externalIds": ["{_MAP}"], "device": {{"id": "JSON"}},'
    f' "app": "{_MAP}"}}'
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
), ctx AS (
  SELECT checked.*, CASE WHEN code IS NULL AND {_ID_HINT}
    THEN json_transform(context, '{_CTX_SHAPE}') END AS cx,
    CASE WHEN code IS NULL AND traits IS NOT NULL
    THEN json_transform(traits, '"{_MAP}"') END AS m1
  FROM checked
), texts AS (
  SELECT ctx.*, cx.traits AS m2, {_scalar("cx.device.id")} AS device_id,
    {_first("cx.app", ("id", *_APP_KEYS))} AS ctx_app,
    {_first("m1", _APP_KEYS)} AS app1, {_first("m1", _BRAND_KEYS)} AS brand1,
    {_first("cx.traits", _APP_KEYS)} AS app2, {_first("cx.traits", _BRAND_KEYS)} AS brand2
  FROM ctx
), found AS (
  SELECT texts.*, CASE WHEN cx IS NOT NULL THEN list_filter(list_concat(
      {_bag("m1", "app1", "brand1")}, {_bag("m2", "app2", "brand2")},
      coalesce({_external()}, []),
      [{{'type': 'device_id', 'value': device_id, 'scope': CAST(NULL AS VARCHAR)}}]),
    lambda x: x.value IS NOT NULL) END AS ids
  FROM texts
), uniq AS (
  SELECT found.*, CASE WHEN len(ids) < 2 THEN ids ELSE list_filter(ids, lambda x, i: NOT
      list_contains(list_transform(list_slice(ids, 1, i - 1), lambda y: y.type || chr(0)
      || y.value), x.type || chr(0) || x.value)) END AS idents
  FROM found
), coded AS (
  SELECT uniq.*, CASE WHEN len(idents) > 0 THEN to_json(idents) END AS identifiers,
    coalesce(code, CASE WHEN profiles AND user_id IS NULL AND anonymous_id IS NULL
      AND coalesce(len(idents), 0) = 0 THEN 'no_identifier' END) AS reason_code
  FROM uniq
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
FROM coded
""",
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
