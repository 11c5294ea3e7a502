"""OTLP export into real backends: Arize Phoenix and an MLflow tracking server on 127.0.0.1.

Each backend is started by the tests (temporary directory, its own SQLite database) and
receives a tool-calling agent twice: live (``ObsHandler(otlp_endpoint=...)``) and from a
file (``lc-observe export --otlp``).  What each backend's own client reads back is
compared span by span with what the local store holds (`TraceStore`, the truth) and with
LangChain's own record of the runs (a run collector).

A backend that cannot start here is skipped with the reason; under CI (``CI=true``) that
is a failure instead, so these tests cannot silently stop running there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lc_observe import ObsHandler, TraceStore
from lc_observe.cli import main
from lc_observe.model import Span
from lc_observe.trace_context import otel_span_id

from .backends import Server, Unavailable, phoenix_costs, start_mlflow, start_phoenix, wait_until
from .otel_agent import SERVED_MODEL, SYSTEM_PROMPT, all_runs, revived, run_agent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
OPENINFERENCE_KIND = {"chat_model": "LLM", "tool": "TOOL", "retriever": "RETRIEVER"}
MLFLOW_TYPE = {"chat_model": "LLM", "tool": "TOOL", "retriever": "RETRIEVER"}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"backend unavailable in CI: {reason}")
    pytest.skip(reason)


def _server(start: Any, workdir: Path) -> Iterator[Server]:
    try:
        server = start(workdir)
    except Unavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(start_phoenix, tmp_path_factory.mktemp("phoenix"))


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(start_mlflow, tmp_path_factory.mktemp("mlflow"))


def hex_id(run_id: str) -> str:
    return f"{otel_span_id(run_id):016x}"


def record_live(db: Path, endpoint: str, user: str) -> dict[str, Any]:
    obs = ObsHandler(db, otlp_endpoint=endpoint, network_timeout=60)
    collector = run_agent(obs, user=user)
    assert obs.flush(120)
    stats = obs.stats["otlp"]
    obs.close()
    assert stats["spans_failed"] == 0, stats
    return all_runs(collector)


def record_offline(db: Path, user: str) -> dict[str, Any]:
    with ObsHandler(db) as obs:
        collector = run_agent(obs, user=user)
    return all_runs(collector)


def export_file(db: Path, url: str, *headers: str) -> None:
    args = ["export", "--db", str(db), "--otlp", url, "--timeout", "60", "--json"]
    for header in headers:
        args += ["--header", header]
    assert main(args) == 0


def chat_messages(run: Any) -> tuple[list[Any], Any]:
    """LangChain's own record of a chat model call: its input messages and output message."""
    [messages] = revived(run.inputs["messages"])
    output = revived(run.outputs)["generations"][0][0]["message"]
    return messages, output


def bare(value: Any) -> Any:
    """A value LangChain passed bare, which the store keeps as ``{"input": value}``."""
    return value["input"] if isinstance(value, dict) and list(value) == ["input"] else value


def stored(db: Path) -> list[Span]:
    with TraceStore(db) as store:
        return list(store.spans())


# -- Phoenix -------------------------------------------------------------------------------------


def phoenix_spans(url: str, count: int) -> dict[str, Any]:
    from phoenix.client import Client

    client = Client(base_url=url)

    def read() -> Any:
        frame = client.spans.get_spans_dataframe(project_identifier="default", limit=10_000)
        return frame if len(frame) >= count else None

    frame = wait_until(read, timeout=180)
    assert frame is not None, f"Phoenix did not show {count} spans"
    return {row["context.span_id"]: row for _, row in frame.iterrows()}


def _absent_as_none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


def _value(row: Any, key: str) -> Any:
    return _absent_as_none(row.get(f"attributes.{key}"))  # a column's NaN: absent here


