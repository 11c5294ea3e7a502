"""Charts of latency, cost, tokens and branch rates, drawn with matplotlib.

Each function returns a `Chart`: a ``matplotlib.figure.Figure`` that displays itself as a
PNG in any notebook front end (no pyplot, no global state, no JavaScript), so it also
survives export to static HTML.  ``fig.savefig("latency.svg")`` works as usual.

When a selection holds no data (no cost recorded yet, no branch events), the figure says
so instead of raising.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from lc_observe.graph_rules import is_node_run

from ._html import fmt_ms
from .frames import require_pandas

try:
    from matplotlib.figure import Figure
except ImportError:  # pragma: no cover - exercised only without matplotlib
    raise ImportError(
        "charts need matplotlib: pip install matplotlib (the [notebook] extra)"
    ) from None

if TYPE_CHECKING:
    from lc_observe.storage.store import TimeLike, TraceStore

MODEL_KINDS = ("llm", "chat_model")


class Chart(Figure):
    """A matplotlib ``Figure`` that notebooks show as a PNG (no pyplot needed)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        return buffer.getvalue()


def new_chart(width: float = 8.0, height: float = 4.0) -> Chart:
    """An empty `Chart` with one axes (``chart.axes[0]``)."""
    chart = Chart(figsize=(width, height), layout="constrained")
    chart.add_subplot()
    return chart


def no_data(title: str, message: str) -> Chart:
    """A chart that says there is nothing to plot, and why."""
    chart = new_chart(8.0, 2.2)
    ax = chart.axes[0]
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#656d76", wrap=True)
    return chart


def _group_labels(series: Any) -> Any:
    return series.astype("string").fillna("(none)")


def plot_latency(
    store: TraceStore,
    by: str = "name",
    *,
    kind: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    roots_only: bool = False,
    top: int = 15,
) -> Chart:
    """Latency distribution of spans per ``by`` group (box plot, p50/p95 written beside).

    ``by`` is a span column (``name``, ``kind``, ``graph_node``, ``model``, ``status`` ...);
    with ``by="graph_node"`` only the LangGraph node runs count (not the runs inside them).
    ``roots_only=True`` keeps whole traces only.  The ``top`` most frequent groups are shown.
    """
    pd = require_pandas()
    title = f"Latency by {by}" + (" (traces)" if roots_only else "")
    spans = store.spans_df(kind=kind, since=since, until=until)
    if by not in spans.columns:
        raise ValueError(f"by must be a span column such as 'name' or 'kind', not {by!r}")
    if roots_only:
        spans = spans[spans["parent_id"].isna()]
    if by == "graph_node":  # the node runs themselves, not the runs inside them
        node_runs = [
            is_node_run(tags, None if pd.isna(node) else node)
            for tags, node in zip(spans["tags"], spans["graph_node"], strict=True)
        ]
        spans = spans[pd.Series(node_runs, index=spans.index, dtype=bool)]
    spans = spans[spans["latency_ms"].notna()]
    if spans.empty:
        return no_data(title, "no finished spans in this selection")
    groups = _group_labels(spans[by])
    counts = groups.value_counts().head(top)
    order = sorted(counts.index, key=lambda g: spans["latency_ms"][groups == g].median())
    data = [spans["latency_ms"][groups == g].astype(float).to_numpy() for g in order]
    chart = new_chart(8.5, max(2.4, 0.42 * len(order) + 1.3))
    ax = chart.axes[0]
    ax.boxplot(
        data,
        orientation="horizontal",
        tick_labels=list(order),
        widths=0.6,
        showfliers=True,
        flierprops={"markersize": 3},
    )
    low = min(float(d.min()) for d in data)
    high = max(float(d.max()) for d in data)
    if low > 0 and high / low > 50:
        ax.set_xscale("log")
    for index, values in enumerate(data, start=1):
        p50, p95 = pd.Series(values).quantile([0.5, 0.95])
        ax.annotate(
            f"p50 {fmt_ms(p50)} · p95 {fmt_ms(p95)} · n={len(values)}",
            (1.01, index),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8,
            color="#424a53",
        )
    ax.set_xlabel("latency (ms)")
    ax.set_title(f"{title} ({len(spans):,} spans)")
    ax.grid(axis="x", alpha=0.3)
    return chart


def _model_spans(store: TraceStore, since: Any, until: Any) -> Any:
    spans = store.spans_df(since=since, until=until)
    return spans[spans["kind"].isin(MODEL_KINDS)]


