"""The JSON API behind each page (``/api/...``), and the one write: adding a score.

Reads go through a read-only store per request (`data.open_store`).  ``POST
/api/traces/{id}/scores`` opens a separate, short-lived writable store and calls
`TraceStore.add_score` (one short transaction, retried while a writer holds the lock).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lc_observe.storage.scores import parse_score_text
from lc_observe.storage.store import TraceStore

from . import data, params


def _json(payload: Any, status_code: int = 200) -> Response:
    return JSONResponse(payload, status_code=status_code)


def traces(request: Request) -> Response:
    with data.open_store(request.app.state.db_path) as store:
        page = data.trace_page(store, request.query_params)
    return _json(
        {
            "traces": [t.model_dump(mode="json", exclude={"branches"}) for t in page.traces],
            "previous": page.previous,
            "next": page.next,
        }
    )


def trace(request: Request) -> Response:
    with data.open_store(request.app.state.db_path) as store:
        detail = data.trace_detail(store, request.path_params["trace_id"])
    return _json(data.trace_json(detail))


def search(request: Request) -> Response:
    with data.open_store(request.app.state.db_path) as store:
        hits = data.search(store, request.query_params)
    return _json({"hits": hits})


def graph(request: Request) -> Response:
    query = request.query_params
    with data.open_store(request.app.state.db_path) as store:
        view = data.graph_view(store, query)
    payload = data.graph_json(view)
    source, target = params.text(query, "source"), params.text(query, "target")
    if source and target:
        payload["edge_traces"] = data.edge_traces(view, source, target)
    return _json(payload)


def stats(request: Request) -> Response:
    query = request.query_params
    by = params.stat_group(query)
    span = data.window(query)
    with data.open_store(request.app.state.db_path) as store:
        rows = store.stats(by, since=span)
        buckets = data.timeline(store, by, span, params.integer(query, "buckets", 12, 1, 200))
    return _json(
        {
            "by": by,
            "rows": [row.model_dump(mode="json") for row in rows],
            "timeline": [
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "rows": [row.model_dump(mode="json") for row in b.rows],
                }
                for b in buckets
            ],
        }
    )


def anomalies(request: Request) -> Response:
    query = request.query_params
    with data.open_store(request.app.state.db_path) as store:
        found = store.anomalies(
            since=params.text(query, "since") or "1h",
            baseline=params.text(query, "baseline") or "7d",
            by=params.text(query, "by") or "name",
        )
    return _json({"anomalies": [a.model_dump(mode="json") for a in found]})


def diff(request: Request) -> Response:
    query = request.query_params
    a, b = params.text(query, "a"), params.text(query, "b")
    if not (a and b):
        raise ValueError("diff needs two trace ids: ?a=TRACE_ID&b=TRACE_ID")
    with data.open_store(request.app.state.db_path) as store:
        result = store.diff(a, b)
    return _json(result.model_dump(mode="json"))


def compare(request: Request) -> Response:
    query = request.query_params
    by, a, b = params.text(query, "by"), params.text(query, "a"), params.text(query, "b")
    if not (by and a and b):
        raise ValueError("compare needs ?by=metadata.prompt_version&a=v1&b=v2")
    with data.open_store(request.app.state.db_path) as store:
        result = store.compare(by, a, b, since=params.text(query, "since"))
    return _json(result.model_dump(mode="json"))


def changes(request: Request) -> Response:
    """The current change token (of the traces list, or of ``?trace=``); the pages poll it
    and refresh when it differs from the one they were rendered with."""
    trace_id = params.text(request.query_params, "trace")
    with data.open_store(request.app.state.db_path) as store:
        token = data.change_token(store, trace_id)
    seen = request.query_params.get("token")
    return _json({"token": token, "changed": seen is not None and seen != token})


def _check_origin(request: Request) -> None:
    """Refuse a cross-site POST: the browser sends ``Origin``; it must be this server."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise PermissionError(f"a score can only be added from this server's pages, not {origin}")


async def add_score(request: Request) -> Response:
    """``POST {"name": ..., "value": ..., "comment"?, "span_id"?, "source"?}`` → the score.

    ``value`` is a JSON bool, number or string; a string is read like ``lc-observe score``
    reads one (true/false, a number, else a category).  JSON only: a form post from another
    site cannot send it without a CORS preflight, which this server never answers."""
    _check_origin(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ValueError("send the score as JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError('send a JSON object: {"name": "helpful", "value": true}')
    value = body.get("value")
    if isinstance(value, str):
        value = parse_score_text(value)
    trace_id = request.path_params["trace_id"]
    source = body.get("source") or "human"
    if source not in ("human", "feedback"):
        raise ValueError("source must be human or feedback here (judges write with evaluate())")
    from starlette.concurrency import run_in_threadpool

    def write() -> Any:
        with TraceStore(request.app.state.db_path, busy_timeout=2.0) as store:
            return store.add_score(
                trace_id,
                str(body.get("name") or "").strip() or None,
                value,
                span_id=body.get("span_id") or None,
                comment=body.get("comment") or None,
                source=source,
                author=body.get("author") or "lc-observe ui",
            )

    score = await run_in_threadpool(write)
    return _json(score.model_dump(mode="json"), status_code=201)
