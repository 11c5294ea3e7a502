"""LangGraph awareness: node fields on spans and a branch event for every routing decision.

What LangGraph reports (langgraph 1.x; docs/langgraph.md has the probe and the limits):

- each node run is a child of the graph run, tagged ``graph:step:N``, with metadata
  ``langgraph_node``, ``langgraph_step``, ``langgraph_triggers`` and
  ``langgraph_checkpoint_ns`` (``node:task-id``, joined with ``|`` inside subgraphs); a
  conditional edge from ``START`` leaves the hidden ``__start__`` node run;
- a *traced* conditional edge's routing function runs as a child of the node it leaves,
  tagged ``seq:step:K`` (``K >= 2``); an untraced one (``trace=False``) runs no callback;
- ``Command(goto=...)`` is a node run's own output; ``Command(graph=Command.PARENT)``
  arrives as a ``ParentCommand`` error of the node that returned it, then of every
  enclosing run up to the subgraph node whose checkpoint namespace the command names,
  where LangGraph applies it.

Where decisions come from:

- conditional edges, traced or not, from `lc_observe.capture.langgraph_hook`, which hands over
  each result LangGraph resolved (the routing function, its path_map, the node run).
  A decision is held on its node run and emitted only when that run succeeds: a task that
  fails or is interrupted has its writes discarded by LangGraph, so nothing was applied;
- commands and handoffs from the node runs' outputs and ``ParentCommand`` errors;
- without the hook (a LangGraph version it does not understand) from traced routing runs'
  callbacks, as a fallback: path_map keys then need ``ObsHandler(runs=Runs(graphs=[...]))``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lc_observe.graph_rules import START_NODE, is_node_run, namespace, qualified

try:  # langgraph is a required dependency; the guard keeps this module importable alone
    from langgraph.constants import END
    from langgraph.errors import GraphInterrupt, ParentCommand
    from langgraph.types import Command, Send
except ImportError:  # pragma: no cover
    END = "__end__"
    GraphInterrupt = ParentCommand = ()  # type: ignore[assignment,misc]
    Command = Send = ()  # type: ignore[assignment,misc]

_MAX_TRACES = 10_000  # traces with pending state kept at most (oldest dropped)
_FIRST_ROUTE_STEP = 2  # seq:step:1 is the node function; routing runs come after it
_FIRST_BRANCH_STEP = 3  # fallback: 2 is the state write, then one step per conditional edge


def span_status_for_error(error: BaseException) -> str:
    """Span status for a run that raised: LangGraph interrupts are not failures."""
    if isinstance(error, GraphInterrupt):
        return "interrupted"
    if isinstance(error, ParentCommand):  # Command(graph=PARENT): routing, not a failure
        return "ok"
    return "error"


def _seq_step(tags: Iterable[str]) -> int | None:
    for tag in tags:
        if tag.startswith("seq:step:"):
            try:
                return int(tag[9:])
            except ValueError:
                return None
    return None


def _json_item(item: Any) -> Any:
    return {"node": item.node, "arg": item.arg} if isinstance(item, Send) else item


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _json_result(value: Any) -> Any:
    """A routing result as stored: ``Send`` as ``{"node", "arg"}``, lists kept lists."""
    if isinstance(value, (list, tuple)):
        return [_json_item(item) for item in value]
    return _json_item(value)


def destinations(items: Iterable[Any], ends: dict[Any, str] | None = None) -> list[str]:
    """Where LangGraph goes for these results: one entry per task it starts.

    A ``Send`` is one task each (the fan-out width is kept); a node name (or path_map key,
    mapped through ``ends``) starts one task however often it is named; ``END`` stays
    ``"__end__"``."""
    out: list[str] = []
    named: set[str] = set()
    for item in items:
        if isinstance(item, Send):
            out.append(item.node)
            continue
        try:
            name = ends[item] if ends else item
        except (KeyError, TypeError):
            continue
        if isinstance(name, str) and name not in named:
            named.add(name)
            out.append(name)
    return out


def readable_name(path: Any, default: str | None = None) -> str | None:
    """A routing function's name: lambdas become ``<lambda at file.py:12>``, partials the
    wrapped function's name, callables their ``__name__``, otherwise the runnable's name."""
    func = getattr(path, "func", None) or getattr(path, "afunc", None)
    if func is None and callable(path) and not hasattr(path, "invoke"):
        func = path
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__name__", None)
    code = getattr(func, "__code__", None)
    if name == "<lambda>" and code is not None:
        return f"<lambda at {os.path.basename(code.co_filename)}:{code.co_firstlineno}>"
    if name:
        return name
    if func is not None and callable(func):  # a callable object
        return type(func).__name__
    return getattr(path, "name", None) or default


@dataclass
class _Trace:
    """Per-trace state: fallback bookkeeping and handoffs not applied yet."""

    nodes: set[tuple[str, str, int | None]] = field(default_factory=set)  # (ns, node, step)
    pending: list[tuple[dict[str, Any], list[Any], str]] = field(default_factory=list)
    handoffs: dict[int, tuple[BaseException, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Branch:
    name: str
    ends: dict[Any, str] | None


class GraphTracker:
    """Turns node runs, routing results and commands into branch events; in memory.

    The handler calls `on_start` after creating a span record, `on_branch` when LangGraph
    resolved a conditional edge inside a node run, `on_end` when a run finished (returns
    the events ready now) and `on_trace_end` when the root finished (returns the rest and
    forgets the trace).  ``hooked`` says whether `on_branch` is fed (see
    `lc_observe.capture.langgraph_hook`); without it, traced routing runs are read instead.
    """

    def __init__(self, *, hooked: bool = True) -> None:
        self.hooked = hooked
        self._traces: dict[str, _Trace] = {}
        self._branches: dict[str, list[_Branch]] = {}  # fallback: source node -> edges
        self._names: dict[int, tuple[Any, str | None]] = {}  # id(routing object) -> name

    def register_graph(self, graph: Any) -> None:
        """Learn routing names and path_maps from a compiled graph (and its subgraphs).

        Only the fallback (no hook) needs this: the hook reads both at run time."""
        builder = getattr(graph, "builder", None)
        for source, specs in getattr(builder, "branches", {}).items():
            self._branches[source] = [
                _Branch(
                    name=readable_name(spec.path, name) or name,
                    ends=dict(spec.ends) if spec.ends else None,
                )
                for name, spec in specs.items()
            ]
        for node in getattr(builder, "nodes", {}).values():
            inner = getattr(node, "runnable", None)
            if getattr(inner, "builder", None) is not None:
                self.register_graph(inner)

    # -- handler hooks ---------------------------------------------------------------------

    def on_start(self, record: dict[str, Any]) -> None:
        record["_node_run"] = node_run = is_node_run(record["tags"], record["graph_node"])
        if not node_run or self.hooked:
            return
        state = self._trace(record["trace_id"])
        state.nodes.add(
            (namespace(record["checkpoint_ns"]), record["graph_node"], record["graph_step"])
        )

    def on_branch(self, node: dict[str, Any], path: Any, ends: Any, result: Any) -> None:
        """LangGraph resolved a conditional edge of the open node run ``node``."""
        route_span = node.pop("_route_span", None)  # the traced routing run that just ended
        if route_span is None or getattr(path, "trace", True) is False:
            route_span = node["span_id"]  # an untraced router runs no run of its own
        event = self._event(node, node["graph_node"], "conditional_edge", at=time.time())
        event["span_id"] = route_span
        event["condition"] = self._condition_name(path)
        items = _as_list(result)
        event["result"] = _json_result(result)
        if any(isinstance(item, Send) for item in items):
            event["kind"] = "send"
        event["destinations"] = destinations(items, ends)
        decisions = node.get("_decisions")
        if decisions is None:
            node["_decisions"] = [event]
        else:
            decisions.append(event)

    def _condition_name(self, path: Any) -> str | None:
        """`readable_name`, remembered per routing object (graphs reuse theirs)."""
        key = id(path)
        cached = self._names.get(key)
        if cached is not None and cached[0] is path:
            return cached[1]
        name = readable_name(path, "condition")
        if len(self._names) >= 4096:
            self._names.clear()
        self._names[key] = (path, name)  # the object kept alive: its id stays unique
        return name

    def on_end(
        self,
        record: dict[str, Any],
        parent: dict[str, Any] | None,
        control: BaseException | None = None,
    ) -> list[dict[str, Any]]:
        """Events decided by the run that just ended (``parent``: its open parent record;
        ``control``: the ``ParentCommand`` it raised, if any)."""
        if record["graph_node"] is None:
            return []
        if record.get("_node_run"):
            if control is not None:
                return self._handoff(record, control)
            decisions = record.pop("_decisions", None)
            if record["status"] != "ok":
                return []  # failed or interrupted: LangGraph discards the task's writes
            return [*(decisions or ()), *self._command(record)]
        step = _seq_step(record["tags"])
        if step is None or step < _FIRST_ROUTE_STEP or parent is None:
            return []
        if not parent.get("_node_run"):
            return []
        if not self.hooked:
            return self._fallback_conditional(record, parent, step)
        if record["status"] == "error":  # the routing function raised: no decision made
            return [self._failed_route(record, parent)]
        parent["_route_span"] = record["span_id"]  # the decision that follows is this run's
        return []

    def on_trace_end(self, trace_id: str) -> list[dict[str, Any]]:
        state = self._traces.pop(trace_id, None)
        if state is None:
            return []
        events = []
        for event, candidates, ns in state.pending:
            # Fallback only: a returned string that names a node started in the next step
            # of the same graph was a node name; anything else a path_map key not mapped.
            step = event["step"] + 1 if isinstance(event["step"], int) else None
            event["destinations"] = list(
                dict.fromkeys(
                    name
                    for name in candidates
                    if isinstance(name, str) and (name == END or (ns, name, step) in state.nodes)
                )
            )
            events.append(event)
        return events  # handoffs still pending were never applied: none is recorded

    # -- decisions ---------------------------------------------------------------------------

    def _trace(self, trace_id: str) -> _Trace:
        state = self._traces.get(trace_id)
        if state is None:
            if len(self._traces) >= _MAX_TRACES:  # roots that never end must not pile up
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del self._traces[next(iter(self._traces))]
            state = self._traces[trace_id] = _Trace()
        return state

    def _event(
        self, record: dict[str, Any], source: str, kind: str, at: float | None = None
    ) -> dict[str, Any]:
        """A branch event of ``record``'s node, decided ``at`` (default: when it ended)."""
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
            "time": at or record["end_time"] or time.time(),
            "error": None,
        }

    def _failed_route(self, record: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        event = self._event(record, node["graph_node"], "conditional_edge")
        event["condition"] = record["name"]
        error = record["error"] or {}
        event["error"] = {"type": error.get("type"), "message": error.get("message")}
        return event

    def _command(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """``Command(goto=...)`` returned by a node (alone or in a list of updates)."""
        outputs = record["outputs"]
        output = outputs.get("output") if isinstance(outputs, dict) else None
        gotos = [
            c.goto
            for c in _as_list(output)
            if isinstance(c, Command) and c.goto and c.graph is None
        ]
        if not gotos:
            return []
        items = [item for goto in gotos for item in _as_list(goto)]
        event = self._event(record, record["graph_node"], "command")
        event["result"] = _json_result(gotos[0] if len(gotos) == 1 else items)
        event["destinations"] = destinations(items)
        return [event]

    def _handoff(self, record: dict[str, Any], error: BaseException) -> list[dict[str, Any]]:
        """``Command(graph=PARENT)``: recorded once, on the node that returned it, when the
        enclosing subgraph node LangGraph applies it to has ended with it."""
        command = error.args[0] if error.args else None
        if not isinstance(command, Command):
            return []
        state = self._trace(record["trace_id"])
        held = state.handoffs.get(id(error))
        if held is None:  # the first node run to see it returned it
            event = self._event(record, record["graph_node"], "handoff")
            event["result"] = _json_result(command.goto)
            state.handoffs[id(error)] = (error, event)  # the error kept alive: id stays unique
            return []
        ns = record["checkpoint_ns"] or ""
        if command.graph not in (ns, _strip_task_ids(ns), record["graph_node"]):
            return []  # still on its way up to the graph it names
        del state.handoffs[id(error)]
        event = held[1]
        event["destinations"] = destinations(_as_list(command.goto))
        return [event]

    def _fallback_conditional(
        self, record: dict[str, Any], node: dict[str, Any], step: int
    ) -> list[dict[str, Any]]:
        """Without the hook: a traced routing run's result, resolved as well as callbacks
        allow (path_map keys only through ``graphs=``)."""
        first = _FIRST_ROUTE_STEP if node["graph_node"] == START_NODE else _FIRST_BRANCH_STEP
        index = step - first
        if index < 0:
            return []
        if record["status"] == "error":
            return [self._failed_route(record, node)]
        known = self._branches.get(node["graph_node"], [])
        branch = known[index] if index < len(known) else None
        event = self._event(record, node["graph_node"], "conditional_edge")
        event["condition"] = branch.name if branch else record["name"]
        raw = record["outputs"].get("output") if isinstance(record["outputs"], dict) else None
        items = _as_list(raw)
        event["result"] = _json_result(raw)
        if any(isinstance(item, Send) for item in items):
            event["kind"] = "send"
        if branch is not None and branch.ends is not None:
            event["destinations"] = destinations(items, branch.ends)
            return [event]
        if all(isinstance(item, Send) or item == END for item in items):
            event["destinations"] = destinations(items)
            return [event]
        candidates = [item.node if isinstance(item, Send) else item for item in items]
        state = self._trace(record["trace_id"])
        state.pending.append((event, candidates, namespace(record["checkpoint_ns"])))
        return []


def _strip_task_ids(ns: str) -> str:
    """``a:id|b:id`` -> ``a|b`` (how LangGraph also names a graph in ``Command.graph``)."""
    return "|".join(part.split(":", 1)[0] for part in ns.split("|"))
