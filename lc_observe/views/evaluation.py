"""HTML for scores, judge reports, comparisons and trace diffs (self-contained, no script;
every user string escaped through `esc`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._html import esc, fmt_cost, to_text, wrap


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table; cells are HTML already (escape them first)."""
    head = "".join(
        f'<th class="lco-th{" lco-num" if i in numeric else ""}">{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="lco-td{" lco-num" if i in numeric else ""}">{cell}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="lco-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fmt_value(value: Any) -> str:
    """A score value as text: ``true``/``false``, a number, or the category."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def scores_html(scores: Sequence[Any]) -> str:
    """A table of `Score` rows (name, value, source, author, span, comment or error)."""
    rows = []
    for s in scores:
        note = s.comment or ""
        if s.error:
            note = f"malformed: {s.error.get('message', '')}"
        rows.append(
            [
                esc(s.name),
                esc(fmt_value(s.value)),
                esc(s.source),
                esc(s.author or ""),
                esc((s.span_id or "trace")[:8]),
                esc(to_text(note, 300)),
            ]
        )
    return _table(["score", "value", "source", "author", "on", "comment"], rows)


def judge_report_html(report: Any) -> str:
    """A `JudgeReport`: totals, then per criterion n, mean and problems."""
    cost = "unknown" if report.cost_usd is None else fmt_cost(report.cost_usd)
    head = (
        f'<div class="lco-head"><span class="lco-title">judge {esc(report.model)}</span> '
        f'<span class="lco-sub">{report.calls} calls · {report.elapsed_s:.2f} s · '
        f"{report.total_tokens:,} tokens · cost {esc(cost)}</span></div>"
    )
    rows = [
        [
            esc(name),
            str(entry["n"]),
            "–" if entry["mean"] is None else f"{entry['mean']:.3f}",
            str(entry["malformed"]),
            str(entry["errors"]),
            str(entry["skipped"]),
        ]
        for name, entry in report.summary().items()
    ]
    table = _table(
        ["criterion", "n", "mean", "malformed", "errors", "skipped"], rows, numeric=(1, 2, 3, 4, 5)
    )
    return wrap(head + table)


# -- comparisons ------------------------------------------------------------------------------


def _fmt_metric_value(metric: str, kind: str, value: float | None) -> str:
    if value is None:
        return "-"
    if kind == "proportion":
        return f"{value:.1%}"
    if metric == "cost_usd":
        return f"${value:.6f}"
    if metric.endswith("_tokens"):
        return f"{value:,.1f}"
    if metric == "latency_ms":
        return f"{value:,.1f} ms"
    return f"{value:.3f}"


def _fmt_change(row: Any) -> str:
    if row.difference is None:
        return "-"
    if row.kind == "proportion":
        return f"{row.difference * 100:+.1f} pt"
    if row.relative is not None:
        return f"{row.relative:+.1%}"
    return f"{row.difference:+.4g}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def comparison_cells(comparison: Any) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells of a `Comparison` (shared by the text and HTML tables)."""
    a, b = comparison.a, comparison.b
    headers = ["metric", f"{a} (n)", f"{b} (n)", "change", "test", "p", ""]
    rows = []
    for row in comparison.rows:
        label = "mean" if row.kind == "distribution" else "rate"
        rows.append(
            [
                f"{row.metric} ({label})",
                f"{_fmt_metric_value(row.metric, row.kind, row.a_value)} ({row.a_n})",
                f"{_fmt_metric_value(row.metric, row.kind, row.b_value)} ({row.b_n})",
                _fmt_change(row),
                "MWU" if row.test == "mann-whitney-u" else "z",
                _fmt_p(row.p_value),
                "*" if row.significant else "",
            ]
        )
    return headers, rows


def comparison_text(comparison: Any) -> str:
    """A `Comparison` as an aligned text table (what ``lc-observe compare`` prints)."""
    headers, rows = comparison_cells(comparison)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        f"compare {comparison.by}: {comparison.a} ({comparison.a_traces} traces) vs "
        f"{comparison.b} ({comparison.b_traces} traces); * p < {comparison.alpha:g}"
    ]
    for cells in [headers, *rows]:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    if not comparison.significant:
        lines.append(f"no significant difference at alpha={comparison.alpha:g}")
    return "\n".join(lines)


def comparison_html(comparison: Any) -> str:
    """A `Comparison` as an HTML table; significant rows highlighted."""
    headers, rows = comparison_cells(comparison)
    head = (
        f'<div class="lco-head"><span class="lco-title">{esc(comparison.by)}: '
        f"{esc(comparison.a)} vs {esc(comparison.b)}</span> "
        f'<span class="lco-sub">{comparison.a_traces} vs {comparison.b_traces} traces · '
        f"Mann-Whitney U / two-proportion z, two-sided · * p &lt; {comparison.alpha:g}</span></div>"
    )
    cells = [[f"<b>{esc(c)}</b>" if r[-1] else esc(c) for c in r] for r in rows]
    return wrap(head + _table(headers, cells, numeric=(1, 2, 3, 5)))
