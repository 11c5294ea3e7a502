"""Stored traces as records again, for the sinks that send them (`push`, `export`).

The network sinks take the same plain dict records the handler produces; this module
reads them back from an lc_observe SQLite file: finished traces only, oldest first, each
with its spans (parents before children) and its branch events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lc_observe.errors import TraceNotFoundError
from lc_observe.model import BranchEvent, Span
from lc_observe.storage.store import TimeLike, TraceStore


@dataclass
class StoredTrace:
    """One finished trace: its id, span records and branch records."""

    trace_id: str
    spans: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        """The records as a sink batch: spans, then branch events."""
        return [("span", s) for s in self.spans] + [("branch", b) for b in self.branches]


def span_record(span: Span) -> dict[str, Any]:
    """A span read from the store as the record the handler had produced."""
    record = span.model_dump()
    record["start_time"] = span.start_time.timestamp()
    record["end_time"] = None if span.end_time is None else span.end_time.timestamp()
    record.setdefault("graph_name", None)
    return record


def branch_record(event: BranchEvent) -> dict[str, Any]:
    """A branch event read from the store as a branch record."""
    record = event.model_dump(exclude={"id"})
    record["time"] = None if event.time is None else event.time.timestamp()
    return record


def _link_orders(spans: list[dict[str, Any]]) -> None:
    """Give every span its ``ancestry`` (``[[start, span_id], ...]`` from the root down), as
    the privacy stage does live."""
    by_id = {span["span_id"]: span for span in spans}
    chains: dict[str, list[list[Any]]] = {}

    def chain(span: dict[str, Any]) -> list[list[Any]]:
        found = chains.get(span["span_id"])
        if found is None:
            parent = by_id.get(span["parent_id"]) if span["parent_id"] else None
            up = [] if parent is None or parent is span else chain(parent)
            found = chains[span["span_id"]] = [*up, [span["start_time"], span["span_id"]]]
        return found

    for span in spans:
        span["ancestry"] = chain(span)


def read_trace(store: TraceStore, trace_id: str) -> StoredTrace:
    """One stored trace: its spans in start order and its branch events."""
    spans = [span_record(s) for s in store.spans(trace_id=trace_id)]
    _link_orders(spans)
    branches = [branch_record(b) for b in store.branches(trace_id=trace_id)]
    return StoredTrace(trace_id, spans, branches)


def finished_trace_ids(
    store: TraceStore,
    *,
    since: TimeLike | timedelta | None = None,
    trace_id: str | None = None,
) -> list[str]:
    """Ids of finished traces (root span ended), oldest first, since a time or just one.

    Raises:
        TraceNotFoundError: ``trace_id`` is unknown or still running.
    """
    if trace_id is not None:
        trace = store.trace(trace_id)
        if trace.status == "running":
            raise TraceNotFoundError(f"trace {trace_id} is still running; nothing to send yet")
        return [trace.trace_id]
    # Keyset pages (`TraceStore.iter_traces`): a writer adding traces meanwhile can neither
    # repeat nor skip one.
    ids = [t.trace_id for t in store.iter_traces(since=since) if t.status != "running"]
    return ids[::-1]


def stored_traces(
    store: TraceStore,
    *,
    since: TimeLike | timedelta | None = None,
    trace_id: str | None = None,
) -> Iterator[StoredTrace]:
    """`finished_trace_ids`, each read as a `StoredTrace`."""
    for found in finished_trace_ids(store, since=since, trace_id=trace_id):
        yield read_trace(store, found)
