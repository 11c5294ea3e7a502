"""Prometheus metrics of runs, errors, tokens, cost, latency, TTFT and branch decisions.

Two ways to expose them (extra ``[prometheus]``: ``pip install prometheus-client``):

- in process: ``ObsHandler(prometheus=True)`` (the default registry, which
  ``prometheus_client.start_http_server`` serves) or ``ObsHandler(prometheus=registry)``.
  `PrometheusSink` runs on the writer thread like every sink: the callback path does
  nothing more than before.
- from the file, for multi-process apps: ``lc-observe metrics --db app.db --port 9464``
  serves ``/metrics`` computed from the SQLite file, opened read-only (WAL readers never
  lock writers).  Each scrape reads only the rows added since the previous one.

Metric names (all prefixed ``lc_observe_``; every label takes a bounded set of values:
kinds, statuses, model/node/graph names, error types, token types -- never ids; each
label keeps at most ``max_label_values`` distinct values, later ones count as
``"__other__"``):

====================================== ======================================================
metric                                 labels
====================================== ======================================================
``runs_total``                         kind, status
``errors_total``                       kind, error_type
``traces_total``                       graph, status
``trace_latency_seconds`` (histogram)  graph
``run_latency_seconds`` (histogram)    kind
``node_runs_total``                    node, status
``node_latency_seconds`` (histogram)   node
``model_calls_total``                  model, provider, status
``model_latency_seconds`` (histogram)  model
``ttft_seconds`` (histogram)           model
``tokens_total``                       model, type (input, output, cached, reasoning, ...)
``cost_usd_total``                     model
``branch_decisions_total``             source, destination
====================================== ======================================================
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from lc_observe.graph_rules import is_node_run, qualified
from lc_observe.pipeline.processor import Item
from lc_observe.storage.opening import open_database

from ..records import RECORD_BRANCH, RECORD_SPAN

PREFIX = "lc_observe_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOKEN_TYPES = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cached_tokens": "cached",
    "cache_creation_tokens": "cache_creation",
    "reasoning_tokens": "reasoning",
}
OTHER = "__other__"
_MAX_CACHED = 50_000  # labelled children remembered by their raw label values
_MAX_PENDING = 100_000  # running snapshots a file collector keeps looking up at most
MODEL_KINDS = ("chat_model", "llm")

#: Every metric the exporter emits: name (without prefix) -> (type, labels, help).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "runs": ("counter", ("kind", "status"), "Finished runs (spans)"),
    "errors": ("counter", ("kind", "error_type"), "Runs that failed, by error type"),
    "traces": ("counter", ("graph", "status"), "Finished traces (root runs)"),
    "trace_latency_seconds": ("histogram", ("graph",), "Trace latency"),
    "run_latency_seconds": ("histogram", ("kind",), "Run latency"),
    "node_runs": ("counter", ("node", "status"), "LangGraph node runs"),
    "node_latency_seconds": ("histogram", ("node",), "LangGraph node run latency"),
    "model_calls": ("counter", ("model", "provider", "status"), "Chat model / LLM calls"),
    "model_latency_seconds": ("histogram", ("model",), "Model call latency"),
    "ttft_seconds": ("histogram", ("model",), "Time to first token of streamed model calls"),
    "tokens": ("counter", ("model", "type"), "Tokens of model calls by type"),
    "cost_usd": ("counter", ("model",), "Cost of model calls in USD (priced calls only)"),
    "branch_decisions": ("counter", ("source", "destination"), "LangGraph routing decisions"),
}


def _require() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(
            "Prometheus metrics need prometheus-client: pip install prometheus-client "
            "(the [prometheus] extra)"
        ) from None
    return prometheus_client


class _Bounded:
    """At most ``limit`` distinct values per label; the rest become ``"__other__"``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: dict[str, set[str]] = {}

    def __call__(self, label: str, value: Any) -> str:
        text = "" if value is None else str(value)
        seen = self.seen.setdefault(label, set())
        if text in seen:
            return text
        if len(seen) >= self.limit:
            return OTHER
        seen.add(text)
        return text


