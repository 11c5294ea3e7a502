"""Real runnables used across tests, and helpers to compare run trees."""

from __future__ import annotations

import operator
from typing import Any, Literal, TypedDict

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from langchain_core.tracers.schemas import Run
from langgraph.graph import END, START, StateGraph


class ListRetriever(BaseRetriever):
    """Returns documents containing the query's first word."""

    documents: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        word = query.split()[0].lower()
        return [d for d in self.documents if word in d.page_content.lower()]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def chat_chain(replies: list[str] | None = None) -> Any:
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    model = FakeListChatModel(responses=replies or ["hello", "again"])
    return prompt | model | StrOutputParser()


def nested_lambdas() -> Any:
    inner = RunnableLambda(lambda x: x + 1, name="inner")

    def outer(x: int, config: Any = None) -> int:
        return inner.invoke(x, config) * 2

    return RunnableLambda(outer, name="outer") | RunnableLambda(lambda x: x - 1, name="last")


def parallel_chain() -> Any:
    return RunnableParallel(
        double=RunnableLambda(lambda x: x * 2, name="double"),
        square=RunnableLambda(lambda x: x * x, name="square"),
    ) | RunnableLambda(lambda d: d["double"] + d["square"], name="combine")


def retriever() -> ListRetriever:
    return ListRetriever(
        documents=[
            Document(page_content="apples are red"),
            Document(page_content="bananas are yellow"),
            Document(page_content="apples and pears"),
        ]
    )


class State(TypedDict, total=False):
    n: int
    trail: list[str]


def branching_graph() -> Any:
    """start -> check -(route)-> small | big -> END, 'big' also calls the `add` tool."""

    def check(state: State) -> State:
        return {"trail": ["check"]}

    def small(state: State) -> State:
        return {"trail": [*state["trail"], "small"]}

    def big(state: State) -> State:
        total = add.invoke({"a": state["n"], "b": 1})
        return {"n": total, "trail": [*state["trail"], "big"]}

    def route(state: State) -> Literal["small", "big"]:
        return "big" if state["n"] > 10 else "small"

    builder = StateGraph(State)
    builder.add_node("check", check)
    builder.add_node("small", small)
    builder.add_node("big", big)
    builder.add_edge(START, "check")
    builder.add_conditional_edges("check", route)
    builder.add_edge("small", END)
    builder.add_edge("big", END)
    return builder.compile()


class Explosive:
    """An object whose repr and str raise (attribute access works)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__


def flatten(runs: list[Run]) -> list[Run]:
    """All runs of the collector's root runs, depth first."""
    out: list[Run] = []
    stack = list(runs)
    while stack:
        run = stack.pop()
        out.append(run)
        stack.extend(run.child_runs)
    return out


def run_tree(runs: list[Run]) -> set[tuple[str, str | None, str, str]]:
    """(run id, parent id, name, run type) of every run, as LangChain's collector saw it."""
    return {
        (
            str(r.id),
            None if r.parent_run_id is None else str(r.parent_run_id),
            r.name,
            r.run_type,
        )
        for r in flatten(runs)
    }


def span_tree(spans: list[Any]) -> set[tuple[str, str | None, str, str]]:
    return {(s.span_id, s.parent_id, s.name, s.kind) for s in spans}


__all__ = ["add", "operator"]
