"""The LangGraph graph as observed across traces: nodes, edges, counts and rates.

``TraceStore.graph()`` returns a `GraphView`: an inline SVG drawn with a small layered
layout (no graphviz, no JavaScript) and the same graph as Mermaid text.

How edges are observed, per trace and per (sub)graph:

* ``__start__`` → every node of the first step; a subgraph's first nodes hang off the node
  that runs the subgraph (``sub`` → ``sub/inner``).
* A routing decision (a `BranchEvent`) gives ``source`` → each of its destinations; an edge
  from ``START`` decided by a router is a branch out of ``__start__``; a handoff
  (``Command.PARENT``) goes from the inner node that returned it to its destination in the
  parent graph.
* A node of step *k+1* that no decision of step *k* explains is linked from every node of
  step *k* (exact when step *k* ran one node; with parallel nodes it is the superset, since
  callbacks do not say which of them triggered it).
* The nodes of the last step → ``__end__`` when the trace finished ``ok``.

An edge's ``count`` is how many times it was taken; its ``rate`` is ``count`` divided by
the number of steps its source ran in (``__start__``: the number of traces), so parallel
``Send`` copies of a node in one step count once.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from lc_observe.graph_rules import namespace, qualified

from ._html import ERROR_COLOR, esc, fmt_ms, page, wrap
from .records import table_html

if TYPE_CHECKING:
    from lc_observe.storage.store import TimeLike, TraceStore

START = "__start__"
END = "__end__"


@dataclass
class NodeStat:
    """A node as observed: how often it ran, failed, and how long it took."""

    name: str
    runs: int = 0
    errors: int = 0
    visits: int = 0  # steps the node ran in (parallel runs of one step count once)
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def p50_ms(self) -> float | None:
        """Median latency of the node's runs."""
        return statistics.median(self.latencies) if self.latencies else None


@dataclass
class EdgeStat:
    """A transition as observed: taken ``count`` times, ``rate`` of its source's visits."""

    source: str
    target: str
    count: int = 0
    kind: str = "edge"  # "edge", "branch" (a routing decision) or "subgraph"
    rate: float = 0.0


@dataclass
class ObservedGraph:
    """Nodes and edges seen in a set of traces of one graph."""

    name: str | None
    traces: int
    nodes: dict[str, NodeStat]
    edges: dict[tuple[str, str], EdgeStat]
    paths: dict[str, tuple[set[str], set[tuple[str, str]]]] = field(repr=False)


# -- from the store's rows ---------------------------------------------------------------------


def observe(
    store: TraceStore,
    name: str | None = None,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    trace_id: str | None = None,
    limit: int = 1_000,
) -> tuple[ObservedGraph, list[str]]:
    """Build the observed graph of the ``limit`` newest traces of graph ``name``.

    Returns the graph and the names of other graphs in the store (when ``name`` was
    chosen automatically).
    """
    rows = store.graph_rows(name, since=since, until=until, trace_id=trace_id, limit=limit)
    return build(rows.name, rows.status, rows.node_rows, rows.branch_rows), rows.others


