"""Trace diff: two runs of a real graph that differ in one routing decision and one tool
output; identical runs; the text and HTML views; bad ids."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict

import pytest
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, TraceNotFoundError, TraceStore

from .fakes import UsageChatModel, usage


@tool
def lookup(n: int) -> str:
    """Look a number up in the catalogue."""
    return "small item" if n < 10 else "large item"


class _State(TypedDict, total=False):
    n: int
    found: str
    answer: str


def _graph():
    """fetch (calls the lookup tool) -(route)-> small | big (a model call each)."""
    model = UsageChatModel(responses=["ok"], usage=usage(10, 2))

    def fetch(state: _State) -> _State:
        return {"found": lookup.invoke({"n": state["n"]})}

    def route(state: _State) -> Literal["small", "big"]:
        return "big" if state["found"] == "large item" else "small"

    def answer(state: _State) -> _State:
        return {"answer": f"{state['found']}: {model.invoke('describe').content}"}

    builder = StateGraph(_State)
    builder.add_node("fetch", fetch)
    builder.add_node("small", answer)
    builder.add_node("big", answer)
    builder.add_edge(START, "fetch")
    builder.add_conditional_edges("fetch", route)
    builder.add_edge("small", END)
    builder.add_edge("big", END)
    return builder.compile(name="shop")


@pytest.fixture
def store(db_path: Path) -> TraceStore:
    with ObsHandler(db_path) as obs:
        for run, n in (("good", 3), ("bad", 30), ("again", 3)):
            _graph().invoke({"n": n}, {"callbacks": [obs], "metadata": {"run": run}})
    return TraceStore(db_path)


def _ids(store: TraceStore) -> dict[str, str]:
    return {t.metadata["run"]: t.trace_id for t in store.traces()}


def test_one_branch_decision_and_one_tool_output_differ(store: TraceStore) -> None:
    ids = _ids(store)
    d = store.diff(ids["good"], ids["bad"])
    assert (d.path_a, d.path_b) == (["fetch", "small"], ["fetch", "big"])
    (change,) = d.path_changes
    assert (change.op, change.a_nodes, change.b_nodes, change.a_index) == (
        "replace",
        ["small"],
        ["big"],
        1,
    )
    (branch,) = d.branch_differences
    assert (branch.source, branch.condition, branch.occurrence) == ("fetch", "route", 1)
    assert (branch.a_result, branch.a_destinations) == ("small", ["small"])
    assert (branch.b_result, branch.b_destinations) == ("big", ["big"])
    by_path = {s.path: s for s in d.spans}
    tool_span = by_path["shop/fetch/lookup"]
    assert tool_span.kind == "tool" and tool_span.output_differs
    assert (tool_span.a_output, tool_span.b_output) == ("small item", "large item")
    route_span = by_path["shop/fetch/route"]
    assert route_span.output_differs  # the routing function returned something else
    # the node that ran in only one trace, with its subtree, on each side
    assert [r.path for r in d.only_in_a][:1] == ["shop/small"]
    assert [r.path for r in d.only_in_b][:1] == ["shop/big"]
    assert any(r.kind == "chat_model" for r in d.only_in_a)
    # same tokens on both sides: the model ran once in each trace
    assert d.root.tokens_delta == 0 and d.root.a_tokens == 12
    assert d.root.latency_delta_ms == pytest.approx(d.root.b_latency_ms - d.root.a_latency_ms)
    assert {s.path for s in d.changed} == {
        "shop",
        "shop/fetch",
        "shop/fetch/lookup",
        "shop/fetch/route",
    }
    assert not d.identical


def test_runs_that_took_the_same_way_differ_only_in_timings(store: TraceStore) -> None:
    ids = _ids(store)
    d = store.diff(ids["good"], ids["again"])  # the same input, the same way
    assert d.identical
    assert d.path_changes == [] and d.branch_differences == []
    assert d.only_in_a == [] and d.only_in_b == []
    assert d.changed == []  # message ids differ in every run; they are not a difference
    assert len(d.spans) == len(store.spans(trace_id=ids["good"]))
    assert "only timings differ" in str(d)


def test_text_and_html_views(store: TraceStore) -> None:
    ids = _ids(store)
    d = store.diff(ids["good"], ids["bad"])
    text = str(d)
    assert "path A: fetch -> small" in text and "path B: fetch -> big" in text
    assert 'decision route(fetch) #1: A "small" -> small  |  B "big" -> big' in text
    assert "A: small item" in text and "B: large item" in text
    assert "only in B: shop/big [chain] ok" in text
    html = d._repr_html_()
    assert "<script" not in html.lower() and "large item" in html
    assert "Routing decisions that differ" in html and "Only in A" in html


def test_user_strings_are_escaped(db_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    model = UsageChatModel(responses=[evil, "fine"])
    with ObsHandler(db_path) as obs:
        for _ in range(2):
            model.invoke("hi", {"callbacks": [obs], "run_name": "<b>model</b>"})
    store = TraceStore(db_path)
    b, a = (t.trace_id for t in store.traces())
    html = store.diff(a, b)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>model" not in html


def test_unknown_ids(store: TraceStore) -> None:
    with pytest.raises(TraceNotFoundError, match="no trace with id 'nope'"):
        store.diff("nope", _ids(store)["good"])
