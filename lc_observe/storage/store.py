"""`TraceStore`: read an lc_observe SQLite file back as typed objects.

>>> store = TraceStore("lc_observe.db")                  # doctest: +SKIP
>>> trace = store.traces(limit=1)[0]                     # newest first  # doctest: +SKIP
>>> [s.name for s in store.spans(trace_id=trace.trace_id)]  # doctest: +SKIP
>>> store.print_trace(trace.trace_id)                    # doctest: +SKIP

Every filter is a bound SQL parameter; nothing a caller passes is pasted into SQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from lc_observe.checks import check_kind, check_source, check_status
from lc_observe.errors import DatabaseNotFoundError, StoreError, TraceNotFoundError
from lc_observe.graph_rules import NODE_RUN_SQL, node_path
from lc_observe.model import (
    Alert,
    Anomaly,
    BranchEvent,
    BranchStat,
    BudgetExceeded,
    RecordList,
    Score,
    ScoreStat,
    SearchHit,
    Span,
    StatRow,
    Trace,
)
from lc_observe.storage.filters import where_clauses
from lc_observe.storage.locking import retry_locked
from lc_observe.storage.opening import READ_WRITE, open_database
from lc_observe.storage.schema import (
    BRANCH_COLUMNS,
    BUDGET_COLUMNS,
    JSON_COLUMNS,
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    check_compatible,
    ensure_schema,
    read_versions,
)
from lc_observe.times import TimeLike, to_db_time
from lc_observe.views import GraphView, TraceView
from lc_observe.views.tree import format_trace

if TYPE_CHECKING:  # pragma: no cover
    from lc_observe.analysis.anomalies import AnomalyConfig
    from lc_observe.storage.graph import GraphRows

#: Sort keys of `TraceStore.trace_page` and the trace column each sorts by.
TRACE_SORTS = {
    "start_time": "start_time",
    "latency": "latency_ms",
    "cost": "cost_usd",
    "tokens": "total_tokens",
}

M = TypeVar("M", bound=BaseModel)


def _parse(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for key in JSON_COLUMNS.intersection(data):
        if data[key] is not None:
            data[key] = json.loads(data[key])
    return data


def _score(row: sqlite3.Row) -> Score:
    from lc_observe.storage.scores import score_value

    data = _parse(row)
    data["value"] = score_value(data)
    data["source"] = data.get("source") or "human"  # rows of files before version 4
    data["value_type"] = data.get("value_type") or "numeric"
    data["metadata"] = data.get("metadata") or {}
    data.pop("label", None)
    return Score.model_validate(data)


def _span(row: sqlite3.Row) -> Span:
    data = _parse(row)
    error_type = data.pop("error_type")
    message = data.pop("error_message")
    trace = data.pop("error_traceback")
    if error_type is not None:
        data["error"] = {"type": error_type, "message": message or "", "traceback": trace}
    return Span.model_validate(data)


class TraceStore:
    """Query API over an lc_observe SQLite file (safe while handlers write).  It reads, and
    writes nothing but scores (`add_score`, `lc_observe.evaluate`) and `purge`.

    Args:
        path: the database file written by `ObsHandler` (default ``$LC_OBSERVE_DB`` or
            ``./lc_observe.db``).
        busy_timeout: seconds a write (`purge`, a migration on open) waits for another
            writer's lock before it retries (bounded; see `lc_observe.storage.locking`).
        read_only: open the file read-only (SQLite ``mode=ro``): every write raises, and a
            file of an older schema version is refused rather than migrated.  A file that
            cannot be opened for writing (a read-only mount or directory) is opened
            read-only anyway, and one whose ``-shm`` file cannot be created there as
            ``immutable`` (a snapshot: a live writer's newer data is not seen); a warning
            says so (`lc_observe.storage.opening`), and ``access`` tells which.

    Attributes:
        access: how the file is open: ``"read-write"``, ``"read-only"`` or ``"immutable"``.
        read_only: whether writes (scores, purge) are refused.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        ForeignDatabaseError: the file is not an lc_observe database.
        SchemaVersionError: the file was written by a newer lc_observe.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = 10.0,
        read_only: bool = False,
    ) -> None:
        if path is None:
            path = os.environ.get("LC_OBSERVE_DB", "lc_observe.db")
        self.db_path = os.fspath(path)
        if not os.path.isfile(self.db_path):
            raise DatabaseNotFoundError(
                f"no lc_observe database at {self.db_path!r}: record something with "
                "ObsHandler(db_path=...) first, or pass the right path"
            )
        try:
            # read_only: a WAL reader, never takes the write lock, never blocks writers.
            # Either way, a file SQLite cannot open for writing (or whose -shm it cannot
            # create: a read-only mount) is opened read-only, or immutable (`opening`).
            self._conn, self.access = open_database(
                self.db_path, read_only=read_only, busy_timeout_ms=int(busy_timeout * 1000)
            )
            self._conn.row_factory = sqlite3.Row
            app_id, version, has_tables = read_versions(self._conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.db_path!r} is not a readable SQLite database: {exc}") from None
        self.read_only = read_only or self.access != READ_WRITE
        check_compatible(self.db_path, app_id, version, has_tables)
        if version == 0:
            raise StoreError(f"{self.db_path!r} holds no lc_observe data yet (empty database file)")
        if version < SCHEMA_VERSION and self.read_only:
            self._conn.close()
            how = "is opened read-only" if read_only else "cannot be written where it is"
            raise StoreError(
                f"{self.db_path!r} has schema version {version}, older than this lc_observe's "
                f"({SCHEMA_VERSION}), and {how}: open it once writable to migrate it (e.g. "
                "run `lc-observe traces --db FILE` where it is writable), then retry"
            )
        if version < SCHEMA_VERSION:  # written by an older lc_observe: migrations only add
            import sqlite_utils

            db = sqlite_utils.Database(self._conn)
            retry_locked(
                lambda: ensure_schema(db, self.db_path), path=self.db_path, what="the migration"
            )

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    # -- traces --------------------------------------------------------------------------------

    def traces(
        self,
        limit: int = 50,
        offset: int = 0,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        name: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        tag: str | None = None,
        has_errors: bool | None = None,
        otel_trace_id: str | None = None,
    ) -> list[Trace]:
        """Recorded traces, newest first, filtered by any of the keyword arguments.

        ``since``/``until`` bound the trace start time (inclusive / exclusive; a time, an
        ISO string or an age like ``"1d"``: `lc_observe.times`).  ``status`` is the root
        run's (``ok``, ``error``, ``interrupted``); ``has_errors=True`` keeps traces in
        which any span failed (a failed tool the agent recovered from included),
        ``False`` those without.  To read
        *all* matching traces while an application may be writing, use `iter_traces`
        (pages by position in the order, so no trace is returned twice or skipped).
        ``otel_trace_id`` (32 hex digits) finds the traces that ran under that
        OpenTelemetry trace (their recorded ``traceparent``).
        """
        where, params = self._trace_filters(
            since, until, name, status, user_id, session_id, tag, has_errors, otel_trace_id
        )
        sql = (
            f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces WHERE {' AND '.join(where)} "
            "ORDER BY start_time DESC, trace_id DESC LIMIT ? OFFSET ?"
        )
        rows = self._query(sql, [*params, int(limit), int(offset)])
        return RecordList(Trace.model_validate(_parse(row)) for row in rows)

    def iter_traces(
        self,
        *,
        page_size: int = 500,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        name: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        tag: str | None = None,
        has_errors: bool | None = None,
        otel_trace_id: str | None = None,
    ) -> Iterator[Trace]:
        """Every matching trace, newest first, read a page at a time (filters of `traces`).

        Keyset pagination: each page starts after the ``(start_time, trace_id)`` of the
        previous page's last trace, never at an OFFSET, so traces written meanwhile (newer
        ones, which sort before the cursor) neither repeat nor shift a page: each trace is
        returned once.

        >>> sum(1 for _ in store.iter_traces(status="error"))   # doctest: +SKIP
        """
        where, params = self._trace_filters(
            since, until, name, status, user_id, session_id, tag, has_errors, otel_trace_id
        )
        head = f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces WHERE {' AND '.join(where)}"
        order = " ORDER BY start_time DESC, trace_id DESC LIMIT ?"
        rows = self._query(head + order, [*params, int(page_size)])
        while rows:
            yield from (Trace.model_validate(_parse(row)) for row in rows)
            last = rows[-1]
            after = " AND (start_time, trace_id) < (?, ?)"  # a row value: an index range
            cursor = [last["start_time"], last["trace_id"]]
            rows = self._query(head + after + order, [*params, *cursor, int(page_size)])

    def trace_page(
        self,
        limit: int = 50,
        *,
        sort: str = "start_time",
        descending: bool = True,
        after: tuple[Any, str] | None = None,
        before: tuple[Any, str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        name: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        tag: str | None = None,
        model: str | None = None,
        has_errors: bool | None = None,
    ) -> tuple[list[Trace], tuple[Any, str] | None, tuple[Any, str] | None]:
        """One page of traces for a browser: filters of `traces`, plus ``model`` (a span of
        the trace called it), sorted
        by ``sort`` (`TRACE_SORTS`: start time, latency, cost or tokens; a missing value
        sorts as -1), newest or largest first unless ``descending=False``.

        Keyset pagination, never OFFSET: ``after`` is the ``next`` cursor of the page
        before, ``before`` the ``previous`` cursor of the page after.  Returns
        ``(traces, previous, next)``; a cursor is None at either end.

        >>> page, _, nxt = store.trace_page(sort="latency", has_errors=True)  # doctest: +SKIP
        >>> store.trace_page(sort="latency", has_errors=True, after=nxt)      # doctest: +SKIP
        """
        if sort not in TRACE_SORTS:
            raise ValueError(f"sort must be one of {sorted(TRACE_SORTS)}, not {sort!r}")
        if after is not None and before is not None:
            raise ValueError("trace_page() takes after= or before=, not both")
        column = TRACE_SORTS[sort]
        # start_time is never NULL and has an index; the numeric keys may be NULL.
        key = column if sort == "start_time" else f"coalesce({column}, -1)"
        where, params = self._trace_filters(
            since, until, name, status, user_id, session_id, tag, has_errors
        )
        if model is not None:
            where.append(
                "EXISTS (SELECT 1 FROM spans WHERE spans.trace_id = traces.trace_id "
                "AND spans.model = ?)"
            )
            params.append(model)
        cursor, backwards = (before, True) if before is not None else (after, False)
        down = descending != backwards  # the direction this query walks
        if cursor is not None:
            where.append(f"({key}, trace_id) {'<' if down else '>'} (?, ?)")
            params += [cursor[0], str(cursor[1])]
        order = "DESC" if down else "ASC"
        sql = (
            f"SELECT {', '.join(TRACE_COLUMNS)}, {key} AS sort_key FROM traces "
            f"WHERE {' AND '.join(where)} ORDER BY {key} {order}, trace_id {order} LIMIT ?"
        )
        rows = self._query(sql, [*params, int(limit) + 1])
        more = len(rows) > limit
        rows = rows[: int(limit)]
        if backwards:
            rows.reverse()
        keys = [(row["sort_key"], row["trace_id"]) for row in rows]
        traces = RecordList(
            Trace.model_validate({k: v for k, v in _parse(row).items() if k != "sort_key"})
            for row in rows
        )
        if not keys:
            return traces, None, None
        has_before = more if backwards else cursor is not None
        has_after = cursor is not None if backwards else more
        return traces, keys[0] if has_before else None, keys[-1] if has_after else None

    @staticmethod
    def _trace_filters(
        since: TimeLike | None,
        until: TimeLike | None,
        name: str | None,
        status: str | None,
        user_id: str | None,
        session_id: str | None,
        tag: str | None,
        has_errors: bool | None = None,
        otel_trace_id: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        equals = {
            "name": name,
            "status": check_status(status),
            "user_id": user_id,
            "session_id": session_id,
        }
        where, params = where_clauses(equals, "start_time", since, until)
        if has_errors is not None:  # the root failed, or any span in it did
            failed = "(status = 'error' OR coalesce(error_count, 0) > 0)"
            where.append(failed if has_errors else f"NOT {failed}")
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE value = ?)")
            params.append(tag)
        if otel_trace_id is not None:  # the expression of idx_traces_otel_trace_id
            where.append("traceparent IS NOT NULL AND substr(traceparent, 4, 32) = ?")
            params.append(otel_trace_id.strip().lower().replace("-", ""))
        return where, params

    def resolve_trace_id(self, trace_id: str) -> str:
        """The full id of the trace ``trace_id`` stands for: a whole id or any unique piece
        of one (at least 4 characters), e.g. the short id views show (`lc_observe.storage.ids`).

        Every method taking a trace id resolves it this way, and raises
        `TraceNotFoundError` for an id that matches no trace (``AmbiguousIdError``, a
        subclass, for a piece that matches several): `trace`, `spans`, `branches`,
        `scores`, `path`, `view`, `format_trace`, `print_trace`, `diff`.
        """
        from lc_observe.storage.ids import resolve_trace_id

        return resolve_trace_id(self._query, trace_id, self.db_path)

    def _check_kind(self, kind: str | None) -> str | None:
        try:
            return check_kind(kind)
        except ValueError:
            stored = [r[0] for r in self._query("SELECT DISTINCT kind FROM spans") if r[0]]
            return check_kind(kind, stored)

    def trace(self, trace_id: str) -> Trace:
        """One trace with its branch events (``trace_id``: a whole id or a unique piece,
        see `resolve_trace_id`); raises `TraceNotFoundError` for an unknown id."""
        trace_id = self.resolve_trace_id(trace_id)
        rows = self._query(
            f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces WHERE trace_id = ?", (str(trace_id),)
        )
        if not rows:
            # A trace whose root has not finished yet has spans but no trace row.
            if self._query("SELECT 1 FROM spans WHERE trace_id = ? LIMIT 1", (str(trace_id),)):
                raise TraceNotFoundError(
                    f"trace {trace_id} is still running (its root span has not finished); "
                    "use store.spans(trace_id=...) to see what is recorded so far"
                )
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in {self.db_path}")
        data = _parse(rows[0])
        data["branches"] = self.branches(trace_id=str(trace_id))
        return Trace.model_validate(data)

    # -- spans ---------------------------------------------------------------------------------

    def spans(
        self,
        trace_id: str | None = None,
        *,
        kind: str | None = None,
        name: str | None = None,
        status: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[Span]:
        """Spans in start order, filtered by trace, kind, name, status and start time.

        ``trace_id`` is resolved like `trace` (a unique piece is enough); an unknown one
        raises `TraceNotFoundError` rather than returning ``[]``.  An unknown ``kind`` or
        ``status`` raises a ValueError listing the valid ones."""
        trace = None if trace_id is None else self.resolve_trace_id(trace_id)
        kind = self._check_kind(kind)
        equals = {"trace_id": trace, "kind": kind, "name": name, "status": check_status(status)}
        where, params = where_clauses(equals, "start_time", since, until)
        sql = (
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE {' AND '.join(where)} "
            "ORDER BY start_time, rowid"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return RecordList(_span(row) for row in self._query(sql, params))

    def span(self, span_id: str) -> Span:
        """One span by id; raises `TraceNotFoundError` for an unknown id."""
        rows = self._query(
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE span_id = ?", (str(span_id),)
        )
        if not rows:
            raise TraceNotFoundError(f"no span with id {span_id!r} in {self.db_path}")
        return _span(rows[0])

    # -- branch events -------------------------------------------------------------------------

    def branches(
        self,
        trace_id: str | None = None,
        *,
        source: str | None = None,
        condition: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> list[BranchEvent]:
        """LangGraph routing decisions in the order they happened (``trace_id`` as in
        `spans`: resolved, unknown ids raise `TraceNotFoundError`)."""
        trace = None if trace_id is None else self.resolve_trace_id(trace_id)
        equals = {"trace_id": trace, "source": source, "condition": condition}
        where, params = where_clauses(equals, "time", since, until)
        sql = (
            f"SELECT {', '.join(BRANCH_COLUMNS)} FROM branch_events "
            f"WHERE {' AND '.join(where)} ORDER BY time, id"
        )
        return RecordList(
            BranchEvent.model_validate(_parse(row)) for row in self._query(sql, params)
        )

    def branch_stats(
        self,
        source: str | None = None,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> list[BranchStat]:
        """Per (source, destination): how many decisions went there (``count``), how many
        tasks they started there (``tasks``: a fan-out of three ``Send`` packets is one decision
        and three tasks), and ``rate`` = count / all decisions taken at that source.  A
        decision to several destinations counts for each, so the rates of one source may
        add up to more than 1; a decision with no known destination counts as ``None``.
        """
        where, params = where_clauses({"b.source": source}, "b.time", since, until)
        sql = f"""
            WITH selected AS (SELECT * FROM branch_events b WHERE {" AND ".join(where)}),
            decisions AS (SELECT source, count(*) AS n FROM selected GROUP BY source),
            targets AS (
                SELECT s.id, s.source, d.value AS destination
                FROM selected s, json_each(s.destinations) d
                UNION ALL
                SELECT s.id, s.source, NULL FROM selected s
                WHERE json_array_length(s.destinations) = 0
            )
            SELECT t.source, t.destination, count(DISTINCT t.id) AS count, count(*) AS tasks,
                   decisions.n AS decisions
            FROM targets t JOIN decisions ON decisions.source IS t.source
            GROUP BY t.source, t.destination ORDER BY t.source, count DESC, t.destination
        """
        return RecordList(
            BranchStat(
                source=row["source"],
                destination=row["destination"],
                count=row["count"],
                tasks=row["tasks"],
                decisions=row["decisions"],
                rate=row["count"] / row["decisions"],
            )
            for row in self._query(sql, params)
        )

    def path(self, trace_id: str) -> list[str]:
        """The LangGraph nodes a trace ran (subgraph nodes as ``outer/inner``), without the
        hidden ``__start__`` node.

        Canonical order, the same whichever way the graph was run (invoke, stream, async):
        by superstep; the nodes of one superstep (which run in parallel) by name, then task
        id; a subgraph node's inner nodes right after it."""
        trace_id = self.resolve_trace_id(trace_id)
        rows = self._query(
            "SELECT graph_node, graph_step, checkpoint_ns FROM spans WHERE trace_id = ? "
            f"AND {NODE_RUN_SQL}",
            (str(trace_id),),
        )
        if not rows and not self._query(
            "SELECT 1 FROM spans WHERE trace_id = ? LIMIT 1", (str(trace_id),)
        ):
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in {self.db_path!r}")
        return node_path(rows)

    def paths(
        self, *, name: str | None = None, since: TimeLike | None = None, limit: int = 10_000
    ) -> list[tuple[tuple[str, ...], int]]:
        """The most frequent node paths over (up to ``limit``) recent traces, with counts."""
        counts: dict[tuple[str, ...], int] = {}
        for trace in self.traces(limit=limit, name=name, since=since):
            if trace.graph_name is not None:
                key = tuple(self.path(trace.trace_id))
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    # -- statistics and budgets ----------------------------------------------------------------

    def stats(
        self,
        by: str = "model",
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        include_judge: bool = False,
    ) -> list[StatRow]:
        """Count, error rate, latency p50/p95/p99, TTFT, tokens, cost, LLM-cache hit rate
        and mean scores per group, over spans or traces that started in ``[since, until)``;
        the largest groups first.  See `lc_observe.storage.stats` for what each ``by`` counts
        (``"metadata.KEY"`` groups traces by a metadata value).  An LLM judge's own runs
        count only with ``include_judge=True``.

        >>> store.stats(by="model", since=timedelta(days=1))   # doctest: +SKIP
        >>> store.stats(by="metadata.prompt_version")          # doctest: +SKIP
        >>> store.stats_df(by="user_id")                       # doctest: +SKIP
        """
        from lc_observe.storage import stats

        stats.check_group(by)
        if by in stats.SPAN_GROUPS:
            where, params = where_clauses({}, "start_time", since, until)
            scored = self._has_scores()
            sql = stats.span_groups_sql(by, where, include_judge, with_ids=scored)
            rows = self._query(sql, params)
            scores = self._query(stats.scores_sql(sql), params) if scored and rows else []
            return RecordList(stats.span_stats(by, rows, scores))
        where, params = where_clauses({}, "traces.start_time", since, until)
        traces_sql, models_sql = stats.trace_groups_sql(by, where, include_judge)
        traces = self._query(traces_sql, params)
        models = self._query(models_sql, params)
        scored = bool(traces) and self._has_scores()
        scores = self._query(stats.scores_sql(traces_sql), params) if scored else []
        return RecordList(stats.trace_stats(by, traces, models, scores))

    def compare(
        self,
        by: str,
        a: Any,
        b: Any,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        alpha: float = 0.05,
    ) -> Any:
        """Group ``a`` vs group ``b`` of finished traces (``by``: ``metadata.KEY``, ``tag``,
        ``name``, ``user_id``, ``session_id`` or ``graph_name``): latency, tokens, cost,
        error rate, scores and routing rates side by side, with sample sizes, a two-sided
        test (Mann-Whitney U or two-proportion z) and its p-value.  Returns a
        `lc_observe.analysis.compare.Comparison` (a table in notebooks and ``print``).

        >>> cmp = store.compare(by="metadata.prompt_version", a="v1", b="v2")  # doctest: +SKIP
        >>> print(cmp)                                                        # doctest: +SKIP
        >>> [row.metric for row in cmp.significant]                           # doctest: +SKIP
        """
        from lc_observe.analysis.compare import compare

        return compare(self, by, a, b, since=since, until=until, alpha=alpha)

    def diff(self, trace_a: str, trace_b: str) -> Any:
        """What differs between two traces: node path, routing decisions, per-span latency /
        token / cost deltas (spans matched by position in the tree and name) and outputs.
        Returns a `lc_observe.analysis.diff.TraceDiff` (text with ``print``, HTML in
        notebooks).

        >>> d = store.diff(good_trace_id, bad_trace_id)   # doctest: +SKIP
        >>> print(d)                                      # doctest: +SKIP
        >>> d.branch_differences, d.changed               # doctest: +SKIP
        """
        from lc_observe.analysis.diff import diff

        return diff(self, self.resolve_trace_id(trace_a), self.resolve_trace_id(trace_b))

    def _has_scores(self) -> bool:
        """Whether stats need to look for scores at all (cheap: one index probe)."""
        return bool(self._query("SELECT 1 FROM scores WHERE value IS NOT NULL LIMIT 1"))

    def anomalies(
        self,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        baseline: TimeLike | None = None,
        by: str = "name",
        config: AnomalyConfig | None = None,
    ) -> list[Anomaly]:
        """What changed and what got worse: the recent window ``[since, until)`` against the
        baseline window just before it, ``[since - baseline, since)`` (defaults: the last
        hour against the 7 days before).  Token spikes, cost increases, p95 latency and
        TTFT degradation, error-rate jumps, branch-rate changes and things never seen
        before, each past a threshold *and* a significance test corrected for the number
        of comparisons.  ``by``: ``"name"``, ``"model"``, ``"graph_node"`` or
        ``"metadata.<key>"``; ``config``: an `AnomalyConfig` (thresholds, minimum sample
        size, alpha).  See `lc_observe.analysis.anomalies`.

        >>> store.anomalies(since="1h", baseline="7d", by="model")   # doctest: +SKIP
        """
        from lc_observe.analysis.anomalies import find_anomalies

        found = find_anomalies(
            self, since=since, until=until, baseline=baseline, by=by, config=config
        )
        return RecordList(found)

    def alerts(
        self,
        *,
        rule: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> list[Alert]:
        """Alerts that fired (`ObsHandler(alerts=...)`), oldest first."""
        where, params = where_clauses({"rule": rule}, "time", since, until)
        sql = f"SELECT * FROM alerts WHERE {' AND '.join(where)} ORDER BY time, id"
        return RecordList(Alert.model_validate(_parse(r)) for r in self._query(sql, params))

    def budget_events(
        self,
        *,
        trace_id: str | None = None,
        per: str | None = None,
        scope: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> list[BudgetExceeded]:
        """Budgets used up (`lc_observe.Budget`), oldest first."""
        trace = None if trace_id is None else str(trace_id)
        equals = {"trace_id": trace, "per": per, "scope": scope}
        where, params = where_clauses(equals, "time", since, until)
        sql = (
            f"SELECT {', '.join(BUDGET_COLUMNS)} FROM budget_events "
            f"WHERE {' AND '.join(where)} ORDER BY time, id"
        )
        return RecordList(BudgetExceeded.model_validate(dict(r)) for r in self._query(sql, params))

    # -- scores (code in storage.scores; evaluators in lc_observe.evaluate) --------------------

    def add_score(
        self,
        trace_id: str | None = None,
        name: str | None = None,
        value: bool | float | str | None = None,
        *,
        span_id: str | None = None,
        comment: str | None = None,
        source: str = "human",
        author: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Score:
        """Attach a score to a trace, or to one span (``span_id=``; its trace is looked up).

        ``value`` is a number, a bool or a string (a category); ``source`` is ``"human"``,
        ``"judge"``, ``"heuristic"`` or ``"feedback"``.  Safe from any process, while
        handlers write (busy timeout and bounded retry).  Returns the stored `Score`.

        >>> store.add_score(trace_id, "helpful", True, source="feedback")  # doctest: +SKIP
        >>> store.add_score(trace_id, "accuracy", 0.8, comment="one date wrong")  # doctest: +SKIP
        >>> store.add_score(span_id=tool_span_id, name="tool_ok", value=False)     # doctest: +SKIP

        Raises:
            TraceNotFoundError: no trace (or span) with that id in this file.
            ValueError / TypeError: a bad name, source or value; the message says which.
        """
        from lc_observe.storage.scores import score_record

        if name is None:
            raise ValueError("add_score() needs a name, e.g. add_score(trace_id, 'helpful', True)")
        trace_id = self._score_target(trace_id, span_id)
        record = score_record(
            trace_id,
            name,
            value,
            span_id=span_id,
            comment=comment,
            source=source,
            author=author,
            metadata=metadata,
        )
        (score_id,) = self._insert_scores([record])
        return self._score_by_id(score_id)

    def _score_target(self, trace_id: str | None, span_id: str | None) -> str:
        """The trace a score goes to; raises for an unknown or mismatched id."""
        if span_id is not None:
            rows = self._query("SELECT trace_id FROM spans WHERE span_id = ?", (str(span_id),))
            if not rows:
                raise TraceNotFoundError(
                    f"no span with id {span_id!r} in {self.db_path}: pass the span_id of a "
                    "recorded span (store.spans(trace_id=...)), or score the trace instead"
                )
            if trace_id is not None and str(trace_id) != rows[0][0]:
                raise ValueError(
                    f"span {span_id} belongs to trace {rows[0][0]}, not {trace_id}: pass "
                    "span_id alone"
                )
            return rows[0][0]
        if trace_id is None:
            raise ValueError("add_score() needs a trace_id or a span_id")
        trace_id = str(trace_id)
        if not self._query(
            "SELECT 1 FROM traces WHERE trace_id = ? UNION ALL "
            "SELECT 1 FROM spans WHERE trace_id = ? LIMIT 1",
            (trace_id, trace_id),
        ):
            raise TraceNotFoundError(
                f"no trace with id {trace_id!r} in {self.db_path}: score a recorded trace "
                "(store.traces() lists them), or flush the handler first (handler.flush())"
            )
        return trace_id

    def _insert_scores(self, records: list[dict[str, Any]]) -> list[int]:
        """Insert score records in one transaction (retried while another writer holds the
        lock, as every writer here is: `lc_observe.storage.locking`); returns their row ids."""
        from lc_observe.pipeline.redact import make_redactor
        from lc_observe.storage.scores import SCORE_INSERT, score_row

        redact = make_redactor(True)  # comments may hold what span payloads may: redact alike
        rows = [score_row(record, redact) for record in records]
        if not rows:
            return []
        sql = SCORE_INSERT + "(" + ",".join("?" * len(rows[0])) + ")"

        def insert() -> list[int]:
            with self._conn:
                return [self._conn.execute(sql, row).lastrowid for row in rows]

        try:
            return retry_locked(insert, path=self.db_path, what="add_score()")
        except sqlite3.OperationalError as exc:  # not a lock: a broken or read-only file
            raise StoreError(f"could not write scores to {self.db_path}: {exc}") from None

    def _score_by_id(self, score_id: int) -> Score:
        rows = self._query(
            f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE id = ?", (score_id,)
        )
        return _score(rows[0])

    def scores(
        self,
        trace_id: str | None = None,
        *,
        span_id: str | None = None,
        name: str | None = None,
        source: str | None = None,
        author: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[Score]:
        """Scores in the order they were given, filtered by any of the keyword arguments
        (``since``/``until`` bound the time the score was given).

        >>> store.scores(trace_id)                          # doctest: +SKIP
        >>> store.scores(name="correctness", source="judge", since="2026-01-01")  # doctest: +SKIP
        """
        trace = None if trace_id is None else self.resolve_trace_id(trace_id)
        span = None if span_id is None else str(span_id)
        equals = {
            "trace_id": trace,
            "span_id": span,
            "name": name,
            "source": check_source(source),
            "author": author,
        }
        where, params = where_clauses(equals, "time", since, until)
        sql = (
            f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE {' AND '.join(where)} "
            "ORDER BY time, id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return RecordList(_score(row) for row in self._query(sql, params))

    def score_stats(
        self,
        *,
        name: str | None = None,
        source: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
    ) -> list[ScoreStat]:
        """Per score name and source: count, traces, mean (pass rate for booleans), min,
        max, category counts and malformed verdicts (``lc-observe scores`` prints it).

        >>> store.score_stats(source="judge")                 # doctest: +SKIP
        """
        where, params = where_clauses(
            {"name": name, "source": check_source(source)}, "time", since, until
        )
        rows = self._query(
            "SELECT name, coalesce(source, 'human') AS source, value_type, value, label, "
            f"trace_id FROM scores WHERE {' AND '.join(where)} ORDER BY name, source",
            params,
        )
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            entry = groups.setdefault(
                (row["name"], row["source"]),
                {"types": set(), "values": [], "labels": {}, "traces": set(), "n": 0, "bad": 0},
            )
            entry["n"] += 1
            entry["traces"].add(row["trace_id"])
            kind = row["value_type"] or "numeric"
            if kind == "error":
                entry["bad"] += 1
                continue
            entry["types"].add(kind)
            if kind == "categorical":
                entry["labels"][row["label"]] = entry["labels"].get(row["label"], 0) + 1
            elif row["value"] is not None:
                entry["values"].append(row["value"])
        out = []
        for (score_name, score_source), entry in groups.items():
            values = entry["values"]
            out.append(
                ScoreStat(
                    name=score_name,
                    source=score_source,
                    value_type="/".join(sorted(entry["types"])) or "error",
                    count=entry["n"],
                    traces=len(entry["traces"]),
                    mean=sum(values) / len(values) if values else None,
                    min=min(values) if values else None,
                    max=max(values) if values else None,
                    labels=dict(sorted(entry["labels"].items(), key=lambda i: (-i[1], i[0]))),
                    malformed=entry["bad"],
                )
            )
        return RecordList(out)

    def scores_df(self, trace_id: str | None = None, **filters: Any) -> Any:
        """Scores as a DataFrame (filters of `scores`); ``value`` as given (object column)
        and ``numeric`` (booleans as 1.0 / 0.0) for means and pass rates.

        >>> store.scores_df(source="judge").groupby("name")["numeric"].mean()  # doctest: +SKIP
        """
        from lc_observe.views.frames import frame, require_pandas

        items = self.scores(trace_id, **filters)
        df = frame(items, Score)
        pd = require_pandas()
        df["numeric"] = pd.Series(pd.array([s.numeric for s in items], dtype="Float64"))
        return df

    # -- retention -----------------------------------------------------------------------------

    def purge(self, older_than: TimeLike, *, vacuum: bool = False) -> int:
        """Delete traces that started before ``older_than`` (and their spans, branch events
        and scores); returns how many traces were deleted.

        ``older_than`` is a time or a `timedelta` ago, e.g. ``store.purge(timedelta(days=30))``.
        Spans of unfinished traces (no trace row) are purged by their own start time.
        Safe while handlers write: one short transaction, retried (bounded) while another
        writer holds the lock; `DatabaseLockedError` if it never lets go.
        """
        cutoff = to_db_time(older_than)
        deleted = retry_locked(lambda: self._purge(cutoff), path=self.db_path, what="purge")
        if vacuum:
            from lc_observe.storage.search import rebuild_index

            retry_locked(lambda: self._conn.execute("VACUUM"), path=self.db_path, what="VACUUM")
            # VACUUM may renumber the rowids the search index points to
            retry_locked(lambda: rebuild_index(self._conn), path=self.db_path, what="reindex")
        return deleted

    def _purge(self, cutoff: str | None) -> int:
        conn = self._conn
        with conn:  # one transaction; committed on success, rolled back on error
            old = "SELECT trace_id FROM traces WHERE start_time < ?"
            for table in ("spans", "branch_events", "scores", "budget_events"):
                conn.execute(f"DELETE FROM {table} WHERE trace_id IN ({old})", (cutoff,))
            deleted = conn.execute("DELETE FROM traces WHERE start_time < ?", (cutoff,)).rowcount
            conn.execute(
                "DELETE FROM spans WHERE start_time < ? AND trace_id NOT IN "
                "(SELECT trace_id FROM traces)",
                (cutoff,),
            )
        return deleted

    # -- full-text search (code in storage.search) ------------------------------------------

    def search(
        self,
        text: str,
        *,
        since: TimeLike | None = None,
        kind: str | None = None,
        limit: int = 50,
        order: str = "rank",
    ) -> list[SearchHit]:
        """Spans whose name, inputs, outputs, error or metadata hold every word of ``text``,
        best match first (SQLite FTS5, bm25 ranking), or with ``order="newest"`` the most
        recently written first (faster when a word is in most spans: only the hits
        returned are ranked).  Each `SearchHit` names its span and trace, the field that
        matched and a plain-text snippet around the match.

        ``"quoted phrases"`` match as phrases and ``word*`` as a prefix; nothing else in
        ``text`` is query syntax.  ``since`` bounds the span start time, ``kind`` the run
        type (``tool``, ``chat_model`` ...).

        >>> store.search("Paris", kind="tool", since="7d")            # doctest: +SKIP
        >>> store.view(store.search("refund policy")[0].trace_id)     # doctest: +SKIP
        """
        from lc_observe.storage.search import match_query, search_sql, snippet

        query = match_query(text)
        where, params = [], []
        if kind is not None:
            where.append("s.kind = ?")
            params.append(self._check_kind(kind))
        if since is not None:
            where.append("s.start_time >= ?")
            params.append(to_db_time(since))
        sql = search_sql(where, order)
        bound = [query, *params, int(limit)] if where else [query, int(limit)]
        rows = self._query(sql, bound)
        hits = []
        for row in rows:
            field, text_around = snippet(row, text)
            hits.append(
                SearchHit(
                    trace_id=row["trace_id"],
                    span_id=row["span_id"],
                    name=row["name"],
                    kind=row["kind"],
                    status=row["status"],
                    start_time=row["start_time"],
                    field=field,
                    snippet=text_around,
                    rank=row["rank"],
                )
            )
        return RecordList(hits)

    # -- display and export --------------------------------------------------------------------

    def format_trace(self, trace_id: str, *, width: int = 120) -> str:
        """The span tree of one trace as indented text (what `print_trace` prints), each
        span followed by a one-line preview of its input and output."""
        trace_id = self.resolve_trace_id(trace_id)
        spans = self.spans(trace_id=trace_id)
        if not spans:
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in {self.db_path}")
        return format_trace(spans, self.branches(trace_id=trace_id), width=width)

    def print_trace(self, trace_id: str, file: IO[str] | None = None) -> None:
        """Print the span tree of one trace, with branch decisions beside their nodes."""
        print(self.format_trace(trace_id), file=file or sys.stdout)

    def to_pandas(self, table: str = "spans", **filters: Any) -> Any:
        """A pandas DataFrame of ``"spans"``, ``"traces"`` or ``"branches"`` (needs pandas).

        Keyword arguments are the filters of the matching method (``spans()`` ...).
        """
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - exercised only without pandas
            raise ImportError(
                "to_pandas() needs pandas: pip install pandas (the [pandas] extra)"
            ) from None
        readers = {"spans": self.spans, "traces": self.traces, "branches": self.branches}
        if table not in readers:
            raise ValueError(f"table must be one of {sorted(readers)}, not {table!r}")
        records = [item.model_dump() for item in readers[table](**filters)]
        frame = pd.DataFrame.from_records(records)
        for column in ("start_time", "end_time", "time"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    # -- notebooks: views, DataFrames, charts (code in lc_observe.views) ------------------------

    def view(self, trace_id: str) -> TraceView:
        """One trace as a notebook view: header, collapsible span tree and waterfall.

        Works for a trace that is still running (its spans so far; ``view.trace`` is None).

        >>> store.view(trace_id)               # in a notebook cell  # doctest: +SKIP
        >>> store.view(trace_id).save("t.html")  # a standalone page  # doctest: +SKIP
        """
        trace_id = self.resolve_trace_id(trace_id)
        spans = self.spans(trace_id=trace_id)
        if not spans:
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in {self.db_path}")
        try:
            trace: Trace | None = self.trace(trace_id)
        except TraceNotFoundError:  # root still running: show what is there
            trace = None
        branches = trace.branches if trace and trace.branches else self.branches(trace_id)
        return TraceView(trace, list(spans), list(branches), list(self.scores(trace_id)))

    def graph(
        self,
        name: str | None = None,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        trace_id: str | None = None,
        limit: int = 1_000,
    ) -> GraphView:
        """The LangGraph graph ``name`` as observed over its ``limit`` newest traces.

        Nodes come from node runs, edges from consecutive steps and routing decisions,
        weighted by count and rate.  ``trace_id`` highlights that trace's path (and picks
        its graph when ``name`` is None); otherwise the newest graph is drawn.

        >>> store.graph()                              # SVG in a notebook  # doctest: +SKIP
        >>> print(store.graph(trace_id=tid).mermaid)   # Mermaid text  # doctest: +SKIP
        """
        from lc_observe.views.graph import observe

        observed, others = observe(
            self, name, since=since, until=until, trace_id=trace_id, limit=limit
        )
        return GraphView(observed, None if trace_id is None else str(trace_id), others)

    def graph_rows(
        self,
        name: str | None = None,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        trace_id: str | None = None,
        limit: int = 1_000,
    ) -> GraphRows:
        """The node-run and routing rows `graph` draws graph ``name`` from (its ``limit``
        newest traces): a `lc_observe.storage.graph.GraphRows`.

        Raises:
            TraceNotFoundError: ``trace_id`` is not in the file.
            ValueError: that trace ran no LangGraph graph.
        """
        from lc_observe.storage.graph import graph_rows

        return graph_rows(
            self._query, self.db_path, name, to_db_time(since), to_db_time(until), trace_id, limit
        )

    def spans_df(self, trace_id: str | None = None, **filters: Any) -> Any:
        """Spans as a DataFrame (filters of `spans`); typed columns, error as 3 columns.

        >>> df = store.spans_df(kind="chat_model")          # doctest: +SKIP
        >>> df.groupby("model")["cost_usd"].sum()           # doctest: +SKIP
        """
        from lc_observe.views.frames import SPAN_ERROR_COLUMNS, frame

        return frame(self.spans(trace_id, **filters), Span, flatten=SPAN_ERROR_COLUMNS)

    def traces_df(self, limit: int | None = None, **filters: Any) -> Any:
        """Traces as a DataFrame, newest first (filters of `traces`; all of them by default).

        >>> store.traces_df(since=timedelta(hours=1))["latency_ms"].quantile(0.95)  # doctest: +SKIP
        """
        from lc_observe.views.frames import frame

        if limit is None:
            items: list[Trace] = list(self.iter_traces(page_size=1_000, **filters))
        else:
            items = self.traces(limit=limit, **filters)
        return frame(items, Trace, drop=("branches",))

    def branches_df(self, trace_id: str | None = None, **filters: Any) -> Any:
        """Branch events as a DataFrame (filters of `branches`).

        >>> df = store.branches_df(source="router")                 # doctest: +SKIP
        >>> df["destinations"].explode().value_counts()             # doctest: +SKIP
        """
        from lc_observe.views.frames import frame

        return frame(self.branches(trace_id, **filters), BranchEvent)

    def branch_stats_df(self, source: str | None = None, **filters: Any) -> Any:
        """`branch_stats` as a DataFrame (source, destination, count, decisions, rate)."""
        from lc_observe.views.frames import frame

        return frame(self.branch_stats(source, **filters), BranchStat)

    def stats_df(self, by: str = "model", **kwargs: Any) -> Any:
        """`stats` as a DataFrame, one row per group (nullable Int64 / Float64 columns).

        >>> store.stats_df(by="graph_node")[["group", "latency_p95_ms"]]  # doctest: +SKIP
        """
        from lc_observe.views.frames import frame

        return frame(self.stats(by, **kwargs), StatRow)

    def plot_latency(self, by: str = "name", **kwargs: Any) -> Any:
        """Latency box plot per ``by`` group (a matplotlib Figure); see `views.charts`.

        >>> store.plot_latency(by="graph_node")        # doctest: +SKIP
        """
        from lc_observe.views import charts

        return charts.plot_latency(self, by, **kwargs)

    def plot_cost(self, by: str | None = "model", freq: str = "1h", **kwargs: Any) -> Any:
        """Model-call cost per ``freq`` bucket, stacked by ``by`` (a matplotlib Figure).

        >>> store.plot_cost(by="user_id", freq="1D")   # doctest: +SKIP
        """
        from lc_observe.views import charts

        return charts.plot_cost(self, by, freq=freq, **kwargs)

    def plot_tokens(self, by: str | None = None, freq: str = "1h", **kwargs: Any) -> Any:
        """Model-call tokens per ``freq`` bucket: input/output, or stacked by ``by``.

        >>> store.plot_tokens(by="model")              # doctest: +SKIP
        """
        from lc_observe.views import charts

        return charts.plot_tokens(self, by, freq=freq, **kwargs)

    def plot_branch_rates(self, source: str | None = None, **kwargs: Any) -> Any:
        """Share of routing decisions per destination (a matplotlib Figure).

        >>> store.plot_branch_rates(source="router")   # doctest: +SKIP
        """
        from lc_observe.views import charts

        return charts.plot_branch_rates(self, source, **kwargs)

    def __iter__(self) -> Iterator[Trace]:
        """Iterate over all traces, newest first, a page at a time (see `iter_traces`)."""
        return self.iter_traces()