class Metrics:
    """The metric objects in one registry, and how a span, trace or decision updates them."""

    def __init__(self, registry: Any, max_label_values: int = 200) -> None:
        prom = _require()
        self.label = _Bounded(max_label_values)
        self.lock = threading.Lock()
        self.m: dict[str, Any] = {}
        self._children: dict[tuple, Any] = {}
        for name, (kind, labels, doc) in METRICS.items():
            if kind == "counter":
                self.m[name] = prom.Counter(PREFIX + name, doc, labels, registry=registry)
            else:
                self.m[name] = prom.Histogram(
                    PREFIX + name, doc, labels, registry=registry, buckets=LATENCY_BUCKETS
                )

    def _child(self, name: str, values: tuple) -> Any:
        """The labelled child of metric ``name`` (cached: ``labels()`` is the slow part)."""
        key = (name, *values)
        child = self._children.get(key)
        if child is None:
            labels = METRICS[name][1]
            bounded = [self.label(label, v) for label, v in zip(labels, values, strict=True)]
            child = self.m[name].labels(*bounded)
            if len(self._children) < _MAX_CACHED:  # raw values beyond the bound: not cached
                self._children[key] = child
        return child

    def _inc(self, name: str, amount: float = 1.0, *values: Any) -> None:
        self._child(name, values).inc(amount)

    def _observe(self, name: str, value: float, *values: Any) -> None:
        self._child(name, values).observe(value)

    def span(self, s: Mapping[str, Any], error_type: str | None, node_run: bool) -> None:
        """One finished span (a record dict or a database row)."""
        kind, status = s["kind"], s["status"]
        self._inc("runs", 1.0, kind, status)
        if status == "error":
            self._inc("errors", 1.0, kind, error_type or "unknown")
        latency = s["latency_ms"]
        if latency is not None:
            self._observe("run_latency_seconds", latency / 1000.0, kind)
        if node_run:
            node = qualified(s["graph_node"], s["checkpoint_ns"])
            self._inc("node_runs", 1.0, node, status)
            if latency is not None:
                self._observe("node_latency_seconds", latency / 1000.0, node)
        if kind not in MODEL_KINDS:
            return
        model = s["model"] or "unknown"
        self._inc("model_calls", 1.0, model, s["provider"] or "unknown", status)
        if latency is not None:
            self._observe("model_latency_seconds", latency / 1000.0, model)
        if s["ttft_ms"] is not None:
            self._observe("ttft_seconds", s["ttft_ms"] / 1000.0, model)
        for field, token_type in TOKEN_TYPES.items():
            if s[field]:
                self._inc("tokens", s[field], model, token_type)
        if s["cost_usd"]:
            self._inc("cost_usd", s["cost_usd"], model)

    def trace(self, graph: str | None, status: str, latency_ms: float | None) -> None:
        """One finished trace; ``graph`` is its graph (or root run) name."""
        self._inc("traces", 1.0, graph, status)
        if latency_ms is not None:
            self._observe("trace_latency_seconds", latency_ms / 1000.0, graph)

    def branch(self, source: str | None, destinations: Sequence[str] | None) -> None:
        """One routing decision (counted once per destination; none known: ``"?"``)."""
        for destination in destinations or ("?",):
            self._inc("branch_decisions", 1.0, source or "?", destination)


_shared: dict[int, Metrics] = {}
_shared_lock = threading.Lock()


def metrics_for(registry: Any, max_label_values: int = 200) -> Metrics:
    """The `Metrics` of ``registry`` (created once; handlers sharing a registry share them)."""
    with _shared_lock:
        metrics = _shared.get(id(registry))
        if metrics is None:
            metrics = _shared[id(registry)] = Metrics(registry, max_label_values)
        return metrics


class PrometheusSink:
    """A `Sink` that counts every finished span, trace and routing decision it is handed.

    Args:
        registry: a ``prometheus_client.CollectorRegistry``; None for the default one.
        max_label_values: distinct values each label keeps at most (the rest: ``__other__``).
    """

    def __init__(self, registry: Any = None, max_label_values: int = 200) -> None:
        prom = _require()
        self.registry = prom.REGISTRY if registry is None else registry
        self.metrics = metrics_for(self.registry, max_label_values)

    def export(self, batch: Sequence[Item]) -> int:
        metrics = self.metrics
        with metrics.lock:
            for kind, record in batch:
                if kind == RECORD_SPAN:
                    error = record["error"]
                    error_type = error.get("type") if isinstance(error, dict) else None
                    node_run = is_node_run(record["tags"], record["graph_node"])
                    metrics.span(record, error_type, node_run)
                    if record["parent_id"] is None:
                        graph = record.get("graph_name") or record["name"]
                        metrics.trace(graph, record["status"], record["latency_ms"])
                elif kind == RECORD_BRANCH:
                    metrics.branch(record["source"], record["destinations"])
        return len(batch)

    def shutdown(self) -> None:
        """Nothing to release: the metrics stay in the registry."""

    close = shutdown  # the older name of the exporter contract's shutdown


