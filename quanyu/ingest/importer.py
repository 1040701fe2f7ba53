"""Client side of bulk import: read CSV, JSON Lines and Parquet files into Arrow batches.

The CLI (and anything else) calls :func:`run_import`: it reads a file or a folder of
files in batches of about 250,000 rows, renames mapped columns, posts each batch as an
Arrow IPC stream to ``/v1/tenants/{t}/sources/{s}/imports/{kind}`` (two requests in
flight, so the server prepares one batch while it commits the other), adds up the
answers and writes the rows the server rejected to ``<input>.rejected.jsonl``.

Text formats arrive as text: CSV cells are never type-guessed (a member id ``00123`` or
a phone number stays as written), and each JSON Lines value is read as its JSON text
(strings unquoted), so a file can change a field's type between lines.
"""

from __future__ import annotations

import csv
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quanyu.errors import InvalidRequest, NotFound
from quanyu.ingest.bulk import FIELDS, UNPARSED, Kind, apply_mapping

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
ARROW_STREAM = "application/vnd.apache.arrow.stream"
_BLOCK = 8 << 20
#: Most bytes of Arrow data in one request: wide rows are posted in fewer rows at a time
#: (the server takes at most 1 GiB).
MAX_POST_BYTES = 256 << 20


class Poster(Protocol):
    """What :func:`run_import` needs of :class:`quanyu.client.Client`."""

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any: ...


