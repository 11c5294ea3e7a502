"""Server-side HTML of the UI pages.  Every value from the database or the query string
goes through `esc` (``html.escape``, quotes included); the only markup not built here comes
from lc_observe's own views (`TraceView`, `GraphView`, `TraceDiff`, `Comparison`), which
escape alike.  No inline script: behaviour lives in ``static/ui.js`` (the CSP forbids
anything else).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ..model import Anomaly, Score, Span, StatRow, Trace
from ..views._html import esc, fmt_cost, fmt_ms, fmt_tokens, wrap
from ..views.payload import span_body_html
from ..views.trace import decision_html
from . import params

NAV = (
    ("traces", "/traces", "Traces"),
    ("graph", "/graph", "Graph"),
    ("stats", "/stats", "Stats"),
    ("anomalies", "/anomalies", "Anomalies"),
    ("compare", "/compare", "Compare"),
)


def layout(title: str, active: str, body: str, *, db: str, live: str | None = None) -> str:
    """A complete page: navigation, then ``body``.  ``live``: the change-token URL the
    page polls to refresh its ``#live`` part while an application writes."""
    links = "".join(
        f'<a href="{href}"{" aria-current=page" if key == active else ""}>{label}</a>'
        for key, href, label in NAV
    )
    live_attr = f' data-live="{esc(live)}"' if live else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{esc(title)} · lc_observe</title>"
        '<link rel="stylesheet" href="/static/ui.css">'
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<script src="/static/ui.js" defer></script></head>'
        f'<body><a class="skip" href="#main">Skip to content</a><header class="top">'
        f'<span class="brand">lc_observe</span><nav aria-label="pages">{links}</nav>'
        f'<span class="db" title="{esc(db)}">{esc(db)}</span>'
        '<span class="keys" title="keyboard">j/k move · Enter open · / search · ? help</span>'
        f'</header><main id="main" tabindex="-1"{live_attr}>{body}</main>'
        '<dialog id="help"><h2>Keyboard</h2><dl>'
        "<dt>j / k</dt><dd>next / previous row</dd><dt>Enter</dt><dd>open the row</dd>"
        "<dt>/</dt><dd>search or first filter</dd><dt>n / p</dt><dd>next / previous page</dd>"
        "<dt>g t, g g, g s, g a, g c</dt><dd>traces, graph, stats, anomalies, compare</dd>"
        "<dt>e</dt><dd>next error (trace page)</dd><dt>Esc</dt><dd>close</dd></dl>"
        '<form method="dialog"><button>Close</button></form></dialog></body></html>\n'
    )


def url(path: str, query: Mapping[str, Any]) -> str:
    """``path?query`` with empty values left out (values URL-encoded)."""
    items = {k: v for k, v in query.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(items)}" if items else path


def when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.strftime("%Y-%m-%d %H:%M:%S")


def error_box(message: str) -> str:
    return f'<p class="notice error" role="alert">{esc(message)}</p>'


def text_input(name: str, label: str, value: str | None, *, placeholder: str = "") -> str:
    return (
        f'<label>{esc(label)}<input name="{name}" value="{esc(value or "")}" '
        f'placeholder="{esc(placeholder)}" autocomplete="off"></label>'
    )


def choice(name: str, label: str, value: str | None, options: Iterable[tuple[str, str]]) -> str:
    opts = "".join(
        f'<option value="{esc(v)}"{" selected" if v == (value or "") else ""}>{esc(text)}</option>'
        for v, text in options
    )
    return f'<label>{esc(label)}<select name="{name}">{opts}</select></label>'


def status(value: str) -> str:
    safe = value if value in ("ok", "error", "interrupted", "running") else "other"
    return f'<span class="st st-{safe}">{esc(value)}</span>'


# -- traces ----------------------------------------------------------------------------------

SINCE_CHOICES = (("", "all time"), ("1h", "last hour"), ("24h", "last 24 h"), ("7d", "7 days"))
SORT_LABELS = {"start_time": "start time", "latency": "latency", "cost": "cost", "tokens": "tokens"}


