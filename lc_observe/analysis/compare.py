"""Two groups of traces side by side (prompt versions, models, A/B arms), with significance.

`compare` selects the finished traces of group ``a`` and group ``b`` (by a metadata key, a
tag, or a trace column), and compares per trace: latency, tokens and cost (Mann-Whitney U:
no assumption of normality, latencies are skewed), error rate (two-proportion z-test),
every score (numeric: Mann-Whitney U on each trace's mean; boolean and categorical: share
of scores, z-test) and every routing decision's rate (share of the decisions taken at a
source, z-test).  Tests are two-sided and implemented with the standard library; each row
carries its sample sizes and p-value, and ``significant`` is ``p < alpha``.

Several metrics are tested at once, so expect about one in twenty to look significant by
chance at ``alpha=0.05`` when nothing changed; `Comparison.holm` gives Holm-adjusted
p-values to read the table as a whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lc_observe.storage.stats import METADATA_PREFIX, NOT_JUDGE_SQL, check_group, metadata_path

if TYPE_CHECKING:
    from lc_observe.storage.store import TraceStore

#: Exact Mann-Whitney p-values up to this many values in both groups together (no ties).
EXACT_MAX_N = 40


# -- tests --------------------------------------------------------------------------------------


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _exact_u_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings give each U = 0 .. m*n (no ties)."""
    # counts[j][u] for the current i: orderings of i x-values and j y-values with U = u
    prev = [[1] for _ in range(n + 1)]  # i = 0: U is 0
    for i in range(1, m + 1):
        cur: list[list[int]] = [[1]]  # j = 0: U is 0
        for j in range(1, n + 1):
            size = i * j + 1
            row = [0] * size
            # the largest value is an x (adds j to U) or a y (adds nothing)
            for u, c in enumerate(prev[j]):
                row[u + j] += c
            for u, c in enumerate(cur[j - 1]):
                row[u] += c
            cur.append(row)
        prev = cur
    return prev[n]


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: ``(U of x, p-value)``.

    Exact without ties when both samples together have at most `EXACT_MAX_N` values;
    otherwise the normal approximation with tie and continuity correction (as
    ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")``).  Identical samples give p = 1.

    >>> mann_whitney_u([1, 2, 3], [4, 5, 6])
    (0.0, 0.1)
    """
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u needs values in both samples")
    ranks, ties = _ranks([*x, *y])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    if all(t == 1 for t in ties) and n1 + n2 <= EXACT_MAX_N:
        counts = _exact_u_counts(n1, n2)
        total = math.comb(n1 + n2, n1)
        k = round(u1)
        low, high = sum(counts[: k + 1]) / total, sum(counts[k:]) / total
        return u1, min(1.0, 2 * min(low, high))
    n = n1 + n2
    mu = n1 * n2 / 2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return u1, 1.0  # every value the same
    z = max(0.0, abs(u1 - mu) - 0.5) / math.sqrt(variance)
    return u1, min(1.0, math.erfc(z / math.sqrt(2)))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Two-sided two-proportion z-test (pooled): ``(z, p-value)``; p = 1 when both rates
    are 0 or both are 1.

    >>> round(two_proportion_z(0, 10, 4, 10)[1], 4)
    0.0253
    """
    if n1 == 0 or n2 == 0:
        raise ValueError("two_proportion_z needs at least one trial in each group")
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


# -- results ------------------------------------------------------------------------------------


class MetricComparison(BaseModel):
    """One metric in both groups: values, sample sizes, the test and its p-value.

    ``a_value`` / ``b_value`` are means (``kind="distribution"``) or rates
    (``kind="proportion"``); ``p_value`` is None when a group has too few values to test
    (fewer than 2, or no trials)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    kind: Literal["distribution", "proportion"]
    a_n: int
    b_n: int
    a_value: float | None
    b_value: float | None
    a_median: float | None = None
    b_median: float | None = None
    difference: float | None = Field(None, description="b - a")
    relative: float | None = Field(None, description="(b - a) / a, None when a is 0")
    test: str
    statistic: float | None = None
    p_value: float | None = None
    significant: bool = False


class Comparison(BaseModel):
    """`TraceStore.compare`'s answer: group ``a`` vs group ``b``, one row per metric."""

    model_config = ConfigDict(frozen=True)

    by: str
    a: str
    b: str
    a_traces: int
    b_traces: int
    alpha: float
    rows: list[MetricComparison]

    def row(self, metric: str) -> MetricComparison:
        """The row of ``metric`` (``"latency_ms"``, ``"score:correctness"`` ...)."""
        for row in self.rows:
            if row.metric == metric:
                return row
        raise KeyError(f"no metric {metric!r}; there are {', '.join(r.metric for r in self.rows)}")

    @property
    def significant(self) -> list[MetricComparison]:
        """Rows whose difference is significant at ``alpha``."""
        return [row for row in self.rows if row.significant]

    def holm(self) -> dict[str, float]:
        """Holm-adjusted p-values per metric (the family of all tested rows)."""
        tested = sorted((r.p_value, r.metric) for r in self.rows if r.p_value is not None)
        adjusted: dict[str, float] = {}
        running = 0.0
        for i, (p, metric) in enumerate(tested):
            running = max(running, min(1.0, (len(tested) - i) * p))
            adjusted[metric] = running
        return adjusted

    def __str__(self) -> str:
        from ..views.evaluation import comparison_text

        return comparison_text(self)

    def __repr__(self) -> str:
        flagged = ", ".join(r.metric for r in self.significant) or "none"
        return (
            f"<Comparison {self.by}: {self.a} ({self.a_traces}) vs {self.b} ({self.b_traces}); "
            f"significant: {flagged}>"
        )

    def _repr_html_(self) -> str:
        from ..views.evaluation import comparison_html

        return comparison_html(self)


# -- selection --------------------------------------------------------------------------------

_COLUMNS = ("name", "user_id", "session_id", "graph_name")


def _group_clause(by: str) -> str:
    """SQL selecting the traces whose ``by`` equals the bound value."""
    if by == "tag":
        return "EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE value = ?)"
    if by.startswith(METADATA_PREFIX):
        return f"CAST(json_extract(traces.metadata, '{metadata_path(by)}') AS TEXT) = ?"
    return f"{by} = ?"


def _check_by(by: str) -> None:
    if by in _COLUMNS or by == "tag":
        return
    if by.startswith(METADATA_PREFIX):
        check_group(by)
        return
    raise ValueError(f"compare(by=...) takes metadata.KEY, tag, {', '.join(_COLUMNS)}; got {by!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _distribution(metric: str, xa: list[float], xb: list[float], alpha: float) -> MetricComparison:
    mean_a = math.fsum(xa) / len(xa) if xa else None
    mean_b = math.fsum(xb) / len(xb) if xb else None
    statistic = p = None
    if len(xa) >= 2 and len(xb) >= 2:
        statistic, p = mann_whitney_u(xa, xb)
    return _row(
        metric,
        "distribution",
        len(xa),
        len(xb),
        mean_a,
        mean_b,
        "mann-whitney-u",
        statistic,
        p,
        alpha,
        _median(xa),
        _median(xb),
    )


def _proportion(
    metric: str, hits_a: int, n_a: int, hits_b: int, n_b: int, alpha: float
) -> MetricComparison:
    rate_a = hits_a / n_a if n_a else None
    rate_b = hits_b / n_b if n_b else None
    statistic = p = None
    if n_a and n_b:
        statistic, p = two_proportion_z(hits_a, n_a, hits_b, n_b)
    return _row(
        metric, "proportion", n_a, n_b, rate_a, rate_b, "two-proportion-z", statistic, p, alpha
    )


def _row(
    metric: str,
    kind: Literal["distribution", "proportion"],
    n_a: int,
    n_b: int,
    va: float | None,
    vb: float | None,
    test: str,
    statistic: float | None,
    p: float | None,
    alpha: float,
    median_a: float | None = None,
    median_b: float | None = None,
) -> MetricComparison:
    difference = None if va is None or vb is None else vb - va
    relative = difference / va if difference is not None and va else None
    return MetricComparison(
        metric=metric,
        kind=kind,
        a_n=n_a,
        b_n=n_b,
        a_value=va,
        b_value=vb,
        a_median=median_a,
        b_median=median_b,
        difference=difference,
        relative=relative,
        test=test,
        statistic=statistic,
        p_value=p,
        significant=p is not None and p < alpha,
    )


def compare(
    store: TraceStore,
    by: str,
    a: Any,
    b: Any,
    *,
    since: Any = None,
    until: Any = None,
    alpha: float = 0.05,
) -> Comparison:
    """Compare the traces whose ``by`` is ``a`` with those whose ``by`` is ``b``.

    >>> cmp = store.compare(by="metadata.prompt_version", a="v1", b="v2")  # doctest: +SKIP
    >>> print(cmp)                                        # a table  # doctest: +SKIP
    >>> cmp.row("score:correctness").p_value              # doctest: +SKIP
    """
    from lc_observe.storage.filters import where_clauses

    _check_by(by)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    where, params = where_clauses({}, "traces.start_time", since, until)
    where += ["traces.status != 'running'", NOT_JUDGE_SQL.format(table="traces")]
    groups: dict[str, list[Any]] = {}
    for label, value in (("a", a), ("b", b)):
        sql = (
            "SELECT trace_id, status, latency_ms, total_tokens, cost_usd FROM traces "
            f"WHERE {' AND '.join(where)} AND {_group_clause(by)}"
        )
        groups[label] = store._query(sql, [*params, _text(value)])
    if not groups["a"] or not groups["b"]:
        empty = [label for label in ("a", "b") if not groups[label]]
        raise ValueError(
            f"no finished traces with {by} = "
            + " or ".join(repr(_text(a if e == "a" else b)) for e in empty)
            + ": check the value (store.stats(by=...) lists the groups) and the time window"
        )
    rows: list[MetricComparison] = []
    for column in ("latency_ms", "total_tokens", "cost_usd"):
        values = {
            label: [r[column] for r in traces if r[column] is not None]
            for label, traces in groups.items()
        }
        rows.append(_distribution(column, values["a"], values["b"], alpha))
    errors = {label: sum(r["status"] == "error" for r in t) for label, t in groups.items()}
    rows.append(
        _proportion(
            "error_rate", errors["a"], len(groups["a"]), errors["b"], len(groups["b"]), alpha
        )
    )
    ids = {label: [r["trace_id"] for r in traces] for label, traces in groups.items()}
    rows.extend(_score_rows(store, ids, alpha))
    rows.extend(_branch_rows(store, ids, alpha))
    return Comparison(
        by=by,
        a=_text(a),
        b=_text(b),
        a_traces=len(groups["a"]),
        b_traces=len(groups["b"]),
        alpha=alpha,
        rows=rows,
    )


def _in_ids(store: TraceStore, sql: str, ids: list[str]) -> list[Any]:
    return store._query(sql.replace("{IDS}", "(SELECT value FROM json_each(?))"), [json.dumps(ids)])


def _score_rows(
    store: TraceStore, ids: dict[str, list[str]], alpha: float
) -> list[MetricComparison]:
    per: dict[str, dict[str, Any]] = {}
    for label in ("a", "b"):
        rows = _in_ids(
            store,
            "SELECT trace_id, name, value, value_type, label FROM scores "
            "WHERE trace_id IN {IDS} AND value_type != 'error' ORDER BY name",
            ids[label],
        )
        for row in rows:
            entry = per.setdefault(row["name"], {"type": row["value_type"], "a": [], "b": []})
            entry[label].append(row)
    out: list[MetricComparison] = []
    for name, entry in sorted(per.items()):
        kind = entry["type"] or "numeric"
        if kind == "numeric":
            means = {}
            for label in ("a", "b"):
                by_trace: dict[str, list[float]] = {}
                for row in entry[label]:
                    by_trace.setdefault(row["trace_id"], []).append(row["value"])
                means[label] = [math.fsum(v) / len(v) for v in by_trace.values()]
            out.append(_distribution(f"score:{name}", means["a"], means["b"], alpha))
        elif kind == "boolean":
            hits = {label: sum(1 for r in entry[label] if r["value"]) for label in ("a", "b")}
            n = {label: len(entry[label]) for label in ("a", "b")}
            out.append(_proportion(f"score:{name}", hits["a"], n["a"], hits["b"], n["b"], alpha))
        else:  # categorical: the share of each category
            labels = sorted({r["label"] for label in ("a", "b") for r in entry[label]})
            n = {label: len(entry[label]) for label in ("a", "b")}
            for category in labels:
                hits = {
                    label: sum(1 for r in entry[label] if r["label"] == category)
                    for label in ("a", "b")
                }
                out.append(
                    _proportion(
                        f"score:{name}={category}", hits["a"], n["a"], hits["b"], n["b"], alpha
                    )
                )
    return out


def _branch_rows(
    store: TraceStore, ids: dict[str, list[str]], alpha: float
) -> list[MetricComparison]:
    decisions: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    targets: dict[tuple[str, str], dict[str, int]] = {}
    for label in ("a", "b"):
        rows = _in_ids(
            store,
            "SELECT source, destinations FROM branch_events WHERE trace_id IN {IDS}",
            ids[label],
        )
        for row in rows:
            source = row["source"] or "?"
            decisions[label][source] = decisions[label].get(source, 0) + 1
            destinations = json.loads(row["destinations"] or "[]") or ["(unknown)"]
            for destination in set(destinations):
                counts = targets.setdefault((source, destination), {"a": 0, "b": 0})
                counts[label] += 1
    out = []
    for (source, destination), counts in sorted(targets.items()):
        n_a, n_b = decisions["a"].get(source, 0), decisions["b"].get(source, 0)
        out.append(
            _proportion(
                f"branch:{source}->{destination}", counts["a"], n_a, counts["b"], n_b, alpha
            )
        )
    return out
