"""Full-text search over spans: SQLite FTS5 (built into Python's sqlite3).

``spans_fts`` is a *contentless* FTS5 table (it stores the index only, not a second copy
of the text) whose rowids are the rowids of ``spans``.  It indexes five columns per
span: ``name``; the string and number values of ``inputs`` and ``outputs`` (the JSON
keys are left out, so ``type`` or ``content`` does not match every message); ``error``
(type and message); and the JSON text of ``metadata`` as it is, keys included (schema
version 9: extracting its values with ``json_tree`` cost every span ~20 µs of the
writer's time, half of the index's cost, for a column of a few short keys and values).

Triggers on ``spans`` keep it exact: an insert indexes the row, a delete (``purge``, or
the ``INSERT OR REPLACE`` of a span's final row over its running snapshot, with
``PRAGMA recursive_triggers`` on, as `lc_observe.storage.schema.configure` sets for every
connection) removes it first.  So the index is written by whoever writes ``spans``: the
SQLite sink on the handler's writer thread, never the application's thread.

>>> hits = store.search("weather in Paris", since="7d", kind="tool")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

FTS_TABLE = "spans_fts"
#: Indexed columns, in order (bm25 weights beside them: a name or an error counts more).
FIELDS = ("name", "inputs", "outputs", "error", "metadata")
_WEIGHTS = (4.0, 1.0, 1.0, 2.0, 0.5)


def _text_sql(column: str) -> str:
    """SQL for the searchable text of a JSON column: its string and number values."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN json_valid({column}) THEN "
        f"(SELECT group_concat(value, ' ') FROM json_tree({column}) "
        "WHERE type IN ('text', 'integer', 'real')) "
        f"ELSE {column} END"
    )


def _values_sql(row: str) -> str:
    """The indexed values of a ``spans`` row (``new`` or ``old`` in a trigger)."""
    error = f"trim(coalesce({row}.error_type, '') || ' ' || coalesce({row}.error_message, ''))"
    return ", ".join(
        [
            f"{row}.name",
            _text_sql(f"{row}.inputs"),
            _text_sql(f"{row}.outputs"),
            f"nullif({error}, '')",
            f"{row}.metadata",
        ]
    )


_COLUMNS = ", ".join(FIELDS)
_INSERT = f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) VALUES (new.rowid, {_values_sql('new')});"
_DELETE = (
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_COLUMNS}) "
    f"VALUES ('delete', old.rowid, {_values_sql('old')});"
)

_TRIGGERS = {
    "spans_fts_insert": f"AFTER INSERT ON spans BEGIN {_INSERT} END",
    "spans_fts_delete": f"AFTER DELETE ON spans BEGIN {_DELETE} END",
    "spans_fts_update": f"AFTER UPDATE ON spans BEGIN {_DELETE} {_INSERT} END",
}
#: The statements that create the index and its triggers (schema versions 6 and 9).
CREATE_SQL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    f"{_COLUMNS}, content='', tokenize='unicode61 remove_diacritics 2')",
    *(f"CREATE TRIGGER IF NOT EXISTS {name} {body}" for name, body in _TRIGGERS.items()),
)


def _fill(conn: sqlite3.Connection) -> None:
    values = _values_sql("spans")
    conn.execute(f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) SELECT rowid, {values} FROM spans")


def create_index(conn: sqlite3.Connection) -> None:
    """Create the index and its triggers, and index every span already stored (the
    migration to schema version 6; runs inside the migration's transaction)."""
    for statement in CREATE_SQL:
        conn.execute(statement)
    _fill(conn)


def replace_triggers(conn: sqlite3.Connection) -> None:
    """The triggers of this version in place of older ones, and every span indexed anew
    with them (a contentless index deletes a row with the values it indexed, so the old
    entries cannot outlive their triggers; the migration to schema version 9)."""
    for name in _TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in CREATE_SQL:
        conn.execute(statement)
    conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
    _fill(conn)


