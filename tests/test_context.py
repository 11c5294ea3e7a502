"""Cross-service traces: a client process and a server process, each with its own
`ObsHandler` and database, export into one OTLP receiver and keep one trace id.

- W3C ``traceparent``: the client runs inside an OpenTelemetry span and sends its
  context; the server continues it in a server span (as an instrumented web framework
  does).  Each handler records the enclosing ``traceparent``; exported root spans become
  children of the enclosing span; ``store.traces(otel_trace_id=...)`` finds both sides.
- LangSmith headers (``langsmith-trace``, ``baggage``): the client is traced by LangChain's
  own LangSmith tracer (against a loopback stand-in) and sends ``RunTree.to_headers()``;
  the server runs under ``tracing_context(parent=headers)``.  The server's root span is
  a child of the client's span that made the call: one tree across both processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.runnables import RunnableLambda
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider

from lc_observe import OTLP, ObsHandler, TraceStore
from lc_observe.testing import LangSmithStandIn
from lc_observe.trace_context import enclosing_traceparent, otel_span_id

from .loopback import OtlpReceiver, attributes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(lifetime=240) as found:
        yield found


@pytest.fixture
def service(tmp_path: Path, receiver: OtlpReceiver) -> Iterator[dict[str, Any]]:
    """The server process: its database, its URL."""
    db, port_file = tmp_path / "server.db", tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.otel_service", str(db), str(port_file), receiver.url],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text():
            assert process.poll() is None, "the service process exited"
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield {"db": db, "url": f"http://127.0.0.1:{port_file.read_text()}"}
        post(f"http://127.0.0.1:{port_file.read_text()}/stop", {}, {})
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def client_chain(call: Any) -> Any:
    return RunnableLambda(lambda q: q.strip(), name="prepare") | RunnableLambda(
        call, name="ask_service"
    )


def only_trace(db: Path) -> Any:
    with TraceStore(db) as store:
        [trace] = store.traces()
        return trace, list(store.spans(trace_id=trace.trace_id))


@pytest.mark.integration  # a server process and loopback HTTP: the slow tier
def test_traceparent_joins_both_processes_into_the_callers_trace(
    tmp_path: Path, receiver: OtlpReceiver, service: dict[str, Any]
) -> None:
    tracer = TracerProvider().get_tracer("client")
    replies: list[dict[str, Any]] = []

    def ask(question: str) -> str:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # the active OTel context (W3C traceparent)
        replies.append(post(service["url"] + "/ask", {"question": question}, headers))
        return replies[-1]["answer"]

    client_db = tmp_path / "client.db"
    obs = ObsHandler(client_db, sinks=[OTLP(receiver.url)])
    with tracer.start_as_current_span("client job") as job:
        answer = client_chain(ask).invoke("  why? ", {"callbacks": [obs]})
    assert obs.flush(30)
    obs.close()
    assert answer == "ANSWER TO WHY?"
    job_ids = job.get_span_context()
    trace_hex = f"{job_ids.trace_id:032x}"
    [reply] = replies
    assert reply["server_trace_id"] == trace_hex  # the service span continued the caller

    # Both stores recorded the enclosing span; both find their trace by the OTel trace id.
    client_trace, client_spans = only_trace(client_db)
    server_trace, server_spans = only_trace(service["db"])
    assert client_trace.traceparent == f"00-{trace_hex}-{job_ids.span_id:016x}-01"
    assert server_trace.traceparent == f"00-{trace_hex}-{reply['server_span_id']}-01"
    assert client_trace.otel_trace_id == server_trace.otel_trace_id == trace_hex
    for db, trace in ((client_db, client_trace), (service["db"], server_trace)):
        with TraceStore(db) as store:
            assert [t.trace_id for t in store.traces(otel_trace_id=trace_hex)] == [trace.trace_id]
            assert store.traces(otel_trace_id="0" * 31 + "1") == []

    # Every exported span of both processes is in the caller's trace, each root a child of
    # its process's enclosing span, the rest as LangChain linked them.
    received = receiver.wait_for(len(client_spans) + len(server_spans), timeout=60)
    assert {s.trace_id.hex() for s in received} == {trace_hex}
    by_run = {attributes(s)["langchain.run.id"]: s for s in received}
    assert set(by_run) == {s.span_id for s in client_spans + server_spans}
    enclosing = {client_trace.trace_id: job_ids.span_id, server_trace.trace_id: None}
    for span in client_spans + server_spans:
        got = by_run[span.span_id]
        if span.parent_id is not None:
            assert got.parent_span_id == otel_span_id(span.parent_id).to_bytes(8, "big")
        elif enclosing[span.trace_id] is not None:
            assert got.parent_span_id == enclosing[span.trace_id].to_bytes(8, "big")
        else:
            assert got.parent_span_id.hex() == reply["server_span_id"]


@pytest.mark.integration  # a server process and loopback HTTP: the slow tier
def test_langsmith_headers_continue_the_trace_in_the_server(
    tmp_path: Path, receiver: OtlpReceiver, service: dict[str, Any]
) -> None:
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client
    from langsmith.run_helpers import get_current_run_tree

    calls: list[str] = []

    def ask(question: str) -> str:
        run = get_current_run_tree()  # this LangChain run, as LangSmith's tracer sees it
        calls.append(str(run.id))
        headers = run.to_headers()
        assert "langsmith-trace" in headers
        return post(service["url"] + "/ask", {"question": question}, headers)["answer"]

    client_db = tmp_path / "client.db"
    with LangSmithStandIn(lifetime=240) as langsmith:
        tracer = LangChainTracer(client=Client(api_url=langsmith.url, api_key="test-key"))
        obs = ObsHandler(client_db, sinks=[OTLP(receiver.url)])
        client_chain(ask).invoke("  how? ", {"callbacks": [obs, tracer]})
        tracer.wait_for_futures()
        assert obs.flush(30)
        obs.close()
    client_trace, client_spans = only_trace(client_db)
    server_trace, server_spans = only_trace(service["db"])
    trace_hex = UUID(client_trace.trace_id).hex
    assert client_trace.traceparent is None  # a trace of its own: its id is the root run's
    assert server_trace.otel_trace_id == client_trace.otel_trace_id == trace_hex
    with TraceStore(service["db"]) as store:
        assert [t.trace_id for t in store.traces(otel_trace_id=trace_hex)] == [
            server_trace.trace_id
        ]

    # One tree: the server's root span hangs under the client's ``ask_service`` span.
    received = receiver.wait_for(len(client_spans) + len(server_spans), timeout=60)
    assert {s.trace_id.hex() for s in received} == {trace_hex}
    by_run = {attributes(s)["langchain.run.id"]: s for s in received}
    [server_root] = [s for s in server_spans if s.parent_id is None]
    [ask_span] = [s for s in client_spans if s.name == "ask_service"]
    assert calls == [ask_span.span_id]
    assert by_run[server_root.span_id].parent_span_id == by_run[ask_span.span_id].span_id


def test_reading_the_context_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    def broken() -> Any:
        raise RuntimeError("a broken context")

    monkeypatch.setattr(trace, "get_current_span", broken)
    assert enclosing_traceparent(None) is None
    with ObsHandler(tmp_path / "t.db") as obs:
        assert RunnableLambda(lambda x: x + 1).invoke(1, {"callbacks": [obs]}) == 2
    trace_row, [span] = only_trace(tmp_path / "t.db")
    assert span.traceparent is None and trace_row.otel_trace_id == UUID(span.trace_id).hex


def test_a_version_5_file_gains_the_version_7_columns(tmp_path: Path) -> None:
    import sqlite3

    import sqlite_utils

    from lc_observe.storage.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

    db = sqlite_utils.Database(tmp_path / "fresh5.db")  # a file as version 5 left it
    for version in range(1, 6):
        MIGRATIONS[version](db)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 5")
    db.close()
    with TraceStore(tmp_path / "fresh5.db") as store:  # migrates
        assert store.traces() == []
    with sqlite3.connect(tmp_path / "fresh5.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
        spans = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
        traces = {row[1] for row in conn.execute("PRAGMA table_info(traces)")}
    assert {"response_model", "params", "traceparent"} <= spans and "traceparent" in traces
    tracer = TracerProvider().get_tracer("t")
    with ObsHandler(tmp_path / "fresh5.db") as obs, tracer.start_as_current_span("job") as job:
        RunnableLambda(lambda x: x, name="after").invoke(1, {"callbacks": [obs]})
    with TraceStore(tmp_path / "fresh5.db") as store:
        [found] = store.traces(otel_trace_id=f"{job.get_span_context().trace_id:032x}")
        assert found.name == "after"
