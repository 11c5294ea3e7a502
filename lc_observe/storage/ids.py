"""Trace ids people can type, and the short form views show.

LangChain 1.x run ids are UUID v7: the first 12 hex digits are the start time (the
traces of one minute share their first 8 characters), the tail is random.  So the short
id shown in tables and views is the *tail* (`short_id`), and any unique piece of an id
(`resolve_trace_id`) is accepted wherever a trace id is: the API and every CLI command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lc_observe.errors import AmbiguousIdError, TraceNotFoundError

#: Characters a piece of an id needs at least (fewer match too much to be meant).
MIN_CHARS = 4
#: Characters of `short_id`: the random tail of a UUID v7 (32 bits; unique in practice).
SHORT_CHARS = 8

__all__ = ["MIN_CHARS", "SHORT_CHARS", "AmbiguousIdError", "resolve_trace_id", "short_id"]

Query = Callable[[str, Sequence[Any]], list[Any]]


def short_id(trace_id: str) -> str:
    """The distinguishing part of an id: its last 8 characters (the random tail)."""
    return trace_id[-SHORT_CHARS:]


def resolve_trace_id(query: Query, given: Any, where: str) -> str:
    """The full trace id that ``given`` (a whole id or any unique piece of one, at least
    `MIN_CHARS` characters; case-insensitive) stands for.

    A trace counts once its first span is stored (an unfinished trace has spans but no
    ``traces`` row yet).  ``where`` names the database in messages.

    Raises:
        TraceNotFoundError: nothing matches (or ``given`` is too short to be a piece).
        AmbiguousIdError: several traces match; the message lists some of them.
    """
    text = str(given).strip()
    exact = "SELECT trace_id FROM traces WHERE trace_id = ? UNION ALL "
    exact += "SELECT trace_id FROM spans WHERE trace_id = ? LIMIT 1"
    if query(exact, (text, text)):
        return text
    hint = "`lc-observe traces` or store.traces() lists them"
    if len(text) < MIN_CHARS:
        raise TraceNotFoundError(
            f"no trace with id {text!r} in {where}: give at least {MIN_CHARS} characters "
            f"of a trace id ({hint})"
        )
    piece = text.lower()
    matches = [
        row[0]
        for row in query(
            "SELECT trace_id FROM traces WHERE instr(trace_id, ?) > 0 LIMIT 6", (piece,)
        )
    ]
    if not matches:  # unfinished traces: spans only
        matches = [
            row[0]
            for row in query(
                "SELECT DISTINCT trace_id FROM spans WHERE instr(trace_id, ?) > 0 LIMIT 6",
                (piece,),
            )
        ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TraceNotFoundError(f"no trace with id {text!r} in {where} ({hint})")
    listed = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise AmbiguousIdError(
        f"trace id {text!r} matches several traces in {where} ({listed}); give more "
        "characters (the last 8 of an id tell traces of the same minute apart)"
    )
