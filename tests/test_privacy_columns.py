"""Every column that comes from user data is redacted, in every sink (issue 25, item 5).

A real run puts a secret everywhere an application can: the run name, tags, ``user_id`` and
``session_id`` in metadata (as text and as a dict), a LangGraph graph's name, a node name,
a routing function's name and its result (so the branch's destination), an error's message
and traceback, a score's comment.  No secret may reach the SQLite file (its bytes, ``-wal``
included), the LangSmith stand-in, an OTLP exporter or a Prometheus label.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import OTLP, LangSmith, ObsHandler, Queue, TraceStore
from lc_observe.pipeline.privacy import PrivacyStage
from lc_observe.pipeline.redact import REPLACEMENT, Redactor
from lc_observe.pipeline.serialize import Limits
from lc_observe.records import RECORD_BRANCH, RECORD_SPAN, new_span_record

from .tiers import need

KEY = "sk-proj-Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1"  # an OpenAI key pattern
NODE_KEY = "sk-ant-Nd9Nd8Nd7Nd6Nd5Nd4Nd3"
GRAPH_KEY = "sk-Gr1Gr2Gr3Gr4Gr5Gr6Gr7Gr8"
ROUTE_KEY = "sk-Rt1Rt2Rt3Rt4Rt5Rt6Rt7Rt8"
DICT_SECRET = "hunter2-in-a-dict-user-id"  # only a dict key says it is one
DICT_SESSION = "hunter3-in-a-dict-session"
LEAKS = (KEY, NODE_KEY, GRAPH_KEY, ROUTE_KEY, DICT_SECRET, DICT_SESSION)


class State(TypedDict):
    n: int


def _graph() -> Any:
    need("langgraph")
    from langgraph.graph import END, START, StateGraph

    node = f"node {NODE_KEY}"

    def route(state: State) -> str:
        return "done" if state["n"] > 1 else f"again {ROUTE_KEY}"

    route.__name__ = f"route {ROUTE_KEY}"
    builder = StateGraph(State)
    builder.add_node(node, lambda state: {"n": state["n"] + 1})
    builder.add_node("done", lambda state: {"n": state["n"]})
    builder.add_edge(START, node)
    builder.add_conditional_edges(node, route, {"done": "done", f"again {ROUTE_KEY}": node})
    builder.add_edge("done", END)
    return builder.compile(name=f"graph {GRAPH_KEY}")


def _secret_run(handler: ObsHandler) -> None:
    """One real run of each kind, secrets in every user-data column."""
    chain = RunnableLambda(lambda x: x + 1, name="plain")

    def score_inside(x: int) -> int:
        handler.score("quality", 1.0, comment=f"the user pasted {KEY}")
        return x

    runs: list[tuple[Any, dict[str, Any]]] = [
        (chain, {"run_name": f"named {KEY}", "tags": [f"tag {KEY}"]}),
        (chain, {"metadata": {"user_id": {"api_key": DICT_SECRET}}}),
        (chain, {"metadata": {"user_id": KEY, "session_id": f"s {KEY}"}}),
        (chain, {"metadata": {"session_id": {"token": DICT_SESSION}, "user_id": "u-1"}}),
        (chain, {"metadata": {"thread_id": {"password": DICT_SESSION}}}),
        # a dict id too big for the handler's id limits: kept as the start of its JSON text
        (
            chain,
            {
                "metadata": {
                    "user_id": {
                        "apiKey": DICT_SECRET,
                        "profile": "p" * 190,
                        "x": "y" * 190,
                        "z": "z" * 190,
                    }
                }
            },
        ),
        (RunnableLambda(score_inside, name="scored"), {}),
    ]
    for runnable, config in runs:
        runnable.invoke(1, {**config, "callbacks": [handler]})

    def fail(x: int) -> int:
        raise RuntimeError(f"upstream refused {KEY}")

    with pytest.raises(RuntimeError):
        RunnableLambda(fail, name="failing").invoke(1, {"callbacks": [handler]})
    _graph().invoke({"n": 0}, {"callbacks": [handler], "metadata": {"user_id": KEY}})


def _found(text: str) -> list[str]:
    return [secret for secret in LEAKS if secret in text]


def test_no_user_data_column_reaches_a_sink_unredacted(tmp_path: Path) -> None:
    need("langsmith")
    prometheus_client = need("prometheus_client")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lc_observe.testing import LangSmithStandIn

    from .loopback import langsmith_client

    db = tmp_path / "t.db"
    exporter = InMemorySpanExporter()
    registry = prometheus_client.CollectorRegistry()
    with LangSmithStandIn() as server, langsmith_client(server.url) as client:
        handler = ObsHandler(
            db,
            sinks=[LangSmith(client, project_name="p"), OTLP(exporter=exporter)],
            prometheus=registry,
            queue=Queue(schedule_delay=0.01),
        )
        _secret_run(handler)
        assert handler.flush(30)
        # The file's bytes while the writer is open (its -wal too), then after it closed.
        files = {
            suffix: Path(f"{db}{suffix}").read_bytes()
            for suffix in ("", "-wal")
            if Path(f"{db}{suffix}").exists()
        }
        assert files.get("-wal"), "the writes should still be in the -wal file"
        handler.close()
        files["closed"] = db.read_bytes()
        sent = json.dumps(server.ops, default=str)
    for name, data in files.items():
        assert not _found(data.decode("latin-1")), (
            f"SQLite file{name}: {_found(data.decode('latin-1'))}"
        )
    assert not _found(sent), f"LangSmith: {_found(sent)}"
    spans = exporter.get_finished_spans()
    otlp = json.dumps(
        [
            {
                "name": s.name,
                "attributes": dict(s.attributes),
                "events": [[e.name, dict(e.attributes)] for e in s.events],
                "resource": dict(s.resource.attributes),
            }
            for s in spans
        ],
        default=str,
    )
    assert not _found(otlp), f"OTLP: {_found(otlp)}"
    labels = json.dumps(
        [[sample.name, sample.labels] for family in registry.collect() for sample in family.samples]
    )
    assert not _found(labels), f"Prometheus: {_found(labels)}"

    # The secrets were there, and each column holds what is left of it.
    with TraceStore(db) as store:
        spans_by_name = {s.name: s for s in store.spans()}
        assert f"named {REPLACEMENT}" in spans_by_name
        assert spans_by_name[f"named {REPLACEMENT}"].tags == [f"tag {REPLACEMENT}"]
        user_ids = {s.user_id for s in store.spans()}
        assert json.dumps({"api_key": REPLACEMENT}, separators=(",", ":")) in user_ids
        assert REPLACEMENT in user_ids and "u-1" in user_ids
        sessions = {s.session_id for s in store.spans()}
        assert f"s {REPLACEMENT}" in sessions
        assert '{"token":"[REDACTED]"}' in sessions and '{"password":"[REDACTED]"}' in sessions
        assert f"node {REPLACEMENT}" in {s.graph_node for s in store.spans()}
        assert f"graph {REPLACEMENT}" in {t.graph_name for t in store.traces()}
        (failed,) = [s for s in store.spans() if s.status == "error"]
        assert REPLACEMENT in failed.error.message
        events = store.branches()
        assert (f"route {REPLACEMENT}", f"again {REPLACEMENT}") in {
            (e.condition, e.result) for e in events
        }
        assert any(f"node {REPLACEMENT}" in e.destinations for e in events)
        (score,) = store.scores(name="quality")
        assert score.comment == f"the user pasted {REPLACEMENT}"
    assert {"api_key": "[REDACTED]"} in [
        json.loads(s.attributes["user.id"])
        for s in spans
        if "{" in str(s.attributes.get("user.id"))
    ]


# -- the stage itself ---------------------------------------------------------------------------


def _span(**fields: Any) -> dict[str, Any]:
    record = new_span_record("s1", "t1", None, "run", "chain", 0.0, {}, [], {})
    record.update(fields)
    return record


@pytest.mark.parametrize(
    "value",
    [
        {"api_key": DICT_SECRET},
        [{"nested": {"client_secret": DICT_SECRET}}],
        json.dumps({"api_key": DICT_SECRET}),  # a dict made text upstream (handler._as_id)
        json.dumps([{"password": DICT_SECRET}]),
    ],
)
@pytest.mark.parametrize("field", ["user_id", "session_id", "name", "graph_name", "graph_node"])
def test_structured_ids_are_redacted_by_key(field: str, value: Any) -> None:
    stage = PrivacyStage(Limits(), Redactor())
    ((_, public),) = stage.batch([(RECORD_SPAN, _span(**{field: value}))])
    assert DICT_SECRET not in json.dumps(public)
    assert REPLACEMENT in public[field] and isinstance(public[field], str)


def test_a_cut_json_text_has_its_secret_keys_redacted() -> None:
    """A big dict id is cut upstream to a marked preview of its raw JSON text, which does
    not parse: its ``"key": value`` pairs are redacted by key."""
    from lc_observe.pipeline.serialize import TRUNCATED_KEY

    raw = json.dumps({"client_secret": DICT_SECRET, "note": "n" * 50, "token": 12345678})
    for cut in (len(raw), 30, 60, len(raw) - 3):
        preview = json.dumps({TRUNCATED_KEY: True, "chars": len(raw), "preview": raw[:cut]})
        stage = PrivacyStage(Limits(), Redactor())
        ((_, public),) = stage.batch([(RECORD_SPAN, _span(user_id=preview))])
        assert DICT_SECRET[:10] not in public["user_id"] and "12345678" not in public["user_id"]
        assert json.loads(public["user_id"])["chars"] == len(raw)


def test_an_error_message_that_is_a_json_body_is_redacted_by_key() -> None:
    body = json.dumps({"error": {"message": "bad request", "request": {"api_key": DICT_SECRET}}})
    error = {"type": "HTTPError", "message": body, "traceback": None}
    stage = PrivacyStage(Limits(), Redactor())
    ((_, public),) = stage.batch([(RECORD_SPAN, _span(status="error", error=error))])
    message = json.loads(public["error"]["message"])
    assert message["error"]["request"] == {"api_key": REPLACEMENT}
    assert message["error"]["message"] == "bad request"


def test_text_that_only_looks_like_json_is_kept() -> None:
    stage = PrivacyStage(Limits(), Redactor())
    for text in ("{not json", "[1, 2", "{}", "[]", '{"user": "alice"}', "[x] api"):
        ((_, public),) = stage.batch([(RECORD_SPAN, _span(user_id=text))])
        assert public["user_id"] == text


def test_branch_fields_and_budget_ids_are_redacted() -> None:
    stage = PrivacyStage(Limits(), Redactor())
    branch = {
        "trace_id": "t1",
        "span_id": "s1",
        "source": f"node {NODE_KEY}",
        "condition": f"route {ROUTE_KEY}",
        "result": {"api_key": DICT_SECRET},
        "destinations": [f"node {NODE_KEY}"],
        "kind": "conditional_edge",
        "step": 1,
        "checkpoint_ns": None,
        "time": 0.0,
        "error": None,
    }
    ((_, public),) = stage.batch([(RECORD_BRANCH, branch)])
    assert not _found(json.dumps(public))
    assert public["destinations"] == [f"node {REPLACEMENT}"]


def test_stored_ids_of_the_sqlite_sink_used_alone(tmp_path: Path) -> None:
    """`SQLiteSink(redact=...)` on its own passes the same stage."""
    from lc_observe.sinks.sqlite import SQLiteSink

    sink = SQLiteSink(tmp_path / "t.db", redact=Redactor())
    sink.export([(RECORD_SPAN, _span(status="ok", end_time=1.0, user_id={"token": DICT_SECRET}))])
    sink.shutdown()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        (stored,) = conn.execute("SELECT user_id FROM spans").fetchone()
    assert json.loads(stored) == {"token": REPLACEMENT}
