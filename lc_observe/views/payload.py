"""A span's payload as HTML: chat turns, tool call cards beside their results, documents,
prompt variables, folded bookkeeping metadata and the raw JSON one click away.

`span_html` is the renderer for one span (a self-contained, scoped HTML fragment that any
page can embed: the notebook views, a web UI); `span_body_html` is the same without the
scoped root, for views that already have one.  What a payload means is decided by
`lc_observe.conversation`; here it is only drawn.

Layout uses ``div``/``span`` only, each with inline styles: host stylesheets (JupyterLab
styles ``dl``/``dt``/``dd``/``pre``/``table`` inside output areas) have nothing to restyle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..conversation import Document, Message, Part, ToolCall, call_text, read_span
from ..model import Span
from ._html import PAYLOAD_CHARS, esc, fmt_ms, to_text, wrap

#: Messages of a long conversation shown before the earlier ones are folded.
SHOWN_MESSAGES = 4
ROLE_COLORS = {
    "system": "#6e7781",
    "human": "#0969da",
    "ai": "#1a7f37",
    "tool": "#bc4c00",
}


def span_html(span: Span) -> str:
    """One span's error, input, output, facts and metadata as a scoped HTML fragment
    (styles inline and under the ``lco`` root; no script, nothing fetched)."""
    return wrap(span_body_html(span))


#: Span kinds whose details a tree shows open: the turns of the conversation.
OPEN_KINDS = ("chat_model", "llm", "tool", "retriever")


def span_body_html(span: Span, *, folded: bool = False) -> str:
    """`span_html` without the scoped root (inside a view that has one).

    ``folded=True`` (the span tree) puts the details in a ``<details>`` of their own,
    open for model calls, tools, retrievers and failed spans, closed for other chains
    (their row already previews input and output)."""
    body = _body(span)
    if not folded:
        return body
    opened = " open" if span.kind in OPEN_KINDS or span.status == "error" else ""
    return (
        f'<details class="lco-payload"{opened}><summary class="lco-payload-summary">'
        f"details</summary>{body}</details>"
    )


def _body(span: Span) -> str:
    payload = read_span(span)
    blocks = [_error(span)]
    if payload.inputs:
        blocks.append(_section("input", parts_html(payload.inputs)))
    if payload.outputs:
        blocks.append(_section("output", parts_html(payload.outputs)))
    blocks.append(_facts(span))
    if payload.metadata:
        blocks.append(_section("metadata", _json(payload.metadata)))
    if span.tags:
        blocks.append(_section("tags", esc(", ".join(span.tags))))
    if payload.bookkeeping:
        blocks.append(
            _fold(
                f"LangGraph/LangChain metadata ({len(payload.bookkeeping)} keys)",
                _json(payload.bookkeeping),
            )
        )
    raw = {"inputs": span.inputs, "outputs": span.outputs, "metadata": span.metadata}
    blocks.append(_fold("raw JSON", _json(raw)))
    return f'<div class="lco-span-detail">{"".join(blocks)}</div>'


def parts_html(parts: Sequence[Part]) -> str:
    """The parts of one payload, drawn by kind."""
    return "".join(_part(part) for part in parts)


def _part(part: Part) -> str:
    if part.kind == "messages":
        return _conversation(part.messages)
    if part.kind == "documents":
        return _documents(part.documents)
    if part.kind == "tool_call" and part.tool_call is not None:
        return _call_card(part.tool_call, None)
    if part.kind == "variables" and isinstance(part.value, dict):
        rows = "".join(
            f'<div class="lco-var"><span class="lco-var-k">{esc(k)}</span>'
            f'<span class="lco-var-v">{esc(_cut(to_text(v)))}</span></div>'
            for k, v in part.value.items()
        )
        return f'<div class="lco-vars">{_label("prompt variables")}{rows}</div>'
    if part.kind == "text":
        return f'<div class="lco-msg">{_label(part.label)}{_text(part.text or "")}</div>'
    label = _label(part.label) if part.label else ""
    return f"<div>{label}{_json(part.value)}</div>"


def _conversation(messages: Sequence[Message]) -> str:
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id}
    answered = {c.id for m in messages for c in m.tool_calls if c.id in results}
    shown = [m for m in messages if not (m.role == "tool" and m.tool_call_id in answered)]
    turns = [_turn(m, results) for m in shown]
    if len(turns) > SHOWN_MESSAGES:
        early = len(turns) - (SHOWN_MESSAGES - 1)
        folded = _fold(f"{early} earlier messages", "".join(turns[:early]))
        turns = [folded, *turns[early:]]
    return f'<div class="lco-conv">{"".join(turns)}</div>'


def _turn(message: Message, results: dict[str, Message]) -> str:
    color = ROLE_COLORS.get(message.role, "#424a53")
    who = message.role if not message.name else f"{message.role} · {message.name}"
    if message.status and message.status != "success":
        who += f" · {message.status}"
    body = _text(message.text) if message.text else ""
    cards = "".join(
        _call_card(call, results.get(call.id) if call.id else None) for call in message.tool_calls
    )
    return (
        f'<div class="lco-msg" style="border-left-color:{color}">'
        f'<span class="lco-role" style="color:{color}">{esc(who)}</span>{body}{cards}</div>'
    )


def _call_card(call: ToolCall, result: Message | None) -> str:
    ident = f'<span class="lco-call-id">{esc(call.id)}</span>' if call.id else ""
    args = to_text(call.args, PAYLOAD_CHARS, compact=True)
    if len(args) > 100:  # long arguments: one key a line
        args = to_text(call.args, PAYLOAD_CHARS)
    out = ""
    if result is not None:
        status = "" if result.status in (None, "success") else f" ({result.status})"
        out = (
            f'<div class="lco-call-result"><span class="lco-role" style="color:'
            f'{ROLE_COLORS["tool"]}">result{esc(status)}</span>{_text(result.text)}</div>'
        )
    return (
        f'<div class="lco-call" title="{esc(call_text(call))}">'
        f'<span class="lco-call-name">⚙ {esc(call.name)}</span>{ident}'
        f'<div class="lco-code">{esc(args)}</div>{out}</div>'
    )


def _documents(documents: Sequence[Document]) -> str:
    items = []
    for index, doc in enumerate(documents, 1):
        meta = ""
        if doc.metadata:
            meta = (
                f'<div class="lco-doc-meta">{esc(_cut(to_text(doc.metadata, compact=True)))}</div>'
            )
        ident = f" · {doc.id}" if doc.id else ""
        items.append(
            f'<div class="lco-doc"><span class="lco-role">#{index}{esc(ident)}</span>'
            f'<div class="lco-text">{esc(_cut(doc.content, 600))}</div>{meta}</div>'
        )
    return f'<div class="lco-docs">{_label(f"{len(documents)} documents")}{"".join(items)}</div>'


def _facts(span: Span) -> str:
    tokens = None
    if span.input_tokens is not None or span.output_tokens is not None:
        tokens = f"{span.input_tokens or 0:,} in / {span.output_tokens or 0:,} out"
        extra = [
            f"{label} {value:,}"
            for label, value in (
                ("cached", span.cached_tokens),
                ("cache write", span.cache_creation_tokens),
                ("reasoning", span.reasoning_tokens),
            )
            if value
        ]
        tokens += f" ({', '.join(extra)})" if extra else ""
    who = None
    if span.user_id or span.session_id:
        who = " / ".join(v or "–" for v in (span.user_id, span.session_id))
    facts = [
        ("span id", span.span_id),
        ("started", span.start_time.isoformat()),
        ("model", f"{span.provider or '?'} / {span.model}" if span.model else None),
        ("tokens", tokens),
        ("time to first token", fmt_ms(span.ttft_ms) if span.ttft_ms is not None else None),
        ("output rate", f"{span.tokens_per_s:,.0f} tokens/s" if span.tokens_per_s else None),
        ("LLM cache", "hit (no tokens, no cost)" if span.cache_hit else None),
        ("user / session", who),
    ]
    cells = "".join(
        f'<span class="lco-fact-k">{esc(k)}</span><span class="lco-fact-v">{esc(v)}</span>'
        for k, v in facts
        if v
    )
    return f'<div class="lco-facts">{cells}</div>'


def _error(span: Span) -> str:
    if span.error is None:
        return ""
    trace = ""
    if span.error.traceback:
        trace = _fold(
            "traceback", f'<div class="lco-code">{esc(to_text(span.error.traceback))}</div>'
        )
    return (
        f'<div class="lco-error"><b>{esc(span.error.type)}</b>: '
        f"{esc(to_text(span.error.message, 2_000))}{trace}</div>"
    )


def _section(title: str, body: str) -> str:
    return f'<div class="lco-io">{_label(title)}{body}</div>'


def _label(text: str) -> str:
    return f'<span class="lco-io-label">{esc(text)}</span>' if text else ""


def _fold(title: str, body: str) -> str:
    return (
        f'<details class="lco-payload"><summary class="lco-payload-summary">{esc(title)}'
        f"</summary>{body}</details>"
    )


def _text(text: str) -> str:
    return f'<div class="lco-text">{esc(_cut(text))}</div>'


def _json(value: Any) -> str:
    return f'<div class="lco-code">{esc(to_text(value))}</div>'


def _cut(text: str, limit: int = PAYLOAD_CHARS) -> str:
    if len(text) > limit:
        return f"{text[:limit]}…[{len(text) - limit:,} more chars]"
    return text