@dataclass
class ImportSummary:
    """What an import did, added up over every batch of every file."""

    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    files: int = 0
    rejected_file: Path | None = None
    unused_mapping: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["phone_no=phone", ...]`` as ``{"phone_no": "phone"}``. Raises InvalidRequest."""
    mapping: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise InvalidRequest(f"Mapping {item!r} is not 'sourceColumn=targetField'.")
        mapping[src.strip()] = dst.strip()
    return mapping


def discover(path: Path) -> list[Path]:
    """The importable files at ``path``: the file itself, or a folder's files, sorted.

    Raises:
        NotFound: nothing there. InvalidRequest: an unknown suffix, or an empty folder.
    """
    if not path.exists():
        raise NotFound(f"No file or folder {str(path)!r}.")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        if not files:
            raise InvalidRequest(f"Folder {str(path)!r} holds no {', '.join(FORMATS)} file.")
        return files
    if path.suffix.lower() not in FORMATS:
        raise InvalidRequest(
            f"Cannot tell the format of {path.name!r}: name it *.csv, *.jsonl or *.parquet."
        )
    return [path]


def rejected_path(path: Path) -> Path:
    """Where the rejected rows of an import of ``path`` go: beside it."""
    return path.with_name(path.name + ".rejected.jsonl")


def estimate_rows(files: list[Path]) -> int:
    """Rows to expect (Parquet metadata, newlines in text files), for a progress bar."""
    total = 0
    for f in files:
        if FORMATS[f.suffix.lower()] == "parquet":
            total += pq.ParquetFile(f).metadata.num_rows
            continue
        lines = 0
        with f.open("rb") as fh:
            while block := fh.read(_BLOCK):
                lines += block.count(b"\n")
        total += max(lines - (FORMATS[f.suffix.lower()] == "csv"), 0)
    return total


def _rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for b in batches:
        pending.append(b)
        size += b.num_rows
        while size >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending)


def _csv(path: Path) -> Iterator[pa.RecordBatch]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        return
    yield from pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_BLOCK),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
        ),
    )


def _lines(path: Path, odd: list[str]) -> Iterator[pa.RecordBatch]:
    def keep(row: Any) -> str:
        odd.append(row.text)  # a line with a stray \x1f: not JSON, kept as unparsed
        return "skip"

    yield from pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_BLOCK, column_names=["line"]),
        parse_options=pacsv.ParseOptions(
            delimiter="\x1f", quote_char=False, escape_char=False, invalid_row_handler=keep
        ),
        convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}),
    )


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _decode_lines(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, keys: list[str] | None
) -> pa.Table:
    """JSON lines as columns of JSON text (strings unquoted); other lines as ``_unparsed``."""
    con.register("lines", lines)
    try:
        ok = "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END"
        if keys is None:  # every key any line of the batch has, in order of appearance
            found = con.execute(
                "SELECT k FROM (SELECT unnest(json_keys(line)) AS k, row_number() OVER () AS o"
                f" FROM lines WHERE {ok}) GROUP BY k ORDER BY min(o)"
            ).fetchall()
            keys = [r[0] for r in found]
        picks = ", ".join(f"v[{i + 1}] AS c{i}" for i in range(len(keys)))
        table: pa.Table = con.sql(
            f"SELECT {picks}{', ' if picks else ''}CASE WHEN NOT ok THEN line END AS bad FROM"
            f" (SELECT line, {ok} AS ok, CASE WHEN {ok} THEN json_extract_string(line, ?) END"
            " AS v FROM lines)",
            params=[[_pointer(k) for k in keys]],
        ).to_arrow_table()
    finally:
        con.unregister("lines")
    table = table.rename_columns([*keys, UNPARSED])
    if not pc.any(pc.is_valid(table.column(UNPARSED))).as_py():
        table = table.drop_columns([UNPARSED])
    return table


def read_file(
    path: Path,
    *,
    kind: Kind,
    mapping: dict[str, str] | None = None,
    batch_rows: int = 250_000,
    seen: set[str] | None = None,
) -> Iterator[pa.Table]:
    """The rows of one file as tables of about ``batch_rows`` rows, columns mapped.

    A mapped column a file lacks is left alone (a folder may mix layouts); the names
    that were found are added to ``seen``.
    """
    seen = set() if seen is None else seen
    fmt = FORMATS[path.suffix.lower()]
    mapping = mapping or {}
    if fmt == "parquet":
        tables: Iterator[pa.Table] = (
            pa.Table.from_batches([b])
            for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        )
    elif fmt == "csv":
        tables = _rebatch(_csv(path), batch_rows)
    else:
        tables = _json_tables(path, kind, mapping, batch_rows)
    for table in tables:
        yield apply_mapping(table, {k: v for k, v in mapping.items() if k in table.column_names})
        seen.update(k for k in mapping if k in table.column_names)


def _json_tables(path: Path, kind: Kind, mapping: dict[str, str], rows: int) -> Iterator[pa.Table]:
    keys = None
    if kind == "events":  # only the fields an event has, so a line is read once
        keys = list(dict.fromkeys([*(n for names in FIELDS.values() for n in names), *mapping]))
    odd: list[str] = []
    con = duckdb.connect()
    try:
        for lines in _rebatch(_lines(path, odd), rows):
            if odd:
                lines = pa.concat_tables([lines, pa.table({"line": odd})])
                odd.clear()
            table = _decode_lines(con, lines, keys)
            if keys is not None:  # drop the fields no line had
                table = table.select(
                    [c for c in table.column_names if table.column(c).null_count < table.num_rows]
                )
            yield table
        if odd:
            yield _decode_lines(con, pa.table({"line": odd}), keys)
    finally:
        con.close()


def _fit(table: pa.Table, max_bytes: int = MAX_POST_BYTES) -> Iterator[pa.Table]:
    """``table`` in equal slices of at most about ``max_bytes`` each."""
    parts = max(1, -(-table.nbytes // max_bytes))
    rows = max(1, -(-table.num_rows // parts))
    for start in range(0, max(table.num_rows, 1), rows):
        yield table.slice(start, rows)


def encode(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def run_import(
    client: Poster,
    path: Path,
    *,
    tenant: str,
    source: str,
    kind: Kind,
    mapping: dict[str, str] | None = None,
    batch_rows: int = 250_000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import a file or folder through the API; return the totals.

    ``on_progress`` is called with the rows of each batch once the server answered.
    Rejected rows are written to :func:`rejected_path` (an old file there is replaced).

    Raises:
        QuanyuError: a file cannot be read, or the server refused a batch; the batches
            answered before it are stored.
    """
    files = discover(path)
    out_path = rejected_path(path)
    out_path.unlink(missing_ok=True)
    summary = ImportSummary(files=len(files))
    url = f"/v1/tenants/{tenant}/sources/{source}/imports/{kind}"
    headers = {"content-type": ARROW_STREAM}
    sink: Any = None
    seen: set[str] = set()
    pending: deque[tuple[Path, int, int, Future[Any]]] = deque()

    def settle() -> None:
        nonlocal sink
        file, offset, rows, future = pending.popleft()
        answer = future.result()
        summary.read += answer["read"]
        summary.loaded += answer["loaded"]
        summary.duplicates += answer["duplicates"]
        summary.rejected.update(answer["rejected"])
        for r in answer["rejected_rows"]:
            if sink is None:
                sink = out_path.open("wb")
                summary.rejected_file = out_path
            line = {
                "file": str(file),
                "row_number": offset + r["index"] + 1,
                "code": r["code"],
                "message": r["message"],
                "row": r["row"],
            }
            sink.write(orjson.dumps(line) + b"\n")
        if on_progress:
            on_progress(rows)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="quanyu-import") as pool:
        try:
            for file in files:
                offset = 0
                tables = read_file(
                    file, kind=kind, mapping=mapping, batch_rows=batch_rows, seen=seen
                )
                for table in (part for t in tables for part in _fit(t)):
                    body = encode(table)
                    future = pool.submit(client.post, url, content=body, headers=headers)
                    pending.append((file, offset, table.num_rows, future))
                    offset += table.num_rows
                    if len(pending) >= 2:
                        settle()
            while pending:
                settle()
        finally:
            for *_, f in pending:
                f.cancel()
            if sink is not None:
                sink.close()
    summary.unused_mapping = [k for k in mapping or {} if k not in seen]
    return summary
