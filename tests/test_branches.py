"""Branch events for every LangGraph routing form, from real StateGraphs."""

from __future__ import annotations

import asyncio
import functools
import operator
import random
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from lc_observe import ObsHandler, Runs, TraceStore
from lc_observe.capture import langgraph_hook


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


def _node(name: str):
    def run(state: S) -> S:
        return {"log": [name]}

    run.__name__ = name
    return run


def _graph(wire, nodes=("a", "b", "c"), checkpointer=None, name=None):
    builder = StateGraph(S)
    for node in nodes:
        builder.add_node(node, _node(node))
    builder.add_edge(START, nodes[0])
    wire(builder)
    return builder.compile(checkpointer=checkpointer, name=name)


def _run(graph, state, db_path, *, register=False, mode="invoke", config=None):
    obs = ObsHandler(db_path, runs=Runs(graphs=[graph] if register else ()))
    config = {"callbacks": [obs], **(config or {})}
    if mode == "invoke":
        out = graph.invoke(state, config)
    elif mode == "ainvoke":
        out = asyncio.run(graph.ainvoke(state, config))
    elif mode.startswith("stream:"):
        out = list(graph.stream(state, config, stream_mode=mode.split(":")[1]))
    else:
        stream_mode = mode.split(":")[1]

        async def consume():
            return [c async for c in graph.astream(state, config, stream_mode=stream_mode)]

        out = asyncio.run(consume())
    obs.close()
    return out, TraceStore(db_path)


def _events(store: TraceStore) -> list[tuple]:
    return [
        (e.source, e.condition, e.result, e.destinations, e.kind, e.step, e.error)
        for e in store.branches()
    ]


def route(state: S) -> str:
    return "yes" if state["x"] > 0 else "no"


def to_b(state: S) -> str:
    return "b"


def test_router_returning_a_node_name(db_path) -> None:
    graph = _graph(lambda g: (g.add_conditional_edges("a", to_b), g.add_edge("b", END)))
    _, store = _run(graph, {"x": 1}, db_path)
    (event,) = store.branches()
    assert (event.source, event.condition, event.result, event.destinations) == (
        "a",
        "to_b",
        "b",
        ["b"],
    )
    assert (event.kind, event.step, event.error) == ("conditional_edge", 1, None)
    spans = {s.span_id: s for s in store.spans()}
    decider = spans[event.span_id]
    assert decider.name == "to_b" and spans[decider.parent_id].graph_node == "a"
    trace = store.trace(event.trace_id)
    assert trace.branches == [event]
    assert store.path(event.trace_id) == ["a", "b"]


def _path_map(g) -> None:
    g.add_conditional_edges("a", route, {"yes": "b", "no": "c"})
    g.add_edge("b", END)
    g.add_edge("c", END)


@pytest.mark.parametrize("x, expected", [(1, "b"), (-1, "c")])
def test_path_map_resolved_with_the_registered_graph(db_path, x: int, expected: str) -> None:
    _, store = _run(_graph(_path_map), {"x": x}, db_path, register=True)
    (event,) = _events(store)
    assert event == (
        "a",
        "route",
        "yes" if x > 0 else "no",
        [expected],
        "conditional_edge",
        1,
        None,
    )


@pytest.mark.parametrize("x, expected", [(1, "b"), (-1, "c")])
def test_path_map_resolved_without_the_graph(db_path, x: int, expected: str) -> None:
    _, store = _run(_graph(_path_map), {"x": x}, db_path)
    (event,) = _events(store)
    key = "yes" if x > 0 else "no"
    assert event == ("a", "route", key, [expected], "conditional_edge", 1, None)


@pytest.fixture
def callbacks_only():
    """Handlers created inside see LangGraph through callbacks only (the fallback used on a
    LangGraph version the hook does not understand)."""
    langgraph_hook.uninstall()
    yield
    assert langgraph_hook.install(force=True)


def test_fallback_path_map_key_without_the_graph_is_unknown(db_path, callbacks_only) -> None:
    _, store = _run(_graph(_path_map), {"x": 1}, db_path)
    (event,) = _events(store)
    assert event == ("a", "route", "yes", [], "conditional_edge", 1, None)  # never guessed
    assert store.path(store.traces()[0].trace_id) == ["a", "b"]  # where it went is still known


