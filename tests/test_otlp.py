"""OpenTelemetry export: a loopback OTLP/HTTP receiver decodes the protobuf requests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.runnables import RunnableLambda
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lc_observe import OTLP, ObsHandler, Runs, TraceStore
from lc_observe.cli import main
from lc_observe.demo import QUESTIONS, build_graph
from lc_observe.records import RECORD_BRANCH, RECORD_SPAN, new_span_record
from lc_observe.sinks.otlp import OtlpSink, traces_url
from lc_observe.sinks.otlp_spans import BRANCH_EVENT, otel_span_id

from .loopback import OtlpReceiver, attributes, free_port_url

_SPAN_KIND_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind
_STATUS_ERROR = 2


def span_id_bytes(run_id: str) -> bytes:
    return otel_span_id(run_id).to_bytes(8, "big")


def record_demo(obs: ObsHandler, graph: Any) -> None:
    for question in QUESTIONS:
        config = {"callbacks": [obs], "metadata": {"thread_id": "t-1", "user_id": "ann"}}
        graph.invoke({"question": question}, config)


def check_against_store(received: list[Any], db: Path) -> dict[str, Any]:
    """Every stored span arrived once, with LangChain's ids, tree, names and times."""
    store = TraceStore(db)
    spans = {s.span_id: s for s in store.spans()}
    by_run = {attributes(s)["langchain.run.id"]: s for s in received}
    assert set(by_run) == set(spans) and len(received) == len(spans)
    for run_id, got in by_run.items():
        span = spans[run_id]
        assert got.trace_id == UUID(span.trace_id).bytes  # the LangChain trace id, verbatim
        assert got.span_id == span_id_bytes(run_id)
        assert got.parent_span_id == (span_id_bytes(span.parent_id) if span.parent_id else b"")
        # Original times (the store keeps microseconds; a float second has ~0.2 us of slack).
        assert abs(got.start_time_unix_nano / 1e9 - span.start_time.timestamp()) < 2e-6
        assert abs(got.end_time_unix_nano / 1e9 - span.end_time.timestamp()) < 2e-6
        assert attributes(got)["langchain.run.name"] == span.name
    return by_run


def test_live_export_follows_genai_conventions(tmp_path: Path) -> None:
    graph = build_graph()
    db = tmp_path / "traces.db"
    with OtlpReceiver() as receiver:
        obs = ObsHandler(db, runs=Runs(graphs=[graph]), sinks=[OTLP(receiver.url)])
        record_demo(obs, graph)
        assert obs.flush(10)
        received = receiver.wait_for(20)
        stats = obs.stats["otlp"]
        obs.close()
    # Counted in spans: 20 spans (the 2 branch decisions are events on them).
    assert stats["spans_sent"] == 20 and stats["spans_failed"] == stats["spans_unknown"] == 0
    by_run = check_against_store(received, db)
    names = sorted(s.name for s in received)
    assert names.count("invoke_agent demo_agent") == 2  # its nodes call a model and tools
    assert names.count("chat gpt-4o-mini") == 2
    assert "execute_tool calculator" in names and "retrieval KeywordRetriever" in names

    chat = next(s for s in received if s.name == "chat gpt-4o-mini")
    attrs = attributes(chat)
    assert chat.kind == _SPAN_KIND_CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.provider.name"] == "openai" == attrs["gen_ai.system"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) in (
        (31, 6),
        (58, 11),
    )
    assert attrs["gen_ai.conversation.id"] == "t-1" and attrs["user.id"] == "ann"
    assert attrs["langgraph.node"] == "answer" and attrs["langgraph.step"] == 3
    tool = attributes(next(s for s in received if s.name == "execute_tool calculator"))
    assert tool["gen_ai.tool.name"] == "calculator" and tool["gen_ai.tool.call.result"] == "42"
    root = attributes(next(s for s in received if s.name.startswith("invoke_agent")))
    assert root["gen_ai.operation.name"] == "invoke_agent"
    assert root["gen_ai.agent.name"] == "demo_agent"

    # Each routing decision is an event on the span that decided it.
    deciders = [s for s in received if any(e.name == BRANCH_EVENT for e in s.events)]
    assert sorted(attributes(s)["langchain.run.name"] for s in deciders) == ["route_question"] * 2
    destinations = sorted(
        attributes(e)["langgraph.branch.destinations"][0] for s in deciders for e in s.events
    )
    assert destinations == ["calculator", "retrieve"]
    event = attributes(deciders[0].events[0])
    assert event["langgraph.branch.source"] == "router" and event["langgraph.branch.step"] == 1
    assert by_run  # every span matched a stored one


