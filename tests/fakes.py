"""Fake LangChain models that report token usage the way real integrations do.

Real ``BaseChatModel`` / ``BaseLLM`` subclasses, so every callback, merge and batch code
path of langchain-core runs for real; only the network is missing.

- `UsageChatModel`: ``usage_metadata`` on the message (with cache and reasoning details), or
  OpenAI/Anthropic-style usage in ``llm_output`` only; streams (sync and async) with the
  usage on the last chunk (OpenAI), split over the first and last chunks (Anthropic), or
  restated by a buggy provider; ``n`` candidates per prompt (OpenAI ``n > 1``).
- `UsageLLM`: a legacy completion model that puts OpenAI-style ``token_usage`` for the whole
  batch in ``llm_output``, with one token per word.
- `CaptureHandler`: records what ``on_llm_end`` receives (and the start-time arguments).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, BaseLLM, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    LLMResult,
)
from pydantic import Field, PrivateAttr

from lc_observe.capture.usage import observe_chunk

StreamStyle = Literal["last", "split", "restate", "restate_cache", "running"]


def usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int | None = None,
    cache_creation: int | None = None,
    reasoning: int | None = None,
    input_audio: int | None = None,
    output_audio: int | None = None,
) -> UsageMetadata:
    """A LangChain ``UsageMetadata`` with consistent totals and the details given."""
    out = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    details_in = {"cache_read": cache_read, "cache_creation": cache_creation, "audio": input_audio}
    details_out = {"reasoning": reasoning, "audio": output_audio}
    if any(v is not None for v in details_in.values()):
        out["input_token_details"] = {k: v for k, v in details_in.items() if v is not None}  # type: ignore[typeddict-item]
    if any(v is not None for v in details_out.values()):
        out["output_token_details"] = {k: v for k, v in details_out.items() if v is not None}  # type: ignore[typeddict-item]
    return out


def openai_token_usage(u: UsageMetadata) -> dict[str, Any]:
    """``UsageMetadata`` as OpenAI's chat-completions ``usage`` (``llm_output["token_usage"]``)."""
    details_in = u.get("input_token_details", {})
    details_out = u.get("output_token_details", {})
    return {
        "prompt_tokens": u["input_tokens"],
        "completion_tokens": u["output_tokens"],
        "total_tokens": u["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": details_in.get("cache_read", 0)},
        "completion_tokens_details": {"reasoning_tokens": details_out.get("reasoning", 0)},
    }


def anthropic_usage(u: UsageMetadata) -> dict[str, Any]:
    """``UsageMetadata`` as Anthropic's raw ``usage``: ``input_tokens`` excludes the cache."""
    details_in = u.get("input_token_details", {})
    read, write = details_in.get("cache_read", 0), details_in.get("cache_creation", 0)
    return {
        "input_tokens": u["input_tokens"] - read - write,
        "output_tokens": u["output_tokens"],
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }


class UsageChatModel(BaseChatModel):
    """A chat model that answers from ``responses`` (cycled) and reports ``usage``.

    Args:
        responses: reply texts, one per call, cycled.
        usage: ``UsageMetadata`` of every call, or one per call (cycled); None for none.
        usage_in: ``"message"`` (``AIMessage.usage_metadata``, modern integrations),
            ``"openai_llm_output"`` / ``"anthropic_llm_output"`` (raw provider usage in
            ``llm_output`` only, as older integrations do; their streams carry no usage).
        stream_style: where streamed chunks carry usage: ``"last"`` (a final usage chunk:
            OpenAI, current langchain-anthropic), ``"split"`` (input side on the first
            chunk, output side on the last: older langchain-anthropic), ``"restate"``
            (split, then a last chunk restating the totals), ``"restate_cache"`` (split,
            but the last chunk repeats the cache counts: langchainjs issue 10249) or
            ``"running"`` (running totals on every chunk, like OpenAI-compatible servers
            that report usage continuously); the last three are over-counted by
            LangChain's chunk merge.
        stream_delay: seconds to sleep before each streamed chunk.
        n: candidates per prompt; each carries the request's usage, as OpenAI ``n > 1``.
        model_name / provider: reported as ``ls_model_name`` / ``ls_provider``.
        response_model: model named in ``response_metadata`` (default ``model_name``).
    """

    responses: list[str] = Field(default_factory=lambda: ["hello world"])
    usage: UsageMetadata | list[UsageMetadata | None] | None = None
    usage_in: Literal["message", "openai_llm_output", "anthropic_llm_output"] = "message"
    stream_style: StreamStyle = "last"
    stream_delay: float = 0.0
    n: int = 1
    model_name: str = "fake-usage-model"
    provider: str = "fake"
    response_model: str | None = None

    _calls: Any = PrivateAttr(default_factory=itertools.count)

    @property
    def _llm_type(self) -> str:
        return "usage-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> UsageChatModel:  # type: ignore[override]
        """Tools are accepted and ignored: the model never calls them."""
        return self

    # -- one call ----------------------------------------------------------------------------

    def _next(self) -> tuple[str, UsageMetadata | None]:
        i = next(self._calls)
        text = self.responses[i % len(self.responses)]
        u = self.usage[i % len(self.usage)] if isinstance(self.usage, list) else self.usage
        return text, u

    def _meta(self) -> dict[str, Any]:
        return {"model_name": self.response_model or self.model_name, "finish_reason": "stop"}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, u = self._next()
        on_message = u if self.usage_in == "message" else None
        generations = [
            ChatGeneration(
                message=AIMessage(
                    content=text, usage_metadata=on_message, response_metadata=self._meta()
                )
            )
            for _ in range(self.n)
        ]
        llm_output: dict[str, Any] = {"model_name": self.response_model or self.model_name}
        if u is not None and self.usage_in == "openai_llm_output":
            llm_output["token_usage"] = openai_token_usage(u)
        elif u is not None and self.usage_in == "anthropic_llm_output":
            llm_output["usage"] = anthropic_usage(u)
        return ChatResult(generations=generations, llm_output=llm_output)

    # -- streaming ---------------------------------------------------------------------------

    def _chunks(self) -> Iterator[ChatGenerationChunk]:
        text, u = self._next()
        if self.usage_in != "message":  # legacy integrations stream no usage
            u = None
        pieces = re.findall(r"\S+\s*", text) or [text]
        first, last = _split_usage(u) if u is not None else (None, None)
        for i, piece in enumerate(pieces):
            chunk_usage: UsageMetadata | None = None
            if u is not None and self.stream_style.startswith(("split", "restate")) and i == 0:
                chunk_usage = first
            elif u is not None and self.stream_style == "running":
                chunk_usage = _running(u, (i + 1) / len(pieces))
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=piece, usage_metadata=chunk_usage)
            )
        closing: list[UsageMetadata | None] = []
        if self.stream_style == "last":
            closing = [u]
        elif self.stream_style == "split":
            closing = [last]
        elif self.stream_style == "restate":
            closing = [last, u]
        elif self.stream_style == "restate_cache" and last is not None:
            closing = [UsageMetadata(**last, input_token_details=u.get("input_token_details", {}))]
        elif self.stream_style == "running":
            closing = [u]
        for i, chunk_usage in enumerate(closing):
            final = i == len(closing) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=chunk_usage,
                    response_metadata=self._meta() if final else {},
                )
            )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks():
            if self.stream_delay:
                time.sleep(self.stream_delay)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks():
            if self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            yield chunk


