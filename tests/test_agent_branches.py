"""Branch events on real agent builders, compared with LangGraph's own record of the run.

Every scenario of tests/scenarios.py (create_agent with middleware, prebuilt, supervisor,
swarm, deepagents, map-reduce, nested subgraphs, interrupts) runs in four modes with only
``callbacks=[ObsHandler()]`` (no ``Runs(graphs=...)``); tests/ground_truth.py compares every stored
branch event with the tasks LangGraph started and the writes its checkpointer saved.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.capture import langgraph_hook
from tests.ground_truth import MODES, Report, Truth
from tests.scenarios import SCENARIOS, Scenario


def record(scenario: Scenario, db_path: Path, mode: str) -> tuple[Truth, TraceStore, str]:
    handler = ObsHandler(db_path, queue=Queue(schedule_delay=0.05))
    truth = Truth(scenario.graph, scenario.extra_graphs)
    thread = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread}, "callbacks": [handler]}
    for run_input in scenario.runs:
        truth.run(run_input, {**config, "recursion_limit": 60}, mode)
    handler.close()
    return truth, TraceStore(db_path), thread


def traces_in_order(store: TraceStore) -> list[str]:
    return [t.trace_id for t in sorted(store.traces(), key=lambda t: t.start_time)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", list(SCENARIOS))
def test_branch_events_match_langgraph(key: str, mode: str, db_path: Path) -> None:
    scenario = SCENARIOS[key]()
    truth, store, thread = record(scenario, db_path, mode)
    report: Report = truth.check(store, thread)
    assert report.problems == []
    assert report.events > 0 and report.decisions == report.events
    # path(): the nodes LangGraph ran, run by run, without __start__.
    assert [store.path(t) for t in traces_in_order(store)] == truth.paths()


def test_the_comparison_fails_when_decisions_are_missing(db_path: Path) -> None:
    """Without the hook (callbacks only), create_agent's untraced routing is invisible:
    the ground-truth comparison must say so, or it proves nothing."""
    langgraph_hook.uninstall()
    try:
        truth, store, thread = record(SCENARIOS["create_agent"](), db_path, "invoke")
    finally:
        assert langgraph_hook.install(force=True)
    report = truth.check(store, thread)
    assert report.events == 0
    assert any("conditional decision(s), 0 recorded" in p for p in report.problems)


def test_handoff_is_recorded_once_on_the_node_that_returned_it(db_path: Path) -> None:
    _, store, _ = record(SCENARIOS["swarm"](), db_path, "invoke")
    handoffs = [e for e in store.branches() if e.kind == "handoff"]
    assert [(e.source, e.destinations) for e in handoffs] == [("alice/tools", ["bob"])]
    stats = {(s.source, s.destination): s for s in store.branch_stats(source="alice/tools")}
    assert stats[("alice/tools", "bob")].count == 1


def test_fan_out_width_is_kept(db_path: Path) -> None:
    _, store, _ = record(SCENARIOS["map_reduce"](), db_path, "invoke")
    (send,) = [e for e in store.branches() if e.kind == "send"]
    assert send.source == "plan" and send.condition == "fan_out"
    assert send.destinations == ["work", "work", "work"]
    (stat,) = store.branch_stats(source="plan")
    assert (stat.destination, stat.count, stat.tasks, stat.decisions) == ("work", 1, 3, 1)


def test_start_edges_and_readable_conditions(db_path: Path) -> None:
    _, store, _ = record(SCENARIOS["swarm"](), db_path, "invoke")
    starts = [e for e in store.branches() if e.source == "__start__"]
    assert [(e.condition, e.destinations) for e in starts] == [
        ("route_to_active_agent", ["alice"]),
        ("route_to_active_agent", ["bob"]),  # the second run resumes with the active agent
    ]
    _, nested, _ = record(SCENARIOS["nested"](), db_path.with_name("n.db"), "invoke")
    conditions = {e.source: e.condition for e in nested.branches()}
    assert conditions["first"] == "_pick"  # a functools.partial: the wrapped function
    assert conditions["middle/inner/__start__"].startswith("<lambda at scenarios.py:")
    assert all("__start__" not in node for t in nested.traces() for node in nested.path(t.trace_id))


def test_create_agent_routing_names(db_path: Path) -> None:
    _, store, _ = record(SCENARIOS["create_agent"](), db_path, "invoke")
    seen = {(e.condition, e.kind) for e in store.branches()}
    assert ("model_to_tools", "send") in seen  # two parallel tool calls
    assert ("tools_to_model", "conditional_edge") in seen
    (fan_out,) = [e for e in store.branches() if len(e.destinations) == 2]
    assert fan_out.destinations == ["tools", "tools"]
    assert store.branches()[-1].destinations == ["__end__"]


def _summary(store: TraceStore) -> tuple[list, list]:
    events = sorted(
        (e.source, e.condition, e.kind, tuple(e.destinations), e.step) for e in store.branches()
    )
    return events, [store.path(t) for t in traces_in_order(store)]


@pytest.mark.parametrize("key", ["create_agent", "swarm", "nested", "create_agent_hitl"])
def test_astream_events_records_what_invoke_records(key: str, tmp_path: Path) -> None:
    """astream_events has no debug stream: it must give the same events and paths as a
    run whose record was checked against LangGraph's."""
    _, reference, _ = record(SCENARIOS[key](), tmp_path / "ref.db", "invoke")
    scenario = SCENARIOS[key]()
    handler = ObsHandler(tmp_path / "events.db", queue=Queue(schedule_delay=0.05))
    config = {"configurable": {"thread_id": "t"}, "callbacks": [handler]}

    async def consume() -> None:
        for run_input in scenario.runs:
            async for _ in scenario.graph.astream_events(run_input, config, version="v2"):
                pass

    asyncio.run(consume())
    handler.close()
    assert _summary(TraceStore(tmp_path / "events.db")) == _summary(reference)


def test_graph_view_draws_start_routing_and_handoffs(db_path: Path) -> None:
    _, store, _ = record(SCENARIOS["swarm"](), db_path, "invoke")
    edges = store.graph().graph.edges
    assert ("__start__", "__start__") not in edges
    assert edges[("__start__", "alice")].kind == "branch"  # route_to_active_agent
    assert edges[("__start__", "bob")].kind == "branch"  # the second run resumes with bob
    handoff = edges[("alice/tools", "bob")]
    assert (handoff.kind, handoff.count) == ("branch", 1)
    assert ("alice", "bob") not in edges  # explained by the handoff, not a guessed edge
