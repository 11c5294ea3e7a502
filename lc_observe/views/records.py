"""HTML for single records and for lists of them (what ``TraceStore`` queries return).

``TraceStore.traces()``, ``spans()``, ``branches()`` and ``branch_stats()`` return a
`RecordList`: a plain ``list`` that a notebook shows as a table.  Single `Span`,
`Trace` and `BranchEvent` objects show as a small card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ..model import (
    HTML_RENDERERS,
    Alert,
    Anomaly,
    BranchEvent,
    BranchStat,
    RecordList,  # noqa: F401 - its home is the model; importable from here as before
    Span,
    Trace,
)
from ._html import (
    ERROR_COLOR,
    esc,
    fmt_cost,
    fmt_ms,
    fmt_tokens,
    kind_badge,
    status_badge,
    to_text,
    wrap,
)
from .payload import span_body_html
from .trace import _summary, decision_html

#: Rows a list shows before it says how many more there are.
MAX_ROWS = 200


Column = tuple[str, Callable[[Any], str], bool]  # header, cell text, numeric


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(value: str | None) -> str:
    return "" if value is None else value[:8]


def _opt(value: Any) -> str:
    return "" if value is None else str(value)


TRACE_COLUMNS: list[Column] = [
    ("started (UTC)", lambda t: _time(t.start_time), False),
    ("name", lambda t: t.name, False),
    ("status", lambda t: t.status, False),
    ("latency", lambda t: fmt_ms(t.latency_ms), True),
    ("spans", lambda t: str(t.span_count), True),
    ("errors", lambda t: str(t.error_count), True),
    ("tokens", lambda t: fmt_tokens(t.total_tokens), True),
    ("cost", lambda t: fmt_cost(t.cost_usd), True),
    ("user", lambda t: _opt(t.user_id), False),
    ("session", lambda t: _opt(t.session_id), False),
    ("trace id", lambda t: t.trace_id, False),
]

SPAN_COLUMNS: list[Column] = [
    ("started (UTC)", lambda s: _time(s.start_time), False),
    ("name", lambda s: s.name, False),
    ("kind", lambda s: s.kind, False),
    ("status", lambda s: s.status, False),
    ("latency", lambda s: fmt_ms(s.latency_ms), True),
    ("node", lambda s: _opt(s.graph_node), False),
    ("step", lambda s: _opt(s.graph_step), True),
    ("model", lambda s: _opt(s.model), False),
    ("tokens", lambda s: fmt_tokens(s.total_tokens), True),
    ("cost", lambda s: fmt_cost(s.cost_usd), True),
    ("error", lambda s: f"{s.error.type}: {s.error.message}"[:200] if s.error else "", False),
    ("trace", lambda s: _short(s.trace_id), False),
    ("span id", lambda s: s.span_id, False),
]

BRANCH_COLUMNS: list[Column] = [
    ("time (UTC)", lambda e: _time(e.time), False),
    ("source", lambda e: _opt(e.source), False),
    ("condition", lambda e: _opt(e.condition), False),
    ("result", lambda e: to_text(e.result, 120, compact=True), False),
    ("destinations", lambda e: ", ".join(e.destinations) if e.destinations else "?", False),
    ("kind", lambda e: e.kind, False),
    ("step", lambda e: _opt(e.step), True),
    (
        "error",
        lambda e: f"{e.error.get('type')}: {e.error.get('message')}" if e.error else "",
        False,
    ),
    ("trace", lambda e: _short(e.trace_id), False),
]

STAT_COLUMNS: list[Column] = [
    ("source", lambda b: _opt(b.source), False),
    ("destination", lambda b: "? (unknown)" if b.destination is None else b.destination, False),
    ("count", lambda b: str(b.count), True),
    ("tasks", lambda b: str(b.tasks), True),
    ("decisions", lambda b: str(b.decisions), True),
    ("rate", lambda b: f"{b.rate:.1%}", True),
]


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


ANOMALY_COLUMNS: list[Column] = [
    ("kind", lambda a: a.kind, False),
    ("group", lambda a: _opt(a.group), False),
    ("metric", lambda a: a.metric, False),
    ("baseline", lambda a: _value(a.baseline_value), True),
    ("recent", lambda a: _value(a.recent_value), True),
    ("ratio", lambda a: "new" if a.ratio is None else f"{a.ratio:.2f}x", True),
    ("n (base / recent)", lambda a: f"{a.baseline_n} / {a.recent_n}", True),
    ("p (adjusted)", lambda a: "" if a.p_adjusted is None else f"{a.p_adjusted:.2g}", True),
    ("explanation", lambda a: a.explanation, False),
    ("example traces", lambda a: ", ".join(a.trace_ids), False),
]

ALERT_COLUMNS: list[Column] = [
    ("time (UTC)", lambda a: _time(a.time), False),
    ("rule", lambda a: a.rule, False),
    ("kind", lambda a: a.kind, False),
    ("group", lambda a: _opt(a.group), False),
    ("value", lambda a: _value(a.value), True),
    ("threshold", lambda a: _value(a.threshold), True),
    ("message", lambda a: a.message, False),
    ("actions", lambda a: ", ".join(a.actions), False),
]

_COLUMNS: dict[type, list[Column]] = {
    Trace: TRACE_COLUMNS,
    Span: SPAN_COLUMNS,
    BranchEvent: BRANCH_COLUMNS,
    BranchStat: STAT_COLUMNS,
    Anomaly: ANOMALY_COLUMNS,
    Alert: ALERT_COLUMNS,
}


def _generic_columns(item: BaseModel) -> list[Column]:
    """Columns for a pydantic model this module has no layout for (e.g. future stats rows)."""
    columns: list[Column] = []
    for name in type(item).model_fields:
        value = getattr(item, name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)

        def cell(record: Any, name: str = name) -> str:
            value = getattr(record, name)
            if isinstance(value, float):
                return f"{value:.6g}"
            if isinstance(value, datetime):
                return _time(value)
            if isinstance(value, (dict, list)):
                return to_text(value, 120, compact=True)
            return _opt(value)

        columns.append((name, cell, numeric))
    return columns


def table_html(items: Sequence[Any], columns: Sequence[Column], *, limit: int = MAX_ROWS) -> str:
    """A table of ``items`` (one row each, at most ``limit``), every cell escaped."""
    head = "".join(f'<th class="lco-th">{esc(header)}</th>' for header, _, _ in columns)
    rows = []
    for item in items[:limit]:
        failed = getattr(item, "status", None) == "error" or bool(getattr(item, "error", None))
        cells = []
        for _, cell, numeric in columns:
            text = cell(item)
            css = "lco-td lco-num" if numeric else "lco-td"
            cells.append(f'<td class="{css}" title="{esc(text)}">{esc(text)}</td>')
        row_class = ' class="lco-row-error"' if failed else ""
        rows.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    more = ""
    if len(items) > limit:
        more = f'<div class="lco-more">… {len(items) - limit:,} more rows not shown</div>'
    return (
        f'<table class="lco-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def records_html(items: Sequence[Any]) -> str:
    """Any list of lc_observe records (or other pydantic models) as a scoped HTML table."""
    if not items:
        return wrap('<span class="lco-sub">no records</span>')
    first = items[0]
    columns = _COLUMNS.get(type(first))
    if columns is None:
        columns = _generic_columns(first) if isinstance(first, BaseModel) else []
    if not columns:
        body = "".join(f"<li>{esc(repr(item))}</li>" for item in items[:MAX_ROWS])
        return wrap(f"<ul>{body}</ul>")
    caption = f'<div class="lco-sub">{len(items):,} {esc(type(first).__name__)} records</div>'
    return wrap(caption + table_html(items, columns))


# -- single records --------------------------------------------------------------------------


def span_html(span: Span) -> str:
    """One span: its summary line and details (messages, tool calls ...; see
    `lc_observe.views.payload`)."""
    return wrap(
        f'<details class="lco-tree lco-span" open data-span-id="{esc(span.span_id)}">'
        f'{_summary(span)}<div class="lco-body">{span_body_html(span)}</div></details>'
    )


def trace_html(trace: Trace) -> str:
    """A trace's totals and its routing decisions (the span tree is `TraceStore.view`)."""
    facts = [
        ("status", status_badge(trace.status)),
        ("latency", esc(fmt_ms(trace.latency_ms))),
        ("spans", f"{trace.span_count} ({trace.error_count} errors)"),
        ("tokens", esc(fmt_tokens(trace.total_tokens))),
        ("cost", esc(fmt_cost(trace.cost_usd))),
        ("kind", kind_badge(trace.kind)),
        ("graph", esc(trace.graph_name or "–")),
        ("started", esc(_time(trace.start_time)) + " UTC"),
        ("user / session", f"{esc(trace.user_id or '–')} / {esc(trace.session_id or '–')}"),
        ("tags", esc(", ".join(trace.tags) or "–")),
    ]
    rows = "".join(
        f'<span class="lco-fact-k">{esc(label)}</span><span class="lco-fact-v">{value}</span>'
        for label, value in facts
    )
    color = f' style="color:{ERROR_COLOR}"' if trace.status == "error" else ""
    decisions = ""
    if trace.branches:
        decisions = '<h4 class="lco-h">Routing decisions</h4>' + "".join(
            decision_html(e) for e in trace.branches
        )
    hint = (
        f'<div class="lco-more">span tree and waterfall: '
        f'<code>store.view("{esc(trace.trace_id)}")</code></div>'
    )
    return wrap(
        f'<h3 class="lco-h"{color}>{esc(trace.name)} '
        f'<span class="lco-sub lco-mono">{esc(trace.trace_id)}</span>'
        f'</h3><div class="lco-facts">{rows}</div>{decisions}{hint}'
    )


def branch_html(event: BranchEvent) -> str:
    """One routing decision, as a line and a one-row table."""
    return wrap(decision_html(event) + table_html([event], BRANCH_COLUMNS))


def model_html(record: BaseModel) -> str:
    """Any other record (a `BranchStat`, a stats row) as a one-row table."""
    columns = _COLUMNS.get(type(record)) or _generic_columns(record)
    return wrap(table_html([record], columns))


HTML_RENDERERS.update(
    span=span_html, branch=branch_html, trace=trace_html, row=model_html, records=records_html
)
