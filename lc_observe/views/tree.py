"""Plain-text rendering of a span tree (terminal, logs, ``lc-observe show``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

from lc_observe.conversation import Part, call_text, compact, cut, message_text, preview, read_span
from lc_observe.model import BranchEvent, Span

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


def row_preview(span: Span, width: int = 120) -> str:
    """The span's input and output on one line: ``human: hi  ⇒ ai: hello``."""
    payload = read_span(span)
    given = preview(payload.inputs, "in")
    answer = preview(payload.outputs, "out")
    if span.error is not None and not answer:
        answer = f"{span.error.type}: {span.error.message}"
    pieces = [cut(given, width)] if given else []
    if answer:
        pieces.append("⇒ " + cut(answer, width))
    return "  ".join(pieces)


def format_trace(
    spans: Sequence[Span],
    branches: Sequence[BranchEvent] = (),
    *,
    previews: bool = True,
    width: int = 120,
) -> str:
    """Indent ``spans`` as a tree under their parents, with each branch event under its span.

    With ``previews`` each span's line is followed by one line previewing its input and
    output (`row_preview`), cut to ``width`` characters."""
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
        if previews:
            gist = row_preview(span)
            if gist:
                lead = f"{inner}{'│  ' if kids else '   '}· "
                lines.append(lead + cut(gist, max(20, width - len(lead))))
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


#: Span kinds whose payload ``lc-observe show`` prints as the conversation.
CONVERSATION_KINDS = ("chat_model", "llm", "tool", "retriever")


def format_conversation(spans: Sequence[Span], *, full: bool = False, width: int = 100) -> str:
    """What was said in a trace: the root's input and output, and each model call, tool
    call and retrieval in tree order, as role-labelled lines.

    Without ``full``, each text is cut to a few lines and a model call shows only the last
    messages of its input (the earlier ones were printed with the calls before it)."""
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    ordered: list[Span] = []
    seen: set[str] = set()
    stack = list(reversed(children.get(None, [])))
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append(span)
        stack.extend(reversed(children.get(span.span_id, [])))
    limit = None if full else 400
    lines: list[str] = []
    for span in ordered:
        if (
            span.parent_id is not None
            and span.parent_id in ids
            and span.kind not in CONVERSATION_KINDS
        ):
            continue
        where = (
            f"  in {span.graph_node}" if span.graph_node and span.graph_node != span.name else ""
        )
        step = f" step {span.graph_step}" if span.graph_step is not None else ""
        lines.append(f"── {span.name} [{span.kind}]  {span.span_id[-8:]}{where}{step}")
        payload = read_span(span)
        lines += _parts_text(payload.inputs, "in", full, limit)
        lines += [
            "  ⇒ " + line.lstrip() if i == 0 else line
            for i, line in enumerate(_parts_text(payload.outputs, "out", full, limit))
        ]
        if span.error is not None:
            lines.append(f"  ERROR {span.error.type}: {cut(span.error.message, limit or 10**9)}")
    return "\n".join(lines)


def _parts_text(parts: Sequence[Part], side: str, full: bool, limit: int | None) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part.kind == "messages":
            messages = list(part.messages)
            if not full and len(messages) > 3 and part.label != "generations":
                out.append(f"  … {len(messages) - 3} earlier messages (--full shows them)")
                messages = messages[-3:]
            for message in messages:
                out += _block(message_text(message), limit)
        elif part.kind == "documents":
            out.append(f"  {len(part.documents)} documents:")
            for index, doc in enumerate(part.documents, 1):
                meta = f"  {compact(doc.metadata)}" if doc.metadata else ""
                out += _block(f"#{index} {doc.content}{meta}", limit, "    ")
        elif part.kind == "tool_call" and part.tool_call is not None:
            out += _block("call " + call_text(part.tool_call), limit)
        elif part.kind == "text":
            label = f"{part.label}: " if part.label else ""
            out += _block(label + (part.text or ""), limit)
        elif part.kind == "variables" and isinstance(part.value, dict):
            out += _block("variables " + compact(part.value), limit)
        else:
            label = f"{part.label}: " if part.label else ""
            out += _block(label + compact(part.value), limit)
    return out


def _block(text: str, limit: int | None, indent: str = "  ") -> list[str]:
    if limit is not None:
        text = cut(" ".join(text.split()), limit)
    return [indent + line for line in text.splitlines() or [""]]
