"""OpenTelemetry spans from lc_observe records, following the GenAI semantic conventions.

- **Ids.**  The OTel trace id is the root run's UUID (its 128 bits: the hex trace id is
  the LangChain trace id without dashes); a span id is the first 8 bytes of the BLAKE2b
  hash of the run's UUID.  Both are deterministic, so the live export and
  ``lc-observe export --otlp`` give the same ids, and parents link up across batches.
- **Names and attributes.**  Model calls are ``"chat {model}"`` / ``"text_completion
  {model}"`` / ``"embeddings {model}"`` with ``gen_ai.operation.name``,
  ``gen_ai.provider.name`` (and the older ``gen_ai.system``), ``gen_ai.request.model``,
  ``gen_ai.response.model`` and ``gen_ai.usage.*``; tools are ``"execute_tool {name}"``;
  retrievers ``"retrieval {name}"``; a LangGraph graph run is ``"invoke_workflow {name}"``;
  other runs keep LangChain's name.  Every span carries ``langchain.run.*``,
  ``langgraph.*`` and session/user attributes; content (inputs/outputs as JSON, redacted)
  unless turned off.
- **Status.**  Errors are ``ERROR`` with an ``exception`` event; LangGraph interrupts stay
  ``UNSET`` with ``lc_observe.status = "interrupted"``.
- **Branch decisions** are span events named ``langgraph.branch`` on the deciding span.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ..langgraph import is_node_run
from ..serialize import Limits, dumps

BRANCH_EVENT = "langgraph.branch"
_OPERATIONS = {
    "chat_model": "chat",
    "llm": "text_completion",
    "embedding": "embeddings",
    "tool": "execute_tool",
    "retriever": "retrieval",
}
_CLIENT_KINDS = frozenset({"chat_model", "llm", "embedding"})  # calls to a model service
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def otel_trace_id(trace_id: str) -> int:
    """The OTel trace id of a LangChain trace: the root run's UUID as a 128-bit int."""
    try:
        value = UUID(trace_id).int
    except ValueError:
        value = int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=16).digest(), "big")
    return value or 1


