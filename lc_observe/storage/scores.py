"""Score values checked and turned into plain records (shared by the handler, the SQLite
sink and `TraceStore.add_score`).

A score is numeric (an int or float), boolean or categorical (a string).  The ``scores``
table keeps numbers and booleans (as 1.0 / 0.0) in ``value``, so means and pass rates are
one SQL aggregate away, and a categorical value in ``label``.
"""

from __future__ import annotations

import math
import time
from typing import Any, get_args

from lc_observe.model import ScoreSource

#: Where a score came from.
SOURCES: tuple[str, ...] = get_args(ScoreSource)

#: Record type on the writer queue: a dict with the keys of `SCORE_FIELDS`.
RECORD_SCORE = "score"

SCORE_FIELDS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "name",
    "value",
    "comment",
    "time",
    "value_type",
    "label",
    "source",
    "author",
    "metadata",
    "error",
)


def score_record(
    trace_id: str,
    name: str,
    value: Any,
    *,
    span_id: str | None = None,
    comment: str | None = None,
    source: str = "human",
    author: str | None = None,
    metadata: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    when: float | None = None,
) -> dict[str, Any]:
    """Check a score and return its plain record; raise with what to fix.

    >>> score_record("t1", "helpful", True)["value"]
    1.0
    >>> score_record("t1", "tone", "friendly")["label"]
    'friendly'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a score needs a name (a non-empty string), got {name!r}")
    if source not in SOURCES:
        raise ValueError(f"score source must be one of {', '.join(SOURCES)}; got {source!r}")
    if comment is not None and not isinstance(comment, str):
        raise TypeError(f"comment must be a string, got {type(comment).__name__}")
    if author is not None and not isinstance(author, str):
        raise TypeError(f"author must be a string, got {type(author).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    label: str | None = None
    number: float | None
    if error is not None and value is None:
        value_type, number = "error", None
    elif isinstance(value, bool):
        value_type, number = "boolean", float(value)
    elif isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"score {name!r}: the value must be a finite number, got {value!r}")
        value_type = "numeric"
    elif isinstance(value, str):
        if not value:
            raise ValueError(f"score {name!r}: a categorical value must be a non-empty string")
        value_type, number, label = "categorical", None, value
    else:
        raise TypeError(
            f"score {name!r}: the value must be a number, a bool or a string (a category), "
            f"not {type(value).__name__}"
        )
    return {
        "trace_id": str(trace_id),
        "span_id": None if span_id is None else str(span_id),
        "name": name,
        "value": number,
        "comment": comment,
        "time": time.time() if when is None else when,
        "value_type": value_type,
        "label": label,
        "source": source,
        "author": author,
        "metadata": metadata or {},
        "error": error,
    }


def parse_score_text(text: str) -> bool | float | str:
    """A score typed as text (command line, browser form): true/false, a number, or a
    category."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return float(text)
    except ValueError:
        return text


def score_value(row: dict[str, Any]) -> bool | float | str | None:
    """The user's value back from a stored row (bool, float or str)."""
    kind = row.get("value_type") or "numeric"
    if kind == "boolean":
        return None if row["value"] is None else bool(row["value"])
    if kind == "categorical":
        return row.get("label")
    return row["value"]


#: Columns written for a score, in `SCORE_FIELDS` order.
SCORE_INSERT = f"INSERT INTO scores ({', '.join(SCORE_FIELDS)}) VALUES "


def score_row(record: dict[str, Any], redact: Any = None) -> tuple:
    """The ``scores`` row of a score record (times as ISO UTC text, JSON columns serialized,
    comment, metadata and error text redacted like span payloads)."""
    from datetime import datetime, timezone

    from lc_observe.pipeline.serialize import Limits, dumps, dumps_or_none

    limits = Limits()
    comment = record.get("comment")
    if comment is not None and redact is not None:
        try:
            comment = redact(comment)
        except Exception:
            comment = "…[redaction failed]"
    when = datetime.fromtimestamp(record["time"], timezone.utc).isoformat(timespec="microseconds")
    row = dict(record)
    row["comment"] = comment
    row["time"] = when
    row["metadata"] = dumps(record.get("metadata") or {}, limits, redact)
    row["error"] = dumps_or_none(record.get("error"), limits, redact)
    return tuple(row.get(field) for field in SCORE_FIELDS)
