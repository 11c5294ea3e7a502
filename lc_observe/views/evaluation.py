"""HTML for scores, judge reports, comparisons and trace diffs (self-contained, no script;
every user string escaped through `esc`)."""

from __future__ import annotations

import json
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
    headers = ["metric", f"{a} (n)", f"{b} (n)", "change", "test", "p", "p Holm", ""]
    rows = []
    holm = comparison.holm()
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
                _fmt_p(holm.get(row.metric)),
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
        f"{comparison.b} ({comparison.b_traces} traces); * p < {comparison.alpha:g} "
        "(p Holm: adjusted for testing every row)"
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
    return wrap(head + _table(headers, cells, numeric=(1, 2, 3, 5, 6)))


# -- trace diffs ------------------------------------------------------------------------------


def _fmt_delta(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:+,.1f} ms"
    if unit == "$":
        return f"{'+' if value >= 0 else '-'}${abs(value):.6f}"
    return f"{value:+,}"


def _fmt_result(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _decision(destinations: list[str] | None, result: Any) -> str:
    if destinations is None:
        return "(not taken)"
    return f"{_fmt_result(result)} -> {', '.join(destinations) or '(nowhere)'}"


def diff_lines(diff: Any) -> list[str]:
    """The text lines of a `TraceDiff` (what ``lc-observe diff`` prints)."""
    root = diff.root
    lines = [
        f"A {diff.trace_a}  {diff.name_a}  {root.a_status}",
        f"B {diff.trace_b}  {diff.name_b}  {root.b_status}",
        f"total: latency {_fmt_delta(root.latency_delta_ms, 'ms')}, tokens "
        f"{_fmt_delta(root.tokens_delta, 'tok')}, cost {_fmt_delta(root.cost_delta_usd, '$')}",
    ]
    if diff.path_a or diff.path_b:
        lines.append("path A: " + (" -> ".join(diff.path_a) or "(none)"))
        lines.append("path B: " + (" -> ".join(diff.path_b) or "(none)"))
        for change in diff.path_changes:
            lines.append(
                f"  {change.op} at step {change.a_index + 1}: "
                f"{' -> '.join(change.a_nodes) or '(nothing)'}  =>  "
                f"{' -> '.join(change.b_nodes) or '(nothing)'}"
            )
    for branch in diff.branch_differences:
        lines.append(
            f"decision {branch.condition or '?'}({branch.source or '?'}) #{branch.occurrence}: "
            f"A {_decision(branch.a_destinations, branch.a_result)}  |  "
            f"B {_decision(branch.b_destinations, branch.b_result)}"
        )
    lines.append("spans (B - A):")
    for span in diff.spans:
        marks = []
        if span.a_status != span.b_status:
            marks.append(f"status {span.a_status} -> {span.b_status}")
        if span.output_differs:
            marks.append("output differs")
        indent = "  " * (span.depth + 1)
        lines.append(
            f"{indent}{span.name} [{span.kind}]  {_fmt_delta(span.latency_delta_ms, 'ms')}"
            + (f"  {_fmt_delta(span.tokens_delta, 'tok')} tok" if span.tokens_delta else "")
            + (f"  {_fmt_delta(span.cost_delta_usd, '$')}" if span.cost_delta_usd else "")
            + (f"  [{'; '.join(marks)}]" if marks else "")
        )
    for label, refs in (("only in A", diff.only_in_a), ("only in B", diff.only_in_b)):
        for ref in refs:
            lines.append(f"{label}: {ref.path} [{ref.kind}] {ref.status}")
    for span in diff.changed:
        if span.output_differs:
            lines.append(f"output of {span.path}:")
            lines.append(f"  A: {span.a_output}")
            lines.append(f"  B: {span.b_output}")
    if diff.identical:
        lines.append("same path, decisions, spans and outputs (only timings differ)")
    return lines


def diff_text(diff: Any) -> str:
    """A `TraceDiff` as text."""
    return "\n".join(diff_lines(diff))


def _path_html(nodes: list[str], changed: set[int], css: str) -> str:
    parts = []
    for i, node in enumerate(nodes):
        style = f' style="{css}"' if i in changed else ""
        parts.append(f"<span{style}>{esc(node)}</span>")
    return " → ".join(parts) or "(none)"


def diff_html(diff: Any) -> str:
    """A `TraceDiff` as HTML: header, both paths with the changes marked, decisions that
    differ, the matched spans with their deltas, spans in one trace only, and outputs."""
    root = diff.root
    head = (
        f'<div class="lco-head"><span class="lco-title">diff</span> '
        f'<span class="lco-sub">A {esc(diff.trace_a)} ({esc(diff.name_a)}, {esc(root.a_status)})'
        f" · B {esc(diff.trace_b)} ({esc(diff.name_b)}, {esc(root.b_status)}) · latency "
        f"{esc(_fmt_delta(root.latency_delta_ms, 'ms'))} · tokens "
        f"{esc(_fmt_delta(root.tokens_delta, 'tok'))} · cost "
        f"{esc(_fmt_delta(root.cost_delta_usd, '$'))}</span></div>"
    )
    body = head
    if diff.path_a or diff.path_b:
        in_a = {c.a_index + k for c in diff.path_changes for k in range(len(c.a_nodes))}
        in_b = {c.b_index + k for c in diff.path_changes for k in range(len(c.b_nodes))}
        removed = "background:#ffebe9;color:#82071e;border-radius:3px;padding:0 3px"
        added = "background:#dafbe1;color:#116329;border-radius:3px;padding:0 3px"
        body += (
            f'<div class="lco-mono">A: {_path_html(diff.path_a, in_a, removed)}</div>'
            f'<div class="lco-mono">B: {_path_html(diff.path_b, in_b, added)}</div>'
        )
    if diff.branch_differences:
        rows = [
            [
                esc(f"{b.condition or '?'}({b.source or '?'}) #{b.occurrence}"),
                esc(_decision(b.a_destinations, b.a_result)),
                esc(_decision(b.b_destinations, b.b_result)),
            ]
            for b in diff.branch_differences
        ]
        body += '<div class="lco-h">Routing decisions that differ</div>'
        body += _table(["decision", "A", "B"], rows)
    rows = []
    for s in diff.spans:
        status = esc(s.a_status if s.a_status == s.b_status else f"{s.a_status} → {s.b_status}")
        rows.append(
            [
                "&nbsp;" * (2 * s.depth) + esc(s.name),
                esc(s.kind),
                status,
                esc(_fmt_delta(s.latency_delta_ms, "ms")),
                esc(_fmt_delta(s.tokens_delta, "tok")),
                esc(_fmt_delta(s.cost_delta_usd, "$")),
                "differs" if s.output_differs else "",
            ]
        )
    body += '<div class="lco-h">Spans matched by position and name (B − A)</div>'
    body += _table(
        ["span", "kind", "status", "Δ latency", "Δ tokens", "Δ cost", "output"],
        rows,
        numeric=(3, 4, 5),
    )
    for label, refs in (("Only in A", diff.only_in_a), ("Only in B", diff.only_in_b)):
        if refs:
            items = [[esc(r.path), esc(r.kind), esc(r.status)] for r in refs]
            body += f'<div class="lco-h">{label}</div>' + _table(["span", "kind", "status"], items)
    for s in diff.changed:
        if s.output_differs:
            body += (
                f'<div class="lco-h">Output of {esc(s.path)}</div>'
                f'<div class="lco-code">A: {esc(s.a_output)}</div>'
                f'<div class="lco-code">B: {esc(s.b_output)}</div>'
            )
    return wrap(body, "lco-diff")