def build(
    name: str | None,
    trace_status: dict[str, str],
    node_rows: Sequence[Any],
    branch_rows: Sequence[Any],
) -> ObservedGraph:
    """The observed graph from node-run rows and branch-event rows (see the module doc)."""
    nodes: dict[str, NodeStat] = {}
    edges: dict[tuple[str, str], EdgeStat] = {}
    paths: dict[str, tuple[set[str], set[tuple[str, str]]]] = {}

    def node(key: str) -> NodeStat:
        if key not in nodes:
            nodes[key] = NodeStat(key)
        return nodes[key]

    # trace -> scope -> step -> node names (qualified), in start order
    runs: dict[str, dict[str, dict[int, list[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for row in node_rows:
        key = qualified(row["graph_node"], row["checkpoint_ns"])
        stat = node(key)
        stat.runs += 1
        stat.errors += row["status"] == "error"
        if row["latency_ms"] is not None:
            stat.latencies.append(row["latency_ms"])
        runs[row["trace_id"]][namespace(row["checkpoint_ns"])][row["graph_step"]].append(key)
    decisions: dict[str, dict[tuple[str, int | None], list[tuple[str, list[str]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    steps_of = {row["checkpoint_ns"]: row["graph_step"] for row in node_rows}
    for row in branch_rows:
        scope, step = namespace(row["checkpoint_ns"]), row["step"]
        if row["kind"] == "handoff":  # decided inside a subgraph, applied in its parent
            step = steps_of.get(scope, step)  # the step of the subgraph's own node
            scope = namespace(scope)
        prefix = _scope_path(scope)
        targets = json.loads(row["destinations"] or "[]")
        qualified_targets = [
            t if t == END or not prefix else f"{prefix}/{t}" for t in targets if isinstance(t, str)
        ]
        source = row["source"] or "?"
        decisions[row["trace_id"]][(scope, step)].append((source, qualified_targets))

    for trace, status in trace_status.items():
        scopes = runs.get(trace, {})
        seen_nodes = {key for steps in scopes.values() for keys in steps.values() for key in keys}
        for steps in scopes.values():
            for keys in steps.values():
                for key in set(keys):
                    nodes[key].visits += 1
        taken: set[tuple[str, str]] = set()
        for group in _transitions(scopes, decisions.get(trace, {}), status == "ok"):
            for (source, target), kind in group.items():
                taken.add((source, target))
                edge = edges.setdefault((source, target), EdgeStat(source, target, kind=kind))
                edge.count += 1
                if kind == "branch":
                    edge.kind = "branch"
        for end in (START, END):
            if any(end in pair for pair in taken):
                node(end).runs += 1
                node(end).visits += 1
                seen_nodes.add(end)
        paths[trace] = (seen_nodes, taken)

    for edge in edges.values():
        visits = nodes[edge.source].visits if edge.source in nodes else 0
        edge.rate = edge.count / visits if visits else 0.0
    return ObservedGraph(name, len(trace_status), nodes, edges, paths)


Transition = dict[tuple[str, str], str]  # (source, target) -> kind, taken once


def _transitions(
    scopes: dict[str, dict[int, list[str]]],
    decisions: dict[tuple[str, int | None], list[tuple[str, list[str]]]],
    finished: bool,
) -> list[Transition]:
    """The edges one trace took, grouped by step transition (see the module doc)."""
    groups: list[Transition] = []
    for scope, steps in scopes.items():
        order = sorted(steps)
        entry, kind = (START, "edge") if not scope else (_scope_path(scope), "subgraph")
        routed = {  # where a conditional edge from START sent the graph
            target
            for source, targets in decisions.get((scope, order[0] - 1), [])
            if source.rpartition("/")[2] == START
            for target in targets
        }
        groups.append(
            {(entry, target): "branch" if target in routed else kind for target in steps[order[0]]}
        )
        for before, after in pairwise(order):
            group: Transition = {}
            for source, targets in decisions.get((scope, before), []):
                for target in targets:
                    if not (target == END and scope):
                        group[(source, target)] = "branch"
            explained = {target for _, target in group}
            for target in dict.fromkeys(steps[after]):
                if target not in explained:
                    for source in dict.fromkeys(steps[before]):
                        group.setdefault((source, target), "edge")
            groups.append(group)
        if scope:
            continue  # a subgraph's own end is not drawn
        last: Transition = {}
        for source, targets in decisions.get((scope, order[-1]), []):
            if END in targets:
                last[(source, END)] = "branch"
        if finished:
            for source in dict.fromkeys(steps[order[-1]]):
                last.setdefault((source, END), "edge")
        groups.append(last)
    return groups


def _scope_path(scope: str) -> str:
    """``sub:task|inner:task`` → ``sub/inner`` (the node path of a subgraph scope)."""
    return "/".join(part.split(":", 1)[0] for part in scope.split("|") if part)


# -- layout ----------------------------------------------------------------------------------

_CHAR_W = 7.0
_NODE_H = 38.0
_LAYER_GAP = 90.0
_H_GAP = 34.0
_MARGIN = 20.0
_DUMMY_W = 8.0
_ARROW = 8.0  # arrowhead length


@dataclass
class _Box:
    key: str
    layer: int
    width: float
    dummy: bool = False
    x: float = 0.0  # centre
    y: float = 0.0  # top


@dataclass
class Layout:
    """Positions of nodes (and of the bends of long edges) in a top-down layered drawing."""

    boxes: dict[str, _Box]
    routes: dict[tuple[str, str], list[str]]  # forward edge -> box keys it passes through
    back: set[tuple[str, str]]
    width: float
    height: float


def _node_order(graph: ObservedGraph) -> list[str]:
    keys = [k for k in graph.nodes if k not in (START, END)]
    return ([START] if START in graph.nodes else []) + keys + ([END] if END in graph.nodes else [])


def _back_edges(order: list[str], successors: dict[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk from ``__start__`` (drawn upwards)."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on stack, 2 done
    for root in order:
        if root in state:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(successors.get(root, [])))]
        state[root] = 1
        while stack:
            current, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    back.add((current, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(successors.get(child, []))))
                    break
            else:
                state[current] = 2
                stack.pop()
    return back


def layout(graph: ObservedGraph) -> Layout:
    """A Sugiyama-style layout: break cycles, longest-path layers, dummy bends for long edges,
    barycentre ordering sweeps, then coordinates."""
    order = _node_order(graph)
    rank = {key: index for index, key in enumerate(order)}
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(graph.edges, key=lambda e: (rank[e[0]], rank[e[1]])):
        successors[source].append(target)
    back = _back_edges(order, successors)
    back |= {(s, t) for (s, t) in graph.edges if s == END or t == START}
    forward = [(s, t) for (s, t) in graph.edges if (s, t) not in back and s != t]

    layer = dict.fromkeys(order, 0)
    indegree = dict.fromkeys(order, 0)
    for _, target in forward:
        indegree[target] += 1
    ready = [key for key in order if indegree[key] == 0]
    while ready:
        current = ready.pop(0)
        for source, target in forward:
            if source == current:
                layer[target] = max(layer[target], layer[current] + 1)
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
    if END in layer:
        layer[END] = max([v for k, v in layer.items() if k != END] + [-1]) + 1
    if START in layer:
        layer[START] = 0

    boxes = {key: _Box(key, layer[key], _label_width(graph, key)) for key in order}
    routes: dict[tuple[str, str], list[str]] = {}
    for source, target in forward:
        chain = [source]
        low, high = layer[source], layer[target]
        step = 1 if high >= low else -1
        for between in range(low + step, high, step):
            dummy = f"\0{source}\0{target}\0{between}"
            boxes[dummy] = _Box(dummy, between, _DUMMY_W, dummy=True)
            chain.append(dummy)
        chain.append(target)
        routes[(source, target)] = chain

    layers: dict[int, list[str]] = defaultdict(list)
    for key, box in boxes.items():
        layers[box.layer].append(key)
    for keys in layers.values():
        keys.sort(key=lambda k: rank.get(k, len(rank)))
    _order_layers(layers, routes)

    height = _MARGIN * 2 + (max(layers, default=0) + 1) * _LAYER_GAP - (_LAYER_GAP - _NODE_H)
    widths = {
        n: sum(boxes[k].width for k in keys) + _H_GAP * (len(keys) - 1)
        for n, keys in layers.items()
    }
    widest = max(widths.values(), default=0.0)
    for number, keys in layers.items():
        x = _MARGIN + (widest - widths[number]) / 2
        for key in keys:
            box = boxes[key]
            box.x = x + box.width / 2
            box.y = _MARGIN + number * _LAYER_GAP
            x += box.width + _H_GAP
    extra = 80.0 + 14 * len(back) if back else 0.0
    return Layout(boxes, routes, back, widest + 2 * _MARGIN + extra, height)


def _order_layers(layers: dict[int, list[str]], routes: dict[tuple[str, str], list[str]]) -> None:
    """Reduce crossings: a few down/up sweeps sorting each layer by neighbours' mean position."""
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for chain in routes.values():
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    numbers = sorted(layers)
    for sweep in range(6):
        going_down = sweep % 2 == 0
        sequence = numbers[1:] if going_down else list(reversed(numbers[:-1]))
        for number in sequence:
            neighbour_layer = layers[number - 1 if going_down else number + 1]
            position = {key: index for index, key in enumerate(neighbour_layer)}
            links = up if going_down else down
            current = {key: index for index, key in enumerate(layers[number])}

            def weight(
                key: str,
                position: dict[str, int] = position,
                links: Any = links,
                current: dict[str, int] = current,
            ) -> float:
                found = [position[n] for n in links[key] if n in position]
                return sum(found) / len(found) if found else float(current[key])

            layers[number].sort(key=weight)


def _label_width(graph: ObservedGraph, key: str) -> float:
    if key in (START, END):
        return len(key) * 6.2 + 20
    stat = graph.nodes[key]
    return max(len(key) * _CHAR_W + 24, len(_node_caption(stat)) * 6.0 + 20, 70.0)


def _node_caption(stat: NodeStat) -> str:
    text = f"{stat.runs} run{'s' if stat.runs != 1 else ''}"
    if stat.errors:
        text += f" · {stat.errors} err"
    if stat.p50_ms is not None:
        text += f" · p50 {fmt_ms(stat.p50_ms)}"
    return text


# -- drawing ---------------------------------------------------------------------------------

_EDGE = "#8c959f"
_HIGHLIGHT = "#0969da"


def _edge_label(graph: ObservedGraph, edge: EdgeStat) -> str:
    fanout = sum(1 for (s, _t) in graph.edges if s == edge.source)
    return f"{edge.count} · {edge.rate:.0%}" if fanout > 1 or edge.rate < 1 else f"{edge.count}"


def svg(graph: ObservedGraph, highlight: str | None = None) -> str:
    """The observed graph as a standalone ``<svg>`` element (every label escaped).

    Nodes are ``<g class="lco-graph-node" data-node=...>``, edges ``<path class="lco-edge"
    data-source=... data-target=...>``; with ``highlight`` (a trace id) the nodes and edges
    of that trace's path are drawn in blue and the rest faded.
    """
    if not graph.nodes:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="40" role="img">'
            '<text x="10" y="24" font-size="13" fill="#656d76">no LangGraph traces recorded'
            "</text></svg>"
        )
    plan = layout(graph)
    on_nodes, on_edges = graph.paths.get(highlight or "", (set(), set()))
    lit = highlight is not None
    biggest = max((e.count for e in graph.edges.values()), default=1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lco-graph-svg" width="{plan.width:.0f}" '
        f'height="{plan.height:.0f}" viewBox="0 0 {plan.width:.0f} {plan.height:.0f}" '
        'font-family="-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif" role="img">'
        f"<title>{esc(graph.name or 'graph')}: observed over {graph.traces} traces</title>"
    ]
    edges_svg, labels_svg = [], []
    for key, edge in sorted(graph.edges.items(), key=lambda item: item[1].count):
        on = key in on_edges
        color = _HIGHLIGHT if on else _EDGE
        width = 1.2 + 3.3 * edge.count / biggest
        if on:
            width = max(width, 3.0)
        opacity = "1" if on or not lit else "0.35"
        d, (lx, ly, anchor), arrow = _route(plan, key)
        dash = ' stroke-dasharray="5 3"' if edge.kind == "subgraph" else ""
        tip = (
            f"{edge.source} → {edge.target}: {edge.count} times, "
            f"{edge.rate:.0%} of the steps {edge.source} ran in ({edge.kind})"
        )
        edges_svg.append(
            f'<path class="lco-edge" data-source="{esc(edge.source)}" '
            f'data-target="{esc(edge.target)}" data-count="{edge.count}" d="{d}" fill="none" '
            f'stroke="{color}" '
            f'stroke-width="{width:.2f}" opacity="{opacity}"{dash}><title>{esc(tip)}</title></path>'
            f'<path class="lco-arrowhead" d="{arrow}" fill="{color}" opacity="{opacity}"/>'
        )
        label = _edge_label(graph, edge)
        labels_svg.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" text-anchor="{anchor}" '
            f'fill="{color}" opacity="{opacity}" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{esc(label)}</text>'
        )
    parts += edges_svg
    for key in _node_order(graph):
        parts.append(_node_svg(graph, plan.boxes[key], key in on_nodes, lit))
    parts += labels_svg
    parts.append("</svg>")
    return "".join(parts)


def _node_svg(graph: ObservedGraph, box: _Box, on: bool, lit: bool) -> str:
    stat = graph.nodes[box.key]
    left, top = box.x - box.width / 2, box.y
    opacity = "1" if on or not lit else "0.45"
    if box.key in (START, END):
        fill = _HIGHLIGHT if on else "#424a53"
        return (
            f'<g class="lco-graph-node" data-node="{esc(box.key)}" opacity="{opacity}">'
            f'<rect x="{left:.1f}" y="{top + 7:.1f}" width="{box.width:.1f}" height="24" rx="12" '
            f'fill="{fill}"/><text x="{box.x:.1f}" y="{top + 23:.1f}" font-size="11" '
            f'text-anchor="middle" fill="#fff">{esc(box.key)}</text>'
            f"<title>{esc(box.key)}: {stat.runs} traces</title></g>"
        )
    stroke = ERROR_COLOR if stat.errors else (_HIGHLIGHT if on else "#57606a")
    fill = "#ddf4ff" if on else ("#fff5f5" if stat.errors else "#ffffff")
    stroke_width = 2.5 if on or stat.errors else 1.2
    tip = f"{box.key}: {_node_caption(stat)}"
    caption_color = ERROR_COLOR if stat.errors else "#656d76"
    return (
        f'<g class="lco-graph-node" data-node="{esc(box.key)}" data-runs="{stat.runs}" '
        f'opacity="{opacity}"><rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" '
        f'height="{_NODE_H:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{stroke_width}"/>'
        f'<text x="{box.x:.1f}" y="{top + 16:.1f}" font-size="12.5" font-weight="600" '
        f'text-anchor="middle" fill="#1f2328">{esc(box.key)}</text>'
        f'<text x="{box.x:.1f}" y="{top + 30:.1f}" font-size="10" text-anchor="middle" '
        f'fill="{caption_color}">{esc(_node_caption(stat))}</text>'
        f"<title>{esc(tip)}</title></g>"
    )


def _route(plan: Layout, key: tuple[str, str]) -> tuple[str, tuple[float, float, str], str]:
    """An SVG path for an edge, where its label goes (x, y, text-anchor), its arrowhead."""
    source, target = key
    a, b = plan.boxes[source], plan.boxes[target]
    if key in plan.routes:
        chain = [plan.boxes[k] for k in plan.routes[key]]
        points = [(a.x, a.y + _NODE_H - (7 if source in (START, END) else 0))]
        for box in chain[1:-1]:
            points.append((box.x, box.y + _NODE_H / 2))
        tip = (b.x, b.y + (7 if target in (START, END) else 0))
        points.append((tip[0], tip[1] - _ARROW))  # the line stops where the arrowhead starts
        d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for (x0, y0), (x1, y1) in pairwise(points):
            mid = (y0 + y1) / 2
            d += f" C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}"
        arrow = _arrow_down(*tip)
        if len(points) > 2:
            x, y = points[len(points) // 2]
            return d, (x + 6, y + 4, "start"), arrow
        (x0, y0), (x1, y1) = points
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        if abs(x1 - x0) < 4:  # straight down: beside the line
            return d, (x + 6, y + 4, "start"), arrow
        # a diagonal: above the line, on the side it heads to
        label = (x + 8, y - 6, "start") if x1 > x0 else (x - 8, y - 6, "end")
        return d, label, arrow
    if source == target:  # a node that loops on itself
        right, mid = a.x + a.width / 2, a.y + _NODE_H / 2
        d = (
            f"M{right:.1f},{mid - 8:.1f} C{right + 40:.1f},{mid - 30:.1f} "
            f"{right + 40:.1f},{mid + 20:.1f} {right + _ARROW:.1f},{mid + 8:.1f}"
        )
        arrow = (
            f"M{right:.1f},{mid + 8:.1f} L{right + _ARROW + 1:.1f},{mid + 3:.1f} "
            f"L{right + _ARROW + 1:.1f},{mid + 13:.1f} Z"
        )
        return d, (right + 34, mid + 4, "start"), arrow
    # A back edge (a loop): out of the source's right side, up a corridor right of every
    # node in between, then down into the target's top.
    low, high = sorted((a.layer, b.layer))
    corridor = max(box.x + box.width / 2 for box in plan.boxes.values() if low <= box.layer <= high)
    corridor += 24 + 14 * sorted(plan.back).index(key)
    x0, y0 = a.x + a.width / 2, a.y + _NODE_H / 2
    entry = b.x + b.width / 4
    top = b.y - 14
    r = 8.0
    d = (
        f"M{x0:.1f},{y0:.1f} L{corridor - r:.1f},{y0:.1f} "
        f"Q{corridor:.1f},{y0:.1f} {corridor:.1f},{y0 - r:.1f} "
        f"L{corridor:.1f},{top + r:.1f} Q{corridor:.1f},{top:.1f} {corridor - r:.1f},{top:.1f} "
        f"L{entry + r:.1f},{top:.1f} Q{entry:.1f},{top:.1f} {entry:.1f},{top + r:.1f} "
        f"L{entry:.1f},{b.y - _ARROW:.1f}"
    )
    return d, (corridor + 4, (y0 + top) / 2, "start"), _arrow_down(entry, b.y)


def _arrow_down(x: float, y: float) -> str:
    """A filled arrowhead whose tip is at (x, y), pointing down (no SVG markers: some
    notebook sanitizers drop them)."""
    return f"M{x - 5:.1f},{y - _ARROW - 1:.1f} L{x + 5:.1f},{y - _ARROW - 1:.1f} L{x:.1f},{y:.1f} Z"


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes, brackets, ``<``/``>`` as entity codes."""
    out = []
    for ch in text:
        if ch in "\"'<>&#|`[](){}\\;" or not ch.isprintable():
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def mermaid(graph: ObservedGraph, highlight: str | None = None) -> str:
    """The observed graph as Mermaid ``flowchart TD`` text (node ids ``n0``, ``n1`` ...)."""
    order = _node_order(graph)
    ids = {key: f"n{index}" for index, key in enumerate(order)}
    lines = ["flowchart TD"]
    for key in order:
        label = _mermaid_text(key)
        if key in (START, END):
            lines.append(f'    {ids[key]}(["{label}"])')
        else:
            caption = _mermaid_text(_node_caption(graph.nodes[key]))
            lines.append(f'    {ids[key]}["{label}<br/>{caption}"]')
    on_nodes, on_edges = graph.paths.get(highlight or "", (set(), set()))
    lit_links: list[str] = []
    for index, (key, edge) in enumerate(graph.edges.items()):
        arrow = "-.->" if edge.kind == "subgraph" else "-->"
        label = _mermaid_text(_edge_label(graph, edge))
        lines.append(f'    {ids[edge.source]} {arrow}|"{label}"| {ids[edge.target]}')
        if key in on_edges:
            lit_links.append(str(index))
    errors = [ids[k] for k, stat in graph.nodes.items() if stat.errors and k in ids]
    if errors:
        lines.append(f"    classDef failed stroke:{ERROR_COLOR},stroke-width:2px")
        lines.append(f"    class {','.join(errors)} failed")
    if highlight is not None and on_nodes:
        lines.append(f"    classDef path fill:#ddf4ff,stroke:{_HIGHLIGHT},stroke-width:3px")
        lines.append(f"    class {','.join(ids[k] for k in order if k in on_nodes)} path")
        if lit_links:
            lines.append(
                f"    linkStyle {','.join(lit_links)} stroke:{_HIGHLIGHT},stroke-width:3px"
            )
    return "\n".join(lines) + "\n"


# -- the view object -------------------------------------------------------------------------


@dataclass
class GraphView:
    """A LangGraph graph as observed: shows as inline SVG in a notebook.

    >>> view = store.graph()                   # newest graph, last 1,000 traces  # doctest: +SKIP
    >>> view = store.graph(trace_id=trace_id)  # that trace's path highlighted  # doctest: +SKIP
    >>> print(view.mermaid)                    # Markdown / mermaid.live  # doctest: +SKIP
    >>> view.save("graph.svg")                 # or .html, .mmd  # doctest: +SKIP
    """

    graph: ObservedGraph
    highlight: str | None = None
    other_graphs: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> dict[str, NodeStat]:
        """Observed nodes by name (``__start__``/``__end__`` included when seen)."""
        return self.graph.nodes

    @property
    def edges(self) -> list[EdgeStat]:
        """Observed edges, most taken first."""
        return sorted(self.graph.edges.values(), key=lambda e: (-e.count, e.source, e.target))

    @property
    def svg(self) -> str:
        """The drawing as an ``<svg>`` element."""
        return svg(self.graph, self.highlight)

    @property
    def mermaid(self) -> str:
        """The graph as Mermaid text (``flowchart TD``)."""
        return mermaid(self.graph, self.highlight)

    def path(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Nodes and edges of the highlighted trace (empty sets without one)."""
        return self.graph.paths.get(self.highlight or "", (set(), set()))

    def to_html(self, *, standalone: bool = False) -> str:
        """Caption, drawing, and (collapsed) the edge table and Mermaid text."""
        name = self.graph.name or "no graph"
        caption = f"{esc(name)}: observed over {self.graph.traces} trace"
        caption += "s" if self.graph.traces != 1 else ""
        if self.highlight:
            caption += (
                f' · <span style="color:{_HIGHLIGHT}" title="{esc(self.highlight)}">'
                f"path of trace {esc(self.highlight[:8])}…</span>"
            )
        if self.other_graphs:
            caption += (
                f'<div class="lco-sub">also recorded: {esc(", ".join(self.other_graphs))} '
                "(pass <code>name=</code>)</div>"
            )
        columns = [
            ("source", lambda e: e.source, False),
            ("target", lambda e: e.target, False),
            ("count", lambda e: str(e.count), True),
            ("rate", lambda e: f"{e.rate:.1%}", True),
            ("kind", lambda e: e.kind, False),
        ]
        body = (
            f'<h3 class="lco-h">{caption}</h3><div class="lco-graph">{self.svg}</div>'
            '<details class="lco-payload"><summary class="lco-payload-summary">edges</summary>'
            f"{table_html(self.edges, columns)}</details>"
            '<details class="lco-payload"><summary class="lco-payload-summary">Mermaid'
            f'</summary><div class="lco-code">{esc(self.mermaid)}</div></details>'
        )
        html = wrap(body, "lco-graph-view")
        return page(html, f"lc_observe · {name}") if standalone else html

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``.svg``, ``.mmd``/``.mermaid`` or (anything else) a standalone HTML page."""
        suffix = os.fspath(path).rsplit(".", 1)[-1].lower()
        text = {"svg": self.svg, "mmd": self.mermaid, "mermaid": self.mermaid}.get(
            suffix, self.to_html(standalone=True)
        )
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return (
            f"<GraphView {self.graph.name!r}: {len(self.graph.nodes)} nodes, "
            f"{len(self.graph.edges)} edges over {self.graph.traces} traces>"
        )
