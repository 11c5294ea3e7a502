"""Notebook views of lc_observe data: HTML trace views, the observed graph, DataFrames, charts.

Everything here is reached through `TraceStore` methods; this package holds the code.

* `TraceView` (``store.view(trace_id)``): header, collapsible span tree, waterfall.
* `GraphView` (``store.graph()``): the LangGraph graph as observed, as SVG and Mermaid.
* `RecordList`: what ``store.traces()``/``spans()``/``branches()`` return; shows as a table.
* ``frames`` (needs pandas): ``store.spans_df()`` and friends.
* ``charts`` (needs matplotlib): ``store.plot_latency()`` and friends.

The HTML is self-contained (inline CSS, no script, no network) and escapes all user content.
"""

from __future__ import annotations

from ._html import HTML
from .graph import GraphView
from .records import RecordList
from .trace import TraceView

__all__ = ["HTML", "GraphView", "RecordList", "TraceView"]
