"""The demo agent: a small LangGraph graph with a router, a conditional edge, a fake chat
model, a tool and a retriever.  No network, no API key.

``lc-observe demo`` runs it twice (one question per route), traces both runs into
``./lc_observe.db`` and prints the trace trees.
"""

from __future__ import annotations

import itertools
import operator
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

DOCS = [
    Document(page_content="LangGraph routes between nodes with conditional edges.", id="d1"),
    Document(page_content="SQLite in WAL mode lets readers and one writer work at once.", id="d2"),
    Document(page_content="A callback handler sees every LangChain run start and end.", id="d3"),
]

QUESTIONS = ["What is 6 * 7?", "How does LangGraph route between nodes?"]


class KeywordRetriever(BaseRetriever):
    """Return the documents sharing the most words with the query."""

    documents: list[Document]
    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = {w.strip("?.,").lower() for w in query.split()}

        def score(doc: Document) -> int:
            return len(words & {w.strip("?.,").lower() for w in doc.page_content.split()})

        return sorted(self.documents, key=score, reverse=True)[: self.k]


@tool
def calculator(expression: str) -> str:
    """Evaluate a product or sum of two integers, like '6 * 7'."""
    left, op, right = expression.split()
    ops = {"*": operator.mul, "+": operator.add, "-": operator.sub}
    return str(ops[op](int(left), int(right)))


class AgentState(TypedDict, total=False):
    question: str
    route: str
    context: Annotated[list[str], operator.add]
    answer: str


class DemoChatModel(GenericFakeChatModel):
    """langchain-core's `GenericFakeChatModel`, presenting itself as OpenAI's gpt-4o-mini
    (through LangChain's ``ls_provider``/``ls_model_name``) so the demo shows a cost.

    With ``streaming=True`` it streams word by word, ``token_delay`` seconds apart, and
    puts the reply's usage on a last empty chunk, as OpenAI's streaming API does, so
    time to first token and tokens per second show too."""

    streaming: bool = False
    token_delay: float = 0.0

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "openai"
        params["ls_model_name"] = "gpt-4o-mini"
        return params

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = next(self.messages)
        for word in re.split(r"(\s+)", str(reply.content)):
            if word:
                time.sleep(self.token_delay)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
                if run_manager:
                    run_manager.on_llm_new_token(word, chunk=chunk)
                yield chunk
        last = AIMessageChunk(
            content="",
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)


def fake_model(token_delay: float = 0.001) -> GenericFakeChatModel:
    """A chat model from langchain-core's fakes that answers from a fixed script, streaming
    word by word ``token_delay`` seconds apart."""
    replies = [
        AIMessage(
            content="The answer is 42.",
            usage_metadata={"input_tokens": 31, "output_tokens": 6, "total_tokens": 37},
            response_metadata={"model_name": "gpt-4o-mini"},
        ),
        AIMessage(
            content="LangGraph follows conditional edges chosen by routing functions.",
            usage_metadata={"input_tokens": 58, "output_tokens": 11, "total_tokens": 69},
            response_metadata={"model_name": "gpt-4o-mini"},
        ),
    ]
    return DemoChatModel(messages=itertools.cycle(replies), streaming=True, token_delay=token_delay)


def build_graph(model: Any = None) -> Any:
    """Compile the demo graph: router -> (calculator | retrieve) -> answer."""
    model = model or fake_model()
    retriever = KeywordRetriever(documents=DOCS)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer using the context.\n{context}"), ("human", "{question}")]
    )
    answer_chain = prompt | model | StrOutputParser()

    def router(state: AgentState) -> AgentState:
        has_math = any(ch.isdigit() for ch in state["question"])
        return {"route": "math" if has_math else "search"}

    def route_question(state: AgentState) -> Literal["math", "search"]:
        return "math" if state["route"] == "math" else "search"

    def use_calculator(state: AgentState) -> AgentState:
        expression = " ".join(t for t in state["question"].rstrip("?").split()[-3:])
        return {"context": [f"calculator: {calculator.invoke({'expression': expression})}"]}

    def retrieve(state: AgentState) -> AgentState:
        return {"context": [d.page_content for d in retriever.invoke(state["question"])]}

    def answer(state: AgentState) -> AgentState:
        context = "\n".join(state.get("context", []))
        return {"answer": answer_chain.invoke({"context": context, "question": state["question"]})}

    builder = StateGraph(AgentState)
    builder.add_node("router", router)
    builder.add_node("calculator", use_calculator)
    builder.add_node("retrieve", retrieve)
    builder.add_node("answer", answer)
    builder.add_edge(START, "router")
    builder.add_conditional_edges(
        "router", route_question, {"math": "calculator", "search": "retrieve"}
    )
    builder.add_edge("calculator", "answer")
    builder.add_edge("retrieve", "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="demo_agent")


def run_demo(db_path: str = "lc_observe.db", questions: list[str] | None = None) -> list[str]:
    """Run the demo graph once per question, traced into ``db_path``; return the trace ids."""
    from lc_observe.capture.handler import ObsHandler

    graph = build_graph()
    trace_ids: list[str] = []
    with ObsHandler(db_path, session_id="demo", tags=["demo"]) as handler:
        for question in questions or QUESTIONS:
            run_id = uuid.uuid4()  # the root run's id is the trace id
            config = {"callbacks": [handler], "run_id": run_id, "metadata": {"user_id": "demo"}}
            graph.invoke({"question": question}, config=config)
            trace_ids.append(str(run_id))
    return trace_ids