@pytest.mark.parametrize("x, expected", [(1, "b"), (-1, "c")])
def test_fallback_path_map_resolved_with_graphs_hint(db_path, callbacks_only, x, expected) -> None:
    _, store = _run(_graph(_path_map), {"x": x}, db_path, register=True)
    (event,) = _events(store)
    assert event[3] == [expected]


def test_list_path_map(db_path) -> None:
    def wire(g):
        g.add_conditional_edges("a", to_b, ["b", "c"])
        g.add_edge("b", END)
        g.add_edge("c", END)

    _, store = _run(_graph(wire), {"x": 1}, db_path, register=True)
    assert _events(store) == [("a", "to_b", "b", ["b"], "conditional_edge", 1, None)]


def test_router_returning_end(db_path) -> None:
    def stop(state: S) -> str:
        return END

    _, store = _run(_graph(lambda g: g.add_conditional_edges("a", stop)), {"x": 1}, db_path)
    assert _events(store) == [("a", "stop", "__end__", ["__end__"], "conditional_edge", 1, None)]


def test_fan_out_list(db_path) -> None:
    def both(state: S) -> list[str]:
        return ["b", "c"]

    def wire(g):
        g.add_conditional_edges("a", both)
        g.add_edge("b", END)
        g.add_edge("c", END)

    out, store = _run(_graph(wire), {"x": 1}, db_path)
    assert sorted(out["log"]) == ["a", "b", "c"]
    assert _events(store) == [("a", "both", ["b", "c"], ["b", "c"], "conditional_edge", 1, None)]


def test_send_objects(db_path) -> None:
    def scatter(state: S) -> list[Send]:
        return [Send("b", {"x": 10}), Send("c", {"x": 20})]

    def wire(g):
        g.add_conditional_edges("a", scatter)
        g.add_edge("b", END)
        g.add_edge("c", END)

    _, store = _run(_graph(wire), {"x": 1}, db_path)
    (event,) = _events(store)
    assert event == (
        "a",
        "scatter",
        [{"node": "b", "arg": {"x": 10}}, {"node": "c", "arg": {"x": 20}}],
        ["b", "c"],
        "send",
        1,
        None,
    )


def test_command_goto(db_path) -> None:
    def a(state: S) -> Command:
        return Command(goto="c", update={"log": ["a"]})

    builder = StateGraph(S)
    builder.add_node("a", a, destinations=("b", "c"))
    builder.add_node("b", _node("b"))
    builder.add_node("c", _node("c"))
    builder.add_edge(START, "a")
    out, store = _run(builder.compile(), {"x": 1}, db_path)
    assert out["log"] == ["a", "c"]
    (event,) = store.branches()
    assert (event.source, event.kind, event.result, event.destinations, event.step) == (
        "a",
        "command",
        "c",
        ["c"],
        1,
    )
    assert store.span(event.span_id).name == "a"  # the node decided


def test_conditional_edge_inside_a_subgraph(db_path) -> None:
    inner = _graph(lambda g: (g.add_conditional_edges("a", to_b), g.add_edge("b", END)))
    outer = StateGraph(S)
    outer.add_node("sub", inner)
    outer.add_node("after", _node("after"))
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "after")
    outer.add_edge("after", END)
    out, store = _run(outer.compile(), {"x": 1}, db_path)
    assert out["log"] == ["a", "b", "after"]
    assert _events(store) == [("sub/a", "to_b", "b", ["b"], "conditional_edge", 1, None)]
    assert store.path(store.traces()[0].trace_id) == ["sub", "sub/a", "sub/b", "after"]


def test_router_that_raises(db_path) -> None:
    boom = KeyError("missing route")

    def broken(state: S) -> str:
        raise boom

    graph = _graph(lambda g: (g.add_conditional_edges("a", broken), g.add_edge("b", END)))
    obs = ObsHandler(db_path)
    with pytest.raises(KeyError) as caught:
        graph.invoke({"x": 1}, {"callbacks": [obs]})
    assert caught.value is boom
    obs.close()
    (event,) = TraceStore(db_path).branches()
    assert (event.source, event.condition, event.destinations) == ("a", "broken", [])
    assert event.error == {"type": "KeyError", "message": "'missing route'"}


