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

from lc_observe.errors import MissingApiKeyError
from lc_observe.export.replay import StoredTrace, stored_traces
from lc_observe.sinks.langsmith import LangSmithSink, missing_api_key
from lc_observe.sinks.network import RetryPolicy
from lc_observe.storage.locking import retry_locked
from lc_observe.storage.schema import configure, ensure_schema
from lc_observe.storage.store import TimeLike, TraceStore

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
    busy_timeout: float = 10.0,
) -> PushResult:
    """Upload finished traces from ``db_path`` to LangSmith; returns what happened.

    Args:
        db_path: an lc_observe database (migrated to the current schema if needed).
        client: a ``langsmith.Client``; default: configured from LangSmith's environment
            (`MissingApiKeyError` before any request when ``LANGSMITH_API_KEY`` is unset).
        project_name: LangSmith project (default ``LANGSMITH_PROJECT`` or "default").
        since: only traces started at or after this time (or this long ago).
        trace_id: only this trace.
        force: push traces again even if they were pushed to this destination before.
        retry: retry policy per request.
        busy_timeout: seconds each write to ``db_path`` waits for another writer's lock
            before it is retried (bounded: `lc_observe.storage.locking`).
    """
    path = os.fspath(db_path)
    if client is None:
        problem = missing_api_key()
        if problem is not None:
            raise MissingApiKeyError(f"cannot push to LangSmith: {problem}. Nothing was sent.")
    sink = LangSmithSink(client, project_name=project_name, retry=retry)
    result = PushResult(destination_of(sink))
    with _writable(path, busy_timeout) as conn, TraceStore(path) as store:
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
    rows = [(t.trace_id, result.destination, now, len(t.spans)) for t in traces]

    def record() -> None:
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO pushes (trace_id, destination, pushed_at, spans) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    retry_locked(record, path=_path_of(conn), what="recording the push")
    result.pushed.extend(ids)
    result.runs += sum(len(t.spans) for t in traces)


@contextmanager
def _writable(path: str, busy_timeout: float = 10.0) -> Iterator[sqlite3.Connection]:
    """A write connection to the database, migrated to the current schema."""
    TraceStore(path, busy_timeout=busy_timeout).close()  # the clear errors of every read
    conn = sqlite3.connect(path, timeout=busy_timeout)
    try:
        configure(conn, int(busy_timeout * 1000))
        db = sqlite_utils.Database(conn)
        retry_locked(lambda: ensure_schema(db, path), path=path, what="the migration")
        yield conn
    finally:
        conn.close()


def _path_of(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row else "the database"
