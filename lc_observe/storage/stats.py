"""Latency, TTFT, token, cost and cache statistics per group (`TraceStore.stats`).

SQL selects the finished spans (or traces) of a time window through the start-time
indexes, so the work grows with the window, not with the database; percentiles are
computed here, exactly, on the selected values.

What a group counts, by ``by``:

==================== ===================================================================
``by``               unit counted
==================== ===================================================================
``"model"``          chat model and LLM calls, per model name
``"name"``           spans, per run name (chain spans carry their subtree's tokens/cost)
``"kind"``           spans, per run type (a chain's tokens are its subtree's)
``"graph_node"``     LangGraph node runs, per node (``outer/inner`` inside subgraphs)
``"user_id"``        traces, per user id (tokens/cost: each trace's totals)
``"session_id"``     traces, per session id
``"tag"``            traces, per tag (a trace with two tags counts in both groups)
``"metadata.KEY"``   traces, per value of the root run's metadata key (``metadata.a.b``
                     for nested keys), e.g. ``metadata.prompt_version``
==================== ===================================================================

An LLM judge's own runs (tagged ``lc_observe:judge``) are left out unless
``include_judge=True``.  ``StatRow.scores`` holds the mean of each numeric or boolean score
(booleans as 1 / 0, i.e. a pass rate) over the group: for trace groupings the scores of
the group's traces; for span groupings the scores of the group's spans plus the
trace-level scores of the traces they ran in (each trace once per group).

Spans nest, and a chain span carries the rolled-up tokens and cost of its subtree: in a
span grouping a span's tokens and cost count only when no ancestor of it is in the same
group (a chain inside a chain adds nothing to ``kind="chain"``, so every token and cent
counts once per group).  Count, errors and latency count every span.

Model figures (TTFT, tokens/s, cache hits, unpriced calls) always come from the model
calls inside the group: the model spans themselves, or those of the group's traces.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lc_observe.graph_rules import NODE_RUN_SQL, qualified
from lc_observe.model import StatRow

SPAN_GROUPS = ("model", "name", "kind", "graph_node")
TRACE_GROUPS = ("user_id", "session_id", "tag")
GROUPS = SPAN_GROUPS + TRACE_GROUPS
#: Prefix of a grouping by a metadata key: ``"metadata.prompt_version"``.
METADATA_PREFIX = "metadata."
_METADATA_KEY = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
#: SQL that is true for spans/traces not made by an LLM judge (`lc_observe.evaluate`).
NOT_JUDGE_SQL = "instr({table}.tags, '\"lc_observe:judge\"') = 0"


def check_group(by: str) -> None:
    """Raise a ValueError naming the valid groupings when ``by`` is not one."""
    if by in GROUPS:
        return
    if by.startswith(METADATA_PREFIX) and _METADATA_KEY.fullmatch(by[len(METADATA_PREFIX) :]):
        return
    raise ValueError(
        f"by= must be one of {', '.join(GROUPS)} or metadata.KEY (letters, digits, _ and -, "
        f"dots for nested keys), e.g. metadata.prompt_version; got {by!r}"
    )


def metadata_path(by: str) -> str:
    """The JSON path of a ``metadata.KEY`` grouping (the key is checked by `check_group`)."""
    return "$." + ".".join(f'"{part}"' for part in by[len(METADATA_PREFIX) :].split("."))


MODEL_KINDS = ("chat_model", "llm")
#: Span groupings whose members can nest (a chain in a chain): usage counted once.
NESTING_GROUPS = ("name", "kind")
_MODEL_KINDS_SQL = "kind IN ('chat_model', 'llm')"

_TOKENS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "total_tokens")
_MODEL_COLUMNS = "kind, latency_ms, ttft_ms, output_tokens, total_tokens, cost_usd, cache_hit"


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ascending values, linearly interpolated between the
    closest ranks: the same as ``statistics.quantiles(values, n=100, method="inclusive")``
    at ``q = i / 100`` and numpy's default.  None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    position = q * (n - 1)
    low = math.floor(position)
    if low + 1 >= n:
        return float(sorted_values[-1])
    fraction = position - low
    return float(sorted_values[low] + (sorted_values[low + 1] - sorted_values[low]) * fraction)


class _Group:
    """Running totals of one group."""

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.tokens = dict.fromkeys(_TOKENS, 0)
        self.cost = 0.0
        self.priced = 0
        self.model_calls = 0
        self.ttfts: list[float] = []
        self.rates: list[float] = []
        self.unpriced = 0
        self.cache_hits = 0
        self.cache_known = 0
        self.score_sums: dict[str, float] = {}
        self.score_counts: dict[str, int] = {}

    def add_score(self, name: str, value: float) -> None:
        self.score_sums[name] = self.score_sums.get(name, 0.0) + value
        self.score_counts[name] = self.score_counts.get(name, 0) + 1

    def add_unit(self, row: Any, usage: bool = True) -> None:
        """A span or trace of the group: count, status, latency, and (with ``usage``)
        tokens and cost."""
        self.count += 1
        self.errors += row["status"] == "error"
        if row["latency_ms"] is not None:
            self.latencies.append(row["latency_ms"])
        if not usage:
            return
        for field in _TOKENS:
            self.tokens[field] += row[field] or 0
        if row["cost_usd"] is not None:
            self.cost += row["cost_usd"]
            self.priced += 1

    def add_model_call(self, row: Any) -> None:
        """A model span inside the group: TTFT, output rate, cache, price coverage."""
        self.model_calls += 1
        ttft, latency, output = row["ttft_ms"], row["latency_ms"], row["output_tokens"]
        if ttft is not None:
            self.ttfts.append(ttft)
            if output and latency is not None and latency > ttft:
                self.rates.append(output * 1000.0 / (latency - ttft))
        if row["total_tokens"] and row["cost_usd"] is None:
            self.unpriced += 1
        if row["cache_hit"] is not None and row["kind"] == "chat_model":
            self.cache_known += 1
            self.cache_hits += bool(row["cache_hit"])

    def row(self, by: str, group: str | None) -> StatRow:
        latencies = sorted(self.latencies)
        ttfts = sorted(self.ttfts)
        return StatRow(
            by=by,
            group=group,
            count=self.count,
            errors=self.errors,
            error_rate=self.errors / self.count if self.count else 0.0,
            latency_mean_ms=_mean(latencies),
            latency_p50_ms=percentile(latencies, 0.50),
            latency_p95_ms=percentile(latencies, 0.95),
            latency_p99_ms=percentile(latencies, 0.99),
            model_calls=self.model_calls,
            ttft_mean_ms=_mean(ttfts),
            ttft_p95_ms=percentile(ttfts, 0.95),
            tokens_per_s=_mean(self.rates),
            **self.tokens,
            cost_usd=self.cost if self.priced else None,
            cost_mean_usd=self.cost / self.priced if self.priced else None,
            unpriced=self.unpriced,
            cache_hits=self.cache_hits,
            cache_hit_rate=self.cache_hits / self.cache_known if self.cache_known else None,
            scores={k: self.score_sums[k] / n for k, n in sorted(self.score_counts.items())},
            score_counts=dict(sorted(self.score_counts.items())),
        )


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def span_groups_sql(
    by: str, where: list[str], include_judge: bool = False, with_ids: bool = False
) -> str:
    """The query for a span grouping (``where`` holds the time-window clauses); ``with_ids``
    adds ``trace_id`` and ``span_id`` (needed only to attach scores)."""
    clauses = [*where, "status != 'running'"]
    if not include_judge:
        clauses.append(NOT_JUDGE_SQL.format(table="spans"))
    if by == "model":
        clauses.append(_MODEL_KINDS_SQL)
    elif by == "graph_node":
        clauses.append(NODE_RUN_SQL)
    key = {"graph_node": "graph_node, checkpoint_ns"}.get(by, f"{by} AS grp")
    ids = "trace_id, span_id, parent_id, " if with_ids or by in NESTING_GROUPS else ""
    return (
        f"SELECT {key}, {ids}status, "
        f"{', '.join(_TOKENS)}, {_MODEL_COLUMNS} "
        f"FROM spans WHERE {' AND '.join(clauses)}"
    )


def scores_sql(units_sql: str) -> str:
    """Numeric and boolean scores of the traces the units of ``units_sql`` belong to."""
    return (
        "SELECT trace_id, span_id, name, value FROM scores WHERE value IS NOT NULL AND "
        f"trace_id IN (SELECT trace_id FROM ({units_sql}))"
    )


def trace_groups_sql(by: str, where: list[str], include_judge: bool = False) -> tuple[str, str]:
    """The queries for a trace grouping: the traces, then their model spans."""
    clauses = [*where, "status != 'running'"]
    if not include_judge:
        clauses.append(NOT_JUDGE_SQL.format(table="traces"))
    source = "traces"
    key = f"{by} AS grp"
    if by == "tag":
        source, key = "traces, json_each(traces.tags) AS tag", "tag.value AS grp"
    elif by.startswith(METADATA_PREFIX):
        key = f"json_extract(traces.metadata, '{metadata_path(by)}') AS grp"
    traces_sql = (
        f"SELECT {key}, trace_id, status, latency_ms, {', '.join(_TOKENS)}, cost_usd "
        f"FROM {source} WHERE {' AND '.join(clauses)}"
    )
    models_sql = (
        f"SELECT trace_id, {_MODEL_COLUMNS} FROM spans WHERE {_MODEL_KINDS_SQL} "
        "AND status != 'running' AND trace_id IN "
        f"(SELECT trace_id FROM traces WHERE {' AND '.join(clauses)})"
    )
    return traces_sql, models_sql


def span_stats(by: str, rows: Iterable[Any], scores: Sequence[Any] = ()) -> list[StatRow]:
    """Statistics of span rows from `span_groups_sql` (and their `scores_sql` scores)."""
    groups: dict[str | None, _Group] = {}
    by_span: dict[str, _Group] = {}
    by_trace: dict[str, set[int]] = {}
    rows = list(rows)
    covered = _covered(rows) if by in NESTING_GROUPS else set()
    for row in rows:
        if by == "graph_node":
            key = qualified(row["graph_node"], row["checkpoint_ns"])
        else:
            key = row["grp"]
        group = groups.get(key) or groups.setdefault(key, _Group())
        group.add_unit(row, usage=row["span_id"] not in covered if covered else True)
        if row["kind"] in MODEL_KINDS:
            group.add_model_call(row)
        if scores:
            by_span[row["span_id"]] = group
            by_trace.setdefault(row["trace_id"], set()).add(id(group))
    if scores:
        by_id = {id(group): group for group in groups.values()}
        for trace_id, span_id, name, value in scores:
            if span_id is not None:
                if span_id in by_span:
                    by_span[span_id].add_score(name, value)
            else:
                for group_id in by_trace.get(trace_id, ()):
                    by_id[group_id].add_score(name, value)
    return _rows(by, groups)


def _covered(rows: Sequence[Any]) -> set[str]:
    """Span ids that have an ancestor in the same group among ``rows`` (their tokens and
    cost are already in that ancestor's rolled-up totals)."""
    parent = {row["span_id"]: row["parent_id"] for row in rows}
    key = {row["span_id"]: row["grp"] for row in rows}
    covered = set()
    for span_id, own in key.items():
        seen = {span_id}
        up = parent.get(span_id)
        while up is not None and up in key and up not in seen:
            if key[up] == own:
                covered.add(span_id)
                break
            seen.add(up)
            up = parent.get(up)
    return covered


def trace_stats(
    by: str, traces: Iterable[Any], model_spans: Iterable[Any], scores: Sequence[Any] = ()
) -> list[StatRow]:
    """Statistics of trace rows and their model spans from `trace_groups_sql`."""
    groups: dict[str | None, _Group] = {}
    members: dict[str, list[_Group]] = {}
    for row in traces:
        key = row["grp"] if row["grp"] is None else str(row["grp"])
        group = groups.get(key) or groups.setdefault(key, _Group())
        group.add_unit(row)
        members.setdefault(row["trace_id"], []).append(group)
    for row in model_spans:
        for group in members.get(row["trace_id"], ()):
            group.add_model_call(row)
    for trace_id, _span_id, name, value in scores:
        for group in members.get(trace_id, ()):
            group.add_score(name, value)
    return _rows(by, groups)


def _rows(by: str, groups: dict[str | None, _Group]) -> list[StatRow]:
    ordered = sorted(groups.items(), key=lambda item: (-item[1].count, str(item[0])))
    return [group.row(by, key) for key, group in ordered]