def trace_filters(query: Mapping[str, str]) -> str:
    q = {k: params.text(query, k) for k in ("q", "since", *params.TRACE_FILTERS, "sort", "order")}
    since_choices = list(SINCE_CHOICES)
    if q["since"] and q["since"] not in dict(SINCE_CHOICES):
        since_choices.append((q["since"], q["since"]))
    search_box = (
        '<label class="wide">Search<input type="search" name="q" id="search" '
        f'value="{esc(q["q"] or "")}" placeholder="words in inputs, outputs, errors" '
        'autocomplete="off"></label>'
    )
    errors = " checked" if params.text(query, "errors") in ("1", "on", "true") else ""
    return (
        '<form class="filters" method="get" action="/traces" role="search">'
        + search_box
        + choice("since", "Time", q["since"], since_choices)
        + text_input("name", "Name", q["name"])
        + choice("status", "Status", q["status"], [("", "any")] + [(s, s) for s in params.STATUSES])
        + f'<label class="check"><input type="checkbox" name="errors" value="1"{errors}>'
        "with errors</label>"
        + text_input("user", "User", q["user"])
        + text_input("session", "Session", q["session"])
        + text_input("tag", "Tag", q["tag"])
        + text_input("model", "Model", q["model"])
        + choice("sort", "Sort", q["sort"], list(SORT_LABELS.items()))
        + choice(
            "order",
            "Order",
            q["order"],
            [("desc", "largest / newest"), ("asc", "smallest / oldest")],
        )
        + '<button type="submit">Apply</button> <a class="button" href="/traces">Reset</a></form>'
    )


