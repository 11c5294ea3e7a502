"""LangSmith runs from lc_observe records, shaped as ``LangChainTracer`` shapes them.

For the same execution, a run built here carries what langchain-core's own tracer sends
to LangSmith: the same id, trace id, parent id and dotted order, name, run type (chat
models are ``"llm"``, as the tracer reports them), inputs and outputs (chat messages in
LangChain's serialized form, the model result as ``LLMResult.model_dump()``), error,
tags, ``extra.metadata`` (with the model's invocation params and ``usage_metadata``),
``extra.runtime`` and start/end events.  Values are made JSON-safe with the ``langsmith``
client's own encoder, so they read the same in LangSmith, then redacted like every other
lc_observe sink.  See ``docs/langsmith.md`` for the few fields that differ.

Branch decisions (records of type ``"branch"``) are attached to the run that decided:
an event named ``"langgraph.branch"`` and an entry in ``extra.metadata.lc_observe_branches``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from langchain_core.env import get_runtime_environment
from langchain_core.load import dumpd
from langchain_core.messages import BaseMessage, messages_from_dict
from langchain_core.messages.ai import add_usage
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
    LLMResult,
)

from lc_observe.pipeline.serialize import Limits, dumps

try:  # the client's encoder: LangSmith then shows exactly what LangChainTracer would send
    from langsmith._internal._serde import dumps_json as _client_json
except ImportError:  # pragma: no cover - older or newer langsmith: our encoder instead
    _client_json = None

#: Event name and metadata key of branch decisions on the deciding run.
BRANCH_EVENT = "langgraph.branch"
BRANCHES_KEY = "lc_observe_branches"
#: Keys of a branch record that travel to LangSmith.
BRANCH_KEYS = ("source", "condition", "result", "destinations", "kind", "step", "checkpoint_ns")
#: Invocation params LangChain keeps out of tracing metadata (large).
_INVOCATION_EXCLUDED = frozenset({"tools", "functions", "messages", "response_format"})
_STAMP = "%Y%m%dT%H%M%S%fZ"
_STAMP_LEN = 22  # "20260131T120000123456Z"
_MODEL_KINDS = frozenset({"llm", "chat_model"})
#: Fields a run update for a late branch event carries (not inputs/outputs: unchanged).
_SKELETON = (
    "id",
    "trace_id",
    "dotted_order",
    "parent_run_id",
    "name",
    "run_type",
    "start_time",
    "end_time",
    "session_name",
)


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (microseconds, as stored locally)."""
    return datetime.fromtimestamp(ts, timezone.utc)


def run_type(kind: str) -> str:
    """LangSmith's run type for a span kind: chat models are ``"llm"`` there."""
    return "llm" if kind == "chat_model" else kind


def order_link(record: dict[str, Any], parent: tuple | None) -> tuple:
    """The dotted-order link of a span: ``(parent's link, start time, span id)``."""
    return (parent, record["start_time"], record["span_id"])


