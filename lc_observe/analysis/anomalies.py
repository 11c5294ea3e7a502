"""What changed and what got worse: a recent window compared with the baseline before it.

`find_anomalies` (``TraceStore.anomalies``) compares the recent window ``[since, until)``
with the baseline window ``[since - baseline, since)`` and reports, per group:

======================== ================================================================
kind                     flagged when (defaults of `AnomalyConfig`)
======================== ================================================================
``token_spike``          recent median total tokens >= 1.5x baseline (Mann-Whitney U)
``cost_increase``        recent mean cost per unit >= 2x baseline (Welch's z-test)
``latency_degradation``  recent p95 latency >= 1.5x baseline and >= 10 ms more (bootstrap
                         of the p95 ratio)
``ttft_degradation``     recent p95 time to first token >= 1.5x and >= 10 ms more (bootstrap)
``error_rate_jump``      error rate up by >= 5 points and >= 2x (two-proportion z-test)
``branch_rate_change``   share of a source node's decisions going to a destination moved
                         by >= 0.2 either way (two-proportion z-test)
``new_path``             a node path of a graph never seen in the baseline
``new_model``            a model never called in the baseline
``new_error``            an error type the group never raised in the baseline
======================== ================================================================

The significance guard: a group is compared only when both windows hold at least
``min_samples`` units; a change must pass its effect-size threshold *and* its test; the
p-values of every comparison made in one call (all groups, all metrics) are corrected
together (Holm by default, Benjamini-Hochberg on request), and only an adjusted p-value
below ``alpha`` is reported.  Something never seen before is tested too: given ``k``
occurrences over both windows, the chance that all ``k`` fall in the recent one when
nothing changed.  A stable window therefore reports nothing (see the false-positive
measurement in ``tests/test_anomalies.py``).

What a unit is depends on ``by``: spans per run name (``"name"``), model calls per model
(``"model"``), node runs per node (``"graph_node"``), or traces per value of a metadata
key (``"metadata.<key>"``).  Branch rates and node paths do not depend on ``by``: they are
always per source node and per graph.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lc_observe.graph_rules import NODE_RUN_SQL, node_path, qualified
from lc_observe.storage import stats
from lc_observe.times import duration, is_age

from ..model import Anomaly
from . import significance as sig

if TYPE_CHECKING:  # pragma: no cover
    from lc_observe.storage.store import TimeLike, TraceStore

SPAN_BYS = ("name", "model", "graph_node")
KINDS = (
    "token_spike",
    "cost_increase",
    "latency_degradation",
    "ttft_degradation",
    "error_rate_jump",
    "branch_rate_change",
    "new_path",
    "new_model",
    "new_error",
)
#: Kinds whose groups do not depend on ``by``.
_FIXED_BY = {"branch_rate_change": "source", "new_path": "graph", "new_model": "model"}
_UNIT_WORDS = {"name": "runs", "model": "calls", "graph_node": "node runs"}


class AnomalyConfig(BaseModel):
    """Thresholds and the significance guard of `TraceStore.anomalies` (all configurable).

    >>> AnomalyConfig(token_ratio=2.0, min_samples=50).token_ratio
    2.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_samples: int = Field(30, ge=2, description="units needed in each window per group")
    alpha: float = Field(0.01, gt=0, lt=1, description="reported when p_adjusted < alpha")
    correction: Literal["holm", "bh", "none"] = "holm"
    token_ratio: float = Field(1.5, gt=0, description="recent / baseline median total tokens")
    cost_ratio: float = Field(2.0, gt=0, description="recent / baseline mean cost per unit")
    latency_ratio: float = Field(1.5, gt=0, description="recent / baseline latency quantile")
    ttft_ratio: float = Field(1.5, gt=0, description="recent / baseline TTFT quantile")
    latency_quantile: float = Field(0.95, gt=0, lt=1, description="0.95: p95")
    latency_min_delta_ms: float = Field(
        10.0, ge=0, description="the quantile must also rise by this many ms (load jitter)"
    )
    ttft_min_delta_ms: float = Field(10.0, ge=0, description="likewise for TTFT")
    error_rate_delta: float = Field(0.05, ge=0, le=1, description="rise in error rate, absolute")
    error_rate_ratio: float = Field(2.0, ge=1, description="recent / baseline error rate")
    branch_delta: float = Field(0.2, gt=0, le=1, description="absolute move of a branch share")
    new_min_count: int = Field(2, ge=1, description="occurrences of a never-seen thing needed")
    bootstrap_resamples: int = Field(200, ge=20)
    seed: int = 0
    examples: int = Field(3, ge=0, description="example trace ids per anomaly")
    kinds: tuple[str, ...] = Field(KINDS, description="the kinds to look for")