def traces_table(traces: Sequence[Trace]) -> str:
    if not traces:
        return '<p class="notice">No traces match. Widen the filters, or record some runs.</p>'
    head = (
        "<tr><th>started</th><th>name</th><th>status</th><th class=num>latency</th>"
        "<th class=num>tokens</th><th class=num>cost</th><th class=num>spans</th>"
        "<th>user</th><th>session</th><th>tags</th></tr>"
    )
    rows = []
    for t in traces:
        errors = f' <span class="errs">{t.error_count} err</span>' if t.error_count else ""
        rows.append(
            f'<tr class="{"row-error" if t.status == "error" else ""}" '
            f'data-trace-id="{esc(t.trace_id)}">'
            f"<td class=mono>{esc(when(t.start_time))}</td>"
            f'<td><a class="open" href="/traces/{esc(t.trace_id)}">{esc(t.name)}</a></td>'
            f"<td>{status(t.status)}{errors}</td>"
            f"<td class=num>{esc(fmt_ms(t.latency_ms))}</td>"
            f"<td class=num>{esc(fmt_tokens(t.total_tokens))}</td>"
            f"<td class=num>{esc(fmt_cost(t.cost_usd))}</td>"
            f"<td class=num>{t.span_count}</td>"
            f"<td>{esc(t.user_id or '')}</td><td>{esc(t.session_id or '')}</td>"
            f"<td>{esc(', '.join(t.tags))}</td></tr>"
        )
    return (
        f'<table class="grid list" id="rows"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def pager(query: Mapping[str, str], previous: str | None, following: str | None) -> str:
    base = {k: v for k, v in query.items() if k not in ("after", "before")}
    parts = []
    if previous:
        parts.append(
            f'<a rel="prev" href="{esc(url("/traces", {**base, "before": previous}))}">← newer</a>'
        )
    if query.get("after") or query.get("before"):
        parts.append(f'<a href="{esc(url("/traces", base))}">first page</a>')
    if following:
        parts.append(
            f'<a rel="next" href="{esc(url("/traces", {**base, "after": following}))}">older →</a>'
        )
    return f'<nav class="pager" aria-label="pages of traces">{" · ".join(parts)}</nav>'


def hits_table(hits: Sequence[Mapping[str, Any]], text: str) -> str:
    if not hits:
        return f'<p class="notice">Nothing found for “{esc(text)}”.</p>'
    rows = "".join(
        f'<tr data-trace-id="{esc(h["trace_id"])}"><td>'
        f'<a class="open" href="/traces/{esc(h["trace_id"])}#span={esc(h["span_id"] or "")}">'
        f"{esc(h['name'])}</a></td><td>{esc(h['kind'])}</td>"
        f'<td class="snippet">{esc(h["snippet"])}</td>'
        f'<td class="mono">{esc(str(h["trace_id"])[:8])}</td></tr>'
        for h in hits
    )
    return (
        f'<h2>Search: “{esc(text)}” · {len(hits)} hits</h2><table class="grid list" id="hits">'
        "<thead><tr><th>span</th><th>kind</th><th>match</th><th>trace</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


# -- one trace -------------------------------------------------------------------------------


def conversation_html(span: Span) -> str:
    """A model call's messages and reply: its name, model and latency, then the one
    renderer of a span's payload (`lc_observe.views.payload.span_body_html`), opened."""
    facts = " · ".join(x for x in (span.model, fmt_ms(span.latency_ms), span.status) if x)
    return (
        f'<div class="lco-call" data-span-id="{esc(span.span_id)}">'
        f'<h3><a href="#span={esc(span.span_id)}" data-goto-span="{esc(span.span_id)}">'
        f"{esc(span.name)}</a> <small>{esc(facts)}</small></h3>"
        f"{span_body_html(span, folded=True)}</div>"
    )


def errors_html(spans: Sequence[Span]) -> str:
    if not spans:
        return ""
    items = "".join(
        f'<li><a href="#span={esc(s.span_id)}" data-goto-span="{esc(s.span_id)}">{esc(s.name)}</a>'
        f" <b>{esc(s.error.type if s.error else 'error')}</b>: "
        f"{esc((s.error.message if s.error else '')[:500])}</li>"
        for s in spans
    )
    return section("errors", f"Errors ({len(spans)})", f"<ol>{items}</ol>", "errors")


def decisions_html(detail: Any) -> str:
    branches = detail.view.branches
    if not branches:
        return ""
    return (
        f'<section class="card" id="decisions"><h2>Branch decisions ({len(branches)})</h2>'
        + wrap("".join(decision_html(event) for event in branches))
        + "</section>"
    )


def conversation_section(spans: Sequence[Span]) -> str:
    if not spans:
        return ""
    body = "".join(conversation_html(span) for span in spans)
    return (
        f'<section class="card" id="conversation"><h2>Conversation ({len(spans)} model '
        f"call{'s' if len(spans) != 1 else ''})</h2>" + wrap(body) + "</section>"
    )


def score_form(trace_id: str, spans: Sequence[Span]) -> str:
    options = [("", "the whole trace")] + [
        (s.span_id, f"{s.name} [{s.kind}] {s.span_id[:8]}") for s in spans
    ]
    return (
        f'<form class="score" id="score-form" data-trace-id="{esc(trace_id)}">'
        "<h2>Add a score</h2>"
        '<div class="quick"><button type="button" data-quick="true">✓ helpful</button>'
        '<button type="button" data-quick="false">✗ not helpful</button></div>'
        + text_input("name", "Name", "", placeholder="correctness")
        + text_input("value", "Value", "", placeholder="true, 0.8 or a category")
        + text_input("comment", "Comment", "", placeholder="optional")
        + choice("span_id", "On", "", options)
        + choice("source", "Source", "human", [("human", "human"), ("feedback", "feedback")])
        + '<button type="submit">Save score</button>'
        + '<output id="score-result" role="status"></output>'
        "</form>"
    )


def scores_list(scores: Sequence[Score]) -> str:
    if not scores:
        return '<p class="notice" id="no-scores">No scores yet.</p>'
    rows = "".join(
        f"<tr><td>{esc(s.name)}</td><td>{esc(s.value)}</td><td>{esc(s.source)}</td>"
        f"<td>{esc((s.span_id or 'trace')[:8])}</td><td>{esc(s.comment or '')}</td>"
        f"<td class=mono>{esc(when(s.time))}</td></tr>"
        for s in scores
    )
    return (
        '<table class="grid" id="scores"><thead><tr><th>score</th><th>value</th><th>source</th>'
        f"<th>on</th><th>comment</th><th>time</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# -- stats, anomalies ------------------------------------------------------------------------


def stats_table(rows: Sequence[StatRow]) -> str:
    if not rows:
        return '<p class="notice">Nothing recorded in this window.</p>'
    head = (
        "<tr><th>group</th><th class=num>count</th><th class=num>error rate</th>"
        "<th class=num>p50</th><th class=num>p95</th><th class=num>p99</th>"
        "<th class=num>calls</th><th class=num>tokens</th><th class=num>cost</th></tr>"
    )
    body = "".join(
        f'<tr class="{"row-error" if r.errors else ""}"><td>{esc(group_label(r.group))}</td>'
        f"<td class=num>{r.count:,}</td><td class=num>{r.error_rate:.1%}</td>"
        f"<td class=num>{esc(fmt_ms(r.latency_p50_ms))}</td>"
        f"<td class=num>{esc(fmt_ms(r.latency_p95_ms))}</td>"
        f"<td class=num>{esc(fmt_ms(r.latency_p99_ms))}</td>"
        f"<td class=num>{r.model_calls:,}</td><td class=num>{esc(fmt_tokens(r.total_tokens))}</td>"
        f"<td class=num>{esc(fmt_cost(r.cost_usd))}</td></tr>"
        for r in rows
    )
    return f'<table class="grid" id="stats"><thead>{head}</thead><tbody>{body}</tbody></table>'


PALETTE = ("#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e", "#57606a", "#e16f24", "#1b7c83")


def bars_svg(title: str, buckets: Sequence[Any], metric: str, fmt: Any) -> str:
    """Stacked bars, one per time bucket, one colour per group (the 7 largest; the rest
    as "other"), with a legend.  Plain SVG, drawn here: no chart library, no script."""
    totals: dict[str, float] = {}
    for bucket in buckets:
        for row in bucket.rows:
            key = row.group if row.group is not None else "(none)"
            totals[key] = totals.get(key, 0.0) + float(getattr(row, metric) or 0)
    groups = [g for g, v in sorted(totals.items(), key=lambda i: -i[1]) if v > 0][:7]
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    stacks = []
    for bucket in buckets:
        parts: dict[str, float] = {}
        for row in bucket.rows:
            key = row.group if row.group is not None else "(none)"
            key = key if key in colour else "other"
            parts[key] = parts.get(key, 0.0) + float(getattr(row, metric) or 0)
        stacks.append(parts)
    top = max((sum(p.values()) for p in stacks), default=0.0) or 1.0
    width, height, left, bottom = 640, 170, 56, 22
    bar = (width - left) / max(len(buckets), 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<text x="0" y="12" class="axis">{esc(fmt(top))}</text>'
        f'<text x="0" y="{height - bottom}" class="axis">0</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'class="base"/>'
    ]
    for index, (bucket, parts) in enumerate(zip(buckets, stacks, strict=True)):
        y = float(height - bottom)
        x = left + index * bar + 2
        for key in [*groups, "other"]:
            value = parts.get(key, 0.0)
            if value <= 0:
                continue
            h = value / top * (height - bottom - 8)
            y -= h
            fill = colour.get(key, "#8c959f")
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 4:.1f}" height="{h:.1f}" '
                f'fill="{fill}">'
                f"<title>{esc(key)}: {esc(fmt(value))} ({esc(when(bucket.start))} – "
                f"{esc(when(bucket.end))})</title></rect>"
            )
        if index % 3 == 0:
            out.append(
                f'<text x="{x:.1f}" y="{height - 6}" class="axis">'
                f"{esc(bucket.start.strftime('%m-%d %H:%M'))}</text>"
            )
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><i class="swatch" data-colour="{i % len(PALETTE)}"></i>{esc(g)}</span>'
        for i, g in enumerate(groups)
    )
    return (
        f'<figure class="card"><figcaption>{esc(title)}</figcaption>{"".join(out)}'
        f'<div class="legend">{legend}</div></figure>'
    )


