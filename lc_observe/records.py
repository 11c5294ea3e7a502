"""The plain records that travel from the handler to the sinks.

The callback path allocates no pydantic model: it fills plain dicts, and the
background worker turns them into rows.  Pydantic models (`lc_observe.model`) are
what `TraceStore` returns to users.

A *span record* is a ``dict`` with these keys (all present from creation on):

===================== =====================================================================
key                   value
===================== =====================================================================
``span_id``           str, the LangChain ``run_id``
``trace_id``          str, the root run's id
``parent_id``         str or None
``name``              str, the run name as LangChain's own tracers name it
``kind``              str, LangChain's run type (``chain``, ``llm``, ``chat_model``, ``tool``,
                      ``retriever``, ``prompt``, ``parser``, ``embedding`` ...)
``start_time``        float, epoch seconds (UTC)
``end_time``          float or None
``latency_ms``        float or None
``status``            ``"ok"``, ``"error"``, ``"interrupted"`` or ``"running"``
``error``             None or ``{"type", "message", "traceback"}``
``inputs``            raw Python object (serialized on the worker thread)
``outputs``           raw Python object or None
``tags``              list[str]
``metadata``          dict
``user_id``           str or None
``session_id``        str or None
``graph_node``        str or None (LangGraph ``langgraph_node``)
``graph_step``        int or None (LangGraph ``langgraph_step``)
``checkpoint_ns``     str or None (LangGraph ``langgraph_checkpoint_ns``)
``graph_name``        str or None: name of the outermost graph run in this subtree
``model`` ...         usage fields, see ``USAGE_FIELDS``; None when unknown
``cache_hit``         None, or for model spans whether LangChain's LLM cache answered
``response_model``    str or None: the model the response names (``model`` is the requested)
``params``            None or dict: a model's request parameters (temperature ...), a tool's
                      description and call id
``traceparent``       str or None: W3C traceparent of the OpenTelemetry span (or remote
                      LangSmith run) the trace runs under, on every span of the trace
``span_count``        int, this span plus its finished descendants (rolled up)
``error_count``       int, spans with status error in this subtree (rolled up)
===================== =====================================================================

A *branch event record* is a dict with the keys of ``BRANCH_FIELDS``.

Keys starting with ``_`` are the handler's bookkeeping.  Sinks never see them: the privacy
stage (`lc_observe.pipeline.privacy`) turns each finished record into its *public* form first --
the public keys only, values JSON-safe, bounded and redacted -- plus, when a sink wants
them (its ``wants``), ``ancestry`` (``[[start_time, span_id], ...]`` from the root down,
from the generic run link ``_link``), ``invocation`` (a model's start arguments) and
``serialized`` (its manifest).  `SPAN_FIELDS` and `BRANCH_FIELDS` are the keys of the
public records, of `lc_observe.model.Span` / `BranchEvent` and (``error`` as three
columns) of the tables: tests/test_layers.py ties them.
"""

from __future__ import annotations

from typing import Any

#: Token / cost fields carried by model spans and rolled up into their ancestors.
TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)

USAGE_FIELDS: tuple[str, ...] = ("model", "provider", *TOKEN_FIELDS, "cost_usd", "ttft_ms")

#: Fields summed from children into parents when a span finishes.
ROLLUP_FIELDS: tuple[str, ...] = (*TOKEN_FIELDS, "cost_usd")

SPAN_FIELDS: tuple[str, ...] = (
    "span_id",
    "trace_id",
    "parent_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "latency_ms",
    "status",
    "error",
    "inputs",
    "outputs",
    "tags",
    "metadata",
    "user_id",
    "session_id",
    "graph_node",
    "graph_step",
    "checkpoint_ns",
    *USAGE_FIELDS,
    "cache_hit",
    "response_model",
    "params",
    "traceparent",
    "span_count",
    "error_count",
)

BRANCH_FIELDS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "source",
    "condition",
    "result",
    "destinations",
    "kind",
    "step",
    "checkpoint_ns",
    "time",
    "error",
)

#: Record type markers used on the queue: ``(RECORD_SPAN, dict)`` etc.
RECORD_SPAN = "span"
#: A snapshot of a span that has not finished (written at flush/exit or when evicted); it
#: never replaces a finished span already stored.
RECORD_RUNNING = "running"
RECORD_BRANCH = "branch"
#: A budget crossed (`lc_observe.capture.budgets`): a dict with the keys of ``BUDGET_FIELDS``.
RECORD_BUDGET = "budget"

BUDGET_FIELDS: tuple[str, ...] = (
    "time",
    "budget",
    "per",
    "scope",
    "metric",
    "limit_value",
    "spent",
    "action",
    "trace_id",
    "span_id",
    "user_id",
    "session_id",
)

_EMPTY_USAGE: dict[str, Any] = dict.fromkeys(USAGE_FIELDS)


def new_span_record(
    span_id: str,
    trace_id: str,
    parent_id: str | None,
    name: str,
    kind: str,
    start_time: float,
    inputs: Any,
    tags: list[str],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Return a fresh open span record (status ``running``) with every key present."""
    record: dict[str, Any] = {
        "span_id": span_id,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "name": name,
        "kind": kind,
        "start_time": start_time,
        "end_time": None,
        "latency_ms": None,
        "status": "running",
        "error": None,
        "inputs": inputs,
        "outputs": None,
        "tags": tags,
        "metadata": metadata,
        "user_id": None,
        "session_id": None,
        "graph_node": None,
        "graph_step": None,
        "checkpoint_ns": None,
        "graph_name": None,
        "cache_hit": None,
        "response_model": None,
        "params": None,
        "traceparent": None,
        "span_count": 1,
        "error_count": 0,
    }
    record.update(_EMPTY_USAGE)
    return record