@dataclass
class _Sample:
    """One group in one window."""

    n: int = 0
    errors: int = 0
    tokens: list[tuple[float, str]] = field(default_factory=list)
    costs: list[tuple[float, str]] = field(default_factory=list)
    latencies: list[tuple[float, str]] = field(default_factory=list)
    ttfts: list[tuple[float, str]] = field(default_factory=list)
    error_traces: list[str] = field(default_factory=list)
    error_types: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class _Candidate:
    """A change past its effect-size threshold, waiting for the correction."""

    kind: str
    group: str | None
    metric: str
    baseline_value: float | None
    recent_value: float | None
    ratio: float | None
    baseline_n: int
    recent_n: int
    p_value: float
    trace_ids: list[str]
    explanation: str


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def resolve_windows(
    since: TimeLike | None, until: TimeLike | None, baseline: TimeLike | None
) -> tuple[str, str, str]:
    """``(baseline_start, since, until)`` as database times.

    Defaults: ``until`` now, ``since`` one hour before ``until``, ``baseline`` 7 days.
    ``baseline`` is a duration (a timedelta, seconds, or an age such as ``"7d"``) or the
    time the baseline window starts.
    """
    from lc_observe.times import to_db_time

    end = _utc(to_db_time(until)) if until is not None else datetime.now(timezone.utc)
    start = _utc(to_db_time(since)) if since is not None else end - timedelta(hours=1)
    if start >= end:
        raise ValueError(
            f"the recent window is empty: since ({start.isoformat()}) must be before until "
            f"({end.isoformat()}); pass an earlier since or a later until"
        )
    if baseline is None:
        base = start - timedelta(days=7)
    elif isinstance(baseline, timedelta):
        base = start - baseline
    elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        base = start - timedelta(seconds=float(baseline))
    elif isinstance(baseline, str) and is_age(baseline):
        base = start - duration(baseline)
    else:
        base = _utc(to_db_time(baseline))
    if base >= start:
        raise ValueError(
            "the baseline window is empty: it must start before since; pass a duration "
            "such as baseline='7d' or an earlier start time"
        )
    iso = "microseconds"
    return base.isoformat(timespec=iso), start.isoformat(timespec=iso), end.isoformat(timespec=iso)


# -- reading the windows ---------------------------------------------------------------------

_SPAN_FIELDS = (
    "trace_id, name, kind, model, graph_node, checkpoint_ns, status, error_type, "
    "latency_ms, ttft_ms, total_tokens, cost_usd"
)


def _metadata_key(by: str) -> str | None:
    """``by`` itself for a ``metadata.KEY`` grouping (checked as `TraceStore.stats` checks
    it: one rule for both), None for a span column; a ValueError for anything else."""
    if by.startswith(stats.METADATA_PREFIX):
        stats.check_group(by)
        return by
    if by not in SPAN_BYS:
        raise ValueError(
            f"anomalies(by=...) must be one of {', '.join(SPAN_BYS)} or 'metadata.<key>'; "
            f"got {by!r}"
        )
    return None