def check_phoenix(
    spans: list[Span], runs: dict[str, Any], rows: dict[str, Any], costs: dict
) -> None:
    seen_kinds = set()
    for span in spans:
        row = rows[hex_id(span.span_id)]
        run = runs[span.span_id]
        seen_kinds.add(span.kind)
        assert row["name"].endswith(span.name) or span.kind == "chat_model"
        parent = hex_id(span.parent_id) if span.parent_id else None
        assert _absent_as_none(row["parent_id"]) == parent
        assert row["context.trace_id"] == span.trace_id.replace("-", "")
        assert _value(row, "user.id") == span.user_id == run.metadata["user_id"]
        assert _value(row, "session.id") == span.session_id == run.metadata["thread_id"]
        if span.status == "error":
            assert row["status_code"] == "ERROR" and run.error
            [event] = [e for e in row["events"] if e["name"] == "exception"]
            assert event["attributes"]["exception.message"] == span.error.message
        else:
            assert row["status_code"] == "OK" and run.error is None
        expected_kind = OPENINFERENCE_KIND.get(span.kind, "CHAIN")
        if span.parent_id is None:
            expected_kind = "AGENT"  # create_agent's graph: its nodes call a model and tools
        assert row["span_kind"] == expected_kind
        if span.kind == "chat_model":
            messages, output = chat_messages(run)
            shown = _value(row, "llm.input_messages")
            assert [m["message.role"] for m in shown] == [ROLES[m.type] for m in messages]
            assert [m.get("message.content") or "" for m in shown] == [m.content for m in messages]
            assert shown[0]["message.content"] == SYSTEM_PROMPT
            [answer] = _value(row, "llm.output_messages")
            calls = answer.get("message.tool_calls") or []
            assert [c["tool_call.id"] for c in calls] == [c["id"] for c in output.tool_calls]
            assert [c["tool_call.function.name"] for c in calls] == [
                c["name"] for c in output.tool_calls
            ]
            assert [json.loads(c["tool_call.function.arguments"]) for c in calls] == [
                c["args"] for c in output.tool_calls
            ]
            assert (answer.get("message.content") or "") == output.content
            usage = output.usage_metadata
            assert (
                _value(row, "llm.token_count.prompt") == span.input_tokens == usage["input_tokens"]
            )
            assert (
                _value(row, "llm.token_count.completion")
                == span.output_tokens
                == usage["output_tokens"]
            )
            assert _value(row, "llm.model_name") == span.response_model == SERVED_MODEL
            assert _value(row, "llm.request.model_name") == span.model == "gpt-4o-mini"
            assert costs[hex_id(span.span_id)] == pytest.approx(span.cost_usd, rel=1e-9)
        elif span.kind == "tool":
            assert _value(row, "tool.name") == span.name == run.name
            assert json.loads(_value(row, "input.value")) == span.inputs == run.inputs
            if span.status == "ok":
                message = revived(run.outputs)["output"]
                assert _value(row, "tool.id") == message.tool_call_id
                assert _value(row, "output.value") == message.content
        elif span.kind == "retriever":
            documents = revived(run.outputs)["documents"]
            shown = _value(row, "retrieval.documents")
            assert [d["document.content"] for d in shown] == [d.page_content for d in documents]
            assert [d["document.id"] for d in shown] == [d.id for d in documents]
            assert [d["document.score"] for d in shown] == [d.metadata["score"] for d in documents]
    assert {"chain", "chat_model", "tool", "retriever"} <= seen_kinds


def test_phoenix_shows_what_the_store_holds(phoenix: Server, tmp_path: Path) -> None:
    live, offline = tmp_path / "live.db", tmp_path / "offline.db"
    live_runs = record_live(live, phoenix.url, user="ann")
    offline_runs = record_offline(offline, user="bob")
    export_file(offline, phoenix.url)
    spans = {"live": stored(live), "file": stored(offline)}
    rows = phoenix_spans(phoenix.url, len(spans["live"]) + len(spans["file"]))
    costs = phoenix_costs(phoenix.url)
    check_phoenix(spans["live"], live_runs, rows, costs)
    check_phoenix(spans["file"], offline_runs, rows, costs)
    # Exporting the same file again changes nothing: the span ids are the runs' own.
    export_file(offline, phoenix.url)
    again = phoenix_spans(phoenix.url, len(rows))
    assert set(again) == set(rows)