class FileCollector:
    """A Prometheus collector over an lc_observe SQLite file, opened read-only.

    Every ``collect`` (one per scrape) reads the rows added since the previous scrape
    (by rowid: a finished span replacing its ``running`` snapshot gets a new rowid) and
    adds them to the counters, so counts match the file and a scrape costs what was
    added, not the database size.
    """

    def __init__(self, db_path: str | os.PathLike[str], max_label_values: int = 200) -> None:
        prom = _require()
        self.db_path = os.fspath(db_path)
        if not os.path.isfile(self.db_path):
            raise FileNotFoundError(
                f"no lc_observe database at {self.db_path!r}: pass the file ObsHandler writes"
            )
        self.registry = prom.CollectorRegistry(auto_describe=False)
        self.metrics = Metrics(self.registry, max_label_values)
        self._cursor = {"spans": 0, "traces": 0, "branch_events": 0}
        self._pending: dict[str, set[str]] = {"spans": set(), "traces": set()}
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:  # read-only; immutable on a read-only mount (it says so)
            self._conn, _ = open_database(self.db_path, read_only=True, busy_timeout_ms=5000)
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def update(self) -> None:
        """Read what was added since the last call."""
        with self._lock:
            conn = self._connect()
            with conn:  # one read transaction: a consistent snapshot
                self._read(conn)

    def _scan(self, conn: sqlite3.Connection, table: str, key: str, columns: str) -> list:
        """Finished rows of ``table`` not counted yet.

        New rows come by rowid.  A ``running`` snapshot is remembered by ``key`` and
        looked up again until it is finished: its replacement usually gets a new rowid,
        but the same one when it was the last row, so the rowid alone would miss it.
        """
        pending = self._pending[table]
        finished = []
        rows = conn.execute(
            f"SELECT rowid, {key}, status, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid",
            (self._cursor[table],),
        ).fetchall()
        for row in rows:
            self._cursor[table] = row["rowid"]
            if row[key] in pending:
                continue  # looked up below
            if row["status"] == "running":
                if len(pending) < _MAX_PENDING:
                    pending.add(row[key])
                continue
            finished.append(row)
        waiting = list(pending)
        for start in range(0, len(waiting), 500):
            chunk = waiting[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT rowid, {key}, status, {columns} FROM {table} "
                f"WHERE {key} IN ({marks}) AND status != 'running'",
                chunk,
            ):
                pending.discard(row[key])
                finished.append(row)
        return finished

    def _read(self, conn: sqlite3.Connection) -> None:
        metrics = self.metrics
        span_columns = (
            "kind, latency_ms, error_type, tags, graph_node, checkpoint_ns, model, provider, "
            f"ttft_ms, cost_usd, {', '.join(TOKEN_TYPES)}"
        )
        for row in self._scan(conn, "spans", "span_id", span_columns):
            tags = json.loads(row["tags"]) if row["tags"] else []
            metrics.span(row, row["error_type"], is_node_run(tags, row["graph_node"]))
        for row in self._scan(conn, "traces", "trace_id", "name, graph_name, latency_ms"):
            metrics.trace(row["graph_name"] or row["name"], row["status"], row["latency_ms"])
        for row in conn.execute(
            "SELECT id, source, destinations FROM branch_events WHERE id > ? ORDER BY id",
            (self._cursor["branch_events"],),
        ):
            targets = json.loads(row["destinations"]) if row["destinations"] else []
            metrics.branch(row["source"], targets)
            self._cursor["branch_events"] = row["id"]

    def collect(self) -> Any:
        """Update, then yield the metric families (the Collector protocol)."""
        self.update()
        yield from self.registry.collect()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def serve_file(db_path: str, port: int = 9464, addr: str = "127.0.0.1") -> tuple[Any, Any]:
    """Serve ``/metrics`` of ``db_path`` on ``addr:port``; returns (server, thread)."""
    prom = _require()
    collector = FileCollector(db_path)
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return prom.start_http_server(port, addr=addr, registry=registry)
