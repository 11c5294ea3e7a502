"""Backfill: upload traces recorded offline to LangSmith (``lc-observe push``).

Idempotent twice over: every pushed trace is recorded in the database's ``pushes`` table
(per destination: endpoint and project) and skipped next time, and runs keep their
LangChain ids, so even a forced re-push updates the same runs instead of adding copies.

>>> result = push_traces("lc_observe.db", since=timedelta(days=1))   # doctest: +SKIP
>>> result.pushed, result.skipped                                    # doctest: +SKIP
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from .schema import configure, ensure_schema
from .sinks.langsmith import LangSmithSink
from .sinks.network import RetryPolicy
from .store import TimeLike, TraceStore
from .stored import StoredTrace, stored_traces

_RUNS_PER_REQUEST = 100


@dataclass
class PushResult:
    """What a push did: trace ids pushed, skipped (pushed before) and failed."""

    destination: str
    pushed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    runs: int = 0


def destination_of(sink: LangSmithSink) -> str:
    """The key a push is recorded under: endpoint and project."""
    return f"langsmith:{sink.target.rstrip('/')}/{sink.project_name}"


def push_traces(
    db_path: str | os.PathLike[str],
    *,
    client: Any = None,
    project_name: str | None = None,
    since: TimeLike | timedelta | None = None,
    trace_id: str | None = None,
    force: bool = False,
    retry: RetryPolicy | None = None,
) -> PushResult:
    """Upload finished traces from ``db_path`` to LangSmith; returns what happened.

    Args:
        db_path: an lc_observe database (migrated to the current schema if needed).
        client: a ``langsmith.Client``; default: configured from LangSmith's environment.
        project_name: LangSmith project (default ``LANGSMITH_PROJECT`` or "default").
        since: only traces started at or after this time (or this long ago).
        trace_id: only this trace.
        force: push traces again even if they were pushed to this destination before.
        retry: retry policy per request.
    """
    path = os.fspath(db_path)
    sink = LangSmithSink(client, project_name=project_name, retry=retry)
    result = PushResult(destination_of(sink))
    with _writable(path) as conn, TraceStore(path) as store:
        done = {
            row[0]
            for row in conn.execute(
                "SELECT trace_id FROM pushes WHERE destination = ?", (result.destination,)
            )
        }
        pending: list[StoredTrace] = []
        for trace in stored_traces(store, since=since, trace_id=trace_id):
            if trace.trace_id in done and not force:
                result.skipped.append(trace.trace_id)
                continue
            pending.append(trace)
            if sum(len(t.spans) for t in pending) >= _RUNS_PER_REQUEST:
                _send(sink, pending, conn, result)
                pending = []
        if pending:
            _send(sink, pending, conn, result)
    return result


def _send(
    sink: LangSmithSink, traces: list[StoredTrace], conn: sqlite3.Connection, result: PushResult
) -> None:
    """One ingestion request for ``traces``; recorded in ``pushes`` when it succeeded."""
    batch = [item for trace in traces for item in trace.items()]
    prepared = sink.prepare(batch)
    ids = [trace.trace_id for trace in traces]
    if prepared is None or not sink.send(*prepared):
        result.failed.extend(ids)
        return
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    with conn:
        conn.executemany(
            "INSERT OR REPLACE INTO pushes (trace_id, destination, pushed_at, spans) "
            "VALUES (?, ?, ?, ?)",
            [(t.trace_id, result.destination, now, len(t.spans)) for t in traces],
        )
    result.pushed.extend(ids)
    result.runs += sum(len(t.spans) for t in traces)


@contextmanager
def _writable(path: str) -> Iterator[sqlite3.Connection]:
    """A write connection to the database, migrated to the current schema."""
    TraceStore(path).close()  # the same clear errors as every read (missing, foreign file)
    conn = sqlite3.connect(path)
    try:
        configure(conn)
        ensure_schema(sqlite_utils.Database(conn), path)
        yield conn
    finally:
        conn.close()
