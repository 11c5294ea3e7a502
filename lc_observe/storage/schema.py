"""The SQLite schema: tables, indexes, version and migrations.

An lc_observe database is marked with ``PRAGMA application_id`` (so a foreign SQLite
file is recognised and never written to) and carries its schema version in
``PRAGMA user_version``.  `ensure_schema` creates a new database or migrates an
older one step by step; a newer version than this library knows is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from lc_observe.errors import ForeignDatabaseError, SchemaVersionError
from lc_observe.storage.journal import set_journal_mode

#: ``PRAGMA page_size`` of a new database file.
PAGE_SIZE = 16_384

#: ``PRAGMA application_id`` of every lc_observe database ("LCOB").
APPLICATION_ID = 0x4C434F42
SCHEMA_VERSION = 9

SPAN_COLUMNS: dict[str, type] = {
    "span_id": str,
    "trace_id": str,
    "parent_id": str,
    "name": str,
    "kind": str,
    "status": str,
    "start_time": str,
    "end_time": str,
    "latency_ms": float,
    "error_type": str,
    "error_message": str,
    "error_traceback": str,
    "inputs": str,
    "outputs": str,
    "tags": str,
    "metadata": str,
    "user_id": str,
    "session_id": str,
    "graph_node": str,
    "graph_step": int,
    "checkpoint_ns": str,
    "model": str,
    "provider": str,
    "input_tokens": int,
    "output_tokens": int,
    "total_tokens": int,
    "cached_tokens": int,
    "cache_creation_tokens": int,
    "reasoning_tokens": int,
    "cost_usd": float,
    "ttft_ms": float,
    "span_count": int,
    "error_count": int,
    "cache_hit": int,
    # version 7: the model the provider answered with (``model`` is the one requested),
    # what the run was called with besides its inputs, and the W3C traceparent of the
    # OpenTelemetry span (or remote LangSmith run) the trace ran under
    "response_model": str,
    "params": str,
    "traceparent": str,
}

TRACE_COLUMNS: dict[str, type] = {
    "trace_id": str,
    "name": str,
    "kind": str,
    "status": str,
    "start_time": str,
    "end_time": str,
    "latency_ms": float,
    "user_id": str,
    "session_id": str,
    "tags": str,
    "metadata": str,
    "graph_name": str,
    "span_count": int,
    "error_count": int,
    "traceparent": str,  # version 7
    "input_tokens": int,
    "output_tokens": int,
    "total_tokens": int,
    "cached_tokens": int,
    "cache_creation_tokens": int,
    "reasoning_tokens": int,
    "cost_usd": float,
}

BRANCH_COLUMNS: dict[str, type] = {
    "id": int,
    "trace_id": str,
    "span_id": str,
    "source": str,
    "condition": str,
    "result": str,
    "destinations": str,
    "kind": str,
    "step": int,
    "checkpoint_ns": str,
    "time": str,
    "error": str,
}

SCORE_COLUMNS: dict[str, type] = {
    "id": int,
    "trace_id": str,
    "span_id": str,
    "name": str,
    "value": float,
    "comment": str,
    "time": str,
    # version 4: what kind of value, who scored, and the verdict's details
    "value_type": str,
    "label": str,
    "source": str,
    "author": str,
    "metadata": str,
    "error": str,
}

#: Columns stored as JSON text.
JSON_COLUMNS = frozenset(
    {"inputs", "outputs", "tags", "metadata", "result", "destinations", "error", "params"}
    | {"actions", "trace_ids"}  # alerts
)


#: Span columns added after version 1 (by the migration named beside each).
_LATER_SPAN_COLUMNS = {"cache_hit", "response_model", "params", "traceparent"}  # versions 3, 7
_LATER_TRACE_COLUMNS = {"traceparent"}  # version 7
#: Score columns added after version 1 (version 4).
_LATER_SCORE_COLUMNS = ("value_type", "label", "source", "author", "metadata", "error")


def _create_v1(db: sqlite_utils.Database) -> None:
    v1_spans = {k: v for k, v in SPAN_COLUMNS.items() if k not in _LATER_SPAN_COLUMNS}
    db["spans"].create(v1_spans, pk="span_id", not_null={"trace_id"}, if_not_exists=True)
    v1_traces = {k: v for k, v in TRACE_COLUMNS.items() if k not in _LATER_TRACE_COLUMNS}
    db["traces"].create(v1_traces, pk="trace_id", if_not_exists=True)
    db["branch_events"].create(BRANCH_COLUMNS, pk="id", not_null={"trace_id"}, if_not_exists=True)
    v1_scores = {k: v for k, v in SCORE_COLUMNS.items() if k not in _LATER_SCORE_COLUMNS}
    db["scores"].create(v1_scores, pk="id", not_null={"trace_id"}, if_not_exists=True)
    indexes = {
        "spans": [["trace_id", "start_time"], ["start_time"], ["kind", "start_time"]],
        "traces": [["start_time"], ["user_id", "start_time"], ["session_id", "start_time"]],
        "branch_events": [["trace_id"], ["source", "time"], ["time"]],
        "scores": [["trace_id"]],
    }
    for table, columns_list in indexes.items():
        for columns in columns_list:
            db[table].create_index(columns, if_not_exists=True)


PUSH_COLUMNS: dict[str, type] = {
    "trace_id": str,
    "destination": str,
    "pushed_at": str,
    "spans": int,
}


def _add_pushes_v2(db: sqlite_utils.Database) -> None:
    """Version 2: ``pushes`` records which traces were uploaded where (``lc-observe push``)."""
    db["pushes"].create(PUSH_COLUMNS, pk=("trace_id", "destination"), if_not_exists=True)


BUDGET_COLUMNS: dict[str, type] = {
    "id": int,
    "time": str,
    "budget": str,
    "per": str,
    "scope": str,
    "metric": str,
    "limit_value": float,
    "spent": float,
    "action": str,
    "trace_id": str,
    "span_id": str,
    "user_id": str,
    "session_id": str,
}


def _add_cache_and_budgets_v3(db: sqlite_utils.Database) -> None:
    """Version 3: ``spans.cache_hit`` (LangChain LLM cache) and ``budget_events``."""
    if "cache_hit" not in db["spans"].columns_dict:
        db["spans"].add_column("cache_hit", int)
    db["budget_events"].create(BUDGET_COLUMNS, pk="id", if_not_exists=True)
    db["budget_events"].create_index(["time"], if_not_exists=True)
    db["budget_events"].create_index(["trace_id"], if_not_exists=True)


def _scores_v4(db: sqlite_utils.Database) -> None:
    """Version 4: scores carry their value type, a categorical label, source, author,
    metadata (a judge's reasoning ...) and the error of a malformed verdict."""
    columns = db["scores"].columns_dict
    for name in _LATER_SCORE_COLUMNS:
        if name not in columns:
            db["scores"].add_column(name, SCORE_COLUMNS[name])
    db["scores"].create_index(["span_id"], if_not_exists=True)
    db["scores"].create_index(["name", "time"], if_not_exists=True)
    db["scores"].create_index(["time"], if_not_exists=True)


ALERT_COLUMNS: dict[str, type] = {
    "id": int,
    "time": str,
    "rule": str,
    "kind": str,
    "group": str,
    "value": float,
    "threshold": float,
    "message": str,
    "actions": str,
    "trace_ids": str,
}


def _add_alerts_v5(db: sqlite_utils.Database) -> None:
    """Version 5: ``alerts``, the alert episodes that fired (`lc_observe.analysis.alerts`)."""
    db["alerts"].create(ALERT_COLUMNS, pk="id", if_not_exists=True)
    db["alerts"].create_index(["time"], if_not_exists=True)
    db["alerts"].create_index(["rule", "time"], if_not_exists=True)


def _add_search_v6(db: sqlite_utils.Database) -> None:
    """Version 6: ``spans_fts``, the full-text index of spans, kept by triggers
    (`lc_observe.storage.search`); spans already stored are indexed now."""
    from lc_observe.storage.search import create_index

    create_index(db.conn)


def _otel_v7(db: sqlite_utils.Database) -> None:
    """Version 7: ``spans.response_model``, ``spans.params``, ``spans.traceparent`` and
    ``traces.traceparent`` (found by OTel trace id: ``TraceStore.traces(otel_trace_id=)``)."""
    for table, columns in (("spans", SPAN_COLUMNS), ("traces", TRACE_COLUMNS)):
        existing = db[table].columns_dict
        for name in ("response_model", "params", "traceparent"):
            if name in columns and name not in existing:
                db[table].add_column(name, columns[name])
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_traces_otel_trace_id "
        "ON traces (substr(traceparent, 4, 32)) WHERE traceparent IS NOT NULL"
    )


