"""Plain-text rendering of a span tree (terminal, logs, ``lc-observe show``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

from .model import BranchEvent, Span

_STATUS_MARK = {"ok": "ok", "error": "ERROR", "interrupted": "interrupted", "running": "running"}


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 10_000 else f"{value / 1000:.2f} s"


def describe_span(span: Span) -> str:
    """One line: name, kind, graph node/step, status, latency, TTFT, tokens, cost, cache."""
    parts = [f"{span.name} [{span.kind}]"]
    if span.graph_node is not None and span.graph_node != span.name:
        parts.append(f"node={span.graph_node}")
    if span.graph_step is not None:
        parts.append(f"step={span.graph_step}")
    parts.append(_STATUS_MARK.get(span.status, span.status))
    parts.append(_ms(span.latency_ms))
    if span.ttft_ms is not None:
        parts.append(f"ttft {_ms(span.ttft_ms)}")
    if span.model:
        parts.append(span.model)
    if span.total_tokens:
        parts.append(f"{span.total_tokens} tok")
    if span.cost_usd is not None:
        parts.append(f"${span.cost_usd:.6f}")
    if span.cache_hit:
        parts.append("cache hit")
    if span.error is not None and span.status == "error":
        parts.append(f"{span.error.type}: {span.error.message}"[:200])
    return "  ".join(parts)


def describe_branch(event: BranchEvent) -> str:
    """One line: ``⤷ route: 'search' -> retrieve``."""
    result = json.dumps(event.result, ensure_ascii=False, default=str)
    if len(result) > 80:
        result = result[:77] + "..."
    where = ", ".join(event.destinations) if event.destinations else "?"
    label = event.condition or event.kind
    line = f"⤷ branch {label}({event.source}) returned {result} -> {where}"
    if event.error:
        line += f"  ERROR {event.error.get('type')}: {event.error.get('message')}"
    return line


def format_trace(spans: Sequence[Span], branches: Sequence[BranchEvent] = ()) -> str:
    """Indent ``spans`` as a tree under their parents, with each branch event under its span."""
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children[parent].append(span)
    events: dict[str | None, list[BranchEvent]] = defaultdict(list)
    for event in branches:
        events[event.span_id if event.span_id in ids else None].append(event)

    lines: list[str] = []

    def walk(span: Span, prefix: str, last: bool, top: bool) -> None:
        joint = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{joint}{describe_span(span)}")
        inner = prefix if top else prefix + ("   " if last else "│  ")
        kids = children.get(span.span_id, [])
        for event in events.get(span.span_id, []):
            lines.append(f"{inner}{'│  ' if kids else '   '}{describe_branch(event)}")
        for index, child in enumerate(kids):
            walk(child, inner, index == len(kids) - 1, False)

    roots = children.get(None, [])
    if roots:
        head = roots[0]
        total = sum(1 for _ in spans)
        lines.append(f"trace {head.trace_id}  ({total} spans)")
    for root in roots:
        walk(root, "", True, True)
    for event in events.get(None, []):
        lines.append(describe_branch(event))
    return "\n".join(lines)