def rebuild_index(conn: sqlite3.Connection) -> None:
    """Index every span anew (after ``VACUUM``, which may renumber rowids)."""
    with conn:
        conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
        _fill(conn)


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def match_query(text: str) -> str:
    """What a person typed as an FTS5 query: every word (or ``"quoted phrase"``) must
    appear; a word ending in ``*`` matches as a prefix.  FTS5 operators are not
    interpreted: ``call_1`` or ``a-b`` search for those characters' words, never fail.

    >>> match_query('weather "in Paris" tool*')
    '"weather" "in Paris" "tool"*'
    """
    terms = []
    for phrase, word in _TERM.findall(text or ""):
        raw = phrase if phrase else word
        prefix = not phrase and raw.endswith("*") and len(raw) > 1
        raw = raw.rstrip("*") if prefix else raw
        if not re.search(r"\w", raw):
            continue
        quoted = '"' + raw.replace('"', '""') + '"'
        terms.append(quoted + ("*" if prefix else ""))
    if not terms:
        raise ValueError(f"nothing to search for in {text!r}: give one or more words")
    return " ".join(terms)


#: Orders of `TraceStore.search`: best match first, or the most recently written first.
ORDERS = ("rank", "newest")


def search_sql(where: Sequence[str], order: str = "rank") -> str:
    """The search query; ``where`` are extra conditions on ``s`` (the spans row).

    ``order="rank"``: bm25, which scores every match before the cut (a word in most of a
    million spans takes about a second).  ``order="newest"``: the index walks its rowids
    from the last written span back (a final row replaces its running snapshot under a new
    rowid) and stops at the limit, so only the hits returned are scored.

    Without conditions the index ranks and cuts to the limit on its own before any span
    row is read (measured: 3x faster when most spans match); with them, every match is
    joined to its row first, so the filter cannot drop hits after the cut."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    weights = ", ".join(str(w) for w in _WEIGHTS)
    columns = (
        "s.trace_id, s.span_id, s.name, s.kind, s.status, s.start_time, s.inputs, "
        "s.outputs, s.metadata, s.error_type, s.error_message"
    )
    inner = "rank" if order == "rank" else "rowid DESC"
    if not where:
        outer = "hits.rank" if order == "rank" else "hits.rowid DESC"
        return (
            f"WITH hits AS (SELECT rowid, bm25({FTS_TABLE}, {weights}) AS rank "
            f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? ORDER BY {inner} LIMIT ?) "
            f"SELECT {columns}, hits.rank AS rank FROM hits JOIN spans s ON s.rowid = hits.rowid "
            f"ORDER BY {outer}"
        )
    extra = "".join(f" AND {clause}" for clause in where)
    by = "rank" if order == "rank" else f"{FTS_TABLE}.rowid DESC"
    return (
        f"SELECT {columns}, bm25({FTS_TABLE}, {weights}) AS rank "
        f"FROM {FTS_TABLE} JOIN spans s ON s.rowid = {FTS_TABLE}.rowid "
        f"WHERE {FTS_TABLE} MATCH ?{extra} ORDER BY {by} LIMIT ?"
    )


def _strings(value: Any) -> list[str]:
    """The string and number values of a JSON value, depth first (what was indexed)."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            out.append(str(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


def _field_texts(row: Any) -> list[tuple[str, str]]:
    texts = [("name", row["name"] or "")]
    error = " ".join(x for x in (row["error_type"], row["error_message"]) if x)
    for field in ("inputs", "outputs", "metadata"):
        raw = row[field]
        if raw is None:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        texts.append((field, " ".join(" ".join(s.split()) for s in _strings(value))))
    texts.insert(1, ("error", error))
    return texts


def snippet(row: Any, query: str, width: int = 100) -> tuple[str, str]:
    """``(field, text)``: the first field (name, error, inputs, outputs, metadata) holding a
    word of ``query``, and the text around that word (plain text, cut to ``width``)."""
    words = [w.lower() for w in re.findall(r"\w+", query)]
    texts = _field_texts(row)
    for field, text in texts:
        lowered = text.lower()
        positions = [lowered.find(w) for w in words if w and lowered.find(w) >= 0]
        if positions:
            at = min(positions)
            start = max(0, at - 16)
            piece = text[start : start + width]
            return field, ("…" if start else "") + piece + (
                "…" if start + width < len(text) else ""
            )
    field, text = next(((f, t) for f, t in texts if t), ("name", row["name"] or ""))
    return field, text[:width]