#: Expression indexes of the sorted trace lists (`TraceStore.trace_page`: latency, cost,
#: tokens; a missing value sorts as -1), so a sorted page of a 1M-span file reads one page
#: of the index instead of every trace.
_SORT_INDEXES = {
    "idx_traces_sort_latency": "coalesce(latency_ms, -1), trace_id",
    "idx_traces_sort_cost": "coalesce(cost_usd, -1), trace_id",
    "idx_traces_sort_tokens": "coalesce(total_tokens, -1), trace_id",
}


def _sort_indexes_v8(db: sqlite_utils.Database) -> None:
    """Version 8: the sort indexes of the trace list (`_SORT_INDEXES`)."""
    for name, expression in _SORT_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON traces ({expression})")


def _search_metadata_v9(db: sqlite_utils.Database) -> None:
    """Version 9: the search index takes ``metadata`` as its JSON text (`lc_observe.storage.
    search`): new triggers, and every span indexed anew with them."""
    from lc_observe.storage.search import replace_triggers

    replace_triggers(db.conn)


#: ``MIGRATIONS[n]`` brings a database at version ``n - 1`` to version ``n``.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _create_v1,
    2: _add_pushes_v2,
    3: _add_cache_and_budgets_v3,
    4: _scores_v4,
    5: _add_alerts_v5,
    6: _add_search_v6,
    7: _otel_v7,
    8: _sort_indexes_v8,
    9: _search_metadata_v9,
}