def otel_span_id(span_id: str) -> int:
    """The OTel span id of a run: 8 bytes of BLAKE2b over the run's UUID (never 0)."""
    try:
        raw = UUID(span_id).bytes
    except ValueError:
        raw = span_id.encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") or 1


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class SpanBuilder:
    """Turns a trace's records into ``ReadableSpan`` objects for any ``SpanExporter``.

    Args:
        resource: the OTel resource (``service.name`` ...) of every span.
        limits: size limits of content attributes.
        redact: applied to content attributes before they leave the process.
        include_content: put inputs/outputs (and tool arguments/results) on spans.
    """

    def __init__(
        self,
        resource: Resource,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        include_content: bool = True,
    ) -> None:
        from .._version import __version__

        self.resource = resource
        self.limits = limits or Limits(max_field_chars=32_000)
        self.redact = redact
        self.include_content = include_content
        self.scope = InstrumentationScope("lc_observe", __version__)

    def spans(
        self, records: Iterable[dict[str, Any]], branches: Iterable[dict[str, Any]] = ()
    ) -> list[ReadableSpan]:
        """Spans of finished span records; ``branches`` become events on their span."""
        records = list(records)
        by_span: dict[str, list[dict[str, Any]]] = {}
        for branch in branches:
            by_span.setdefault(branch.get("span_id") or "", []).append(branch)
        graph_runs = {
            r["parent_id"]
            for r in records
            if r["parent_id"] is not None and is_node_run(r["tags"], r["graph_node"])
        }
        return [
            self.span(r, by_span.get(r["span_id"], ()), r["span_id"] in graph_runs) for r in records
        ]

    def span(
        self,
        record: dict[str, Any],
        branches: Iterable[dict[str, Any]] = (),
        graph_run: bool = False,
    ) -> ReadableSpan:
        """The span of one finished record."""
        kind = record["kind"]
        trace_id = otel_trace_id(record["trace_id"])
        context = SpanContext(trace_id, otel_span_id(record["span_id"]), False, _SAMPLED)
        parent = None
        if record["parent_id"] is not None:
            parent = SpanContext(trace_id, otel_span_id(record["parent_id"]), False, _SAMPLED)
        attributes = self._attributes(record, graph_run)
        events = [self.branch_event(b) for b in branches]
        status = Status(StatusCode.UNSET)
        error = record["error"]
        if record["status"] == "error" and error:
            status = Status(StatusCode.ERROR, f"{error.get('type')}: {error.get('message')}")
            attributes["error.type"] = str(error.get("type"))
            events.insert(0, self._exception_event(record))
        end = record["end_time"] if record["end_time"] is not None else record["start_time"]
        return ReadableSpan(
            name=self._name(record, graph_run),
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            events=events,
            kind=SpanKind.CLIENT if kind in _CLIENT_KINDS else SpanKind.INTERNAL,
            status=status,
            start_time=_ns(record["start_time"]),
            end_time=_ns(end),
            instrumentation_scope=self.scope,
        )

    def branch_event(self, branch: dict[str, Any]) -> Event:
        """A ``langgraph.branch`` span event."""
        attributes: dict[str, Any] = {
            "langgraph.branch.kind": str(branch.get("kind")),
            "langgraph.branch.destinations": [str(d) for d in branch.get("destinations") or ()],
            "langgraph.branch.result": self._text(branch.get("result")),
        }
        for key in ("source", "condition", "checkpoint_ns"):
            if branch.get(key) is not None:
                attributes[f"langgraph.branch.{key}"] = str(branch[key])
        if isinstance(branch.get("step"), int):
            attributes["langgraph.branch.step"] = branch["step"]
        if branch.get("error"):
            attributes["langgraph.branch.error"] = self._text(branch["error"])
        when = branch.get("time")
        return Event(BRANCH_EVENT, attributes, _ns(when) if when else None)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _name(record: dict[str, Any], graph_run: bool) -> str:
        kind, name, model = record["kind"], record["name"], record.get("model")
        if kind in ("chat_model", "llm", "embedding"):
            return f"{_OPERATIONS[kind]} {model}" if model else _OPERATIONS[kind]
        if kind in ("tool", "retriever"):
            return f"{_OPERATIONS[kind]} {name}"
        if graph_run:
            return f"invoke_workflow {name}"
        return name

    def _attributes(self, record: dict[str, Any], graph_run: bool) -> dict[str, Any]:
        kind = record["kind"]
        attrs: dict[str, Any] = {
            "langchain.run.id": record["span_id"],
            "langchain.run.name": record["name"],
            "langchain.run.type": kind,
            "langchain.trace.id": record["trace_id"],
            "lc_observe.status": record["status"],
        }
        if record["parent_id"] is not None:
            attrs["langchain.parent_run.id"] = record["parent_id"]
        if record["tags"]:
            attrs["langchain.tags"] = [str(t) for t in record["tags"]]
        if record["metadata"]:
            attrs["langchain.metadata"] = self._text(record["metadata"])
        operation = _OPERATIONS.get(kind) or ("invoke_workflow" if graph_run else None)
        if operation:
            attrs["gen_ai.operation.name"] = operation
        if graph_run:
            attrs["gen_ai.workflow.name"] = record["name"]
        if kind == "tool":
            attrs["gen_ai.tool.name"] = record["name"]
        for key, attr in (
            ("graph_node", "langgraph.node"),
            ("graph_step", "langgraph.step"),
            ("checkpoint_ns", "langgraph.checkpoint_ns"),
            ("session_id", "session.id"),
            ("user_id", "user.id"),
        ):
            if record.get(key) is not None:
                attrs[attr] = record[key]
        if record.get("session_id") is not None:
            attrs["gen_ai.conversation.id"] = record["session_id"]
        if kind in _CLIENT_KINDS:
            self._model_attributes(record, attrs)
        if self.include_content:
            self._content(record, attrs)
        return attrs

    @staticmethod
    def _model_attributes(record: dict[str, Any], attrs: dict[str, Any]) -> None:
        if record.get("provider"):
            attrs["gen_ai.provider.name"] = record["provider"]
            attrs["gen_ai.system"] = record["provider"]  # the older name, still widely read
        if record.get("model"):
            attrs["gen_ai.request.model"] = record["model"]
            attrs["gen_ai.response.model"] = record["model"]
        for key, attr in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
            ("cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
            ("cache_creation_tokens", "gen_ai.usage.cache_creation.input_tokens"),
            ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
            ("cost_usd", "lc_observe.cost_usd"),
        ):
            if record.get(key) is not None:
                attrs[attr] = record[key]
        if record.get("ttft_ms") is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = record["ttft_ms"] / 1000

    def _content(self, record: dict[str, Any], attrs: dict[str, Any]) -> None:
        inputs, outputs = record["inputs"], record["outputs"]
        if inputs is not None:
            attrs["lc_observe.inputs"] = self._text(inputs)
        if outputs is not None:
            attrs["lc_observe.outputs"] = self._text(outputs)
        if record["kind"] == "tool":
            if inputs is not None:
                attrs["gen_ai.tool.call.arguments"] = attrs["lc_observe.inputs"]
            if isinstance(outputs, dict) and "output" in outputs:
                attrs["gen_ai.tool.call.result"] = self._text(outputs["output"])
        elif record["kind"] == "retriever" and isinstance(inputs, dict):
            query = inputs.get("query")
            if isinstance(query, str):
                attrs["gen_ai.retrieval.query.text"] = self._text(query)

    def _exception_event(self, record: dict[str, Any]) -> Event:
        error = record["error"] or {}
        attributes = {
            "exception.type": str(error.get("type")),
            "exception.message": self._text(error.get("message") or ""),
        }
        if error.get("traceback"):
            attributes["exception.stacktrace"] = self._text(error["traceback"])
        return Event("exception", attributes, _ns(record["end_time"] or record["start_time"]))

    def _text(self, value: Any) -> str:
        """A string attribute: strings as they are, anything else as JSON (both redacted
        and within the limits)."""
        text = dumps(value, self.limits, self.redact)
        if isinstance(value, str):
            decoded = json.loads(text)
            return decoded if isinstance(decoded, str) else text
        return text