def anomalies_table(found: Sequence[Anomaly]) -> str:
    if not found:
        return (
            '<p class="notice">No anomaly: nothing got significantly worse against the '
            "baseline.</p>"
        )
    rows = "".join(
        f"<tr><td>{esc(a.kind)}</td><td>{esc(group_label(a.group))}</td>"
        f"<td>{esc(a.metric)}</td><td class=num>{esc(_num(a.baseline_value))}</td>"
        f"<td class=num>{esc(_num(a.recent_value))}</td>"
        f"<td class=num>{'–' if a.ratio is None else f'{a.ratio:.2f}×'}</td>"
        f"<td class=num>{a.baseline_n} / {a.recent_n}</td>"
        f"<td class=num>{'–' if a.p_adjusted is None else f'{a.p_adjusted:.2g}'}</td>"
        f'<td class="wrap">{esc(a.explanation)} '
        + " ".join(f'<a href="/traces/{esc(t)}">{esc(t[:8])}</a>' for t in a.trace_ids[:3])
        + "</td></tr>"
        for a in found
    )
    return (
        '<table class="grid" id="anomalies"><thead><tr><th>kind</th><th>group</th><th>metric</th>'
        "<th class=num>baseline</th><th class=num>recent</th><th class=num>ratio</th>"
        "<th class=num>n</th><th class=num>p (adj.)</th><th>what and examples</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.4g}"


def form(action: str, fields: str, button: str = "Show") -> str:
    return (
        f'<form class="filters" method="get" action="{action}">{fields}'
        f'<button type="submit">{esc(button)}</button></form>'
    )


def section(element_id: str, title: str, body: str, css: str = "") -> str:
    """A titled card (``title`` escaped; ``body`` is markup)."""
    return f'<section class="card {css}" id="{element_id}"><h2>{esc(title)}</h2>{body}</section>'


def group_label(group: str | None) -> str:
    return "(none)" if group is None else group