def _add(sample: _Sample, row: Any, ttft_rows: Iterable[Any] = ()) -> None:
    trace_id = row["trace_id"]
    sample.n += 1
    if row["status"] == "error":
        sample.errors += 1
        sample.error_traces.append(trace_id)
        if row["error_type"]:
            sample.error_types[row["error_type"]].append(trace_id)
    if row["total_tokens"] is not None:
        sample.tokens.append((float(row["total_tokens"]), trace_id))
    if row["cost_usd"] is not None:
        sample.costs.append((float(row["cost_usd"]), trace_id))
    if row["latency_ms"] is not None:
        sample.latencies.append((float(row["latency_ms"]), trace_id))
    for ttft in ttft_rows:
        sample.ttfts.append((float(ttft), trace_id))


def _window(store: TraceStore, by: str, start: str, end: str) -> dict[str | None, _Sample]:
    """The units of one window, grouped by ``by``."""
    groups: dict[str | None, _Sample] = defaultdict(_Sample)
    key = _metadata_key(by)
    if key is None:
        clauses = ["start_time >= ?", "start_time < ?", "status != 'running'"]
        if by == "model":
            clauses.append("kind IN ('chat_model', 'llm')")
        elif by == "graph_node":
            clauses.append(NODE_RUN_SQL)
        sql = f"SELECT {_SPAN_FIELDS} FROM spans WHERE {' AND '.join(clauses)}"
        for row in store._query(sql, (start, end)):
            if by == "graph_node":
                group = qualified(row["graph_node"], row["checkpoint_ns"])
            else:
                group = row[by]
            ttft = () if row["ttft_ms"] is None else (row["ttft_ms"],)
            _add(groups[group], row, ttft)
        if by == "graph_node":  # a node's TTFT: that of the model calls made inside it
            for row in store._query(
                "SELECT trace_id, graph_node, checkpoint_ns, ttft_ms FROM spans "
                "WHERE start_time >= ? AND start_time < ? AND ttft_ms IS NOT NULL "
                "AND graph_node IS NOT NULL AND kind IN ('chat_model', 'llm')",
                (start, end),
            ):
                group = qualified(row["graph_node"], row["checkpoint_ns"])
                groups[group].ttfts.append((float(row["ttft_ms"]), row["trace_id"]))
        return groups
    window = "t.start_time >= ? AND t.start_time < ? AND t.status != 'running'"
    path = stats.metadata_path(key)  # nested keys as metadata.a.b, like stats()
    ttfts: dict[str, list[float]] = defaultdict(list)
    for row in store._query(
        "SELECT s.trace_id, s.ttft_ms FROM spans s WHERE s.ttft_ms IS NOT NULL AND "
        f"s.trace_id IN (SELECT t.trace_id FROM traces t WHERE {window})",
        (start, end),
    ):
        ttfts[row["trace_id"]].append(row["ttft_ms"])
    sql = (
        "SELECT t.trace_id, json_extract(t.metadata, ?) AS grp, t.status, s.error_type, "
        "t.latency_ms, t.total_tokens, t.cost_usd FROM traces t "
        f"LEFT JOIN spans s ON s.span_id = t.trace_id WHERE {window}"
    )
    for row in store._query(sql, (path, start, end)):
        group = None if row["grp"] is None else str(row["grp"])
        _add(groups[group], row, ttfts.get(row["trace_id"], ()))
    return groups


def _branches(store: TraceStore, start: str, end: str) -> dict[str | None, list[tuple]]:
    """Per source node: ``(destinations, trace_id)`` of each decision in the window."""
    decisions: dict[str | None, list[tuple]] = defaultdict(list)
    for row in store._query(
        "SELECT source, destinations, trace_id FROM branch_events WHERE time >= ? AND time < ?",
        (start, end),
    ):
        targets = json.loads(row["destinations"]) if row["destinations"] else []
        decisions[row["source"]].append((frozenset(targets or [None]), row["trace_id"]))
    return decisions