def test_lambda_and_partial_routers_get_names_from_the_graph(db_path) -> None:
    def pick(state: S, target: str) -> str:
        return target

    def wire(g):
        g.add_conditional_edges("a", lambda s: "b", {"b": "b", "c": "c"})
        g.add_conditional_edges("b", functools.partial(pick, target="c"), ["c"])
        g.add_edge("c", END)

    graph = _graph(wire)
    _, store = _run(graph, {"x": 1}, db_path, register=True)
    conditions = [e.condition for e in store.branches()]
    assert conditions[0].startswith("<lambda at test_branches.py:") and conditions[1] == "pick"
    assert [e.destinations for e in store.branches()] == [["b"], ["c"]]


MODES = ["invoke", "ainvoke"] + [
    f"{kind}:{mode}"
    for kind in ("stream", "astream")
    for mode in ("values", "updates", "messages", "debug", "custom")
]


@pytest.mark.parametrize("mode", MODES)
def test_every_execution_mode_gives_the_same_events(mode: str, tmp_path) -> None:
    graph = _graph(_path_map)
    _, reference = _run(graph, {"x": -3}, tmp_path / "ref.db", register=True)
    _, store = _run(graph, {"x": -3}, tmp_path / f"{mode.replace(':', '_')}.db", register=True)
    assert _events(store) == _events(reference) != []


def test_interrupt_and_resume(db_path) -> None:
    def ask(state: S) -> S:
        answer = interrupt("approve?")
        return {"log": [f"ask:{answer}"]}

    builder = StateGraph(S)
    builder.add_node("ask", ask)
    builder.add_node("b", _node("b"))
    builder.add_edge(START, "ask")
    builder.add_conditional_edges("ask", to_b)
    builder.add_edge("b", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    config: dict[str, Any] = {"configurable": {"thread_id": "t1"}}
    obs = ObsHandler(db_path)
    graph.invoke({"x": 1}, {**config, "callbacks": [obs]})
    out = graph.invoke(Command(resume="yes"), {**config, "callbacks": [obs]})
    obs.close()
    assert out["log"] == ["ask:yes", "b"]
    store = TraceStore(db_path)
    first, second = sorted(store.traces(), key=lambda t: t.start_time)
    assert first.status == "interrupted" and first.error_count == 0
    statuses = {s.name: s.status for s in store.spans(trace_id=first.trace_id)}
    assert statuses == {"LangGraph": "interrupted", "ask": "interrupted"}
    assert second.status == "ok" and first.session_id == second.session_id == "t1"
    assert [(e.source, e.destinations) for e in store.branches(trace_id=second.trace_id)] == [
        ("ask", ["b"])
    ]


def test_branch_stats_match_a_seeded_random_router_exactly(db_path) -> None:
    rng = random.Random(1234)
    chosen: Counter[tuple[str, str]] = Counter()

    def router(source: str, options: list[str]):
        def decide(state: S) -> str:
            pick = rng.choice(options)
            chosen[(source, pick)] += 1
            return pick

        decide.__name__ = f"route_{source}"
        return decide

    builder = StateGraph(S)
    for node in ("start", "l", "r", "ll", "lr", "rl", "rr", "done"):
        builder.add_node(node, _node(node))
    builder.add_edge(START, "start")
    builder.add_conditional_edges("start", router("start", ["l", "r"]))
    builder.add_conditional_edges("l", router("l", ["ll", "lr", END]))
    builder.add_conditional_edges("r", router("r", ["rl", "rr"]))
    for leaf in ("ll", "lr", "rl", "rr"):
        builder.add_edge(leaf, "done")
    builder.add_edge("done", END)
    graph = builder.compile()

    obs = ObsHandler(db_path)
    for _ in range(200):
        graph.invoke({"x": 0}, {"callbacks": [obs]})
    obs.close()

    store = TraceStore(db_path)
    stats = {(s.source, s.destination): s for s in store.branch_stats()}
    assert {key: s.count for key, s in stats.items()} == dict(chosen)
    decisions = Counter()
    for (source, _), count in chosen.items():
        decisions[source] += count
    for (source, destination), stat in stats.items():
        assert stat.decisions == decisions[source]
        assert stat.rate == pytest.approx(chosen[(source, destination)] / decisions[source])
    assert decisions["start"] == 200
    only_l = store.branch_stats(source="l")
    assert {s.source for s in only_l} == {"l"}
    paths = dict(store.paths())
    assert sum(paths.values()) == 200
