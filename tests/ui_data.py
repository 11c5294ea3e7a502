"""A database for the UI tests and screenshots, made by real graph runs.

Real LangGraph graphs and a real ``create_agent`` agent (driven by `ScriptedChatModel`) run
with `ObsHandler` and LangChain's own `RunCollectorCallbackHandler`, so tests can compare
what the UI shows with what the store holds and with what LangChain saw.  One agent run
gets a hostile prompt (script and image tags), one graph run fails.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, Queue
from tests.agents import ScriptedChatModel, call, turns
from tests.runs import branching_graph
from tests.scenarios import add, lookup

HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> what is 3+4?"
ANSWER = "3 + 4 = 7, looked up and added"


@dataclass
class Recorded:
    """The database and what LangChain saw, by trace id."""

    db_path: Path
    runs: dict[str, list[Any]] = field(default_factory=dict)  # trace id -> collector runs
    branch_small: list[str] = field(default_factory=list)
    branch_big: list[str] = field(default_factory=list)
    agent: list[str] = field(default_factory=list)
    hostile: str = ""
    failed: str = ""


def _agent() -> Any:
    from langchain.agents import create_agent

    model = ScriptedChatModel(
        script=turns(
            ("", [call("lookup", term="addition"), call("add", a=3, b=4)]),
            (ANSWER, []),
        )
    )
    return create_agent(model, [add, lookup])


def _failing_graph() -> Any:
    def plan(state: dict) -> dict:
        return {"n": 1}

    def explode(state: dict) -> dict:
        raise ValueError("the search backend is down <b>bold?</b>")

    builder = StateGraph(dict)
    builder.add_node("plan", plan)
    builder.add_node("explode", explode)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "explode")
    builder.add_edge("explode", END)
    return builder.compile()


def run(
    handler: ObsHandler,
    graph: Any,
    inputs: Any,
    rec: Recorded,
    *,
    name: str,
    user: str = "ada",
    tags: tuple[str, ...] = ("ui-test",),
    **meta: Any,
) -> str:
    """Run ``graph`` once under both handlers; returns the trace id (the root run id)."""
    collector = RunCollectorCallbackHandler(_schema_format="original+chat")
    run_id = uuid.uuid4()
    config = {
        "callbacks": [handler, collector],
        "run_id": run_id,
        "run_name": name,
        "metadata": {"user_id": user, **meta},
        "tags": list(tags),
    }
    with contextlib.suppress(ValueError):  # the failing graph: recorded as an error trace
        graph.invoke(inputs, config=config)
    rec.runs[str(run_id)] = collector.traced_runs
    return str(run_id)


def build(db_path: Path) -> Recorded:
    """Record the test database at ``db_path``."""
    rec = Recorded(db_path)
    branching = branching_graph()
    with ObsHandler(db_path, session_id="s-1", queue=Queue(schedule_delay=0.05)) as handler:
        for n in (1, 2, 3):
            rec.branch_small.append(
                run(handler, branching, {"n": n}, rec, name="router", prompt_version="v1")
            )
        for n in (11, 12):
            rec.branch_big.append(
                run(
                    handler,
                    branching,
                    {"n": n},
                    rec,
                    name="router",
                    prompt_version="v2",
                    user="grace",
                )
            )
        agent = _agent()
        rec.agent.append(
            run(
                handler,
                agent,
                {"messages": [("human", "add 3 and 4")]},
                rec,
                name="agent",
                user="linus",
                tags=("ui-test", "agent"),
            )
        )
        rec.hostile = run(
            handler, agent, {"messages": [("human", HOSTILE)]}, rec, name="agent", user="mallory"
        )
        rec.agent.append(rec.hostile)
        rec.failed = run(handler, _failing_graph(), {"n": 0}, rec, name="pipeline")
        assert handler.flush(30), "flush timed out"
    return rec