def _paths(store: TraceStore, start: str, end: str) -> dict[str, dict[tuple[str, ...], list]]:
    """Per graph name: node path -> trace ids of the finished graph traces in the window."""
    graphs = {
        row["trace_id"]: row["graph_name"]
        for row in store._query(
            "SELECT trace_id, graph_name FROM traces WHERE start_time >= ? AND start_time < ? "
            "AND graph_name IS NOT NULL AND status != 'running'",
            (start, end),
        )
    }
    rows: dict[str, list[Any]] = defaultdict(list)
    for row in store._query(
        "SELECT trace_id, graph_node, graph_step, checkpoint_ns FROM spans WHERE trace_id IN "
        "(SELECT trace_id FROM traces WHERE start_time >= ? AND start_time < ? "
        f"AND graph_name IS NOT NULL AND status != 'running') AND {NODE_RUN_SQL}",
        (start, end),
    ):
        rows[row["trace_id"]].append(row)
    paths: dict[str, dict[tuple[str, ...], list]] = defaultdict(lambda: defaultdict(list))
    for trace_id, graph in graphs.items():
        paths[graph][tuple(node_path(rows.get(trace_id, ())))].append(trace_id)
    return paths


def _models(store: TraceStore, start: str, end: str) -> tuple[int, dict[str, list[str]]]:
    calls = store._query(
        "SELECT model, trace_id FROM spans WHERE start_time >= ? AND start_time < ? "
        "AND kind IN ('chat_model', 'llm') AND status != 'running'",
        (start, end),
    )
    models: dict[str, list[str]] = defaultdict(list)
    for row in calls:
        if row["model"] is not None:
            models[row["model"]].append(row["trace_id"])
    return len(calls), models


# -- comparisons -----------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return sig.quantile(sorted(values), 0.5)


def _examples(pairs: Iterable[tuple[float, str]], count: int) -> list[str]:
    """Distinct trace ids of the largest values first."""
    seen: list[str] = []
    for _, trace_id in sorted(pairs, key=lambda item: -item[0]):
        if trace_id not in seen:
            seen.append(trace_id)
        if len(seen) >= count:
            break
    return seen


def _first(trace_ids: Iterable[str], count: int) -> list[str]:
    return list(dict.fromkeys(trace_ids))[:count]


def _label(group: str | None) -> str:
    return "(none)" if group is None else repr(group)


def _pct(value: float) -> str:
    return f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _p_text(p: float) -> str:
    return "< 1e-12" if p < 1e-12 else f"= {p:.2g}"


def _new_thing_p(n0: int, n1: int, k: int) -> float:
    """P(all ``k`` occurrences fall in the recent window | they are spread as the units are):
    ``C(n1, k) / C(n0 + n1, k)``, the conditional exact test of a never-seen thing."""
    p = 1.0
    for i in range(k):
        p *= max(0, n1 - i) / (n0 + n1 - i)
    return p