def test_errors_are_error_spans_with_an_exception_event() -> None:
    exporter = InMemorySpanExporter()
    obs = ObsHandler(None, sinks=[OTLP(exporter=exporter)])

    def fail(_: Any) -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        RunnableLambda(fail, name="fail").invoke(1, {"callbacks": [obs]})
    assert obs.flush(5)
    obs.close()
    [span] = exporter.get_finished_spans()
    assert span.name == "fail" and span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    [event] = span.events
    assert event.name == "exception" and event.attributes["exception.message"] == "bad input"
    assert "Traceback" in event.attributes["exception.stacktrace"]


def test_a_decision_after_its_span_left_rides_a_child_span() -> None:
    exporter = InMemorySpanExporter()
    sink = OtlpSink(exporter)
    run_id = "0193f0c1-0000-7000-8000-0000000000aa"
    record = new_span_record(run_id, run_id, None, "router", "chain", time.time(), {}, [], {})
    record.update(end_time=time.time(), status="ok")
    sink.export([(RECORD_SPAN, record)])
    branch = {"trace_id": run_id, "span_id": run_id, "kind": "command", "time": time.time()}
    sink.export([(RECORD_BRANCH, {**branch, "destinations": ["next"]})])
    first, late = exporter.get_finished_spans()
    assert first.name == "router" and late.name == BRANCH_EVENT
    assert late.parent.span_id == first.context.span_id
    assert list(late.events[0].attributes["langgraph.branch.destinations"]) == ["next"]


def test_cli_export_otlp_and_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = build_graph()
    db = tmp_path / "offline.db"
    with ObsHandler(db, runs=Runs(graphs=[graph])) as obs:
        record_demo(obs, graph)
    with OtlpReceiver() as receiver:
        assert main(["export", "--db", str(db), "--otlp", receiver.url, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        received = receiver.wait_for(20)
    assert result == {"sent": 20, "failed": 0}
    check_against_store(received, db)  # the same ids as a live export would give
    assert sum(1 for s in received for e in s.events if e.name == BRANCH_EVENT) == 2

    out = tmp_path / "spans.jsonl"
    assert main(["export", "--db", str(db), "--jsonl", str(out), "--since", "1h"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 20 and {line["span_id"] for line in lines} == {
        s.span_id for s in TraceStore(db).spans()
    }
    decided = [line for line in lines if line["branches"]]
    assert [line["name"] for line in decided] == ["route_question"] * 2
    assert decided[0]["branches"][0]["source"] == "router"


@pytest.mark.parametrize("fault", ["down", "http-503"])
def test_a_failing_collector_never_slows_the_app(fault: str, tmp_path: Path) -> None:
    """Behaviour, not wall-clock time: every run returns and is in the local file, bounded
    flush and close return, and every span the collector refused is counted as failed."""
    graph = build_graph()
    receiver = OtlpReceiver(status=503).start() if fault == "http-503" else None
    try:
        url = receiver.url if receiver else free_port_url()
        obs = ObsHandler(tmp_path / "t.db", sinks=[OTLP(url, timeout=1.0)])
        record_demo(obs, graph)
        assert len(obs.store.spans()) == 20  # the local file does not wait for the network
        obs.flush(timeout=1.0)  # bounded, whatever the collector does
        obs.close(timeout=30.0)
        stats = obs.stats["otlp"]
    finally:
        if receiver is not None:
            receiver.stop()
    print(f"otlp {fault}: {stats}")
    assert stats["spans_failed"] == 20 and stats["spans_sent"] == 0 and stats["last_error"]
    assert stats["spans_unknown"] == 0  # refused or unreachable: surely not stored
    assert stats["retries"] == 0  # the exporter retries on its own: no second retry layer
    assert len(TraceStore(tmp_path / "t.db").spans()) == 20


def test_endpoint_urls() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://c:4318/custom/path") == "http://c:4318/custom/path"
