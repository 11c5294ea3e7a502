"""The typed records `TraceStore` returns: `Span`, `Trace`, `BranchEvent`.

These are pydantic v2 models built from database rows.  The handler does not use
them on its hot path (it fills plain dicts, see `lc_observe.records`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    span_count: int = 1
    error_count: int = 0

    def _repr_html_(self) -> str:
        from .views.records import span_html

        return span_html(self)


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
        from .views.records import branch_html

        return branch_html(self)


class BranchStat(BaseModel):
    """How often decisions at ``source`` went to ``destination`` (``None``: unknown)."""

    source: str | None
    destination: str | None
    count: int
    decisions: int = Field(description="decisions taken at `source` in the selection")
    rate: float = Field(description="count / decisions")

    def _repr_html_(self) -> str:
        from .views.records import model_html

        return model_html(self)


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
    branches: list[BranchEvent] | None = Field(
        default=None, description="Routing decisions; filled by `TraceStore.trace()`."
    )

    @property
    def is_graph(self) -> bool:
        """True when the trace ran a LangGraph graph."""
        return self.graph_name is not None

    def _repr_html_(self) -> str:
        """Totals and routing decisions; ``TraceStore.view(trace_id)`` adds tree and waterfall."""
        from .views.records import trace_html

        return trace_html(self)
