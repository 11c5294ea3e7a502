"""What the OTLP spans say about a tool-calling agent: GenAI and OpenInference attributes,
compared with LangChain's own record of the runs (no backend needed; the real backends are
in test_backends.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lc_observe import ObsHandler, Privacy, TraceStore
from lc_observe.capture.pricing import PriceTable
from lc_observe.cli import main
from lc_observe.sinks import otlp_content
from lc_observe.sinks.otlp_spans import CAPTURE_CONTENT_ENV, capture_content_default

from .otel_agent import SERVED_MODEL, SYSTEM_PROMPT, all_runs, revived, run_agent

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def record(tmp_path: Path, **sink: Any) -> tuple[list[Any], dict[str, Any], Path]:
    from lc_observe.sinks.otlp import OtlpSink

    exporter = InMemorySpanExporter()
    db = tmp_path / "t.db"
    obs = ObsHandler(db, sinks=[OtlpSink(exporter, **sink)])
    runs = all_runs(run_agent(obs))
    assert obs.flush(10)
    obs.close()
    return list(exporter.get_finished_spans()), runs, db


def by_run(spans: list[Any]) -> dict[str, Any]:
    return {s.attributes["langchain.run.id"]: s for s in spans}


def test_model_spans_carry_the_conversation_in_the_parts_format(tmp_path: Path) -> None:
    spans, runs, db = record(tmp_path)
    got = by_run(spans)
    store = TraceStore(db)
    chats = [s for s in store.spans() if s.kind == "chat_model"]
    assert len(chats) == 3
    for chat in chats:
        attrs = got[chat.span_id].attributes
        run = runs[chat.span_id]
        [messages] = revived(run.inputs["messages"])
        output = revived(run.outputs)["generations"][0][0]["message"]
        assert got[chat.span_id].name == "chat gpt-4o-mini"
        assert json.loads(attrs["gen_ai.system_instructions"]) == [
            {"type": "text", "content": SYSTEM_PROMPT}
        ]
        inputs = json.loads(attrs["gen_ai.input.messages"])
        assert [m["role"] for m in inputs] == [ROLES[m.type] for m in messages[1:]]
        for shown, message in zip(inputs, messages[1:], strict=True):
            if message.type == "tool":
                assert shown["parts"] == [
                    {
                        "type": "tool_call_response",
                        "id": message.tool_call_id,
                        "response": message.content,
                    }
                ]
            elif message.type == "ai":
                calls = [p for p in shown["parts"] if p["type"] == "tool_call"]
                assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
                    (c["id"], c["name"], c["args"]) for c in message.tool_calls
                ]
            else:
                assert shown["parts"] == [{"type": "text", "content": message.content}]
        [answer] = json.loads(attrs["gen_ai.output.messages"])
        assert answer["role"] == "assistant"
        calls = [p for p in answer["parts"] if p["type"] == "tool_call"]
        assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
            (c["id"], c["name"], c["args"]) for c in output.tool_calls
        ]
        texts = [p["content"] for p in answer["parts"] if p["type"] == "text"]
        assert texts == ([output.content] if output.content else [])
        reason = output.response_metadata["finish_reason"]
        assert list(attrs["gen_ai.response.finish_reasons"]) == [reason]
        assert answer["finish_reason"] == ("tool_call" if reason == "tool_calls" else "stop")
        assert attrs["gen_ai.response.id"] == output.response_metadata["id"]
        # Requested vs served model: both kept, the span's model is the requested one.
        assert attrs["gen_ai.request.model"] == chat.model == "gpt-4o-mini"
        assert attrs["gen_ai.response.model"] == chat.response_model == SERVED_MODEL
        assert attrs["gen_ai.request.temperature"] == run.extra["invocation_params"]["temperature"]
        assert attrs["gen_ai.request.max_tokens"] == run.extra["invocation_params"]["max_tokens"]
        assert attrs["gen_ai.usage.input_tokens"] == output.usage_metadata["input_tokens"]
        assert attrs["llm.token_count.prompt"] == chat.input_tokens
        assert attrs["llm.token_count.total"] == output.usage_metadata["total_tokens"]
        # OpenInference's flattened messages say the same.
        oi_roles = [attrs[f"llm.input_messages.{i}.message.role"] for i in range(len(messages))]
        assert oi_roles == [ROLES[m.type] for m in messages]
        assert attrs["openinference.span.kind"] == "LLM"
        assert got[chat.span_id].status.status_code is StatusCode.OK


def test_tools_retrievers_agents_and_errors(tmp_path: Path) -> None:
    spans, runs, db = record(tmp_path)
    got = by_run(spans)
    store = TraceStore(db)
    for span in store.spans():
        attrs = got[span.span_id].attributes
        run = runs[span.span_id]
        if span.kind == "tool":
            assert attrs["gen_ai.tool.name"] == run.name == attrs["tool.name"]
            assert attrs["gen_ai.tool.description"] == run.serialized["description"]
            assert json.loads(attrs["gen_ai.tool.call.arguments"]) == run.inputs
            assert attrs["openinference.span.kind"] == "TOOL"
            if span.status == "ok":
                message = revived(run.outputs)["output"]
                assert attrs["gen_ai.tool.call.id"] == message.tool_call_id
                assert attrs["gen_ai.tool.call.result"] == message.content
        elif span.kind == "retriever":
            documents = revived(run.outputs)["documents"]
            shown = json.loads(attrs["gen_ai.retrieval.documents"])
            assert [(d["id"], d["score"], d["content"]) for d in shown] == [
                (d.id, d.metadata["score"], d.page_content) for d in documents
            ]
            assert attrs["retrieval.documents.1.document.content"] == documents[1].page_content
            assert attrs["gen_ai.retrieval.query.text"] == run.inputs["query"]
        elif span.parent_id is None:  # create_agent's graph: an agent
            assert got[span.span_id].name == f"invoke_agent {run.name}"
            assert attrs["gen_ai.operation.name"] == "invoke_agent"
            assert attrs["gen_ai.agent.name"] == run.name
            assert attrs["openinference.span.kind"] == "AGENT"
            assert attrs["session.id"] == run.metadata["thread_id"]
            assert attrs["user.id"] == run.metadata["user_id"]
        elif span.kind == "chain":
            assert attrs["openinference.span.kind"] == "CHAIN"
        status = got[span.span_id].status.status_code
        assert status is (StatusCode.ERROR if run.error else StatusCode.OK)
        assert (span.status == "error") == bool(run.error)


def test_content_switch_and_redaction_before_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "false")
    assert capture_content_default() is False
    spans, _, db = record(tmp_path)
    content_keys = (
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "input.value",
        "output.value",
        "lc_observe.inputs",
    )
    for span in spans:
        assert not any(key in span.attributes for key in content_keys), span.name
        assert not any(key.endswith(".message.content") for key in span.attributes)
    # ... while the local store keeps the content, and ids, counts and reasons still go out.
    assert any(s.inputs for s in TraceStore(db).spans())
    chat = next(s for s in spans if s.name.startswith("chat"))
    assert chat.attributes["gen_ai.response.finish_reasons"]
    docs = next(s for s in spans if s.name.startswith("retrieval"))
    assert [d["id"] for d in json.loads(docs.attributes["gen_ai.retrieval.documents"])] == [
        "doc-1",
        "doc-2",
    ]
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    assert capture_content_default() is True


def test_secrets_are_redacted_in_exported_messages(tmp_path: Path) -> None:
    from langchain_core.messages import HumanMessage

    from .agents import ScriptedChatModel, turns

    exporter = InMemorySpanExporter()
    from lc_observe.sinks.otlp import OtlpSink

    obs = ObsHandler(tmp_path / "r.db", sinks=[OtlpSink(exporter)], privacy=Privacy(redact=True))
    secret = "sk-proj-" + "A1b2C3d4" * 6
    model = ScriptedChatModel(script=turns(("ok", [])))
    model.invoke([HumanMessage(f"my key is {secret}")], {"callbacks": [obs]})
    assert obs.flush(10)
    obs.close()
    [span] = exporter.get_finished_spans()
    text = json.dumps(dict(span.attributes))
    assert secret not in text
    assert "my key is" in span.attributes["gen_ai.input.messages"]


def test_price_on_the_billed_model_else_the_requested() -> None:
    prices = PriceTable({"my-model": {"input": 1.0, "output": 2.0}}, source="bundled")
    tokens = {"input_tokens": 1_000_000, "output_tokens": 0}
    assert prices.call_cost("gpt-4o-mini", "gpt-4o", "openai", tokens) == prices.cost(
        "gpt-4o", "openai", tokens
    )
    # A served name the table does not know: the requested model's price.
    assert prices.call_cost("my-model", "my-model-2031-01-01-x9", None, tokens) == 1.0
    assert prices.call_cost(None, "my-model", None, tokens) == 1.0


def test_message_extraction_tolerates_odd_shapes() -> None:
    talk = otlp_content.Conversation.of({"messages": "not a list"}, {"generations": [["x"]]})
    assert talk.inputs == [] and talk.outputs == []
    talk = otlp_content.Conversation.of({"prompts": ["hello"]}, None)
    assert talk.genai_inputs() == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    blocks = {
        "type": "ai",
        "content": [{"type": "text", "text": "a"}, {"type": "image", "url": "u"}],
    }
    assert otlp_content.message_parts(blocks) == [
        {"type": "text", "content": "a"},
        {"type": "image", "content": {"type": "image", "url": "u"}},
    ]
    assert otlp_content.documents({"documents": ["plain"]}) == [{"content": "plain"}]


def test_cli_export_header_must_be_name_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ObsHandler(tmp_path / "e.db"):
        pass
    db = str(tmp_path / "e.db")
    assert main(["export", "--db", db, "--otlp", "http://x", "--header", "oops"]) == 2
    assert "'oops' is not NAME=VALUE" in capsys.readouterr().err
    assert main(["export", "--db", db, "--jsonl", "-", "--timeout", "3"]) == 2
    assert "go with --otlp" in capsys.readouterr().err
