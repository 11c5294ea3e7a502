"""The HTML pages: traces, trace, graph, stats, anomalies, compare (rendered on the server).

Each handler reads through `data` (a read-only store per request) and renders with `html`.
Starlette runs these plain functions in its thread pool, so a slow query never stalls the
event loop.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..views._html import esc
from . import data, html, params


def _page(
    request: Request, title: str, active: str, body: str, live: str | None = None
) -> Response:
    page = html.layout(title, active, body, db=request.app.state.db_path, live=live)
    return HTMLResponse(page)


def home(request: Request) -> Response:
    return RedirectResponse("/traces", status_code=307)


def traces(request: Request) -> Response:
    query = request.query_params
    with data.open_store(request.app.state.db_path) as store:
        page = data.trace_page(store, query)
        text = params.text(query, "q")
        hits = ""
        if text is not None:
            hits = html.hits_table(data.search(store, query), text)
        token = data.change_token(store)
    first_page = not (query.get("after") or query.get("before"))
    live = f"/api/changes?token={token}" if first_page else None
    body = (
        "<h1>Traces</h1>"
        + html.trace_filters(query)
        + hits
        + f'<div id="live">{html.traces_table(page.traces)}</div>'
        + html.pager(dict(query), page.previous, page.next)
    )
    return _page(request, "Traces", "traces", body, live)


def trace(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    with data.open_store(request.app.state.db_path) as store:
        detail = data.trace_detail(store, trace_id)
        token = data.change_token(store, trace_id)
    view = detail.view
    name = view.trace.name if view.trace else "running trace"
    links = (
        f'<p class="actions"><a href="/graph?trace={esc(trace_id)}">graph with this path</a> · '
        f'<a href="/compare?a={esc(trace_id)}">compare with another trace</a> · '
        f'<a href="/api/traces/{esc(trace_id)}">JSON</a></p>'
    )
    body = (
        f"<h1>{esc(name)} <span class=mono>{esc(trace_id)}</span></h1>"
        + links
        + '<div id="live">'
        + html.errors_html(detail.errors)
        + html.decisions_html(detail)
        # the view without its scores table: the page's own (below) refreshes after a score
        + f'<section class="card" id="view">{replace(view, scores=[]).to_html()}</section>'
        + html.conversation_section(detail.conversation)
        + html.section("scores-card", "Scores", html.scores_list(detail.scores))
        + "</div>"
        + html.score_form(trace_id, view.spans)
    )
    live = f"/api/changes?trace={trace_id}&token={token}" if detail.running else None
    return _page(request, name, "traces", body, live)


def graph(request: Request) -> Response:
    query = request.query_params
    with data.open_store(request.app.state.db_path) as store:
        view = data.graph_view(store, query)
    source, target = params.text(query, "source"), params.text(query, "target")
    name = view.graph.name
    picker = ""
    if view.other_graphs or params.text(query, "name"):
        names = [n for n in [name, *view.other_graphs] if n]
        picker = html.form(
            "/graph", html.choice("name", "Graph", name, [(n, n) for n in names]), "Draw"
        )

    def edge_url(e: Any) -> str:
        return html.url("/graph", {"name": name, "source": e.source, "target": e.target})

    edges = "".join(
        f'<tr><td><a href="{esc(edge_url(e))}">'
        f"{esc(e.source)} → {esc(e.target)}</a></td><td class=num>{e.count}</td>"
        f"<td class=num>{e.rate:.0%}</td><td>{esc(e.kind)}</td></tr>"
        for e in view.edges
    )
    chosen = ""
    if source and target:
        ids = data.edge_traces(view, source, target)
        items = "".join(f'<li><a href="/traces/{esc(t)}">{esc(t)}</a></li>' for t in ids)
        chosen = (
            f'<section class="card" id="edge-traces"><h2>{len(ids)} traces took '
            f"{esc(source)} → {esc(target)}</h2><ol>{items}</ol></section>"
        )
    body = (
        "<h1>Graph</h1>"
        + picker
        + chosen
        + f'<section class="card graph" data-graph="{esc(name or "")}">{view.to_html()}</section>'
        + html.section(
            "edges-card",
            "Edges (click one, here or in the drawing, for its traces)",
            '<table class="grid list" id="edges"><thead><tr><th>edge</th><th class=num>count'
            "</th><th class=num>rate</th><th>kind</th></tr></thead>"
            f"<tbody>{edges}</tbody></table>",
        )
    )
    return _page(request, "Graph", "graph", body)


def stats(request: Request) -> Response:
    query = request.query_params
    by = params.stat_group(query)
    span = data.window(query)
    since_text = params.text(query, "since") or "24h"
    with data.open_store(request.app.state.db_path) as store:
        rows = list(store.stats(by, since=span))
        buckets = data.timeline(store, by, span)
    fields = html.choice("by", "Group by", by, [(g, g) for g in params.STAT_GROUPS]) + html.choice(
        "since",
        "Window",
        since_text,
        [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")],
    )
    charts = (
        html.bars_svg(f"cost by {by}", buckets, "cost_usd", html.fmt_cost)
        + html.bars_svg(
            f"tokens by {by}", buckets, "total_tokens", lambda v: html.fmt_tokens(int(v))
        )
        + html.bars_svg(f"errors by {by}", buckets, "errors", lambda v: f"{v:,.0f}")
    )
    body = (
        "<h1>Stats</h1>"
        + html.form("/stats", fields)
        + f'<div id="live">{html.stats_table(rows)}<div class="charts">{charts}</div></div>'
    )
    return _page(request, "Stats", "stats", body)


def anomalies(request: Request) -> Response:
    query = request.query_params
    since_text = params.text(query, "since") or "1h"
    baseline = params.text(query, "baseline") or "7d"
    by = params.text(query, "by") or "name"
    with data.open_store(request.app.state.db_path) as store:
        found = list(store.anomalies(since=since_text, baseline=baseline, by=by))
    fields = (
        html.text_input("since", "Recent window", since_text)
        + html.text_input("baseline", "Baseline", baseline)
        + html.choice("by", "By", by, [(b, b) for b in ("name", "model", "graph_node")])
    )
    body = "<h1>Anomalies</h1>" + html.form("/anomalies", fields) + html.anomalies_table(found)
    return _page(request, "Anomalies", "anomalies", body)


def compare(request: Request) -> Response:
    query = request.query_params
    a, b = params.text(query, "a"), params.text(query, "b")
    by, ga, gb = params.text(query, "by"), params.text(query, "ga"), params.text(query, "gb")
    results = []
    with data.open_store(request.app.state.db_path) as store:
        if a and b:
            diff = store.diff(a, b)._repr_html_()
            results.append(html.section("diff", "Trace diff", diff))
        if by and ga and gb:
            since = params.text(query, "since")
            table = store.compare(by, ga, gb, since=since)._repr_html_()
            results.append(html.section("comparison", f"{by}: {ga} vs {gb}", table))
    traces_form = html.form(
        "/compare",
        html.text_input("a", "Trace A", a, placeholder="trace id")
        + html.text_input("b", "Trace B", b, placeholder="trace id"),
        "Diff traces",
    )
    groups_form = html.form(
        "/compare",
        html.text_input("by", "By", by or "metadata.prompt_version")
        + html.text_input("ga", "A", ga, placeholder="v1")
        + html.text_input("gb", "B", gb, placeholder="v2")
        + html.text_input("since", "Since", params.text(query, "since"), placeholder="7d"),
        "Compare versions",
    )
    body = (
        "<h1>Compare</h1><h2>Two traces</h2>"
        + traces_form
        + "<h2>Two prompt versions (or any two groups)</h2>"
        + groups_form
        + "".join(results)
    )
    return _page(request, "Compare", "compare", body)


def problem(request: Request, status_code: int, message: str) -> Response:
    body = f"<h1>{'Not found' if status_code == 404 else 'Cannot show this'}</h1>" + html.error_box(
        message
    )
    page = html.layout("Error", "", body, db=request.app.state.db_path)
    return HTMLResponse(page, status_code=status_code)
