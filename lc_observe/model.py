"""The typed records `TraceStore` returns: `Span`, `Trace`, `BranchEvent`.

These are pydantic v2 models built from database rows.  The handler does not use
them on its hot path (it fills plain dicts, see `lc_observe.records`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

#: How notebooks show each model type: ``"span"``, ``"branch"``, ``"trace"``, ``"row"`` and
#: ``"records"`` -> a function returning HTML.  `lc_observe.views.records` registers them
#: when it is imported (``import lc_observe`` does): the model knows no view.
HTML_RENDERERS: dict[str, Callable[[Any], str]] = {}


def render_html(kind: str, value: Any) -> str:
    """The notebook HTML of ``value`` (plain text while no view is registered)."""
    render = HTML_RENDERERS.get(kind)
    if render is None:
        return f"<pre>{html.escape(repr(value))}</pre>"
    return render(value)


class RecordList(list[Any]):
    """A ``list`` of records that notebooks display as an HTML table: what
    ``TraceStore.traces()`` / ``spans()`` / ``branches()`` return.

    It is a real list (``==``, slicing, ``json.dumps`` all behave as usual); only
    ``_repr_html_`` is added.
    """

    def _repr_html_(self) -> str:
        return render_html("records", self)


Status = Literal["ok", "error", "interrupted", "running"]


class ErrorInfo(BaseModel):
    """What a failed run raised."""

    type: str
    message: str
    traceback: str | None = None


class _Usage(BaseModel):
    """Token and cost fields; on chain spans and traces they are rolled-up totals."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None


class Span(_Usage):
    """One LangChain run: a chain, model, tool, retriever, prompt or parser call.

    ``span_id`` is LangChain's ``run_id`` and ``trace_id`` the root run's id, so spans
    line up with LangSmith and with LangChain's own tracers.
    """

    model_config = ConfigDict(frozen=True)

    span_id: str
    trace_id: str
    parent_id: str | None = None
    name: str
    kind: str
    status: Status
    start_time: datetime
    end_time: datetime | None = None
    latency_ms: float | None = None
    error: ErrorInfo | None = None
    inputs: Any = None
    outputs: Any = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = None
    session_id: str | None = None
    graph_node: str | None = None
    graph_step: int | None = None
    checkpoint_ns: str | None = None
    model: str | None = None
    provider: str | None = None
    ttft_ms: float | None = None
    cache_hit: bool | None = Field(
        default=None,
        description="Model spans: answered by LangChain's LLM cache (chat models; a cached "
        "legacy LLM call makes no callback at all). None elsewhere.",
    )
    response_model: str | None = Field(
        default=None, description="Model spans: the model the response names (`model`: requested)."
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="A model's request parameters (temperature, max_tokens ...); a tool's "
        "description and tool_call_id.",
    )
    traceparent: str | None = Field(
        default=None,
        description="W3C traceparent of the OpenTelemetry span (or remote LangSmith run) "
        "the trace ran under.",
    )
    span_count: int = 1
    error_count: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of a streamed model call, after its first token."""
        if self.ttft_ms is None or not self.output_tokens or self.latency_ms is None:
            return None
        generating_ms = self.latency_ms - self.ttft_ms
        return self.output_tokens * 1000.0 / generating_ms if generating_ms > 0 else None

    def _repr_html_(self) -> str:
        return render_html("span", self)


class BranchEvent(BaseModel):
    """One LangGraph routing decision: where the graph went from ``source``, and why."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    trace_id: str
    span_id: str | None = None
    source: str | None = None
    condition: str | None = None
    result: Any = None
    destinations: list[str] = Field(default_factory=list)
    kind: str
    step: int | None = None
    checkpoint_ns: str | None = None
    time: datetime | None = None
    error: dict[str, Any] | None = None

    def _repr_html_(self) -> str:
        return render_html("branch", self)


class _Row(BaseModel):
    """A read-only result row; shows as a one-row HTML table in notebooks."""

    model_config = ConfigDict(frozen=True)

    def _repr_html_(self) -> str:
        return render_html("row", self)


class BranchStat(_Row):
    """How often decisions at ``source`` went to ``destination`` (``None``: unknown)."""

    source: str | None
    destination: str | None
    count: int = Field(description="decisions that went to `destination`")
    tasks: int = Field(0, description="tasks those decisions started there (fan-out kept)")
    decisions: int = Field(description="decisions taken at `source` in the selection")
    rate: float = Field(description="count / decisions")


