"""Sealing PII identifier values in events before they are stored.

The identity capability decides which identifier kinds are PII and how a value is
sealed (:mod:`quanyu.identity.tokens`); ingest applies it to the places Segment puts
identifiers: ``traits``, ``context.traits``, ``context.externalIds`` and the
``identifiers`` column. Other fields are stored as sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.ingest.normalize import ID_KEYS

#: What a dead letter's payload may hold of a phone or an e-mail, wherever it is: Chinese
#: mobiles in their usual spellings, numbers in E.164, e-mail addresses.
_PII_TEXT = re.compile(
    r"(?<![\w+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\w)"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_TOKEN_TEXT = re.compile(r"qy1:[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Sealer:
    """How one tenant seals: the PII identifier kinds, and sealing and opening values."""

    kinds: frozenset[str]
    seal: Callable[[str], str]
    open: Callable[[str], str] = str

    def scrub(self, payload: bytes) -> bytes:
        """A dead letter's raw payload with every phone- or e-mail-like text sealed.

        Rejected messages are kept as sent (they may not even be JSON), so their PII is
        found by its shape rather than by its field; :meth:`unscrub` restores the payload
        exactly, for a replay.
        """
        text = payload.decode("utf-8", errors="replace")
        return _PII_TEXT.sub(lambda m: self.seal(m.group(0)), text).encode()

    def unscrub(self, text: str) -> str:
        """The payload as it was sent: tokens opened."""
        return _TOKEN_TEXT.sub(lambda m: self.open(m.group(0)), text)

    def bag(self, bag: Any) -> Any:
        """A traits object with its PII identifier values sealed (the same object when
        it holds none)."""
        if not isinstance(bag, dict):
            return bag
        hits = [k for k, v in bag.items() if self._pii(ID_KEYS.get(k)) and isinstance(v, str)]
        if not hits:
            return bag
        return {**bag, **{k: self.seal(bag[k]) for k in hits}}

    def external_ids(self, items: Any) -> Any:
        """``context.externalIds`` with the ids of PII kinds sealed."""
        if not isinstance(items, list):
            return items
        out = []
        for item in items:
            if (
                isinstance(item, dict)
                and self._pii(ID_KEYS.get(str(item.get("type")), str(item.get("type"))))
                and isinstance(item.get("id"), str)
            ):
                item = {**item, "id": self.seal(item["id"])}
            out.append(item)
        return out

    def context(self, context: bytes) -> bytes:
        """Context JSON with its identifier values sealed."""
        ctx = orjson.loads(context)
        if not isinstance(ctx, dict):
            return context
        if "traits" in ctx:
            ctx["traits"] = self.bag(ctx["traits"])
        if "externalIds" in ctx:
            ctx["externalIds"] = self.external_ids(ctx["externalIds"])
        return orjson.dumps(ctx)

    def identifiers(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Extracted identifiers with the values of PII kinds sealed."""
        return [{**i, "value": self.seal(i["value"])} if self._pii(i["type"]) else i for i in found]

    def touches(self, found: list[dict[str, Any]]) -> bool:
        """Whether any extracted identifier is of a PII kind."""
        return any(self._pii(i["type"]) for i in found)

    def _pii(self, kind: str | None) -> bool:
        """Whether an identifier kind as it arrived ("phone", "Phone", "EMAIL") is PII."""
        return kind is not None and (kind in self.kinds or kind.lower() in self.kinds)

    def table(self, events: pa.Table) -> pa.Table:
        """Events (the events table's layout) with PII identifier values sealed.

        Only rows whose identifiers name a PII kind are rewritten (a vectorised test
        finds them), each through the same code as the tracking API.
        """
        if not self.kinds or not events.num_rows:
            return events
        pattern = '(?i)"type":"(' + "|".join(sorted(self.kinds)) + ')"'
        ids = events.column("identifiers")
        hit = pc.fill_null(pc.match_substring_regex(ids, pattern), False)
        if not pc.any(hit).as_py():
            return events
        picked = events.filter(hit)
        traits = picked.column("traits").to_pylist()
        contexts = picked.column("context").to_pylist()
        found = picked.column("identifiers").to_pylist()
        for i in range(picked.num_rows):
            if traits[i]:
                traits[i] = orjson.dumps(self.bag(orjson.loads(traits[i]))).decode()
            if contexts[i]:
                contexts[i] = self.context(contexts[i].encode()).decode()
            found[i] = orjson.dumps(self.identifiers(orjson.loads(found[i]))).decode()
        mask = hit.combine_chunks() if isinstance(hit, pa.ChunkedArray) else hit
        for name, values in (("traits", traits), ("context", contexts), ("identifiers", found)):
            i = events.schema.get_field_index(name)
            column = pc.replace_with_mask(
                events.column(name).combine_chunks(), mask, pa.array(values, pa.string())
            )
            events = events.set_column(i, events.schema.field(i), column)
        return events
