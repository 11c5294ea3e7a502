"""Query-string parameters of the UI, read in one place for the pages and the JSON API.

Every value is checked here (a bad one raises `ValueError` with the fix, a 400); the store
binds each as an SQL parameter, so nothing typed in the browser reaches SQL as text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from lc_observe.storage.store import TRACE_SORTS

#: Equality filters of the traces page: query key -> `TraceStore.trace_page` argument.
TRACE_FILTERS = {
    "name": "name",
    "status": "status",
    "user": "user_id",
    "session": "session_id",
    "tag": "tag",
    "model": "model",
}
STATUSES = ("ok", "error", "interrupted")
SORTS = tuple(TRACE_SORTS)
PAGE_SIZES = (25, 50, 100, 200)
STAT_GROUPS = ("model", "graph_node", "name", "kind", "user_id", "session_id", "tag")


def text(query: Mapping[str, str], key: str) -> str | None:
    """A trimmed value, or None when absent or empty."""
    value = (query.get(key) or "").strip()
    return value or None


def integer(query: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    """A bounded integer parameter."""
    raw = text(query, key)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {raw!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{key} must be between {low} and {high}, not {number}")
    return number


def encode_cursor(key: tuple[Any, str] | None) -> str | None:
    """A page cursor as URL-safe text."""
    if key is None:
        return None
    raw = json.dumps([key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None) -> tuple[Any, str] | None:
    """The ``(sort value, trace id)`` of an `encode_cursor` text."""
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        first, trace_id = json.loads(raw)
    except (ValueError, TypeError):
        raise ValueError(
            "the page cursor is not valid: follow the page links, or start from the first page"
        ) from None
    if not isinstance(first, (str, int, float)) or not isinstance(trace_id, str):
        raise ValueError("the page cursor is not valid: start from the first page")
    return first, trace_id


def trace_page_args(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments of `TraceStore.trace_page` from the traces page's query string."""
    sort = text(query, "sort") or "start_time"
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    order = text(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be asc or desc, not {order!r}")
    status = text(query, "status")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    args: dict[str, Any] = {
        "limit": integer(query, "limit", 50, 1, max(PAGE_SIZES)),
        "sort": sort,
        "descending": order == "desc",
        "after": decode_cursor(text(query, "after")),
        "before": decode_cursor(text(query, "before")),
        "since": text(query, "since"),
        "until": text(query, "until"),
        "has_errors": True if text(query, "errors") in ("1", "on", "true") else None,
    }
    for key, argument in TRACE_FILTERS.items():
        args[argument] = text(query, key)
    return args


def stat_group(query: Mapping[str, str], default: str = "model") -> str:
    """The ``by`` of the stats page: a known grouping or ``metadata.KEY``."""
    by = text(query, "by") or default
    if by not in STAT_GROUPS and not by.startswith("metadata."):
        raise ValueError(f"by must be one of {', '.join(STAT_GROUPS)} or metadata.KEY, not {by!r}")
    return by
