"""WHERE clauses of the store's queries, shared by `TraceStore` and the analyses that
query the file themselves (`analysis.compare`)."""

from __future__ import annotations

from typing import Any

from lc_observe.times import TimeLike, to_db_time


def where_clauses(
    equals: dict[str, Any],
    time_column: str,
    since: TimeLike | None,
    until: TimeLike | None,
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and bound parameters: ``column = ?`` for each value that is not None,
    and ``since <= time_column < until``.  Column names come from this module, never users."""
    where, params = ["1=1"], []
    for column, value in equals.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append(f"{time_column} >= ?")
        params.append(to_db_time(since))
    if until is not None:
        where.append(f"{time_column} < ?")
        params.append(to_db_time(until))
    return where, params
