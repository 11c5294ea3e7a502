"""The LangGraph branch hook: never changes a graph, keyed to its handler's runs, and falls
back to callbacks on a LangGraph it does not understand."""

from __future__ import annotations

import logging
import operator
import threading
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langgraph.graph import END, START, StateGraph
from langgraph.graph._branch import BranchSpec

from lc_observe import ObsHandler, TraceStore
from lc_observe.capture import langgraph_hook
from lc_observe.capture.langgraph import GraphTracker


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


def _graph():
    def a(state: S) -> S:
        return {"log": ["a"]}

    def b(state: S) -> S:
        return {"log": ["b"]}

    def pick(state: S) -> str:
        return "left" if state["x"] % 2 else "right"

    builder = StateGraph(S)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", pick, {"left": "b", "right": END})
    builder.add_edge("b", END)
    return builder.compile()


def test_installed_once_and_reported_active() -> None:
    assert langgraph_hook.install() is True
    assert langgraph_hook.active()
    assert getattr(BranchSpec._finish, "_lc_observe", False)
    wrapped = BranchSpec._finish
    assert langgraph_hook.install(force=True)
    assert BranchSpec._finish is wrapped  # never wrapped twice


def test_graph_output_identical_with_and_without_the_hook(db_path: Path) -> None:
    graph = _graph()
    handler = ObsHandler(db_path)
    with_hook = [graph.invoke({"x": x}, {"callbacks": [handler]}) for x in range(4)]
    handler.close()
    langgraph_hook.uninstall()
    try:
        assert not getattr(BranchSpec._finish, "_lc_observe", False)
        without = [graph.invoke({"x": x}) for x in range(4)]
    finally:
        assert langgraph_hook.install(force=True)
    assert with_hook == without


def test_each_handler_sees_only_its_own_runs(tmp_path: Path) -> None:
    graph = _graph()
    first, second = ObsHandler(tmp_path / "1.db"), ObsHandler(tmp_path / "2.db")
    both = ObsHandler(tmp_path / "both.db")

    def run(handler: ObsHandler, odd: bool) -> None:
        for i in range(50):
            graph.invoke({"x": 2 * i + odd}, {"callbacks": [handler]})

    threads = [
        threading.Thread(target=run, args=(first, True)),
        threading.Thread(target=run, args=(second, False)),
    ]
    for thread in threads:
        thread.start()
    for i in range(10):
        graph.invoke({"x": i})  # no lc_observe at all: nobody records it
    graph.invoke({"x": 1}, {"callbacks": [both, first]})  # two handlers on one run
    for thread in threads:
        thread.join()
    for handler in (first, second, both):
        handler.close()
    got = {
        name: [e.destinations for e in TraceStore(tmp_path / f"{name}.db").branches()]
        for name in ("1", "2", "both")
    }
    assert got["1"] == [["b"]] * 51
    assert got["2"] == [["__end__"]] * 50
    assert got["both"] == [["b"]]


def test_a_failing_hook_never_reaches_the_graph(db_path: Path, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("bug in lc_observe")

    monkeypatch.setattr(GraphTracker, "on_branch", explode)
    handler = ObsHandler(db_path)
    out = _graph().invoke({"x": 1}, {"callbacks": [handler]})
    assert out == {"x": 1, "log": ["a", "b"]}
    assert handler.stats["internal_errors"] >= 1
    handler.close()


def test_a_foreign_handler_with_a_raising_attribute_is_ignored(db_path: Path) -> None:
    class Odd(BaseCallbackHandler):
        def __getattr__(self, name: str):
            raise RuntimeError(name)

    out = _graph().invoke({"x": 1}, {"callbacks": [Odd()]})
    assert out["log"] == ["a", "b"]


def test_decisions_of_a_failed_task_are_not_recorded(db_path: Path) -> None:
    """A node whose second conditional edge raises fails: LangGraph discards the task's
    writes, so the first edge's decision was never applied."""

    def ok(state: S) -> str:
        return "b"

    def broken(state: S) -> str:
        raise ValueError("router bug")

    builder = StateGraph(S)
    builder.add_node("a", lambda state: {"log": ["a"]})
    builder.add_node("b", lambda state: {"log": ["b"]})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", ok)
    builder.add_conditional_edges("a", broken)
    builder.add_edge("b", END)
    handler = ObsHandler(db_path)
    with pytest.raises(ValueError, match="router bug"):
        builder.compile().invoke({"x": 1}, {"callbacks": [handler]})
    handler.close()
    events = TraceStore(db_path).branches()
    assert [(e.condition, e.destinations, (e.error or {}).get("type")) for e in events] == [
        ("broken", [], "ValueError")  # the raising router, as an error; no applied decision
    ]


@pytest.mark.parametrize(
    "patch, says",
    [
        ({"_version": lambda: (2, 0)}, "not a version"),
        ({"_EXPECTED_PARAMS": ["self", "writer", "result"]}, "is not the one"),
    ],
)
def test_unknown_langgraph_falls_back_with_one_log_line(
    db_path: Path, monkeypatch, caplog, patch, says
) -> None:
    langgraph_hook.uninstall()
    for name, value in patch.items():
        monkeypatch.setattr(langgraph_hook, name, value)
    try:
        with caplog.at_level(logging.WARNING, logger="lc_observe"):
            assert langgraph_hook.install(force=True) is False
            handler = ObsHandler(db_path)
            ObsHandler(db_path.with_name("other.db")).close()
        lines = [r.getMessage() for r in caplog.records if "trace=False" in r.getMessage()]
        assert len(lines) == 1 and says in lines[0]
        assert not getattr(BranchSpec._finish, "_lc_observe", False)
        # Callback-only recording still works for traced routing functions.
        _graph().invoke({"x": 1}, {"callbacks": [handler]})
        handler.close()
        (event,) = TraceStore(db_path).branches()
        assert (event.condition, event.result) == ("pick", "left")
    finally:
        monkeypatch.undo()
        assert langgraph_hook.install(force=True)
