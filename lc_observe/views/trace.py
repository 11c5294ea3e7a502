"""One trace as HTML: a header, a collapsible span tree and a waterfall.

`TraceView` is what ``TraceStore.view(trace_id)`` returns; a notebook displays it.

>>> view = store.view(trace_id)              # doctest: +SKIP
>>> view                                     # in a notebook: header, tree, waterfall
>>> view.save("trace.html")                  # a standalone page  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lc_observe.graph_rules import is_node_run
from lc_observe.views.tree import format_trace, row_preview

from ..conversation import cut
from ..model import BranchEvent, Span, Trace
from ._html import (
    ERROR_COLOR,
    HTML,
    esc,
    fmt_cost,
    fmt_ms,
    fmt_tokens,
    kind_badge,
    kind_color,
    page,
    status_badge,
    to_text,
    wrap,
)
from .evaluation import scores_html
from .payload import OPEN_KINDS, span_body_html


def is_node_span(span: Span) -> bool:
    """True for the run of a LangGraph node itself (not a run inside the node)."""
    return span.name == span.graph_node and is_node_run(span.tags, span.graph_node)


@dataclass
class _Tree:
    """Spans indexed by parent, and branch events by the span that decided."""

    roots: list[Span]
    children: dict[str, list[Span]]
    decisions: dict[str, list[BranchEvent]]
    orphan_decisions: list[BranchEvent]

    @classmethod
    def build(cls, spans: Sequence[Span], branches: Sequence[BranchEvent]) -> _Tree:
        ids = {span.span_id for span in spans}
        children: dict[str, list[Span]] = defaultdict(list)
        roots: list[Span] = []
        for span in sorted(spans, key=lambda s: s.start_time):
            if span.parent_id in ids and span.parent_id != span.span_id:
                children[span.parent_id].append(span)
            else:
                roots.append(span)
        decisions: dict[str, list[BranchEvent]] = defaultdict(list)
        orphans: list[BranchEvent] = []
        for event in branches:
            if event.span_id in ids:
                decisions[event.span_id].append(event)
            else:
                orphans.append(event)
        return cls(roots, children, decisions, orphans)

    def walk(self) -> list[tuple[Span, int]]:
        """Every span once, depth first, with its depth (cycles cannot loop forever)."""
        out: list[tuple[Span, int]] = []
        seen: set[str] = set()
        stack = [(root, 0) for root in reversed(self.roots)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            out.append((span, depth))
            stack.extend((kid, depth + 1) for kid in reversed(self.children.get(span.span_id, [])))
        return out


# -- header ----------------------------------------------------------------------------------


def _header(trace: Trace | None, spans: Sequence[Span]) -> str:
    if trace is None:
        first = spans[0] if spans else None
        title = esc(first.name) if first else "(no spans)"
        note = '<span class="lco-sub">trace not finished: showing the spans recorded so far</span>'
        ident = esc(first.trace_id) if first else ""
        return (
            f'<div class="lco-head"><span class="lco-title lco-hi">{title}</span>'
            f'{status_badge("running")} <span class="lco-sub lco-mono lco-hi">{ident}</span>'
            f"{note}</div>"
        )
    parts = [
        f'<span class="lco-title lco-hi">{esc(trace.name)}</span>',
        f'<span class="lco-hi">{status_badge(trace.status)}</span>',
        f'<span class="lco-hi">{esc(fmt_ms(trace.latency_ms))}</span>',
        f'<span class="lco-hi">{trace.span_count} spans</span>',
    ]
    if trace.error_count:
        parts.append(
            f'<span class="lco-hi" style="color:{ERROR_COLOR}">{trace.error_count} errors</span>'
        )
    if trace.total_tokens is not None:
        tokens = fmt_tokens(trace.total_tokens)
        if trace.input_tokens is not None or trace.output_tokens is not None:
            tokens += f" ({trace.input_tokens or 0:,} in / {trace.output_tokens or 0:,} out)"
        parts.append(f'<span class="lco-hi">{esc(tokens)}</span>')
    if trace.cost_usd is not None:
        parts.append(f'<span class="lco-hi">{esc(fmt_cost(trace.cost_usd))}</span>')
    if trace.graph_name:
        parts.append(f'<span class="lco-sub lco-hi">graph {esc(trace.graph_name)}</span>')
    who = [
        f"{label} {esc(value)}"
        for label, value in (("user", trace.user_id), ("session", trace.session_id))
        if value
    ]
    sub = [f'<span class="lco-mono">{esc(trace.trace_id)}</span>', esc(_when(trace.start_time))]
    sub += who
    if trace.tags:
        sub.append("tags " + ", ".join(esc(tag) for tag in trace.tags))
    return (
        f'<div class="lco-head">{"".join(parts)}</div>'
        f'<div class="lco-head lco-sub">{" · ".join(sub)}</div>'
    )


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


# -- tree ------------------------------------------------------------------------------------


def _metrics(span: Span) -> str:
    cells = [
        f'<span class="lco-m lco-model" title="{esc(span.model)}">{esc(span.model or "")}</span>',
        f'<span class="lco-m">{esc(fmt_tokens(span.total_tokens))}</span>',
        f'<span class="lco-m">{esc(fmt_cost(span.cost_usd))}</span>',
        f'<span class="lco-m">{esc(fmt_ms(span.latency_ms))}</span>',
    ]
    return f'<span class="lco-metrics">{"".join(cells)}</span>'


def _summary(span: Span) -> str:
    node = is_node_span(span)
    name_class = "lco-name lco-node" if node else "lco-name"
    step = ""
    if span.graph_step is not None and (node or span.parent_id is None):
        step = f'<span class="lco-step">step {span.graph_step}</span>'
    elif span.graph_node is not None:
        step = f'<span class="lco-step">in {esc(span.graph_node)}</span>'
    row = "lco-row lco-row-failed" if span.status == "error" else "lco-row"
    return (
        f'<summary class="{row}">{_metrics(span)}'
        f'<span class="{name_class}" title="{esc(span.name)}">{esc(span.name)}</span>'
        f"{kind_badge(span.kind)}{step}{status_badge(span.status)}{_preview(span)}</summary>"
    )


def _preview(span: Span) -> str:
    """The span's input and output on one line (cut by CSS to the row's width)."""
    text = row_preview(span)
    if not text:
        return ""
    return f'<span class="lco-preview" title="{esc(cut(text, 500))}">{esc(cut(text, 300))}</span>'


def decision_html(event: BranchEvent) -> str:
    """One routing decision: ``⤷ route_question returned "math" → calculator``."""
    where = ", ".join(event.destinations) if event.destinations else "? (unknown)"
    label = event.condition or event.kind
    result = to_text(event.result, 200, compact=True)
    text = f"⤷ {label} at {event.source} returned {result} → {where}"
    if event.kind != "conditional_edge":
        text += f"  [{event.kind}]"
    css = "lco-decision"
    if event.error:
        css += " lco-decision-error"
        text += f"  ERROR {event.error.get('type')}: {event.error.get('message')}"
    return (
        f'<div class="{css}" data-branch-source="{esc(event.source)}" '
        f'data-span-id="{esc(event.span_id)}">{esc(text)}</div>'
    )


def tree_html(spans: Sequence[Span], branches: Sequence[BranchEvent] = ()) -> str:
    """The span tree as nested ``<details>`` (open where a span has children).

    Each span is one ``<details class="lco-span" data-span-id=... data-parent-id=...>``;
    its summary row previews the input and output on one line; its body holds the routing
    decisions it took, the span's details (`lc_observe.views.payload`: error, messages,
    tool calls, documents, metadata) and its children.
    """
    tree = _Tree.build(spans, branches)
    seen: set[str] = set()

    def render(span: Span) -> str:
        seen.add(span.span_id)
        kids = [kid for kid in tree.children.get(span.span_id, []) if kid.span_id not in seen]
        classes = ["lco-span"]
        if span.status == "error":
            classes.append("lco-has-error")
        if not kids:
            classes.append("lco-leaf")
        events = tree.decisions.get(span.span_id, [])
        shown = kids or events or span.status == "error" or span.kind in OPEN_KINDS
        opened = " open" if shown else ""
        decisions = "".join(decision_html(e) for e in events)
        body = decisions + span_body_html(span, folded=True)
        body += "".join(render(kid) for kid in kids)
        return (
            f'<details class="{" ".join(classes)}"{opened} data-span-id="{esc(span.span_id)}" '
            f'data-parent-id="{esc(span.parent_id or "")}">{_summary(span)}'
            f'<div class="lco-body">{body}</div></details>'
        )

    rendered = "".join(render(root) for root in tree.roots if root.span_id not in seen)
    orphans = "".join(decision_html(e) for e in tree.orphan_decisions)
    return f'<div class="lco-tree">{rendered}{orphans}</div>'


# -- waterfall -------------------------------------------------------------------------------


def _bounds(spans: Sequence[Span]) -> tuple[datetime, datetime]:
    start = min(span.start_time for span in spans)
    ends = [span.end_time or span.start_time for span in spans]
    return start, max(ends)


def _axis(total_ms: float) -> str:
    marks = []
    for fraction, shift in ((0, 0), (0.25, -50), (0.5, -50), (0.75, -50), (1, -100)):
        marks.append(
            f'<span class="lco-tick" style="left:{fraction * 100:.0f}%;'
            f'transform:translateX({shift}%)">{esc(fmt_ms(total_ms * fraction))}</span>'
        )
    return (
        '<div class="lco-wf-row"><span class="lco-wf-label"></span>'
        f'<div class="lco-axis">{"".join(marks)}</div><span class="lco-wf-ms"></span></div>'
    )


def waterfall_html(spans: Sequence[Span], branches: Sequence[BranchEvent] = ()) -> str:
    """Timeline bars, one row per span in tree order, placed by start and end time.

    Spans that ran at the same time (parallel nodes, ``Send`` fan-out, a ``RunnableParallel``)
    show as overlapping bars on sibling rows.  A violet marker shows when a routing
    decision was taken; errors are red, unfinished spans striped.
    """
    if not spans:
        return '<div class="lco-wf lco-sub">no spans</div>'
    tree = _Tree.build(spans, branches)
    start, end = _bounds(spans)
    total_ms = max((end - start).total_seconds() * 1000, 1e-6)

    def pct(moment: datetime) -> float:
        return min(max((moment - start).total_seconds() * 1000 / total_ms * 100, 0.0), 100.0)

    rows = [_axis(total_ms)]
    for span, depth in tree.walk():
        left = pct(span.start_time)
        right = pct(span.end_time) if span.end_time is not None else 100.0
        width = max(right - left, 0.0)
        classes = ["lco-bar"]
        color = kind_color(span.kind, is_node=is_node_span(span))
        if span.status == "error":
            classes.append("lco-bar-error")
            color = ERROR_COLOR
        if span.end_time is None:
            classes.append("lco-bar-running")
        offset_ms = (span.start_time - start).total_seconds() * 1000
        tip = f"{span.name} [{span.kind}] {span.status}: starts +{fmt_ms(offset_ms)}, " + (
            f"lasts {fmt_ms(span.latency_ms)}" if span.end_time is not None else "not finished"
        )
        marks = "".join(
            f'<span class="lco-mark" style="left:{pct(e.time):.3f}%" '
            f'title="{esc(_decision_tip(e))}"></span>'
            for e in tree.decisions.get(span.span_id, [])
            if e.time is not None
        )
        label_class = "lco-wf-label lco-node" if is_node_span(span) else "lco-wf-label"
        weight = "font-weight:600;" if span.status == "error" else ""
        rows.append(
            '<div class="lco-wf-row">'
            f'<span class="{label_class}" style="padding-left:{depth * 12}px;{weight}" '
            f'title="{esc(span.name)}">{esc(span.name)}</span>'
            f'<div class="lco-track"><span class="{" ".join(classes)}" '
            f'data-span-id="{esc(span.span_id)}" title="{esc(tip)}" '
            f'style="left:{left:.3f}%;width:{width:.3f}%;background-color:{color}"></span>'
            f"{marks}</div>"
            f'<span class="lco-wf-ms">{esc(fmt_ms(span.latency_ms))}</span></div>'
        )
    return f'<div class="lco-wf">{"".join(rows)}{_legend(spans)}</div>'


def _decision_tip(event: BranchEvent) -> str:
    where = ", ".join(event.destinations) or "?"
    return f"{event.condition or event.kind} at {event.source} → {where}"


def _legend(spans: Sequence[Span]) -> str:
    items = [("graph node", kind_color(None, is_node=True))]
    for kind in sorted({span.kind for span in spans}):
        items.append((kind, kind_color(kind)))
    if any(span.status == "error" for span in spans):
        items.append(("error", ERROR_COLOR))
    keys = "".join(
        f'<span class="lco-legend-item"><i class="lco-key" style="background:{color}"></i>'
        f"{esc(k)}</span>"
        for k, color in items
    )
    return (
        f'<div class="lco-legend">{keys}<span class="lco-legend-item">'
        '<i class="lco-key" style="background:#8250df;height:7px"></i>'
        "routing decision</span></div>"
    )


def _section(title: str, body: str) -> str:
    return (
        f'<details class="lco-section" open><summary class="lco-section-summary">{esc(title)}'
        f"</summary>{body}</details>"
    )


# -- the view object -------------------------------------------------------------------------


@dataclass
class TraceView:
    """A trace with its spans and branch events, displayed as a tree and a waterfall.

    Get one with ``TraceStore.view(trace_id)``; ``trace`` is ``None`` while the trace's
    root run has not finished (the spans recorded so far are still shown).

    >>> view = store.view(trace_id)                     # doctest: +SKIP
    >>> view.tree                                       # the collapsible span tree only
    >>> view.waterfall                                  # the timeline only
    >>> view.save("trace.html")                         # a standalone HTML page
    >>> print(view)                                     # the text tree
    """

    trace: Trace | None
    spans: list[Span]
    branches: list[BranchEvent] = field(default_factory=list)
    scores: list[Any] = field(default_factory=list)  # Score rows, shown when there are any

    @property
    def tree(self) -> HTML:
        """The collapsible span tree alone."""
        return HTML(wrap(tree_html(self.spans, self.branches)))

    @property
    def waterfall(self) -> HTML:
        """The waterfall alone."""
        return HTML(wrap(waterfall_html(self.spans, self.branches)))

    def to_html(self, *, standalone: bool = False) -> str:
        """The whole view; ``standalone=True`` gives a complete HTML document."""
        body = wrap(
            _header(self.trace, self.spans)
            + _section("Span tree", tree_html(self.spans, self.branches))
            + _section("Waterfall", waterfall_html(self.spans, self.branches))
            + (_section("Scores", scores_html(self.scores)) if self.scores else ""),
            "lco-trace",
        )
        if standalone:
            title = self.trace.name if self.trace else "trace"
            return page(body, f"lc_observe · {title}")
        return body

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the view as a standalone HTML page."""
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.to_html(standalone=True))

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return format_trace(self.spans, self.branches)

    def __repr__(self) -> str:
        name = self.trace.name if self.trace else "running trace"
        return f"<TraceView {name!r}: {len(self.spans)} spans, {len(self.branches)} decisions>"
