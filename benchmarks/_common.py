"""Helpers shared by the benchmark scripts (not a benchmark itself).

- `build_agent`: the benchmark's LangGraph agent (20 callback runs per invoke);
- `CountingHandler`: counts callback runs;
- `median`, `rss_mb`, `print_table`: measuring and printing.
"""

from __future__ import annotations

import itertools
import operator
import os
import statistics
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypedDict
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

# No ambient LangSmith tracing: "no callbacks" must mean no callbacks at all.
for _name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
    os.environ[_name] = "false"

# -- the agent ---------------------------------------------------------------------------------

_DOCS = [
    Document(
        page_content=(
            f"Section {i}: LangGraph routes between nodes with conditional edges; a callback "
            "handler sees every run start and end, including routing functions, tools and "
            "retrievers. SQLite in WAL mode lets readers and one writer work at once. " * 2
        ),
        metadata={"source": f"docs/page-{i}.md", "chunk": i, "score": 0.9 - i / 10},
        id=f"doc-{i}",
    )
    for i in range(6)
]

HISTORY = [
    ("human", "Hi! I am planning a trip and need some help with the budget."),
    ("ai", "Happy to help. Where are you going and for how long?"),
    ("human", "Lisbon, five nights in May, two people, mid-range hotel."),
    ("ai", "Great choice. I will look up typical prices and put a budget together."),
]

QUESTION = "What will the hotel cost in total, and what should we budget for food per day?"


class KeywordRetriever(BaseRetriever):
    """Return the ``k`` documents sharing the most words with the query."""

    documents: list[Document]
    k: int = 3

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = set(query.lower().split())
        return sorted(
            self.documents,
            key=lambda doc: len(words & set(doc.page_content.lower().split())),
            reverse=True,
        )[: self.k]


@tool
def price_lookup(item: str, nights: int = 1) -> str:
    """Look up a typical price for an item (hotel night, meal, ...) and multiply it."""
    prices = {"hotel": 140, "meal": 25, "transit": 8}
    unit = prices.get(item.split()[0].lower(), 50)
    return f"{item}: {unit} EUR x {nights} = {unit * nights} EUR"


class AgentState(TypedDict, total=False):
    question: str
    history: list[tuple[str, str]]
    context: Annotated[list[str], operator.add]
    answer: str
    turns: int


def build_agent() -> Any:
    """Compile the benchmark agent.

    router -> (conditional edge) -> research (tool + retriever) | answer;
    answer = prompt | FakeListChatModel | StrOutputParser, then a conditional edge loops
    back to the router once.  Turn 1 goes through research, turn 2 straight to answer:
    1 graph + 11 + 8 = 20 callback runs per invoke.
    """
    model = FakeListChatModel(
        responses=[
            "Five nights at about 140 EUR is 700 EUR for the hotel. Budget 50 EUR a day "
            "per person for food, so 500 EUR for the two of you over five days.",
            "In total: 700 EUR hotel + 500 EUR food + roughly 80 EUR local transit.",
        ]
    )
    retriever = KeywordRetriever(documents=_DOCS)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a travel budget assistant. Use the context.\n{context}"),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    answer_chain = prompt | model | StrOutputParser()

    def router(state: AgentState) -> AgentState:
        return {"turns": state.get("turns", 0)}

    def route(state: AgentState) -> str:
        return "answer" if state.get("context") else "research"

    def research(state: AgentState) -> AgentState:
        price = price_lookup.invoke({"item": "hotel night", "nights": 5})
        docs = retriever.invoke(state["question"])
        return {"context": [price, *(doc.page_content for doc in docs)]}

    def answer(state: AgentState) -> AgentState:
        text = answer_chain.invoke(
            {
                "context": "\n".join(state.get("context", [])),
                "history": state.get("history", []),
                "question": state["question"],
            }
        )
        return {"answer": text, "turns": state.get("turns", 0) + 1}

    def should_continue(state: AgentState) -> str:
        return "router" if state.get("turns", 0) < 2 else END

    builder = StateGraph(AgentState)
    builder.add_node("router", router)
    builder.add_node("research", research)
    builder.add_node("answer", answer)
    builder.add_edge(START, "router")
    builder.add_conditional_edges("router", route, ["research", "answer"])
    builder.add_edge("research", "answer")
    builder.add_conditional_edges("answer", should_continue, ["router", END])
    return builder.compile(name="bench_agent")


_asked = itertools.count(1)


def agent_input() -> dict[str, Any]:
    """A new question each call (numbered), so no two traces carry identical payloads."""
    return {"question": f"{QUESTION} (#{next(_asked)})", "history": list(HISTORY)}


class CountingHandler(BaseCallbackHandler):
    """Counts callback runs (every ``on_*_start``)."""

    run_inline = True

    def __init__(self) -> None:
        self.runs = 0
        self.by_kind: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.runs += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self._count("chain")

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any):
        self._count("chat_model")

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, **kw: Any) -> None:
        self._count("llm")

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kw: Any) -> None:
        self._count("tool")

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kw: Any) -> None:
        self._count("retriever")


# -- measuring and printing -------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as an aligned text table (first column left-aligned, the rest right)."""
    text = [[str(h) for h in headers], *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in text) for i in range(len(headers))]
    for index, row in enumerate(text):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.2f}"  # NaN as "-"
    return str(value)


def print_profile(stats: Any, per: int, per_label: str, top: int = 25) -> None:
    """Print the top lc_observe functions of a `pstats.Stats` by cumulative and self time."""
    entries = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _) in stats.stats.items():
        if "lc_observe" in filename:
            short = filename.split("lc_observe/", 1)[-1]
            entries.append((f"{short}:{line} {func}", calls, tottime, cumtime))
    for key, label in ((3, "cumulative time"), (2, "self time")):
        entries.sort(key=lambda entry: entry[key], reverse=True)
        print(f"lc_observe functions by {label}:")
        print_table(
            ["function", "calls", "self ms", "cum ms", f"cum µs/{per_label}"],
            [
                [name, calls, f"{tt * 1e3:.1f}", f"{ct * 1e3:.1f}", f"{ct / per * 1e6:.1f}"]
                for name, calls, tt, ct in entries[:top]
            ],
        )
        print()
