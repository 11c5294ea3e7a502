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