def revive_message(data: Any) -> Any:
    """A chat message from its public form (``{"type": "human", "content": ...}``), so it
    can be sent in LangChain's serialized form; anything else is returned as it is."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return data
    body = {key: value for key, value in data.items() if key != "type"}
    try:
        return messages_from_dict([{"type": data["type"], "data": {**body, "type": data["type"]}}])[
            0
        ]
    except Exception:
        return data


def _serialized_message(message: Any) -> Any:
    return dumpd(message) if isinstance(message, BaseMessage) else message


def revive_result(data: Any) -> Any:
    """An ``LLMResult`` from its public form (the model spans' outputs); else ``data``."""
    if not isinstance(data, dict) or data.get("type") != "LLMResult":
        return data
    try:
        generations = [
            [_revive_generation(g) for g in batch] for batch in data.get("generations") or []
        ]
        return LLMResult(
            generations=generations, llm_output=data.get("llm_output", {}), run=data.get("run")
        )
    except Exception:
        return data


def _revive_generation(data: dict[str, Any]) -> Generation:
    info = data.get("generation_info")
    if "message" in data:
        message = revive_message(data["message"])
        if not isinstance(message, BaseMessage):
            raise TypeError("not a message")
        if data.get("type") == "ChatGenerationChunk":
            return ChatGenerationChunk(message=message, generation_info=info)  # type: ignore[arg-type]
        return ChatGeneration(message=message, generation_info=info)
    if data.get("type") == "GenerationChunk":
        return GenerationChunk(text=data.get("text", ""), generation_info=info)
    return Generation(text=data.get("text", ""), generation_info=info)


class RunBuilder:
    """Turns span and branch records into LangSmith run dicts (worker thread only).

    Args:
        project_name: the LangSmith project (``session_name``) of every run.
        limits: size limits; a value whose JSON is larger becomes lc_observe's marked preview.
        redact: applied to inputs, outputs, error, metadata on top of the privacy stage
            (default None: records arrive redacted already).
        cache_size: formatted dotted orders remembered (ancestors are formatted once).
    """

    def __init__(
        self,
        project_name: str | None,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.project_name = project_name
        self.limits = limits or Limits()
        self.redact = redact
        self.cache_size = cache_size
        self._orders: OrderedDict[str, str] = OrderedDict()

    # -- runs --------------------------------------------------------------------------------

    def run(self, record: dict[str, Any]) -> dict[str, Any]:
        """The run of a span record (finished, or a ``running`` snapshot)."""
        kind = record["kind"]
        if kind in _MODEL_KINDS and isinstance(record["outputs"], dict):
            # The model's result, rebuilt from its public form: sent as the tracer sends it.
            record = {**record, "outputs": revive_result(record["outputs"])}
        dotted, trace_id, parent_id = self.placement(record)
        start, end = record["start_time"], record["end_time"]
        metadata = dict(record["metadata"] or {})
        extra: dict[str, Any] = {}
        if kind in _MODEL_KINDS:
            self._model_extra(record, extra, metadata)
        extra["metadata"] = metadata
        extra = self.safe(extra)
        extra["runtime"] = dict(get_runtime_environment())
        error = self._error_text(record["error"])
        events: list[dict[str, Any]] = [{"name": "start", "time": utc(start)}]
        if record.get("ttft_ms") is not None:  # the tracer keeps the first token's time
            events.append({"name": "new_token", "time": utc(start + record["ttft_ms"] / 1000)})
        if end is not None:
            events.append({"name": "error" if error else "end", "time": utc(end)})
        run: dict[str, Any] = {
            "id": record["span_id"],
            "trace_id": trace_id,
            "dotted_order": dotted,
            "parent_run_id": parent_id,
            "name": record["name"],
            "run_type": run_type(kind),
            "start_time": utc(start),
            "end_time": None if end is None else utc(end),
            "inputs": self.safe(self._inputs(record)),
            "outputs": {} if record["outputs"] is None else self.safe(self._outputs(record)),
            "error": error,
            "tags": list(record["tags"] or ()),
            "extra": extra,
            "events": events,
            "session_name": self.project_name,
        }
        if record.get("serialized"):  # model runs: the client keeps it for llm runs only
            run["serialized"] = self.safe(record["serialized"])
        return run

    def add_branch(self, run: dict[str, Any], branch: dict[str, Any]) -> None:
        """Attach a branch decision to its deciding run: an event and a metadata entry."""
        info = self.safe({key: branch.get(key) for key in BRANCH_KEYS})
        if branch.get("error"):
            info["error"] = self.safe(branch["error"])
        when = branch.get("time")
        events = run.setdefault("events", [])
        events.append({"name": BRANCH_EVENT, "time": utc(when) if when else None, "kwargs": info})
        metadata = run.setdefault("extra", {}).setdefault("metadata", {})
        metadata.setdefault(BRANCHES_KEY, []).append(info)

    @staticmethod
    def skeleton(run: dict[str, Any]) -> dict[str, Any]:
        """What an update of a sent run needs to carry a late branch event (no inputs or
        outputs: those stay as sent)."""
        out = {key: run[key] for key in _SKELETON if run.get(key) is not None}
        extra = dict(run["extra"])
        extra["metadata"] = dict(extra.get("metadata") or {})
        out["extra"] = extra
        out["events"] = list(run["events"])
        return out

    # -- placement in the tree -------------------------------------------------------------

    def placement(self, record: dict[str, Any]) -> tuple[str, str, str | None]:
        """``(dotted_order, trace_id, parent_id)`` from the record's ``ancestry``
        (``[[start, span_id], ...]`` from the root down).  A span whose ancestry is unknown
        is sent as a root, as LangChainTracer does for a parent it never saw."""
        ancestry = record.get("ancestry")
        own = [[record["start_time"], record["span_id"]]]
        if not ancestry and record["parent_id"] is None:
            ancestry = own
        if ancestry:
            dotted = self._format(ancestry)
            if dotted[_STAMP_LEN : _STAMP_LEN + 36] == record["trace_id"]:
                return dotted, record["trace_id"], record["parent_id"]
        return self._format(own, cache=False), record["span_id"], None

    def _format(self, ancestry: list, cache: bool = True) -> str:
        """The dotted order of an ancestry; each ancestor's prefix is formatted once."""
        text = ""
        for start, span_id in ancestry:
            known = self._orders.get(span_id) if cache else None
            if known is None:
                segment = utc(start).strftime(_STAMP) + span_id
                known = f"{text}.{segment}" if text else segment
                if cache:
                    self._orders[span_id] = known
                    if len(self._orders) > self.cache_size:
                        self._orders.popitem(last=False)
            text = known
        return text

    # -- values ----------------------------------------------------------------------------

    def safe(self, value: Any) -> Any:
        """``value`` as JSON-safe data (the langsmith client's encoding), within the size
        limit.  Records reach a sink public (bounded, redacted once by the handler's privacy
        stage); a ``redact`` given to the builder itself is applied on top."""
        if _client_json is not None:
            try:
                data = _client_json(value)
            except Exception:
                data = None
            if data is not None and len(data) <= self.limits.max_field_chars:
                safe = json.loads(data)
                if self.redact is None:
                    return safe
                try:
                    return self.redact(safe)
                except Exception:  # a failing redactor must not leak the value
                    return "…[redaction failed]"
        return json.loads(dumps(value, self.limits, self.redact))

    @staticmethod
    def _inputs(record: dict[str, Any]) -> Any:
        inputs = record["inputs"]
        if record["kind"] == "chat_model" and isinstance(inputs, dict):
            messages = inputs.get("messages")
            if isinstance(messages, list) and all(isinstance(b, list) for b in messages):
                return {
                    "messages": [
                        [_serialized_message(revive_message(m)) for m in batch]
                        for batch in messages
                    ]
                }
        return inputs if isinstance(inputs, dict) else {"input": inputs}

    @staticmethod
    def _outputs(record: dict[str, Any]) -> Any:
        outputs = record["outputs"]
        if isinstance(outputs, LLMResult):  # as the tracer's _complete_llm_run
            data = outputs.model_dump()
            for i, generations in enumerate(outputs.generations):
                for j, generation in enumerate(generations):
                    dumped = data["generations"][i][j]
                    if "message" in dumped:
                        dumped["message"] = dumpd(generation.message)  # type: ignore[attr-defined]
            return data
        return outputs if isinstance(outputs, dict) else {"output": outputs}

    def _model_extra(
        self, record: dict[str, Any], extra: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        """Invocation params (extra, and metadata where missing), usage, tool call count."""
        start_kwargs = record.get("invocation") or {}
        extra.update(start_kwargs)
        for key, value in (start_kwargs.get("invocation_params") or {}).items():
            if key not in _INVOCATION_EXCLUDED and key not in metadata:
                metadata[key] = value
        usage = _usage_metadata(record)
        if usage is not None:
            metadata["usage_metadata"] = usage
        outputs = record["outputs"]
        if isinstance(outputs, LLMResult):
            calls = sum(
                len(getattr(getattr(g, "message", None), "tool_calls", None) or ())
                for generations in outputs.generations
                for g in generations
            )
            if calls:
                extra["tool_call_count"] = calls

    def _error_text(self, error: dict[str, Any] | None) -> str | None:
        """The tracer's error text: the exception's repr followed by its traceback."""
        if not error:
            return None
        message = error.get("message") or ""
        head = f"{error.get('type')}({message!r})" if message else f"{error.get('type')}()"
        text = (head + (error.get("traceback") or "")).strip()
        if self.redact is None:
            return text
        try:
            return self.redact(text)
        except Exception:
            return "…[redaction failed]"


def _usage_metadata(record: dict[str, Any]) -> dict[str, Any] | None:
    """``usage_metadata`` as the tracer computes it: the sum over the result's messages;
    from the recorded token counts when the result is not at hand (hidden, stored)."""
    outputs = record["outputs"]
    if isinstance(outputs, LLMResult):
        total = None
        for generations in outputs.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if usage:
                    total = add_usage(total, usage)
        return dict(total) if total is not None else None
    tokens_in, tokens_out = record.get("input_tokens"), record.get("output_tokens")
    if tokens_in is None and tokens_out is None:
        return None
    usage: dict[str, Any] = {
        "input_tokens": tokens_in or 0,
        "output_tokens": tokens_out or 0,
        "total_tokens": record.get("total_tokens") or (tokens_in or 0) + (tokens_out or 0),
    }
    details_in = {
        "cache_read": record.get("cached_tokens"),
        "cache_creation": record.get("cache_creation_tokens"),
    }
    details_out = {"reasoning": record.get("reasoning_tokens")}
    if any(v is not None for v in details_in.values()):
        usage["input_token_details"] = {k: v for k, v in details_in.items() if v is not None}
    if details_out["reasoning"] is not None:
        usage["output_token_details"] = details_out
    return usage