class Trace(_Usage):
    """One root run and everything under it (totals are rolled up over all its spans)."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    name: str
    kind: str
    status: Status
    start_time: datetime
    end_time: datetime | None = None
    latency_ms: float | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_name: str | None = None
    span_count: int = 1
    error_count: int = 0
    traceparent: str | None = Field(
        default=None,
        description="W3C traceparent of the OpenTelemetry span (or remote LangSmith run) "
        "this trace ran under; `otel_trace_id` is its trace id.",
    )
    branches: list[BranchEvent] | None = Field(
        default=None, description="Routing decisions; filled by `TraceStore.trace()`."
    )

    @property
    def otel_trace_id(self) -> str:
        """The OpenTelemetry trace id (32 hex digits) the trace's spans are exported with:
        the enclosing span's when it ran under one, else the root run's UUID."""
        if self.traceparent:
            return self.traceparent.split("-")[1]
        from .trace_context import otel_trace_id

        return f"{otel_trace_id(self.trace_id):032x}"

    @property
    def is_graph(self) -> bool:
        """True when the trace ran a LangGraph graph."""
        return self.graph_name is not None

    def _repr_html_(self) -> str:
        """Totals and routing decisions; ``TraceStore.view(trace_id)`` adds tree and waterfall."""
        return render_html("trace", self)


class BudgetExceeded(_Row):
    """A `lc_observe.Budget` used up: which one, for which scope, by which model call."""

    id: int | None = None
    time: datetime
    budget: str = Field(description="the budget's name or description")
    per: str = Field(description="trace, user_id, session_id or day")
    scope: str = Field(description="the trace id, user id, session id or UTC date")
    metric: Literal["cost_usd", "tokens"]
    limit_value: float
    spent: float = Field(description="spending in the scope when the limit was reached")
    action: str = Field(description="warn, raise or callable")
    trace_id: str
    span_id: str = Field(description="the model call that used the budget up")
    user_id: str | None = None
    session_id: str | None = None


class SearchHit(_Row):
    """One `TraceStore.search` result: a span whose text matched, and where it matched.

    ``rank`` is SQLite FTS5's bm25 score (lower is a better match; hits come best first).
    """

    trace_id: str
    span_id: str
    name: str
    kind: str
    status: str
    start_time: datetime
    field: str = Field(description="where the match is: name, inputs, outputs, error, metadata")
    snippet: str = Field(description="the matching text around the first match, plain text")
    rank: float


class StatRow(_Row):
    """Statistics of one group of spans or traces (`TraceStore.stats`).

    Latency and TTFT in milliseconds; percentiles interpolate linearly between the
    closest ranks (``statistics.quantiles(..., method="inclusive")``, numpy's default).
    Token and cost figures are sums; ``cost_mean_usd`` averages the priced units only.
    """

    by: str
    group: str | None
    count: int = Field(description="spans (or traces, for user_id/session_id/tag) finished")
    errors: int
    error_rate: float
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    model_calls: int = Field(0, description="chat model / LLM calls in the group")
    ttft_mean_ms: float | None = None
    ttft_p95_ms: float | None = None
    tokens_per_s: float | None = Field(None, description="mean output rate of streamed calls")
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = Field(None, description="None when nothing in the group is priced")
    cost_mean_usd: float | None = None
    unpriced: int = Field(0, description="model calls with tokens but no known price")
    cache_hits: int = 0
    cache_hit_rate: float | None = Field(None, description="cache hits / chat model calls")
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="mean of each numeric / boolean score (a pass rate) over the group",
    )
    score_counts: dict[str, int] = Field(
        default_factory=dict, description="scores behind each mean"
    )


ScoreSource = Literal["human", "judge", "heuristic", "feedback"]


class Score(_Row):
    """A quality score of a trace (or of one span in it): user feedback, a heuristic check
    or an LLM judge's verdict (`TraceStore.add_score`, `ObsHandler.score`).

    ``value`` is a float (numeric), a bool (boolean) or a str (categorical), as given;
    ``value_type`` says which.  A malformed judge verdict has ``value=None`` and ``error``.
    """

    id: int | None = None
    trace_id: str
    span_id: str | None = None
    name: str
    value: bool | float | str | None = Field(
        description="float (numeric), bool (boolean) or str (categorical); None if malformed"
    )
    value_type: Literal["numeric", "boolean", "categorical", "error"] = "numeric"
    source: str = "human"
    author: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: dict[str, Any] | None = Field(
        default=None, description="why a verdict could not be read (message, raw text)"
    )
    time: datetime

    @property
    def numeric(self) -> float | None:
        """The value as a number (booleans 1.0 / 0.0); None for categorical or malformed."""
        if isinstance(self.value, bool):
            return float(self.value)
        return self.value if isinstance(self.value, float) else None


class ScoreStat(_Row):
    """Scores of one name and source (`TraceStore.score_stats`): how many, their mean
    (a pass rate for booleans), range, category counts and unreadable verdicts."""

    name: str
    source: str
    value_type: str = Field(description="numeric, boolean, categorical (error: all malformed)")
    count: int = Field(description="scores given, malformed ones included")
    traces: int = Field(description="distinct traces scored")
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    labels: dict[str, int] = Field(default_factory=dict, description="categorical: per value")
    malformed: int = Field(0, description="judge verdicts that could not be read")


AnomalyKind = Literal[
    "token_spike",
    "cost_increase",
    "latency_degradation",
    "ttft_degradation",
    "error_rate_jump",
    "branch_rate_change",
    "new_path",
    "new_model",
    "new_error",
]


class Anomaly(_Row):
    """Something that changed for the worse between a baseline window and a recent one
    (`TraceStore.anomalies`).  ``ratio`` is recent / baseline (None when the baseline is 0);
    for rates ``baseline_value``/``recent_value`` are shares (0..1)."""

    kind: AnomalyKind
    by: str = Field(description="the grouping: name, model, graph_node, metadata.<key>, ...")
    group: str | None = Field(description="the group, e.g. a model, or 'router -> review'")
    metric: str = Field(description="what was compared, e.g. 'median total_tokens'")
    baseline_value: float | None
    recent_value: float | None
    ratio: float | None
    baseline_n: int = Field(description="units in the baseline window (runs, calls, decisions)")
    recent_n: int = Field(description="units in the recent window")
    p_value: float | None = Field(description="the test's own p-value")
    p_adjusted: float | None = Field(description="after the multiple-testing correction")
    trace_ids: list[str] = Field(default_factory=list, description="example recent traces")
    explanation: str


class Alert(_Row):
    """One alert episode that fired (`ObsHandler(alerts=...)`, `TraceStore.alerts`)."""

    id: int | None = None
    time: datetime
    rule: str = Field(description="the rule's name")
    kind: str = Field(description="threshold metric or anomaly kind")
    group: str | None = None
    value: float | None = None
    threshold: float | None = None
    message: str
    actions: list[str] = Field(default_factory=list, description="actions run, with outcome")
    trace_ids: list[str] = Field(default_factory=list)
