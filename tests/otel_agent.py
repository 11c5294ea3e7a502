"""A tool-calling agent (``langchain.agents.create_agent``) for the OTLP backend tests.

It calls two tools at once (one of them runs a retriever), then answers; a second
conversation calls a tool that raises, so the trace fails.  The model names a dated
snapshot in its responses (``gpt-4o-mini-2024-07-18``) while ``gpt-4o-mini`` is requested,
and it is called with a temperature and a token limit, as real providers are.
`run_agent` records both conversations with the given handler and a LangChain
``RunCollectorCallbackHandler``: the framework's own record to compare with.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.load import load
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from tests.agents import ScriptedChatModel, call

SERVED_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = "You are a careful assistant. Use the tools."
_responses = itertools.count(1)


class ServedModel(ScriptedChatModel):
    """`ScriptedChatModel` answering like OpenAI: a dated model name and a response id."""

    temperature: float = 0.2
    max_tokens: int = 256

    @property
    def _identifying_params(self) -> dict[str, Any]:  # what providers put in invocation_params
        return {
            "model_name": self.model_name,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        message = super()._reply(messages)
        message.response_metadata = {
            "model_name": SERVED_MODEL,
            "finish_reason": "tool_calls" if message.tool_calls else "stop",
            "id": f"chatcmpl-{next(_responses)}",
        }
        return message


class HandbookRetriever(BaseRetriever):
    """Two documents with ids, scores and a source, whatever the query."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                id="doc-1",
                page_content=f"{query}: spans carry GenAI attributes.",
                metadata={"score": 0.92, "source": "otlp.md"},
            ),
            Document(
                id="doc-2",
                page_content="Phoenix reads OpenInference attributes.",
                metadata={"score": 0.71, "source": "phoenix.md"},
            ),
        ]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def search_handbook(query: str) -> str:
    """Search the handbook."""
    return "\n".join(d.page_content for d in HandbookRetriever().invoke(query))


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


def _script(messages: list[BaseMessage]) -> tuple[str, list[dict[str, Any]]]:
    asked = str(messages[1].content) if len(messages) > 1 else ""
    done = sum(1 for m in messages if isinstance(m, AIMessage))
    if "divide" in asked:
        return ("", [call("divide", a=1, b=0)])
    if done == 0:
        return ("", [call("add", a=2, b=3), call("search_handbook", query="otel")])
    return ("2 + 3 = 5; spans carry GenAI attributes.", [])


def build_agent() -> Any:
    from langchain.agents import create_agent

    model = ServedModel(script=_script)
    return create_agent(
        model, [add, search_handbook, divide], system_prompt=SYSTEM_PROMPT, name="helpdesk"
    )


class ChatRunCollector(RunCollectorCallbackHandler):
    """LangChain's run collector, keeping chat model inputs as messages (the tracer schema
    LangSmith uses) rather than as flattened prompt strings."""

    def __init__(self) -> None:
        super().__init__()
        self._schema_format = "original+chat"


def run_agent(handler: Any, user: str = "ann") -> RunCollectorCallbackHandler:
    """Both conversations (one succeeds, one fails) through ``handler`` and a collector."""
    agent = build_agent()
    collector = ChatRunCollector()
    for thread, question in (("s-ok", "add 2 and 3, and search otel"), ("s-err", "divide 1/0")):
        config = {
            "callbacks": [handler, collector],
            "metadata": {"user_id": user, "thread_id": f"{user}-{thread}"},
        }
        if thread == "s-err":
            with pytest.raises(ZeroDivisionError):
                agent.invoke({"messages": [("human", question)]}, config)
        else:
            agent.invoke({"messages": [("human", question)]}, config)
    return collector


def all_runs(collector: RunCollectorCallbackHandler) -> dict[str, Any]:
    """Every run the collector saw (children included), by run id."""
    found: dict[str, Any] = {}

    def visit(run: Any) -> None:
        found[str(run.id)] = run
        for child in run.child_runs:
            visit(child)

    for run in collector.traced_runs:
        visit(run)
    return found


def revived(value: Any) -> Any:
    """LangChain's serialized objects in a run's inputs/outputs, as objects again."""
    return load(value, allowed_objects="all") if value is not None else None
