"""What the pages and the JSON API show, read from the store (one function per view).

Every function takes an open `TraceStore` and uses its public methods only.  The server
opens a read-only store per request (`open_store`): a WAL reader that never takes the write
lock, so an application writing traces is never blocked by the browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from lc_observe.storage.store import TraceStore

from ..errors import TraceNotFoundError
from ..model import Score, Span, StatRow, Trace
from ..times import duration
from ..views import GraphView, TraceView
from . import params

#: Span kinds whose inputs and outputs are a conversation.
MODEL_KINDS = ("chat_model", "llm")


@contextlib.contextmanager
def open_store(db_path: str) -> Iterator[TraceStore]:
    """A read-only store for one request, closed afterwards."""
    store = TraceStore(db_path, read_only=True, busy_timeout=2.0)
    try:
        yield store
    finally:
        store.close()


# -- traces ----------------------------------------------------------------------------------


@dataclass
class TracePage:
    traces: list[Trace]
    previous: str | None
    next: str | None
    args: dict[str, Any]


def trace_page(store: TraceStore, query: Any) -> TracePage:
    """One page of the traces list (filters, sort and cursor from the query string)."""
    args = params.trace_page_args(query)
    traces, previous, following = store.trace_page(**args)
    return TracePage(
        list(traces), params.encode_cursor(previous), params.encode_cursor(following), args
    )


def search(store: TraceStore, query: Any) -> list[dict[str, Any]]:
    """Full-text hits for ``q``, as plain dicts: the most recently written first, like the
    traces list (only the hits shown are ranked, so a common word stays fast on a big
    file); ``rank=1`` for best match first."""
    text = params.text(query, "q")
    if text is None:
        raise ValueError("search needs a text: ?q=WORDS")
    limit = params.integer(query, "limit", 50, 1, 500)
    kind = params.text(query, "kind")
    order = "rank" if params.text(query, "rank") in ("1", "on", "true") else "newest"
    hits = store.search(
        text, since=params.text(query, "since"), kind=kind, limit=limit, order=order
    )
    return [hit.model_dump(mode="json") for hit in hits]


# -- one trace -------------------------------------------------------------------------------


@dataclass
class TraceDetail:
    view: TraceView
    trace_id: str
    errors: list[Span] = field(default_factory=list)
    conversation: list[Span] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Still running: no trace row yet, or the snapshot a flush wrote meanwhile."""
        return self.view.trace is None or self.view.trace.status == "running"

    @property
    def scores(self) -> list[Score]:
        return list(self.view.scores)


def trace_detail(store: TraceStore, trace_id: str) -> TraceDetail:
    """A trace with its spans, decisions and scores; the failed spans and model calls
    picked out (errors first on the page)."""
    view = store.view(trace_id)
    errors = [span for span in view.spans if span.status == "error"]
    conversation = [span for span in view.spans if span.kind in MODEL_KINDS]
    return TraceDetail(view, trace_id, errors, conversation)


def trace_json(detail: TraceDetail) -> dict[str, Any]:
    view = detail.view
    return {
        "trace": None if view.trace is None else view.trace.model_dump(mode="json"),
        "running": detail.running,
        "spans": [span.model_dump(mode="json") for span in view.spans],
        "branches": [event.model_dump(mode="json") for event in view.branches],
        "scores": [score.model_dump(mode="json") for score in view.scores],
        "errors": [span.span_id for span in detail.errors],
    }


def change_token(store: TraceStore, trace_id: str | None = None) -> str:
    """Changes when something new is there to show: the newest finished trace, or (for one
    trace) its span count, status and scores.  Polled by the pages' live refresh."""
    if trace_id is None:
        newest = store.traces(limit=1)
        return newest[0].trace_id if newest else ""
    spans = store.spans(trace_id=trace_id)
    finished = sum(1 for span in spans if span.end_time is not None)
    try:
        status = store.trace(trace_id).status
    except TraceNotFoundError:
        status = "running"
    return f"{len(spans)}:{finished}:{status}:{len(store.scores(trace_id))}"


# -- graph -----------------------------------------------------------------------------------


def graph_view(store: TraceStore, query: Any) -> GraphView:
    return store.graph(
        params.text(query, "name"),
        since=params.text(query, "since"),
        trace_id=params.text(query, "trace"),
        limit=params.integer(query, "limit", 1_000, 1, 100_000),
    )


def edge_traces(view: GraphView, source: str, target: str) -> list[str]:
    """The traces (of those the graph was observed over) that took ``source`` → ``target``."""
    return sorted(
        trace_id for trace_id, (_, edges) in view.graph.paths.items() if (source, target) in edges
    )


def graph_json(view: GraphView) -> dict[str, Any]:
    return {
        "name": view.graph.name,
        "traces": view.graph.traces,
        "other_graphs": view.other_graphs,
        "nodes": [
            {"name": n.name, "runs": n.runs, "errors": n.errors, "p50_ms": n.p50_ms}
            for n in view.nodes.values()
        ],
        "edges": [
            {
                "source": e.source,
                "target": e.target,
                "count": e.count,
                "rate": e.rate,
                "kind": e.kind,
            }
            for e in view.edges
        ],
    }


# -- stats -----------------------------------------------------------------------------------


@dataclass
class Bucket:
    start: datetime
    end: datetime
    rows: list[StatRow]


def window(query: Any, default: str = "24h") -> timedelta:
    value = params.text(query, "since") or default
    return duration(value)


def timeline(store: TraceStore, by: str, span: timedelta, buckets: int = 12) -> list[Bucket]:
    """`TraceStore.stats` per time bucket over the last ``span`` (cost and tokens over time)."""
    end = datetime.now(timezone.utc)
    step = span / buckets
    out = []
    for index in range(buckets):
        start = end - span + step * index
        stop = start + step
        out.append(Bucket(start, stop, list(store.stats(by, since=start, until=stop))))
    return out
