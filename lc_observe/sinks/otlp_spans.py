"""OpenTelemetry spans from lc_observe records: GenAI semantic conventions and OpenInference.

- **Ids** (`lc_observe.trace_context`): the OTel trace id is the root run's UUID, a span
  id 8 bytes of BLAKE2b over the run's UUID; both deterministic, so the live export and
  ``lc-observe export --otlp`` give the same ids.  A trace that ran under an OpenTelemetry
  span (its recorded ``traceparent``) joins that trace, its root a child of that span.
- **Names.**  ``chat {model}`` / ``text_completion {model}`` / ``embeddings {model}``,
  ``execute_tool {name}``, ``retrieval {name}``; a LangGraph graph run is ``invoke_agent
  {name}`` when it is an agent (a model or tool is called in it), else ``invoke_workflow
  {name}``; other runs keep LangChain's name.
- **Attributes.**  GenAI (``gen_ai.*``: operation, provider, request/response model,
  request parameters, usage, finish reasons, response id, messages in the parts format,
  tool call id/description/arguments/result, retrieval documents, agent name) and, unless
  turned off, OpenInference (``openinference.span.kind``, ``input.value`` /
  ``output.value`` with mime types, ``llm.*`` messages and token counts, ``tool.*``,
  ``retrieval.documents.*``, ``metadata``, ``tag.tags``); ``session.id`` / ``user.id``
  and ``langchain.*`` / ``langgraph.*`` always.  Content (messages, inputs, outputs,
  arguments, results, document texts) follows one switch (`capture_content_default`) and
  is always the redacted public form of the record.
- **Status.**  ``OK`` on success; errors are ``ERROR`` with an ``exception`` event;
  LangGraph interrupts stay ``UNSET`` with ``lc_observe.status = "interrupted"``.
- **Branch decisions** are span events named ``langgraph.branch`` on the deciding span.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from lc_observe.graph_rules import is_node_run
from lc_observe.pipeline.serialize import Limits, dumps
from lc_observe.trace_context import otel_span_id, otel_trace_id, parse_traceparent

from . import otlp_content as content

__all__ = [
    "BRANCH_EVENT",
    "SpanBuilder",
    "capture_content_default",
    "otel_span_id",
    "otel_trace_id",
]

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
#: The keys under which the handler keeps a bare (non-dict) input or output.
_WRAPPERS = frozenset({"input", "output"})
#: Runs that make the nearest graph above them an agent.
_AGENT_WORK = frozenset({"chat_model", "llm", "tool"})
#: ``openinference.span.kind`` of each LangChain run type (others: CHAIN; agents: AGENT).
_OPENINFERENCE_KINDS = {
    "chat_model": "LLM",
    "llm": "LLM",
    "embedding": "EMBEDDING",
    "tool": "TOOL",
    "retriever": "RETRIEVER",
    "prompt": "PROMPT",
}
#: LangChain request parameter -> GenAI ``gen_ai.request.*`` attribute.
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}
#: The GenAI conventions' switch for message content on telemetry.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_OFF = frozenset({"false", "0", "no", "off", "no_content", "none"})


def capture_content_default() -> bool:
    """Whether content goes on exported spans when the sink is not told: on, unless
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says ``false`` (or
    ``NO_CONTENT``).  Content is always the redacted public form (`lc_observe.pipeline.privacy`)."""
    value = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    return value not in _OFF


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class SpanBuilder:
    """Turns a trace's records into ``ReadableSpan`` objects for any ``SpanExporter``.

    Args:
        resource: the OTel resource (``service.name`` ...) of every span.
        limits: size limits of content attributes.
        redact: applied to content attributes before they leave the process.
        include_content: put messages, inputs/outputs, tool arguments/results and document
            texts on spans; None: `capture_content_default` (the
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` switch, on by default).
        openinference: add OpenInference attributes (``openinference.span.kind``,
            ``input.value``, ``llm.*`` ...) alongside the GenAI ones: what Phoenix reads, and
            what MLflow reads first.
    """

    def __init__(
        self,
        resource: Resource,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        include_content: bool | None = None,
        openinference: bool = True,
    ) -> None:
        from .._version import __version__

        self.resource = resource
        self.limits = limits or Limits(max_field_chars=32_000)
        self.redact = redact
        self.include_content = (
            capture_content_default() if include_content is None else include_content
        )
        self.openinference = openinference
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
        agents = _agent_graphs(records, graph_runs)
        return [
            self.span(
                r,
                by_span.get(r["span_id"], ()),
                r["span_id"] in graph_runs,
                agent=r["span_id"] in agents,
            )
            for r in records
        ]

    def span(
        self,
        record: dict[str, Any],
        branches: Iterable[dict[str, Any]] = (),
        graph_run: bool = False,
        *,
        agent: bool = False,
    ) -> ReadableSpan:
        """The span of one finished record (``agent``: a graph run that is an agent)."""
        kind = record["kind"]
        trace_id = otel_trace_id(record["trace_id"])
        remote = parse_traceparent(record.get("traceparent"))
        if remote is not None:  # the trace ran under an OTel span: join its trace
            trace_id = remote[0]
        context = SpanContext(trace_id, otel_span_id(record["span_id"]), False, _SAMPLED)
        parent = None
        if record["parent_id"] is not None:
            parent = SpanContext(trace_id, otel_span_id(record["parent_id"]), False, _SAMPLED)
        elif remote is not None:
            parent = SpanContext(trace_id, remote[1], True, _SAMPLED)
        attributes = self._attributes(record, graph_run, agent)
        events = [self.branch_event(b) for b in branches]
        status = Status(StatusCode.OK) if record["status"] == "ok" else Status(StatusCode.UNSET)
        error = record["error"]
        if record["status"] == "error" and error:
            status = Status(StatusCode.ERROR, f"{error.get('type')}: {error.get('message')}")
            attributes["error.type"] = str(error.get("type"))
            events.insert(0, self._exception_event(record))
        end = record["end_time"] if record["end_time"] is not None else record["start_time"]
        return ReadableSpan(
            name=self._name(record, graph_run, agent),
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
    def _name(record: dict[str, Any], graph_run: bool, agent: bool = False) -> str:
        kind, name, model = record["kind"], record["name"], record.get("model")
        if kind in ("chat_model", "llm", "embedding"):
            return f"{_OPERATIONS[kind]} {model}" if model else _OPERATIONS[kind]
        if kind in ("tool", "retriever"):
            return f"{_OPERATIONS[kind]} {name}"
        if graph_run:
            return f"{'invoke_agent' if agent else 'invoke_workflow'} {name}"
        return name

    def _attributes(self, record: dict[str, Any], graph_run: bool, agent: bool) -> dict[str, Any]:
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
        operation = _OPERATIONS.get(kind)
        if graph_run:
            operation = "invoke_agent" if agent else "invoke_workflow"
            attrs["gen_ai.agent.name" if agent else "gen_ai.workflow.name"] = record["name"]
        if operation:
            attrs["gen_ai.operation.name"] = operation
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
        elif kind == "tool":
            self._tool_attributes(record, attrs)
        elif kind == "retriever":
            self._retriever_attributes(record, attrs)
        if self.openinference:
            oi_kind = "AGENT" if agent else _OPENINFERENCE_KINDS.get(kind, "CHAIN")
            attrs["openinference.span.kind"] = oi_kind
            if record["tags"]:
                attrs["tag.tags"] = [str(t) for t in record["tags"]]
            if record["metadata"]:
                attrs["metadata"] = attrs["langchain.metadata"]
        if self.include_content:
            self._content(record, attrs)
        return attrs

    def _model_attributes(self, record: dict[str, Any], attrs: dict[str, Any]) -> None:
        requested, served = record.get("model"), record.get("response_model")
        if record.get("provider"):
            attrs["gen_ai.provider.name"] = record["provider"]
            attrs["gen_ai.system"] = record["provider"]  # the older name, still widely read
        if requested:
            attrs["gen_ai.request.model"] = requested
        if served or requested:
            attrs["gen_ai.response.model"] = served or requested
        params = record.get("params") if isinstance(record.get("params"), dict) else {}
        for key, value in params.items():
            attr = _REQUEST_ATTRIBUTES.get(key)
            if attr is None or value is None:
                continue
            if attr == "gen_ai.request.stop_sequences":
                value = [value] if isinstance(value, str) else [str(v) for v in value]
            elif not isinstance(value, (int, float, str, bool)):
                continue
            attrs[attr] = value
        for key, attr in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
            ("cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
            ("cache_creation_tokens", "gen_ai.usage.cache_write.input_tokens"),
            ("cache_creation_tokens", "gen_ai.usage.cache_creation.input_tokens"),  # older name
            ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
            ("cost_usd", "lc_observe.cost_usd"),
        ):
            if record.get(key) is not None:
                attrs[attr] = record[key]
        if record.get("ttft_ms") is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = record["ttft_ms"] / 1000
        talk = content.Conversation.of(record["inputs"], record["outputs"])
        reasons = [r for r in talk.finish_reasons if r]
        if reasons:
            attrs["gen_ai.response.finish_reasons"] = reasons
        if talk.response_id:
            attrs["gen_ai.response.id"] = talk.response_id
        if self.openinference:
            if served or requested:
                attrs["llm.model_name"] = served or requested
            if requested:
                attrs["llm.request.model_name"] = requested
            if served:
                attrs["llm.response.model_name"] = served
            if record.get("provider"):
                attrs["llm.provider"] = attrs["llm.system"] = record["provider"]
            if params:
                attrs["llm.invocation_parameters"] = self._text(params)
            if reasons:
                attrs["llm.finish_reason"] = reasons[0]
            for key, attr in (
                ("input_tokens", "llm.token_count.prompt"),
                ("output_tokens", "llm.token_count.completion"),
                ("total_tokens", "llm.token_count.total"),
                ("cached_tokens", "llm.token_count.prompt_details.cache_read"),
                ("cache_creation_tokens", "llm.token_count.prompt_details.cache_write"),
                ("reasoning_tokens", "llm.token_count.completion_details.reasoning"),
            ):
                if record.get(key) is not None:
                    attrs[attr] = record[key]
        if self.include_content:
            if talk.system:
                attrs["gen_ai.system_instructions"] = self._text(talk.system)
            if talk.inputs:
                attrs["gen_ai.input.messages"] = self._text(talk.genai_inputs())
            if talk.outputs:
                attrs["gen_ai.output.messages"] = self._text(talk.genai_outputs())
            if self.openinference:
                for key, value in talk.openinference(self._text):
                    attrs[key] = self._text(value)

    def _tool_attributes(self, record: dict[str, Any], attrs: dict[str, Any]) -> None:
        attrs["gen_ai.tool.name"] = record["name"]
        attrs["gen_ai.tool.type"] = "function"
        params = record.get("params") if isinstance(record.get("params"), dict) else {}
        call_id = content.tool_call_id(record)
        if call_id:
            attrs["gen_ai.tool.call.id"] = call_id
        if isinstance(params.get("description"), str):
            attrs["gen_ai.tool.description"] = self._text(params["description"])
        if self.openinference:
            attrs["tool.name"] = record["name"]
            if "gen_ai.tool.description" in attrs:
                attrs["tool.description"] = attrs["gen_ai.tool.description"]
            if call_id:
                attrs["tool.id"] = call_id

    def _retriever_attributes(self, record: dict[str, Any], attrs: dict[str, Any]) -> None:
        docs = content.documents(record["outputs"])
        shown = [
            {k: v for k, v in d.items() if self.include_content or k in ("id", "score")}
            for d in docs
        ]
        if docs:
            attrs["gen_ai.retrieval.documents"] = self._text(shown)
        if self.openinference:
            for i, doc in enumerate(shown):
                head = f"retrieval.documents.{i}.document"
                for key in ("id", "content", "score"):
                    if doc.get(key) is not None:
                        value = doc[key]
                        attrs[f"{head}.{key}"] = value if key == "score" else self._text(value)
                if doc.get("metadata"):
                    attrs[f"{head}.metadata"] = self._text(doc["metadata"])

    def _content(self, record: dict[str, Any], attrs: dict[str, Any]) -> None:
        inputs, outputs = record["inputs"], record["outputs"]
        if inputs is not None:
            attrs["lc_observe.inputs"] = self._text(inputs)
        if outputs is not None:
            attrs["lc_observe.outputs"] = self._text(outputs)
        kind = record["kind"]
        if kind == "tool":
            if inputs is not None:
                attrs["gen_ai.tool.call.arguments"] = attrs["lc_observe.inputs"]
            if isinstance(outputs, dict) and "output" in outputs:
                attrs["gen_ai.tool.call.result"] = self._text(content.tool_result(outputs))
        elif kind == "retriever" and isinstance(inputs, dict):
            query = inputs.get("query")
            if isinstance(query, str):
                attrs["gen_ai.retrieval.query.text"] = self._text(query)
        if self.openinference:
            for side, value in (("input", inputs), ("output", outputs)):
                if kind == "tool" and side == "output":
                    value = content.tool_result(outputs)
                text, mime = self._io_value(value)
                if text is not None:
                    attrs[f"{side}.value"] = text
                    attrs[f"{side}.mime_type"] = mime

    def _io_value(self, value: Any) -> tuple[str | None, str]:
        """OpenInference's ``input.value``/``output.value``: text as text, anything else as
        JSON.  A value LangChain handed over bare (the handler keeps it as ``{"input": v}``
        / ``{"output": v}``) is shown bare."""
        if value is None:
            return None, "text/plain"
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _WRAPPERS:
            value = next(iter(value.values()))
        if isinstance(value, str):
            return self._text(value), "text/plain"
        return self._text(value), "application/json"

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


def _agent_graphs(records: list[dict[str, Any]], graph_runs: set[str]) -> set[str]:
    """Graph runs that are agents: the nearest graph run above a model call or a tool call
    (the graph reasons or acts itself).  A graph whose nodes only run other graphs, or
    plain functions, stays a workflow."""
    parents = {r["span_id"]: r["parent_id"] for r in records}
    agents: set[str] = set()
    for record in records:
        if record["kind"] not in _AGENT_WORK:
            continue
        up = record["parent_id"]
        seen = 0
        while up is not None and up not in graph_runs and seen < 10_000:
            up, seen = parents.get(up), seen + 1
        if up is not None and up in graph_runs:
            agents.add(up)
    return agents
