"""What LangGraph's run metadata means, one rule each, for every layer that reads it:
capture (`capture.langgraph`), storage and stats (SQL), the sinks and the views.

LangGraph tags exactly its node runs ``graph:step:N`` and gives each run inside a graph
``langgraph_node``, ``langgraph_step`` and ``langgraph_checkpoint_ns`` (``node:task-id``
segments joined with ``|`` inside subgraphs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

START_NODE = "__start__"  # LangGraph's hidden input node: conditional edges from START


def graph_fields(metadata: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    """``(graph_node, graph_step, checkpoint_ns)`` from a run's LangGraph metadata."""
    step = metadata.get("langgraph_step")
    return (
        metadata.get("langgraph_node"),
        step if isinstance(step, int) else None,
        metadata.get("langgraph_checkpoint_ns"),
    )


def is_node_run(tags: Iterable[str] | None, graph_node: str | None) -> bool:
    """Whether a run is a LangGraph node's own run (not something inside a node).

    The one rule: LangGraph tags exactly its node runs ``graph:step:N``."""
    return graph_node is not None and any(str(t).startswith("graph:step:") for t in tags or ())


#: `is_node_run` as SQL over the ``spans`` table (a node's run is also named after it).
NODE_RUN_SQL = (
    "graph_node IS NOT NULL AND name = graph_node AND EXISTS "
    "(SELECT 1 FROM json_each(spans.tags) WHERE value LIKE 'graph:step:%')"
)


def namespace(checkpoint_ns: str | None) -> str:
    """The graph a node belongs to: its checkpoint namespace without its own segment."""
    if not checkpoint_ns:
        return ""
    return checkpoint_ns.rpartition("|")[0]


def qualified(node: str, checkpoint_ns: str | None) -> str:
    """``node`` prefixed by the nodes of the enclosing subgraphs: ``outer/inner``."""
    if not checkpoint_ns or "|" not in checkpoint_ns:
        return node
    outer = [
        part.split(":", 1)[0]
        for part in namespace(checkpoint_ns).split("|")
        if part and not part.isdigit()
    ]
    return "/".join([*outer, node])


def node_path(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Qualified node names of node runs (``graph_node``, ``graph_step``, ``checkpoint_ns``)
    in canonical order: by superstep, then name, then task id, each subgraph's nodes right
    after the node that ran it; ``__start__`` left out."""
    steps: dict[str, tuple[Any, str, str]] = {}  # namespace segment -> its order key
    nodes = []
    for row in rows:
        ns = row["checkpoint_ns"] or ""
        segment = ns.rpartition("|")[2]
        steps[segment] = (
            row["graph_step"] if row["graph_step"] is not None else -1,
            row["graph_node"],
            segment,
        )
        nodes.append((ns, row["graph_node"]))

    def key(item: tuple[str, str]) -> tuple:
        return tuple(steps.get(part, (-1, part, part)) for part in item[0].split("|") if part)

    return [qualified(node, ns) for ns, node in sorted(nodes, key=key) if node != START_NODE]