def configure(conn: sqlite3.Connection, busy_timeout_ms: int = 10_000) -> None:
    """Per-connection settings every lc_observe connection uses."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses no committed txn
    # The search index's delete trigger must also fire for rows INSERT OR REPLACE replaces.
    conn.execute("PRAGMA recursive_triggers = ON")


def read_versions(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    """Return ``(application_id, user_version, has_tables)`` of an open database."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    return app_id, version, has_tables


def check_compatible(path: str, app_id: int, version: int, has_tables: bool) -> None:
    """Raise a clear error when ``path`` is not an lc_observe database this library can use."""
    if app_id != APPLICATION_ID and (has_tables or app_id != 0):
        raise ForeignDatabaseError(
            f"{path} is an SQLite database, but not an lc_observe one (application_id="
            f"{app_id:#x}). Point db_path at a new file or an lc_observe database."
        )
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has lc_observe schema version {version}, newer than this library "
            f"understands ({SCHEMA_VERSION}). Upgrade lc_observe: pip install -U lc-observe"
        )


def ensure_schema(db: sqlite_utils.Database, path: str) -> None:
    """Create or migrate the schema of ``db`` to `SCHEMA_VERSION` (idempotent, multi-process),
    in the journal mode that is safe where the file is (`set_journal_mode`)."""
    conn = db.conn
    app_id, version, has_tables = read_versions(conn)
    check_compatible(path, app_id, version, has_tables)
    if not has_tables:
        # Before WAL and the first table, or never: span rows carry a few KB of JSON, which
        # overflow 4 KB pages (measured: inserts ~25% faster with 16 KB pages).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    # Every writer checks where the file is (WAL only where it works): persistent; must
    # run outside a transaction.
    set_journal_mode(conn, path)
    if version == SCHEMA_VERSION:
        return
    # One writer migrates; the others wait on the lock, then see the new version and stop.
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id, version, has_tables = read_versions(conn)
        check_compatible(path, app_id, version, has_tables)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](db)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
