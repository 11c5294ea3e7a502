"""LangGraph awareness: node fields on spans and a branch event for every routing decision.

What LangGraph reports through LangChain callbacks (langgraph 1.2, see docs/langgraph.md):

- each node run is a child of the graph run, tagged ``graph:step:N``, with metadata
  ``langgraph_node``, ``langgraph_step``, ``langgraph_triggers`` and
  ``langgraph_checkpoint_ns`` (``node:task-id``, joined with ``|`` inside subgraphs);
- a conditional edge's routing function runs as a child of the node it leaves, tagged
  ``seq:step:K`` with ``K >= 3`` (step 1 is the node's own function, step 2 its state
  write, then one step per conditional edge in the order they were added); its outputs
  are the raw return value (a node name, a path_map key, ``END``, a list, ``Send``\\s);
- ``Command(goto=...)`` is a node run's own output; ``Command(graph=Command.PARENT)``
  arrives as a ``ParentCommand`` error of the node run.

A returned path_map key is mapped to its node only when the compiled graph was handed
over (``ObsHandler(graphs=[graph])``): callbacks do not carry the path_map.  Without it, a
return value that is not itself a node seen in the run is stored with empty
``destinations`` (unknown), never guessed.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

try:  # langgraph is a required dependency; the guard keeps this module importable alone
    from langgraph.constants import END
    from langgraph.errors import GraphInterrupt, ParentCommand
    from langgraph.types import Command, Send
except ImportError:  # pragma: no cover
    END = "__end__"
    GraphInterrupt = ParentCommand = ()  # type: ignore[assignment,misc]
    Command = Send = ()  # type: ignore[assignment,misc]

_FIRST_BRANCH_STEP = 3  # seq:step:1 node function, 2 state write, 3.. conditional edges


def graph_fields(metadata: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    """``(graph_node, graph_step, checkpoint_ns)`` from a run's LangGraph metadata."""
    step = metadata.get("langgraph_step")
    return (
        metadata.get("langgraph_node"),
        step if isinstance(step, int) else None,
        metadata.get("langgraph_checkpoint_ns"),
    )


def span_status_for_error(error: BaseException) -> str:
    """Span status for a run that raised: LangGraph interrupts are not failures."""
    if isinstance(error, GraphInterrupt):
        return "interrupted"
    if isinstance(error, ParentCommand):  # Command(graph=PARENT): routing, not a failure
        return "ok"
    return "error"


def namespace(checkpoint_ns: str | None) -> str:
    """The graph a node belongs to: its checkpoint namespace without its own segment."""
    if not checkpoint_ns:
        return ""
    return checkpoint_ns.rpartition("|")[0]


def qualified(node: str, checkpoint_ns: str | None) -> str:
    """``node`` prefixed by the nodes of the enclosing subgraphs: ``outer/inner``."""
    outer = [part.split(":", 1)[0] for part in namespace(checkpoint_ns).split("|") if part]
    return "/".join([*outer, node])


def _branch_index(tags: Iterable[str]) -> int | None:
    for tag in tags:
        if tag.startswith("seq:step:"):
            try:
                step = int(tag[9:])
            except ValueError:
                return None
            return step - _FIRST_BRANCH_STEP if step >= _FIRST_BRANCH_STEP else None
    return None


def _is_node_run(record: dict[str, Any]) -> bool:
    return record["graph_node"] is not None and any(
        tag.startswith("graph:step:") for tag in record["tags"]
    )


