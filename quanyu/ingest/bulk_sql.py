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


def _texts(paths: str, of: str) -> str:
    """The scalar texts at ``paths`` of the JSON ``of`` (a list, NULL where none)."""
    return f"list_transform(json_extract({of}, {paths}), lambda v: {_scalar('v')})"


def _paths(*paths: str) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def _bag(bag: str) -> str:
    """The identifier structs of one traits bag (JSON text), in the bag's own key order."""
    ids = ", ".join(f"'{k}'" for k in _ID_KEYS)
    apps = ", ".join(_scalar(f"json_extract({bag}, '$.{k}')") for k in _APP_KEYS)
    brands = ", ".join(_scalar(f"json_extract({bag}, '$.{k}')") for k in _BRAND_KEYS)
    value = _scalar(f"json_extract({bag}, '$.' || k)")  # k is one of the plain keys above
    return (
        f"coalesce(list_transform(list_filter(json_keys({bag}), lambda k: k IN ({ids})),"
        f" lambda k: {{'type': {_kind('k')}, 'value': {value},"
        f" 'scope': CAST(CASE {_kind('k')} WHEN 'openid' THEN coalesce({apps}, ctx_app)"
        f" WHEN 'member_id' THEN coalesce({brands}, brand_id) END AS VARCHAR)}}), [])"
    )


def _kind(t: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _ID_KEYS.items())
    return f"CASE {t} {whens} ELSE {t} END"


def _external() -> str:
    """context.externalIds items ({type, id, collection, app and brand keys}) as structs.

    ``ef`` holds each item's texts: type, id, collection, then the app and brand keys.
    """
    app = ", ".join([f"f[{4 + i}]" for i in range(len(_APP_KEYS))] + ["ctx_app"])
    brand = ", ".join(
        [f"f[{4 + len(_APP_KEYS) + i}]" for i in range(len(_BRAND_KEYS))] + ["brand_id"]
    )
    return (
        "list_transform(list_transform(CASE WHEN has_ext THEN json_extract(cx[2], '$[*]') END,"
        f" lambda e: {_texts(_EXT_PATHS, 'e')}),"
        f" lambda f: {{'type': {_kind('f[1]')},"
        " 'value': CASE WHEN f[1] IS NOT NULL THEN f[2] END,"
        f" 'scope': CASE {_kind('f[1]')} WHEN 'openid' THEN coalesce({app})"
        f" WHEN 'member_id' THEN coalesce({brand}) ELSE f[3] END}})"
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
_CTX_PATHS = _paths(
    "$.traits",
    "$.externalIds",
    "$.device.id",
    "$.app.id",
    "$.app.app_id",
    "$.app.appId",
    "$.app.appid",
)
_EXT_PATHS = _paths(
    "$.type",
    "$.id",
    "$.collection",
    *(f"$.{k}" for k in _APP_KEYS),
    *(f"$.{k}" for k in _BRAND_KEYS),
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
    THEN json_extract(context, {_CTX_PATHS}) END AS cx
  FROM checked
), texts AS (
  SELECT ctx.*, CASE WHEN cx IS NOT NULL THEN traits END AS b1,
    CASE WHEN json_type(cx[1]) = 'OBJECT' THEN cx[1] END AS b2,
    coalesce(json_type(cx[2]) = 'ARRAY', false) AS has_ext, {_scalar("cx[3]")} AS device_id,
    coalesce({", ".join(_scalar(f"cx[{i}]") for i in range(4, 8))}) AS ctx_app
  FROM ctx
), found AS (
  SELECT texts.*, CASE WHEN cx IS NOT NULL THEN list_filter(list_concat({_bag("b1")},
      {_bag("b2")}, coalesce({_external()}, []),
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