def _split_usage(u: UsageMetadata) -> tuple[UsageMetadata, UsageMetadata]:
    """Anthropic's way: the input side on the first chunk, the output side on the last."""
    first = UsageMetadata(
        input_tokens=u["input_tokens"], output_tokens=0, total_tokens=u["input_tokens"]
    )
    last = UsageMetadata(
        input_tokens=0, output_tokens=u["output_tokens"], total_tokens=u["output_tokens"]
    )
    if "input_token_details" in u:
        first["input_token_details"] = u["input_token_details"]
    if "output_token_details" in u:
        last["output_token_details"] = u["output_token_details"]
    return first, last


def _running(u: UsageMetadata, fraction: float) -> UsageMetadata:
    """Running totals after ``fraction`` of the output (the whole prompt every time)."""
    out = int(u["output_tokens"] * fraction)
    running = UsageMetadata(
        input_tokens=u["input_tokens"], output_tokens=out, total_tokens=u["input_tokens"] + out
    )
    if "input_token_details" in u:
        running["input_token_details"] = u["input_token_details"]
    return running


class UsageLLM(BaseLLM):
    """A legacy completion model: echoes ``reply`` and reports OpenAI-style ``token_usage``.

    One token per whitespace-separated word: prompt tokens are the prompt's words,
    completion tokens the reply's.  Like real ``BaseLLM`` integrations it returns one
    ``llm_output`` for the whole batch, summed over the prompts.
    """

    reply: str = "a legacy completion"
    model_name: str = "fake-legacy-model"

    @property
    def _llm_type(self) -> str:
        return "usage-llm"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        prompt_tokens = sum(len(p.split()) for p in prompts)
        completion_tokens = len(self.reply.split()) * len(prompts)
        return LLMResult(
            generations=[[Generation(text=self.reply)] for _ in prompts],
            llm_output={
                "token_usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "model_name": self.model_name,
            },
        )


class CaptureHandler(BaseCallbackHandler):
    """Keeps what model callbacks receive, per run, for tests to inspect.

    ``starts[run_id]`` holds ``serialized``, ``metadata`` and ``invocation_params`` of the
    run's start; ``results[run_id]`` the ``LLMResult`` of ``on_llm_end``; ``stream[run_id]``
    what `lc_observe.capture.usage.observe_chunk` collected from the run's streamed chunks.
    """

    def __init__(self) -> None:
        self.starts: dict[UUID, dict[str, Any]] = {}
        self.results: dict[UUID, LLMResult] = {}
        self.stream: dict[UUID, dict[str, Any] | None] = {}
        self.order: list[UUID] = []
        self._lock = threading.Lock()

    def _start(self, serialized: Any, run_id: UUID, metadata: Any, kwargs: Any) -> None:
        with self._lock:
            self.order.append(run_id)
            self.starts[run_id] = {
                "serialized": serialized,
                "metadata": metadata or {},
                "invocation_params": kwargs.get("invocation_params"),
            }

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, metadata: Any = None, **kwargs: Any
    ) -> None:
        self._start(serialized, run_id, metadata, kwargs)

    def on_llm_start(
        self, serialized: Any, prompts: Any, *, run_id: UUID, metadata: Any = None, **kwargs: Any
    ) -> None:
        self._start(serialized, run_id, metadata, kwargs)

    def on_llm_new_token(
        self, token: str, *, run_id: UUID, chunk: Any = None, **kwargs: Any
    ) -> None:
        with self._lock:
            self.stream[run_id] = observe_chunk(self.stream.get(run_id), chunk)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self.results[run_id] = response

    @property
    def last(self) -> LLMResult:
        """The ``LLMResult`` of the most recently started run."""
        return self.results[self.order[-1]]

    def all_results(self) -> list[LLMResult]:
        """Every run's ``LLMResult``, in start order."""
        return [self.results[run_id] for run_id in self.order]