def _stacked_over_time(
    frame: Any, value: str, by: str | None, freq: str, title: str, ylabel: str
) -> Chart:
    pd = require_pandas()
    frame = frame.copy()
    frame["bucket"] = frame["start_time"].dt.floor(freq)
    group = _group_labels(frame[by]) if by else pd.Series("all", index=frame.index)
    frame["group"] = group
    table = frame.pivot_table(
        index="bucket", columns="group", values=value, aggfunc="sum", fill_value=0
    ).astype(float)
    table = table[table.sum().sort_values(ascending=False).index]
    chart = new_chart(9.0, 4.0)
    ax = chart.axes[0]
    positions = range(len(table.index))
    bottom = [0.0] * len(table.index)
    for column in table.columns[:12]:
        heights = table[column].tolist()
        ax.bar(positions, heights, bottom=bottom, label=str(column), width=0.8)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if len(table.columns) > 12:
        rest = table[table.columns[12:]].sum(axis=1).tolist()
        ax.bar(positions, rest, bottom=bottom, label="(other)", width=0.8, color="#d0d7de")
    labels = [stamp.strftime("%m-%d %H:%M") for stamp in table.index]
    every = max(1, len(labels) // 12)
    ax.set_xticks(list(positions)[::every], labels[::every], rotation=30, ha="right")
    pad = max(0.6, (8 - len(labels)) / 2)  # a few buckets: narrow bars, centred
    ax.set_xlim(-pad, len(labels) - 1 + pad)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if by or len(table.columns) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return chart


def plot_cost(
    store: TraceStore,
    by: str | None = "model",
    *,
    freq: str = "1h",
    since: TimeLike | None = None,
    until: TimeLike | None = None,
) -> Chart:
    """Cost of model calls (USD) per time bucket of ``freq``, stacked by ``by``.

    Only model spans (``llm``, ``chat_model``) count, so roll-ups on chains are not added
    twice.  Calls whose price is unknown (``cost_usd`` null) are left out and counted in
    the title.
    """
    title = f"Cost per {freq}" + (f" by {by}" if by else "")
    spans = _model_spans(store, since, until)
    if by is not None and by not in spans.columns:
        raise ValueError(f"by must be a span column such as 'model' or 'user_id', not {by!r}")
    priced = spans[spans["cost_usd"].notna()]
    unknown = len(spans) - len(priced)
    if priced.empty:
        why = "no model call with a known cost in this selection"
        if unknown:
            why += f" ({unknown} calls with unknown price)"
        return no_data(title, why)
    if unknown:
        title += f" ({unknown} calls with unknown price not included)"
    return _stacked_over_time(priced, "cost_usd", by, freq, title, "USD")


def plot_tokens(
    store: TraceStore,
    by: str | None = None,
    *,
    freq: str = "1h",
    since: TimeLike | None = None,
    until: TimeLike | None = None,
) -> Chart:
    """Tokens of model calls per time bucket: input vs output, or total stacked by ``by``."""
    pd = require_pandas()
    title = f"Tokens per {freq}" + (f" by {by}" if by else "")
    spans = _model_spans(store, since, until)
    if by is not None and by not in spans.columns:
        raise ValueError(f"by must be a span column such as 'model', not {by!r}")
    if by is None:
        counted = spans[spans["input_tokens"].notna() | spans["output_tokens"].notna()]
        if counted.empty:
            return no_data(title, "no model call with token usage in this selection")
        long = pd.concat(
            [
                pd.DataFrame(
                    {
                        "start_time": counted["start_time"],
                        "type": label,
                        "tokens": counted[column].fillna(0),
                    }
                )
                for label, column in (("input", "input_tokens"), ("output", "output_tokens"))
            ],
            ignore_index=True,
        )
        return _stacked_over_time(long, "tokens", "type", freq, title, "tokens")
    counted = spans[spans["total_tokens"].notna()]
    if counted.empty:
        return no_data(title, "no model call with token usage in this selection")
    return _stacked_over_time(counted, "total_tokens", by, freq, title, "tokens")


def plot_branch_rates(
    store: TraceStore,
    source: str | None = None,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
) -> Chart:
    """Where routing decisions went: one bar per (source, destination), length = rate."""
    title = "Branch rates" + (f" at {source}" if source else "")
    stats = store.branch_stats(source, since=since, until=until)
    if not stats:
        return no_data(title, "no routing decisions (branch events) in this selection")
    chart = new_chart(8.0, max(2.2, 0.38 * len(stats) + 1.2))
    ax = chart.axes[0]
    colors: dict[str | None, str] = {}
    palette = [f"C{i}" for i in range(10)]
    labels = []
    for index, stat in enumerate(reversed(stats)):
        color = colors.setdefault(stat.source, palette[len(colors) % len(palette)])
        ax.barh(index, stat.rate, color=color, height=0.7)
        ax.text(
            stat.rate + 0.01,
            index,
            f"{stat.rate:.0%}  ({stat.count}/{stat.decisions})",
            va="center",
            fontsize=8,
        )
        destination = "? (unknown)" if stat.destination is None else stat.destination
        labels.append(f"{stat.source} → {destination}")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlim(0, max(1.0, max(s.rate for s in stats)) * 1.18)
    ax.set_xlabel("share of decisions at the source")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return chart
