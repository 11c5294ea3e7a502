"""One reader of LangChain payloads: for a real tool-calling agent run (``create_agent``
with two tools, one of which runs a retriever), the messages, tool calls and documents the
OTLP export carries are the ones `lc_observe.conversation.read_span` gives the views, and
both are what LangChain's own RunCollectorCallbackHandler recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lc_observe import ObsHandler, TraceStore
from lc_observe.conversation import Message, read_span

from .otel_agent import all_runs, revived, run_agent

#: LangChain message types -> GenAI roles.
GENAI = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def _record(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], TraceStore]:
    from lc_observe.sinks.otlp import OtlpSink

    exporter = InMemorySpanExporter()
    obs = ObsHandler(tmp_path / "t.db", sinks=[OtlpSink(exporter)])
    runs = all_runs(run_agent(obs))
    assert obs.flush(10)
    obs.close()
    spans = {s.attributes["langchain.run.id"]: s.attributes for s in exporter.get_finished_spans()}
    return spans, runs, TraceStore(tmp_path / "t.db")


def _genai(message: dict[str, Any]) -> tuple[Any, ...]:
    """(role, text, tool calls, answered call id, tool response) of a GenAI message."""
    parts = message["parts"]
    text = "\n".join(p["content"] for p in parts if p["type"] == "text")
    calls = [(c["id"], c["name"], c["arguments"]) for c in parts if c["type"] == "tool_call"]
    [answered] = [p["id"] for p in parts if p["type"] == "tool_call_response"] or [None]
    if answered is not None:
        text = next(p["response"] for p in parts if p["type"] == "tool_call_response")
    return message["role"], text, calls, answered


def _view(message: Message) -> tuple[Any, ...]:
    role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
    calls = [(c.id, c.name, c.args) for c in message.tool_calls]
    return role, message.text, calls, message.tool_call_id


def _langchain(message: Any) -> tuple[Any, ...]:
    calls = [(c["id"], c["name"], c["args"]) for c in getattr(message, "tool_calls", [])]
    return GENAI[message.type], message.content, calls, getattr(message, "tool_call_id", None)


def _openinference(attrs: dict[str, Any], prefix: str, index: int) -> tuple[Any, ...]:
    head = f"{prefix}.{index}.message"
    calls = []
    while f"{head}.tool_calls.{len(calls)}.tool_call.function.name" in attrs:
        call = f"{head}.tool_calls.{len(calls)}.tool_call"
        arguments = json.loads(attrs[f"{call}.function.arguments"])
        calls.append((attrs[f"{call}.id"], attrs[f"{call}.function.name"], arguments))
    content = attrs.get(f"{head}.content", "")
    return attrs[f"{head}.role"], content, calls, attrs.get(f"{head}.tool_call_id")


def test_otlp_export_and_views_read_the_same_conversation(tmp_path: Path) -> None:
    exported, runs, store = _record(tmp_path)
    chats = store.spans(kind="chat_model")
    assert len(chats) == 3
    for span in chats:
        attrs, run = exported[span.span_id], runs[span.span_id]
        [sent] = revived(run.inputs["messages"])
        generation = revived(run.outputs)["generations"][0][0]["message"]
        payload = read_span(span)
        [conversation] = [p.messages for p in payload.inputs if p.kind == "messages"]
        [answers] = [p.messages for p in payload.outputs if p.kind == "messages"]
        # the input conversation: system instructions, then the other messages
        expected = [_langchain(m) for m in sent]
        assert [_view(m) for m in conversation] == expected
        system = json.loads(attrs["gen_ai.system_instructions"])
        exported_in = [("system", "\n".join(p["content"] for p in system), [], None)]
        exported_in += [_genai(m) for m in json.loads(attrs["gen_ai.input.messages"])]
        assert exported_in == expected
        assert [_openinference(attrs, "llm.input_messages", i) for i in range(len(sent))] == (
            expected
        )
        # the answer: text, tool calls with ids and arguments, finish reason, response id
        [answer] = answers
        assert _view(answer) == _langchain(generation)
        [exported_out] = json.loads(attrs["gen_ai.output.messages"])
        assert _genai(exported_out) == _langchain(generation)
        assert _openinference(attrs, "llm.output_messages", 0) == _langchain(generation)
        reason, response_id = (generation.response_metadata[k] for k in ("finish_reason", "id"))
        assert answer.finish_reason == reason
        assert list(attrs["gen_ai.response.finish_reasons"]) == [reason]
        assert answer.response_id == attrs["gen_ai.response.id"] == response_id


def test_otlp_export_and_views_read_the_same_tool_results_and_documents(
    tmp_path: Path,
) -> None:
    exported, runs, store = _record(tmp_path)
    tools = [s for s in store.spans(kind="tool") if s.status == "ok"]
    assert {s.name for s in tools} == {"add", "search_handbook"}
    for span in tools:
        attrs, run = exported[span.span_id], runs[span.span_id]
        returned = revived(run.outputs)["output"]
        [part] = read_span(span).outputs
        [message] = part.messages
        assert (message.role, message.text, message.tool_call_id) == (
            "tool",
            returned.content,
            returned.tool_call_id,
        )
        assert attrs["gen_ai.tool.call.result"] == message.text
        assert attrs["gen_ai.tool.call.id"] == message.tool_call_id == attrs["tool.id"]
    [retriever] = store.spans(kind="retriever")
    attrs, run = exported[retriever.span_id], runs[retriever.span_id]
    expected = [
        (d.id, d.metadata["score"], d.page_content, d.metadata)
        for d in revived(run.outputs)["documents"]
    ]
    [part] = read_span(retriever).outputs
    assert [(d.id, d.score, d.content, d.metadata) for d in part.documents] == expected
    shown = json.loads(attrs["gen_ai.retrieval.documents"])
    assert [(d["id"], d["score"], d["content"], d["metadata"]) for d in shown] == expected
    for i, (ident, score, text, _) in enumerate(expected):
        head = f"retrieval.documents.{i}.document"
        assert (attrs[f"{head}.id"], attrs[f"{head}.score"], attrs[f"{head}.content"]) == (
            ident,
            score,
            text,
        )
