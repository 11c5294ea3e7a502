"""A scripted tool-calling chat model for driving real agent builders in tests.

`ScriptedChatModel` is a real ``BaseChatModel``: every callback, streaming and tool-binding
path of langchain-core and of the agent packages runs for real. What it answers is decided
by ``script``, a function of the conversation so far (so parallel agents sharing one model
stay deterministic), returning the text and the tool calls of the next AI message.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

Reply = tuple[str, list[dict[str, Any]]]  # (text, [{"name": ..., "args": {...}}, ...])
Script = Callable[[list[BaseMessage]], Reply]

_ids = itertools.count(1)


def call(name: str, **args: Any) -> dict[str, Any]:
    """A tool call for a `Reply`."""
    return {"name": name, "args": args}


def turns(*replies: Reply) -> Script:
    """A script answering the i-th model call *of one conversation* with ``replies[i]``:
    the index is the number of AI messages already in the conversation (capped)."""

    def script(messages: list[BaseMessage]) -> Reply:
        done = sum(1 for m in messages if isinstance(m, AIMessage))
        return replies[min(done, len(replies) - 1)]

    return script


class ScriptedChatModel(BaseChatModel):
    """Answers as ``script(messages)`` says, with tool calls and token usage."""

    script: Any
    model_name: str = "gpt-4o-mini"
    provider: str = "openai"

    _calls: Any = PrivateAttr(default_factory=itertools.count)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        """The script decides which tools are called; binding changes nothing."""
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        next(self._calls)
        text, calls = self.script(list(messages))
        tool_calls = [
            {"name": c["name"], "args": c["args"], "id": f"call_{next(_ids)}", "type": "tool_call"}
            for c in calls
        ]
        words = max(1, len(text.split()))
        return AIMessage(
            content=text,
            tool_calls=tool_calls,
            usage_metadata={
                "input_tokens": 10 * len(messages),
                "output_tokens": words,
                "total_tokens": 10 * len(messages) + words,
            },
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _chunk(self, messages: list[BaseMessage]) -> ChatGenerationChunk:
        message = self._reply(messages)
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_call_chunks=[
                    tool_call_chunk(name=c["name"], args=_json(c["args"]), id=c["id"], index=i)
                    for i, c in enumerate(message.tool_calls)
                ],
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunk = self._chunk(messages)
        if run_manager is not None:
            run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
        yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunk = self._chunk(messages)
        if run_manager is not None:
            await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
        yield chunk


def _json(args: dict[str, Any]) -> str:
    import json

    return json.dumps(args)