class _Finder:
    def __init__(self, config: AnomalyConfig, by: str) -> None:
        self.config = config
        self.by = by
        self.units = _UNIT_WORDS.get(by, "traces")
        self.unit = self.units[:-1]
        self.tests = 0  # every comparison made, flagged or not (for the correction)
        self.candidates: list[_Candidate] = []
        self.rng = random.Random(config.seed)

    def want(self, kind: str) -> bool:
        return kind in self.config.kinds

    def add(self, candidate: _Candidate) -> None:
        self.candidates.append(candidate)

    # Each compare_* counts one test for every group with enough data in both windows; a
    # test computes its p-value only past the effect-size threshold: the others count in
    # the correction with p = 1, which is conservative (never more reports than testing all).

    def compare_tokens(self, group: str | None, b: _Sample, r: _Sample) -> None:
        cfg = self.config
        base = [v for v, _ in b.tokens]
        recent = [v for v, _ in r.tokens]
        if min(len(base), len(recent)) < cfg.min_samples:
            return
        self.tests += 1
        m0, m1 = _median(base), _median(recent)
        if m0 <= 0 or m1 / m0 < cfg.token_ratio:
            return
        p = sig.mann_whitney_u(base, recent, "greater")
        self.add(
            _Candidate(
                "token_spike",
                group,
                "median total_tokens",
                m0,
                m1,
                m1 / m0,
                len(base),
                len(recent),
                p,
                _examples(r.tokens, cfg.examples),
                f"{self.by} {_label(group)}: median tokens per {self.unit} "
                f"{_num(m0)} -> {_num(m1)} "
                f"({m1 / m0:.1f}x) over {len(base)} baseline vs {len(recent)} recent {self.units}",
            )
        )

    def compare_cost(self, group: str | None, b: _Sample, r: _Sample) -> None:
        cfg = self.config
        base = [v for v, _ in b.costs]
        recent = [v for v, _ in r.costs]
        if min(len(base), len(recent)) < cfg.min_samples:
            return
        self.tests += 1
        m0, m1 = math.fsum(base) / len(base), math.fsum(recent) / len(recent)
        if m0 <= 0 or m1 / m0 < cfg.cost_ratio:
            return
        p = sig.welch_test(base, recent, "greater")
        self.add(
            _Candidate(
                "cost_increase",
                group,
                "mean cost_usd",
                m0,
                m1,
                m1 / m0,
                len(base),
                len(recent),
                p,
                _examples(r.costs, cfg.examples),
                f"{self.by} {_label(group)}: mean cost per {self.unit} ${m0:.6g} -> ${m1:.6g} "
                f"({m1 / m0:.1f}x) over {len(base)} baseline vs {len(recent)} recent {self.units}",
            )
        )

    def compare_quantile(self, kind: str, group: str | None, b: list, r: list) -> None:
        cfg = self.config
        base = [v for v, _ in b if v > 0]
        recent = [v for v, _ in r if v > 0]
        if min(len(base), len(recent)) < cfg.min_samples:
            return
        self.tests += 1
        q = cfg.latency_quantile
        q0, q1 = sig.quantile(sorted(base), q), sig.quantile(sorted(recent), q)
        latency = kind == "latency_degradation"
        threshold = cfg.latency_ratio if latency else cfg.ttft_ratio
        min_delta = cfg.latency_min_delta_ms if latency else cfg.ttft_min_delta_ms
        if q1 / q0 < threshold or q1 - q0 < min_delta:
            return
        p = sig.bootstrap_quantile_ratio(
            base, recent, q, resamples=cfg.bootstrap_resamples, rng=self.rng
        )
        name = "latency" if kind == "latency_degradation" else "time to first token"
        metric = f"p{round(q * 100)} {'latency_ms' if kind == 'latency_degradation' else 'ttft_ms'}"
        self.add(
            _Candidate(
                kind,
                group,
                metric,
                q0,
                q1,
                q1 / q0,
                len(base),
                len(recent),
                p,
                _examples(r, cfg.examples),
                f"{self.by} {_label(group)}: p{round(q * 100)} {name} {_num(q0)} ms -> "
                f"{_num(q1)} ms ({q1 / q0:.1f}x) over {len(base)} baseline vs {len(recent)} "
                f"recent {self.units}",
            )
        )

    def compare_errors(self, group: str | None, b: _Sample, r: _Sample) -> None:
        cfg = self.config
        if min(b.n, r.n) < cfg.min_samples:
            return
        self.tests += 1
        r0, r1 = b.errors / b.n, r.errors / r.n
        if r1 - r0 < cfg.error_rate_delta or r1 == 0 or (r0 > 0 and r1 / r0 < cfg.error_rate_ratio):
            return
        p = sig.two_proportion_test(b.errors, b.n, r.errors, r.n, "greater")
        ratio = r1 / r0 if r0 > 0 else None
        self.add(
            _Candidate(
                "error_rate_jump",
                group,
                "error rate",
                r0,
                r1,
                ratio,
                b.n,
                r.n,
                p,
                _first(reversed(r.error_traces), cfg.examples),
                f"{self.by} {_label(group)}: error rate {_pct(r0)} -> {_pct(r1)} "
                f"({b.errors}/{b.n} baseline vs {r.errors}/{r.n} recent {self.units})",
            )
        )

    def compare_error_types(self, group: str | None, b: _Sample, r: _Sample) -> None:
        cfg = self.config
        if b.n < cfg.min_samples:
            return
        for error_type, traces in r.error_types.items():
            if error_type in b.error_types:
                continue
            self.tests += 1
            k = len(traces)
            if k < cfg.new_min_count:
                continue
            p = _new_thing_p(b.n, r.n, k)
            self.add(
                _Candidate(
                    "new_error",
                    group,
                    f"error {error_type}",
                    0.0,
                    k / r.n,
                    None,
                    b.n,
                    r.n,
                    p,
                    _first(reversed(traces), cfg.examples),
                    f"{self.by} {_label(group)}: {error_type} raised {k} times in {r.n} recent "
                    f"{self.units}, never in {b.n} baseline {self.units}",
                )
            )

    def compare_branches(self, source: str | None, b: list[tuple], r: list[tuple]) -> None:
        cfg = self.config
        n0, n1 = len(b), len(r)
        if min(n0, n1) < cfg.min_samples:
            return
        counts0: Counter = Counter(d for targets, _ in b for d in targets)
        counts1: Counter = Counter(d for targets, _ in r for d in targets)
        for destination in sorted(set(counts0) | set(counts1), key=str):
            self.tests += 1
            x0, x1 = counts0[destination], counts1[destination]
            s0, s1 = x0 / n0, x1 / n1
            if abs(s1 - s0) < cfg.branch_delta:
                continue
            p = sig.two_proportion_test(x0, n0, x1, n1, "two-sided")
            name = "?" if destination is None else destination
            traces = [t for targets, t in reversed(r) if destination in targets]
            self.add(
                _Candidate(
                    "branch_rate_change",
                    f"{source} -> {name}",
                    "branch share",
                    s0,
                    s1,
                    s1 / s0 if s0 > 0 else None,
                    n0,
                    n1,
                    p,
                    _first(traces, cfg.examples),
                    f"{source} -> {name}: {_pct(s0)} -> {_pct(s1)} of the decisions at "
                    f"{source!r} ({(s1 - s0) * 100:+.0f} points; "
                    f"{x0}/{n0} baseline vs {x1}/{n1} recent)",
                )
            )

    def compare_paths(self, graph: str, b: dict, r: dict) -> None:
        cfg = self.config
        n0 = sum(len(t) for t in b.values())
        n1 = sum(len(t) for t in r.values())
        if n0 < cfg.min_samples or n1 == 0:
            return
        for path, traces in r.items():
            if path in b:
                continue
            self.tests += 1
            k = len(traces)
            if k < cfg.new_min_count:
                continue
            shown = " -> ".join(path) or "(no nodes)"
            self.add(
                _Candidate(
                    "new_path",
                    graph,
                    shown,
                    0.0,
                    k / n1,
                    None,
                    n0,
                    n1,
                    _new_thing_p(n0, n1, k),
                    _first(reversed(traces), cfg.examples),
                    f"graph {graph!r}: new node path {shown} in {k} of {n1} recent traces, "
                    f"never in {n0} baseline traces",
                )
            )

    def compare_models(self, b: tuple[int, dict], r: tuple[int, dict]) -> None:
        cfg = self.config
        (n0, base), (n1, recent) = b, r
        if n0 < cfg.min_samples:
            return
        for model, traces in recent.items():
            if model in base:
                continue
            self.tests += 1
            k = len(traces)
            if k < cfg.new_min_count:
                continue
            self.add(
                _Candidate(
                    "new_model",
                    model,
                    "model calls",
                    0.0,
                    k / n1,
                    None,
                    n0,
                    n1,
                    _new_thing_p(n0, n1, k),
                    _first(reversed(traces), cfg.examples),
                    f"model {model!r}: called {k} times in the recent window, never in "
                    f"{n0} baseline model calls",
                )
            )

    def results(self) -> list[Anomaly]:
        cfg = self.config
        m = max(self.tests, len(self.candidates))
        raw = [c.p_value for c in self.candidates] + [1.0] * (m - len(self.candidates))
        if cfg.correction == "holm":
            adjusted = sig.holm(raw)
        elif cfg.correction == "bh":
            adjusted = sig.benjamini_hochberg(raw)
        else:
            adjusted = list(raw)
        found = []
        for candidate, p_adj in zip(self.candidates, adjusted, strict=False):
            if p_adj >= cfg.alpha:
                continue
            found.append(
                Anomaly(
                    kind=candidate.kind,  # type: ignore[arg-type]
                    by=_FIXED_BY.get(candidate.kind, self.by),
                    group=candidate.group,
                    metric=candidate.metric,
                    baseline_value=candidate.baseline_value,
                    recent_value=candidate.recent_value,
                    ratio=candidate.ratio,
                    baseline_n=candidate.baseline_n,
                    recent_n=candidate.recent_n,
                    p_value=candidate.p_value,
                    p_adjusted=p_adj,
                    trace_ids=candidate.trace_ids,
                    explanation=f"{candidate.explanation} (p {_p_text(p_adj)}, adjusted)",
                )
            )
        order = {kind: i for i, kind in enumerate(KINDS)}
        found.sort(key=lambda a: (order[a.kind], a.p_adjusted or 0.0, str(a.group)))
        return found


