"""The rows an observed LangGraph graph is built from (storage side of `TraceStore.graph`).

`TraceStore.graph_rows` runs these queries; `lc_observe.views.graph` turns the rows into
the drawn graph and never sees SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lc_observe.errors import TraceNotFoundError
from lc_observe.graph_rules import NODE_RUN_SQL

_CHUNK = 500  # ids per IN (...) list, well below SQLite's variable limit

Query = Callable[..., list[Any]]


@dataclass
class GraphRows:
    """What the observed graph of ``name`` is drawn from.

    Attributes:
        name: the graph (chosen when none was asked for: the newest one).
        status: trace id -> status of the traces drawn, newest first.
        node_rows: node runs (``trace_id, graph_node, graph_step, checkpoint_ns, status,
            latency_ms``) in start order.
        branch_rows: routing decisions (``trace_id, source, destinations, step,
            checkpoint_ns, kind``) in time order.
        others: the other graphs in the file (when ``name`` was chosen automatically).
    """

    name: str | None
    status: dict[str, str] = field(default_factory=dict)
    node_rows: list[Any] = field(default_factory=list)
    branch_rows: list[Any] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for index in range(0, len(items), _CHUNK):
        yield items[index : index + _CHUNK]


def graph_rows(
    query: Query,
    db_path: str,
    name: str | None,
    since: str | None,
    until: str | None,
    trace_id: str | None,
    limit: int,
) -> GraphRows:
    """The rows of graph ``name``'s ``limit`` newest traces (``since``/``until`` already
    database times), run through ``query`` (the store's)."""
    if trace_id is not None:
        rows = query("SELECT graph_name FROM traces WHERE trace_id = ?", (str(trace_id),))
        if not rows:
            raise TraceNotFoundError(f"no finished trace with id {trace_id!r} in {db_path}")
        if rows[0]["graph_name"] is None:
            raise ValueError(f"trace {trace_id} did not run a LangGraph graph: nothing to draw")
        name = name or rows[0]["graph_name"]
    others: list[str] = []
    if name is None:
        names = query(
            "SELECT graph_name, max(start_time) AS last FROM traces WHERE graph_name IS NOT NULL "
            "GROUP BY graph_name ORDER BY last DESC"
        )
        if not names:
            return GraphRows(None)
        name = names[0]["graph_name"]
        others = [row["graph_name"] for row in names[1:]]
    where, params = ["graph_name = ?"], [name]
    if since is not None:
        where.append("start_time >= ?")
        params.append(since)
    if until is not None:
        where.append("start_time < ?")
        params.append(until)
    rows = query(
        f"SELECT trace_id, status FROM traces WHERE {' AND '.join(where)} "
        "ORDER BY start_time DESC LIMIT ?",
        [*params, int(limit)],
    )
    if trace_id is not None and all(row["trace_id"] != str(trace_id) for row in rows):
        rows += query("SELECT trace_id, status FROM traces WHERE trace_id = ?", (trace_id,))
    found = GraphRows(name, {row["trace_id"]: row["status"] for row in rows}, others=others)
    for chunk in _chunks(list(found.status)):
        marks = ",".join("?" * len(chunk))
        found.node_rows += query(
            "SELECT trace_id, graph_node, graph_step, checkpoint_ns, status, latency_ms "
            f"FROM spans WHERE trace_id IN ({marks}) AND {NODE_RUN_SQL} "
            "AND graph_node != '__start__' AND graph_step IS NOT NULL "
            "ORDER BY start_time, rowid",
            chunk,
        )
        found.branch_rows += query(
            "SELECT trace_id, source, destinations, step, checkpoint_ns, kind FROM branch_events "
            f"WHERE trace_id IN ({marks}) ORDER BY time, id",
            chunk,
        )
    return found
