"""Graphs people really build, from the real builder packages, driven by scripted models.

Each scenario returns a `Scenario`: a compiled graph (with a checkpointer, so LangGraph saves
what it did) and the inputs of its runs on one thread (a resume after an interrupt is a
second run).  Used by tests/test_agent_branches.py and benchmarks/branch_truth.py.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Send

from tests.agents import Reply, ScriptedChatModel, call, turns


@dataclass
class Scenario:
    name: str
    graph: Any
    runs: list[Any]  # inputs, one per run on the same thread
    # Graphs run inside a node (not as a node), by the namespace they run in.
    extra_graphs: dict[tuple[str, ...], Any] = field(default_factory=dict)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: a documented thing"


def _saw(messages: list[BaseMessage], text: str) -> bool:
    return any(text in str(m.content) for m in messages)


def _human(text: str) -> dict[str, Any]:
    return {"messages": [("human", text)]}


# -- langchain.agents.create_agent ---------------------------------------------------------


def create_agent_tools() -> Scenario:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelCallLimitMiddleware, after_model, before_model

    @before_model
    def note_before(state: Any, runtime: Any) -> None:
        return None

    @after_model
    def note_after(state: Any, runtime: Any) -> None:
        return None

    model = ScriptedChatModel(
        script=turns(
            ("", [call("add", a=1, b=2), call("lookup", term="x")]),  # two tools in parallel
            ("", [call("add", a=3, b=4)]),
            ("done: 3, 7", []),
        )
    )
    graph = create_agent(
        model,
        [add, lookup],
        middleware=[note_before, note_after, ModelCallLimitMiddleware(run_limit=10)],
        checkpointer=InMemorySaver(),
    )
    return Scenario("create_agent: tools + before/after hooks + call limit", graph, [_human("go")])


def create_agent_jump_to_end() -> Scenario:
    from langchain.agents import create_agent
    from langchain.agents.middleware import before_model

    @before_model(can_jump_to=["end"])
    def stop_after_one_tool(state: Any, runtime: Any) -> dict[str, Any] | None:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return {"jump_to": "end"}
        return None

    model = ScriptedChatModel(script=turns(("", [call("add", a=1, b=1)]), ("never", [])))
    graph = create_agent(
        model, [add], middleware=[stop_after_one_tool], checkpointer=InMemorySaver()
    )
    return Scenario("create_agent: jump_to end", graph, [_human("go")])


def create_agent_call_limit() -> Scenario:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelCallLimitMiddleware

    model = ScriptedChatModel(script=lambda messages: ("", [call("add", a=1, b=1)]))  # loops
    graph = create_agent(
        model,
        [add],
        middleware=[ModelCallLimitMiddleware(run_limit=2, exit_behavior="end")],
        checkpointer=InMemorySaver(),
    )
    return Scenario("create_agent: model-call limit exit", graph, [_human("loop")])


def create_agent_human_in_the_loop() -> Scenario:
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    model = ScriptedChatModel(script=turns(("", [call("add", a=2, b=2)]), ("four", [])))
    graph = create_agent(
        model,
        [add],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"add": True})],
        checkpointer=InMemorySaver(),
    )
    resume = Command(resume={"decisions": [{"type": "approve"}]})
    return Scenario(
        "create_agent: human-in-the-loop interrupt + resume", graph, [_human("2+2"), resume]
    )


def create_agent_summarization() -> Scenario:
    from langchain.agents import create_agent
    from langchain.agents.middleware import SummarizationMiddleware

    summarizer = ScriptedChatModel(script=lambda messages: ("summary of the talk", []))
    replies = iter([("", [call("add", a=1, b=2)]), ("", [call("add", a=3, b=4)])])
    # The summary replaces old messages, so the script counts its own calls instead.
    model = ScriptedChatModel(script=lambda messages: next(replies, ("ok", [])))
    graph = create_agent(
        model,
        [add],
        middleware=[
            SummarizationMiddleware(summarizer, trigger=("messages", 3), keep=("messages", 2))
        ],
        checkpointer=InMemorySaver(),
    )
    return Scenario("create_agent: summarization", graph, [_human("sum things")])


# -- langgraph.prebuilt ----------------------------------------------------------------------


def prebuilt_react_agent() -> Scenario:
    import warnings

    from langgraph.prebuilt import create_react_agent

    model = ScriptedChatModel(script=turns(("", [call("add", a=1, b=2)]), ("3", [])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent is deprecated for create_agent
        graph = create_react_agent(model, [add], checkpointer=InMemorySaver())
    return Scenario("prebuilt create_react_agent", graph, [_human("1+2")])


def prebuilt_tool_node() -> Scenario:
    from langgraph.prebuilt import ToolNode, tools_condition

    model = ScriptedChatModel(
        script=turns(("", [call("add", a=1, b=2), call("lookup", term="y")]), ("fine", []))
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add, lookup]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=InMemorySaver())
    return Scenario("ToolNode + tools_condition", graph, [_human("both")])


# -- multi-agent -------------------------------------------------------------------------------


def _worker(name: str, answer: str) -> Any:
    from langchain.agents import create_agent

    model = ScriptedChatModel(script=lambda messages: (answer, []))
    return create_agent(model, [add], name=name)


def supervisor(parallel: bool) -> Scenario:
    from langgraph_supervisor import create_supervisor

    def script(messages: list[BaseMessage]) -> Reply:
        if parallel:
            if not _saw(messages, "a done"):
                return "", [call("transfer_to_a"), call("transfer_to_b")]
            return "all done", []
        if not _saw(messages, "a done"):
            return "", [call("transfer_to_a")]
        if not _saw(messages, "b done"):
            return "", [call("transfer_to_b")]
        return "all done", []

    workflow = create_supervisor(
        [_worker("a", "a done"), _worker("b", "b done")],
        model=ScriptedChatModel(script=script),
        parallel_tool_calls=parallel,
    )
    graph = workflow.compile(checkpointer=InMemorySaver())
    kind = "parallel" if parallel else "sequential"
    return Scenario(f"langgraph-supervisor: {kind} handoffs", graph, [_human("work")])


def supervisor_two_handoffs_at_once() -> Scenario:
    """Two handoffs in one message without parallel_tool_calls: LangGraph applies one."""
    from langgraph_supervisor import create_supervisor

    def script(messages: list[BaseMessage]) -> Reply:
        if not _saw(messages, "done"):
            return "", [call("transfer_to_a"), call("transfer_to_b")]
        return "finished", []

    workflow = create_supervisor(
        [_worker("a", "a done"), _worker("b", "b done")],
        model=ScriptedChatModel(script=script),
    )
    graph = workflow.compile(checkpointer=InMemorySaver())
    return Scenario("langgraph-supervisor: two handoffs in one message", graph, [_human("x")])


def swarm() -> Scenario:
    from langchain.agents import create_agent
    from langgraph_swarm import create_handoff_tool, create_swarm

    alice_model = ScriptedChatModel(
        script=lambda messages: (
            ("", [call("transfer_to_bob")])
            if not _saw(messages, "Successfully transferred")
            else ("alice again", [])
        )
    )
    alice = create_agent(alice_model, [create_handoff_tool(agent_name="bob")], name="alice")
    bob = create_agent(
        ScriptedChatModel(script=lambda messages: ("bob answers", [])), [add], name="bob"
    )
    graph = create_swarm([alice, bob], default_active_agent="alice").compile(
        checkpointer=InMemorySaver()
    )
    return Scenario("langgraph-swarm: handoff", graph, [_human("hi"), _human("again")])


def deep_agent() -> Scenario:
    from deepagents import create_deep_agent

    def main(messages: list[BaseMessage]) -> Reply:
        if not _saw(messages, "sub done"):
            return "", [call("task", description="add things", subagent_type="helper")]
        return "main done", []

    helper_model = ScriptedChatModel(
        script=turns(("", [call("add", a=5, b=5)]), ("sub done: 10", []))
    )
    graph = create_deep_agent(
        model=ScriptedChatModel(script=main),
        tools=[add],
        subagents=[
            {
                "name": "helper",
                "description": "adds numbers",
                "system_prompt": "You add.",
                "tools": [add],
                "model": helper_model,
            }
        ],
        checkpointer=InMemorySaver(),
    )
    # The subagent runs inside the task() tool of the "tools" node.
    task = graph.builder.nodes["tools"].runnable.tools_by_name["task"].func
    (subagents,) = [c.cell_contents for c in task.__closure__ if isinstance(c.cell_contents, dict)]
    return Scenario(
        "deepagents: subagent through task()",
        graph,
        [_human("delegate")],
        extra_graphs={("tools",): subagents["helper"]},
    )


# -- hand-built graphs ------------------------------------------------------------------------


class MapState(TypedDict, total=False):
    topics: list[str]
    results: Annotated[list, operator.add]


def map_reduce() -> Scenario:
    def plan(state: MapState) -> dict[str, Any]:
        return {"topics": ["a", "b", "c"]}

    def fan_out(state: MapState) -> list[Send]:
        return [Send("work", {"topics": [t]}) for t in state["topics"]]

    def work(state: MapState) -> dict[str, Any]:
        return {"results": [state["topics"][0].upper()]}

    def enough(state: MapState) -> str:
        return "done" if len(state["results"]) >= 3 else "again"

    builder = StateGraph(MapState)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    builder.add_node("reduce", lambda state: {})
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["work"])
    builder.add_edge("work", "reduce")
    builder.add_conditional_edges("reduce", enough, {"done": END, "again": "plan"})
    graph = builder.compile(checkpointer=InMemorySaver())
    return Scenario("map-reduce with Send (3 tasks)", graph, [{"topics": []}])


class NestState(TypedDict, total=False):
    log: Annotated[list, operator.add]


def _log(name: str) -> Callable[[NestState], dict[str, Any]]:
    def node(state: NestState) -> dict[str, Any]:
        return {"log": [name]}

    node.__name__ = name
    return node


def nested_subgraphs() -> Scenario:
    """Three levels: each with its own conditional edges, START routing, a Command(goto)
    inside, and a Command.PARENT handoff from the innermost level to the middle one."""
    inner = StateGraph(NestState)
    inner.add_node("i1", _log("i1"))

    def i2(state: NestState) -> Command:
        return Command(goto="m_after", graph=Command.PARENT, update={"log": ["i2"]})

    inner.add_node("i2", i2)
    inner.add_conditional_edges(START, lambda state: "i1")
    inner.add_conditional_edges("i1", lambda state: "go", {"go": "i2", "stop": END})
    inner_graph = inner.compile()

    middle = StateGraph(NestState)

    def m1(state: NestState) -> Command:
        return Command(goto="inner", update={"log": ["m1"]})

    middle.add_node("m1", m1, destinations=("inner",))
    middle.add_node("inner", inner_graph)
    middle.add_node("m_after", _log("m_after"))
    middle.add_edge(START, "m1")
    middle.add_conditional_edges("m_after", lambda state: END)
    middle_graph = middle.compile()

    outer = StateGraph(NestState)
    outer.add_node("first", _log("first"))
    outer.add_node("middle", middle_graph)
    outer.add_node("last", _log("last"))
    outer.add_edge(START, "first")
    outer.add_conditional_edges("first", functools_partial_router(), ["middle", "last"])
    outer.add_edge("middle", "last")
    outer.add_edge("last", END)
    graph = outer.compile(checkpointer=InMemorySaver())
    return Scenario("nested subgraphs: conditional edges + Command.PARENT", graph, [{"log": []}])


def _pick(state: NestState, target: str) -> str:
    return target


def functools_partial_router() -> Any:
    import functools

    return functools.partial(_pick, target="middle")


def interrupt_and_resume() -> Scenario:
    from langgraph.types import interrupt

    def ask(state: NestState) -> dict[str, Any]:
        answer = interrupt("ok?")
        return {"log": [f"ask:{answer}"]}

    def route(state: NestState) -> str:
        return "yes" if any("ask:yes" in item for item in state["log"]) else "no"

    builder = StateGraph(NestState)
    builder.add_node("ask", ask)
    builder.add_node("yes", _log("yes"))
    builder.add_node("no", _log("no"))
    builder.add_edge(START, "ask")
    builder.add_conditional_edges("ask", route, {"yes": "yes", "no": "no"})
    builder.add_edge("yes", END)
    builder.add_edge("no", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    return Scenario(
        "interrupt() + resume, path_map router", graph, [{"log": []}, Command(resume="yes")]
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "create_agent": create_agent_tools,
    "create_agent_jump_to": create_agent_jump_to_end,
    "create_agent_call_limit": create_agent_call_limit,
    "create_agent_hitl": create_agent_human_in_the_loop,
    "create_agent_summarization": create_agent_summarization,
    "react_agent": prebuilt_react_agent,
    "tool_node": prebuilt_tool_node,
    "supervisor": lambda: supervisor(parallel=False),
    "supervisor_parallel": lambda: supervisor(parallel=True),
    "supervisor_two_at_once": supervisor_two_handoffs_at_once,
    "swarm": swarm,
    "deepagents": deep_agent,
    "map_reduce": map_reduce,
    "nested": nested_subgraphs,
    "interrupt": interrupt_and_resume,
}
