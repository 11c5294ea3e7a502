"""Runs recorded as LangGraph and LangChain mean them: node TracePolicy honoured in every
sink, runs LangChain never ended closed honestly, a reused run id never replaces a run."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langgraph.graph import END, START, StateGraph
from langgraph.types import TracePolicy, omit_payload
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lc_observe import OTLP, LangSmith, ObsHandler, Queue, TraceStore
from lc_observe.capture.handler import REUSED_RUN_ID_KEY
from lc_observe.testing import LangSmithStandIn

from .loopback import langsmith_client

SECRET_IN, SECRET_OUT = "wombat-in-7731", "wombat-out-9917"


class State(TypedDict, total=False):
    note: str
    reply: str


def policy_graph() -> Any:
    def private(state: State) -> State:
        return {"reply": SECRET_OUT}

    def public(state: State) -> State:
        return {"reply": state["reply"].upper()[:3]}

    builder = StateGraph(State)
    policy = TracePolicy(process_inputs=omit_payload, process_outputs=omit_payload)
    builder.add_node("private", private, trace_policy=policy)
    builder.add_node("public", public)
    builder.add_edge(START, "private")
    builder.add_edge("private", "public")
    builder.add_edge("public", END)
    return builder.compile(name="policy_graph")


def _file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_trace_policy_is_honoured_in_every_sink(mode: str, tmp_path: Path) -> None:
    graph = policy_graph()
    db = tmp_path / "t.db"
    exporter = InMemorySpanExporter()
    with (
        LangSmithStandIn(zstd=True) as theirs,
        LangSmithStandIn() as ours,
        langsmith_client(theirs.url) as tracer_client,
        langsmith_client(ours.url) as client,
    ):
        tracer = LangChainTracer(client=tracer_client, project_name="p")
        obs = ObsHandler(
            db,
            queue=Queue(schedule_delay=0.05),
            sinks=[LangSmith(client, project_name="p"), OTLP(exporter=exporter)],
        )
        config = {"callbacks": [tracer, obs]}
        state = {"note": f"note {SECRET_IN}"}
        if mode == "invoke":
            result = graph.invoke(state, config)
        else:
            result = asyncio.run(graph.ainvoke(state, config))
        assert result["reply"] == "WOM"  # the app got the real payloads
        tracer_client.flush()
        assert obs.flush(10)
        obs.close()
        spans = {s.name: s for s in TraceStore(db).spans()}
        their_runs = {r["name"]: r for r in theirs.wait_for(len(spans)).values()}
        our_runs = {r["name"]: r for r in ours.wait_for(len(spans)).values()}
    # What LangGraph gives its own tracer for the node, lc_observe records in every sink.
    assert their_runs["private"]["inputs"] == {} and their_runs["private"]["outputs"] == {}
    assert spans["private"].inputs == {} and spans["private"].outputs == {}
    assert our_runs["private"]["inputs"] == {} and our_runs["private"]["outputs"] == {}
    node_span = next(s for s in exporter.get_finished_spans() if s.name.endswith("private"))
    assert SECRET_IN not in str(node_span.attributes) and SECRET_OUT not in str(
        node_span.attributes
    )
    # The policy covers the node's own run only: the graph and the next node still show
    # the values, as LangGraph's tracer records them (so the check above is not vacuous).
    assert their_runs["public"]["inputs"]["reply"] == SECRET_OUT
    assert spans["public"].inputs["reply"] == SECRET_OUT
    assert spans["private"].status == "ok" and spans["private"].end_time is not None


def test_a_run_langchain_never_ends_is_closed_when_its_trace_ends(tmp_path: Path) -> None:
    """LangGraph ends a non-tracer handler's node run after its tracers', and a task
    cancelled in between never reaches it: driven here callback by callback."""
    obs = ObsHandler(tmp_path / "t.db", queue=Queue(schedule_delay=0.05))
    root, node, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    obs.on_chain_start({"name": "graph"}, {"q": 1}, run_id=root)
    obs.on_chain_start({"name": "node"}, {"q": 1}, run_id=node, parent_run_id=root)
    obs.on_chain_start({"name": "step"}, {"q": 1}, run_id=child, parent_run_id=node)
    obs.on_chain_end({"out": 2}, run_id=root)  # node and child never end
    assert obs.stats["unended"] == 2 and obs.stats["open_runs"] == 0
    spans = {s.name: s for s in obs.store.spans()}
    assert spans["graph"].status == "ok"
    for name in ("node", "step"):
        assert spans[name].status == "error"
        assert spans[name].error.type == "RunNotEndedError"
        assert "root run 'graph'" in spans[name].error.message
    assert spans["node"].error_count == 2  # its child's failure rolled up into it
    obs.close()


def test_a_reused_run_id_keeps_both_runs(tmp_path: Path, caplog: Any) -> None:
    """A ``run_id`` fixed in config and used for two invocations: both are recorded, the
    second under a fresh id that names the first, counted and logged once."""
    obs = ObsHandler(tmp_path / "t.db", queue=Queue(schedule_delay=0.05))
    collector = RunCollectorCallbackHandler()
    fixed = uuid.uuid4()
    double = RunnableLambda(lambda x: x * 2, name="double")
    for value in (1, 2, 3):
        double.invoke(value, {"callbacks": [obs, collector], "run_id": fixed})
    assert [run.outputs for run in collector.traced_runs] == [{"output": v} for v in (2, 4, 6)]
    spans = sorted(obs.store.spans(), key=lambda s: s.start_time)
    assert [s.outputs for s in spans] == [{"output": v} for v in (2, 4, 6)]
    assert spans[0].span_id == str(fixed) and REUSED_RUN_ID_KEY not in spans[0].metadata
    assert len({s.span_id for s in spans}) == 3
    assert all(s.metadata[REUSED_RUN_ID_KEY] == str(fixed) for s in spans[1:])
    assert obs.stats["reused_run_ids"] == 2
    assert sum("was given to a second run" in r.message for r in caplog.records) == 1
    obs.close()


def test_a_run_id_handed_on_to_a_child_keeps_both_and_ends_both(tmp_path: Path) -> None:
    """The parent's own run id given to its child (as some tests and apps do through
    ``config``): the child is recorded apart and the parent still ends normally."""
    obs = ObsHandler(tmp_path / "t.db", queue=Queue(schedule_delay=0.05))
    fixed = uuid.uuid4()
    child = RunnableLambda(lambda x: x + 1, name="child")

    def parent(x: int, config: dict) -> int:
        return child.invoke(x, {**config, "run_id": fixed})

    assert (
        RunnableLambda(parent, name="parent").invoke(1, {"callbacks": [obs], "run_id": fixed}) == 2
    )
    spans = {s.name: s for s in obs.store.spans()}
    assert spans["parent"].span_id == str(fixed) and spans["parent"].status == "ok"
    assert spans["child"].status == "ok" and spans["child"].parent_id == str(fixed)
    assert spans["child"].metadata[REUSED_RUN_ID_KEY] == str(fixed)
    assert spans["parent"].span_count == 2  # the child rolled up into its parent
    assert obs.stats["reused_run_ids"] == 1 and obs.stats["open_runs"] == 0
    obs.close()
