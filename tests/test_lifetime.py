"""Nothing of the application outlives its run because of lc_observe.

A node keeps a `Marker` in its locals (so only its frames reference it: reachable after the
run only through an exception's traceback) and one in the graph state (reachable through
run inputs and outputs).  After the run has ended, the handler has flushed and a garbage
collection ran, both markers must be gone, in every way a run can end: failed, interrupted,
cancelled, ok; sync and async.  The same check without lc_observe shows the test holds
LangGraph and LangChain to no stricter rule than lc_observe.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from lc_observe import ObsHandler, Queue, TraceStore


class Marker:
    """An application object whose lifetime is watched."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Marker({self.label})"


class State(TypedDict, total=False):
    payload: Any
    out: str


OUTCOMES = ["ok", "failed", "interrupted", "cancelled"]


def build(outcome: str, refs: list[weakref.ref]) -> Any:
    """A two-node graph whose second node ends the run with ``outcome``."""

    def first(state: State) -> State:
        return {"out": "first"}

    def second_body(state: State) -> None:
        local = Marker("frame")  # referenced by this frame only
        refs.append(weakref.ref(local))
        if outcome == "failed":
            raise ValueError(f"failed holding {local!r}")
        if outcome == "interrupted":
            interrupt({"question": "continue?"})

    def second(state: State) -> State:
        second_body(state)
        return {"out": "second"}

    async def asecond(state: State) -> State:
        second_body(state)
        if outcome == "cancelled":
            await asyncio.sleep(30)  # cancelled here
        return {"out": "second"}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("second", RunnableLambda(second, afunc=asecond, name="second"))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    checkpointer = InMemorySaver() if outcome == "interrupted" else None
    return builder.compile(checkpointer=checkpointer)


def run(outcome: str, mode: str, callbacks: list[Any]) -> list[weakref.ref]:
    refs: list[weakref.ref] = []
    graph = build(outcome, refs)
    config: dict[str, Any] = {"callbacks": callbacks, "configurable": {"thread_id": "t1"}}
    if outcome == "interrupted":  # the checkpointer saves the state: plain data only
        state: dict[str, Any] = {"payload": "plain"}
    else:
        state_marker = Marker("state")
        refs.append(weakref.ref(state_marker))
        state = {"payload": state_marker}
        del state_marker
    try:
        if mode == "sync":
            graph.invoke(state, config)
        else:

            async def main(graph: Any, state: dict[str, Any]) -> None:
                task = asyncio.ensure_future(graph.ainvoke(state, config))
                if outcome == "cancelled":
                    await asyncio.sleep(0.3)
                    task.cancel()
                await task

            asyncio.run(main(graph, state))
    except (ValueError, asyncio.CancelledError):
        pass  # the exception (and its traceback) is dropped here, as an app would
    del state, graph
    return refs


def alive(refs: list[weakref.ref]) -> list[str]:
    gc.collect()
    return [ref().label for ref in refs if ref() is not None]


def _cases() -> list[Any]:
    return [
        (outcome, mode)
        for outcome in OUTCOMES
        for mode in ("sync", "async")
        if not (outcome == "cancelled" and mode == "sync")  # sync runs cannot be cancelled
    ]


@pytest.mark.parametrize(("outcome", "mode"), _cases())
def test_nothing_of_the_run_outlives_it(outcome: str, mode: str, tmp_path: Path) -> None:
    obs = ObsHandler(tmp_path / "t.db", queue=Queue(schedule_delay=0.05))
    refs = run(outcome, mode, [obs])
    assert obs.flush(10)
    assert alive(run(outcome, mode, [])) == []  # without lc_observe: nothing kept
    assert alive(refs) == [], "lc_observe kept application objects alive"
    assert len(refs) == (1 if outcome == "interrupted" else 2)  # the run reached the node
    spans = {s.name: s for s in TraceStore(tmp_path / "t.db").spans()}
    status = {"ok": "ok", "failed": "error", "interrupted": "interrupted", "cancelled": "error"}
    assert spans["second"].status == status[outcome]
    if outcome == "failed":
        assert "Marker(frame)" in spans["second"].error.message  # recorded as text
    obs.close()


def test_the_check_catches_a_handler_that_keeps_an_exception(tmp_path: Path) -> None:
    """A handler that keeps the last error (as ObsHandler once did) fails the check."""
    from langchain_core.callbacks import BaseCallbackHandler

    class KeepsLastError(BaseCallbackHandler):
        last: BaseException | None = None

        def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
            self.last = error

    keeper = KeepsLastError()
    assert "frame" in alive(run("failed", "sync", [keeper]))