def find_anomalies(
    store: TraceStore,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    baseline: TimeLike | None = None,
    by: str = "name",
    config: AnomalyConfig | None = None,
) -> list[Anomaly]:
    """Anomalies of the recent window ``[since, until)`` against ``[since - baseline, since)``.

    See the module docstring for the kinds and the significance guard.
    """
    config = config or AnomalyConfig()
    unknown = set(config.kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    _metadata_key(by)
    base_start, start, end = resolve_windows(since, until, baseline)
    finder = _Finder(config, by)
    unit_kinds = {
        "token_spike",
        "cost_increase",
        "latency_degradation",
        "ttft_degradation",
        "error_rate_jump",
        "new_error",
    }
    if unit_kinds & set(config.kinds):
        base, recent = _window(store, by, base_start, start), _window(store, by, start, end)
        for group in sorted(recent, key=str):
            b, r = base.get(group) or _Sample(), recent[group]
            if finder.want("token_spike"):
                finder.compare_tokens(group, b, r)
            if finder.want("cost_increase"):
                finder.compare_cost(group, b, r)
            if finder.want("latency_degradation"):
                finder.compare_quantile("latency_degradation", group, b.latencies, r.latencies)
            if finder.want("ttft_degradation"):
                finder.compare_quantile("ttft_degradation", group, b.ttfts, r.ttfts)
            if finder.want("error_rate_jump"):
                finder.compare_errors(group, b, r)
            if finder.want("new_error"):
                finder.compare_error_types(group, b, r)
    if finder.want("branch_rate_change"):
        base_b, recent_b = _branches(store, base_start, start), _branches(store, start, end)
        for source in sorted(recent_b, key=str):
            finder.compare_branches(source, base_b.get(source, []), recent_b[source])
    if finder.want("new_path"):
        base_p, recent_p = _paths(store, base_start, start), _paths(store, start, end)
        for graph in sorted(recent_p):
            finder.compare_paths(graph, base_p.get(graph, {}), recent_p[graph])
    if finder.want("new_model"):
        finder.compare_models(_models(store, base_start, start), _models(store, start, end))
    return finder.results()