def _targets(value: Any) -> tuple[Any, list[str | None], bool]:
    """(JSON-safe result, destination per item — None when it needs the path_map, has_send)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    result: list[Any] = []
    destinations: list[str | None] = []
    has_send = False
    for item in items:
        if isinstance(item, Send):
            has_send = True
            result.append({"node": item.node, "arg": item.arg})
            destinations.append(item.node)
        elif isinstance(item, str):
            result.append(item)
            destinations.append(END if item == END else None)
        else:
            result.append(item)
            destinations.append(None)
    return (result if isinstance(value, (list, tuple)) else result[0]), destinations, has_send


@dataclass
class _Trace:
    """Per-trace state: node names seen and decisions waiting for resolution."""

    nodes: set[tuple[str, str, int | None]] = field(default_factory=set)  # (ns, node, step)
    pending: list[tuple[dict[str, Any], list[Any], str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Branch:
    name: str
    ends: dict[Any, str] | None


class GraphTracker:
    """Turns node and routing runs into branch events; in memory, O(1) per span.

    The handler calls `on_start` after creating a span record, `on_end` when it finished
    (returns events ready now) and `on_trace_end` when the root finished (returns the
    rest and forgets the trace).
    """

    def __init__(self) -> None:
        self._traces: dict[str, _Trace] = {}
        self._branches: dict[str, list[_Branch]] = {}  # source node -> conditional edges

    def register_graph(self, graph: Any) -> None:
        """Learn routing names and path_maps from a compiled graph (and its subgraphs)."""
        builder = getattr(graph, "builder", None)
        for source, specs in getattr(builder, "branches", {}).items():
            self._branches[source] = [
                _Branch(
                    name=_readable(name, spec.path), ends=dict(spec.ends) if spec.ends else None
                )
                for name, spec in specs.items()
            ]
        for node in getattr(builder, "nodes", {}).values():
            inner = getattr(node, "runnable", None)
            if getattr(inner, "builder", None) is not None:
                self.register_graph(inner)

    # -- handler hooks ---------------------------------------------------------------------

    def on_start(self, record: dict[str, Any]) -> None:
        record["_node_run"] = node_run = _is_node_run(record)  # once, not at every end
        if not node_run:
            return
        state = self._traces.get(record["trace_id"])
        if state is None:
            state = self._traces[record["trace_id"]] = _Trace()
        ns = namespace(record["checkpoint_ns"])
        state.nodes.add((ns, record["graph_node"], record["graph_step"]))

    def on_end(self, record: dict[str, Any], parent: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Events decided by the run that just ended (``parent``: its open parent record)."""
        if record["graph_node"] is None:
            return []
        if record.get("_node_run"):
            return self._command(record)
        index = _branch_index(record["tags"])
        if index is None or parent is None or not parent.get("_node_run"):
            return []
        return self._conditional(record, parent, index)

    def on_trace_end(self, trace_id: str) -> list[dict[str, Any]]:
        state = self._traces.pop(trace_id, None)
        if state is None:
            return []
        events = []
        for event, candidates, ns in state.pending:
            # A returned string that names a node started in the next step of the same
            # graph was a node name; anything else was a path_map key we cannot map.
            step = event["step"] + 1 if isinstance(event["step"], int) else None
            event["destinations"] = list(
                dict.fromkeys(
                    name
                    for name in candidates
                    if isinstance(name, str) and (name == END or (ns, name, step) in state.nodes)
                )
            )
            events.append(event)
        return events

    # -- decisions ---------------------------------------------------------------------------

    def _event(self, record: dict[str, Any], source: str, kind: str) -> dict[str, Any]:
        return {
            "trace_id": record["trace_id"],
            "span_id": record["span_id"],
            "source": qualified(source, record["checkpoint_ns"]),
            "condition": None,
            "result": None,
            "destinations": [],
            "kind": kind,
            "step": record["graph_step"],
            "checkpoint_ns": record["checkpoint_ns"],
            "time": record["end_time"] or time.time(),
            "error": None,
        }

    def _conditional(
        self, record: dict[str, Any], node: dict[str, Any], index: int
    ) -> list[dict[str, Any]]:
        source = node["graph_node"]
        known = self._branches.get(source, [])
        branch = known[index] if index < len(known) else None
        event = self._event(record, source, "conditional_edge")
        event["condition"] = branch.name if branch else record["name"]
        if record["status"] == "error":
            error = record["error"] or {}
            event["error"] = {"type": error.get("type"), "message": error.get("message")}
            return [event]
        raw = record["outputs"].get("output") if isinstance(record["outputs"], dict) else None
        result, destinations, has_send = _targets(raw)
        event["result"] = result
        if has_send:
            event["kind"] = "send"
        items = _as_list(result)
        if branch is not None and branch.ends is not None:
            destinations = [
                dest if dest is not None else _lookup(branch.ends, item)
                for dest, item in zip(destinations, items, strict=True)
            ]
        return self._resolve(record, event, destinations, items)

    def _command(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        outputs = record["outputs"]
        command = outputs.get("output") if isinstance(outputs, dict) else None
        gotos = [c.goto for c in _as_list(command) if isinstance(c, Command) and c.goto]
        if not gotos:
            return []
        goto: Any = gotos[0] if len(gotos) == 1 else [g for go in gotos for g in _as_list(go)]
        event = self._event(record, record["graph_node"], "command")
        result, destinations, _ = _targets(goto)
        event["result"] = result
        items = _as_list(result)
        # goto always names nodes (no path_map), so every string is a destination.
        names = [d if d is not None else i for d, i in zip(destinations, items, strict=True)]
        event["destinations"] = list(dict.fromkeys(n for n in names if isinstance(n, str)))
        return [event]

    def _resolve(
        self,
        record: dict[str, Any],
        event: dict[str, Any],
        destinations: list[str | None],
        items: list[Any],
    ) -> list[dict[str, Any]]:
        """Emit now when every destination is known, else wait for the trace to end."""
        if all(dest is not None for dest in destinations):
            event["destinations"] = list(dict.fromkeys(destinations))
            return [event]
        # A plain string is a node name or a path_map key: resolved when the trace ends,
        # from the nodes that started next.  Known destinations stay as they are.
        candidates = [d if d is not None else i for d, i in zip(destinations, items, strict=True)]
        state = self._traces.setdefault(record["trace_id"], _Trace())
        state.pending.append((event, candidates, namespace(record["checkpoint_ns"])))
        return []


def _readable(name: str, path: Any) -> str:
    """A routing function's name; lambdas and partials (which LangGraph calls "condition")
    become ``<lambda at file.py:12>`` and the wrapped function's name."""
    if name != "condition":
        return name
    func = getattr(path, "func", None) or getattr(path, "afunc", None)
    while isinstance(func, functools.partial):
        func = func.func
    code = getattr(func, "__code__", None)
    if getattr(func, "__name__", None) == "<lambda>" and code is not None:
        return f"<lambda at {os.path.basename(code.co_filename)}:{code.co_firstlineno}>"
    return getattr(func, "__name__", None) or name


def _lookup(ends: dict[Any, str], key: Any) -> str | None:
    try:
        return ends.get(key)
    except TypeError:  # unhashable result
        return None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