# -- MLflow ---------------------------------------------------------------------------------------


def mlflow_traces(url: str, experiment_id: str, count: int) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(url)

    def read() -> Any:
        traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
        return traces if len(traces) >= count else None

    traces = wait_until(read, timeout=180)
    assert traces, f"MLflow did not show {count} traces"
    return {t.info.trace_id: t for t in traces}


def check_mlflow(spans: list[Span], runs: dict[str, Any], traces: dict[str, Any]) -> None:
    by_id = {(s.trace_id, s.span_id): s for t in traces.values() for s in t.data.spans}
    info = {t.data.spans[0].trace_id: t.info for t in traces.values()}
    seen_kinds = set()
    for span in spans:
        trace_hex = span.trace_id.replace("-", "")
        got = by_id[(f"tr-{trace_hex}", hex_id(span.span_id))]
        run = runs[span.span_id]
        seen_kinds.add(span.kind)
        assert got.parent_id == (hex_id(span.parent_id) if span.parent_id else None)
        expected = MLFLOW_TYPE.get(span.kind, "CHAIN") if span.parent_id else "AGENT"
        assert got.span_type == expected
        assert got.inputs == bare(span.inputs)
        if span.status == "error":
            assert got.status.status_code.value == "ERROR" and run.error
            [event] = [e for e in got.events if e.name == "exception"]
            assert event.attributes["exception.message"] == span.error.message
        else:
            assert got.status.status_code.value == "OK" and run.error is None
        if span.parent_id is None:
            meta = info[f"tr-{trace_hex}"].trace_metadata
            assert meta["mlflow.trace.user"] == span.user_id == run.metadata["user_id"]
            assert meta["mlflow.trace.session"] == span.session_id == run.metadata["thread_id"]
            usage = json.loads(meta["mlflow.trace.tokenUsage"])
            assert usage["input_tokens"] == span.input_tokens
            assert usage["output_tokens"] == span.output_tokens
        if span.kind == "chat_model":
            messages, output = chat_messages(run)
            assert [m["type"] for m in got.inputs["messages"][0]] == [m.type for m in messages]
            answer = got.outputs["generations"][0][0]["message"]
            assert [c["id"] for c in answer.get("tool_calls", [])] == [
                c["id"] for c in output.tool_calls
            ]
            usage = got.attributes["mlflow.chat.tokenUsage"]
            assert (
                usage["input_tokens"] == span.input_tokens == output.usage_metadata["input_tokens"]
            )
            assert usage["output_tokens"] == span.output_tokens
            assert got.attributes["mlflow.llm.model"] == span.response_model == SERVED_MODEL
            cost = got.attributes.get("mlflow.llm.cost")
            if cost is not None:  # MLflow's own price table (LiteLLM's), when it has one
                assert cost["total_cost"] == pytest.approx(span.cost_usd, rel=1e-6)
        elif span.kind == "tool":
            if span.status == "ok":
                assert got.outputs == revived(run.outputs)["output"].content
        elif span.kind == "retriever":
            documents = revived(run.outputs)["documents"]
            assert [d["page_content"] for d in got.outputs["documents"]] == [
                d.page_content for d in documents
            ]
    assert {"chain", "chat_model", "tool", "retriever"} <= seen_kinds


def test_mlflow_shows_what_the_store_holds(
    mlflow_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    experiment = MlflowClient(mlflow_server.url).create_experiment("lc_observe")
    header = f"x-mlflow-experiment-id={experiment}"
    # The live export takes its headers where every OTLP exporter does.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", header)
    live, offline = tmp_path / "live.db", tmp_path / "offline.db"
    live_runs = record_live(live, mlflow_server.url, user="ann")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
    offline_runs = record_offline(offline, user="bob")
    export_file(offline, mlflow_server.url, header)
    with TraceStore(live) as a, TraceStore(offline) as b:
        count = len(a.traces()) + len(b.traces())
    traces = mlflow_traces(mlflow_server.url, experiment, count)
    check_mlflow(stored(live), live_runs, traces)
    check_mlflow(stored(offline), offline_runs, traces)
