"""`lc_observe.capture.usage` on the real `LLMResult`s LangChain passes to ``on_llm_end``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult

from lc_observe.capture.usage import (
    AUDIO_FIELDS,
    model_and_provider,
    observe_chunk,
    usage_from_result,
)
from lc_observe.records import TOKEN_FIELDS

from .fakes import CaptureHandler, UsageChatModel, UsageLLM, usage
from .tiers import examples

CACHED = usage(1200, 300, cache_read=1000, cache_creation=150, reasoning=120)
EXPECTED_CACHED = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "total_tokens": 1500,
    "cached_tokens": 1000,
    "cache_creation_tokens": 150,
    "reasoning_tokens": 120,
}


def tokens(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in TOKEN_FIELDS}


async def run(model: Any, mode: str, handler: CaptureHandler, prompt: str = "hi") -> None:
    """Call ``model`` once the way ``mode`` says, with ``handler`` attached."""
    config = {"callbacks": [handler]}
    if mode == "invoke":
        model.invoke(prompt, config=config)
    elif mode == "ainvoke":
        await model.ainvoke(prompt, config=config)
    elif mode == "stream":
        assert len(list(model.stream(prompt, config=config))) > 1
    elif mode == "astream":
        assert len([c async for c in model.astream(prompt, config=config)]) > 1
    elif mode == "invoke_streaming":  # invoke of a model that streams internally
        model.invoke(prompt, config=config, stream=True)
    else:
        raise AssertionError(mode)


MODES = ["invoke", "ainvoke", "stream", "astream", "invoke_streaming"]


# -- usage_metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_usage_metadata_with_cache_and_reasoning(mode: str) -> None:
    handler = CaptureHandler()
    model = UsageChatModel(responses=["the answer is 42"], usage=CACHED, model_name="m-1")
    await run(model, mode, handler)
    fields = usage_from_result(handler.last)
    assert tokens(fields) == EXPECTED_CACHED
    assert fields["model"] == "m-1"
    assert not set(fields) & set(AUDIO_FIELDS)


@pytest.mark.parametrize("mode", ["stream", "astream", "invoke_streaming"])
@pytest.mark.parametrize("style", ["last", "split"])
async def test_streamed_deltas_are_counted_once(mode: str, style: str) -> None:
    """OpenAI (usage on a final chunk) and Anthropic (split) streams: merged sum is right."""
    handler = CaptureHandler()
    model = UsageChatModel(responses=["a b c d"], usage=CACHED, stream_style=style)
    await run(model, mode, handler)
    result = handler.last
    assert result.llm_output is None  # a stream has no llm_output: only the merged chunks
    assert len(result.generations) == 1 and len(result.generations[0]) == 1
    stream_state = handler.stream[handler.order[-1]]
    assert tokens(usage_from_result(result)) == EXPECTED_CACHED
    assert tokens(usage_from_result(result, stream_state)) == EXPECTED_CACHED


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("style", ["restate", "restate_cache", "running"])
async def test_streams_that_restate_totals(mode: str, style: str) -> None:
    """LangChain's merge sums restated totals; the chunk state from on_llm_new_token fixes it."""
    handler = CaptureHandler()
    model = UsageChatModel(responses=["a b c d"], usage=CACHED, stream_style=style)
    await run(model, mode, handler)
    merged = usage_from_result(handler.last)
    assert merged["cached_tokens"] > 1000  # LangChain's own merge over-counts these streams
    corrected = usage_from_result(handler.last, handler.stream[handler.order[-1]])
    assert tokens(corrected) == EXPECTED_CACHED


def test_observe_chunk_ignores_chunks_without_usage() -> None:
    assert observe_chunk(None, None) is None
    assert observe_chunk(None, object()) is None
    state = observe_chunk(None, _chunk(usage(10, 0)))
    assert observe_chunk(state, _chunk(None)) is state
    state = observe_chunk(state, _chunk(usage(0, 5)))
    assert state is not None and not state["restated"]
    state = observe_chunk(state, _chunk(usage(10, 5)))
    assert state["restated"] and state["max"]["input_tokens"] == 10
    cache_only = observe_chunk(None, _chunk(usage(10, 0, cache_read=8)))
    assert not cache_only["restated"]
    cache_only = observe_chunk(cache_only, _chunk(usage(0, 5, cache_read=8)))
    assert cache_only["restated"]


def _chunk(u: Any) -> Any:
    from langchain_core.outputs import ChatGenerationChunk

    return ChatGenerationChunk(message=AIMessageChunk(content="x", usage_metadata=u))


def test_candidates_repeating_one_usage_count_once() -> None:
    """OpenAI ``n > 1``: every choice carries the whole request's usage."""
    handler = CaptureHandler()
    UsageChatModel(usage=usage(50, 30), n=3).invoke("hi", config={"callbacks": [handler]})
    assert len(handler.last.generations[0]) == 3
    assert tokens(usage_from_result(handler.last))["total_tokens"] == 80


def test_batch_of_prompts_sums_exactly() -> None:
    """A chat batch: one run per prompt, each with its own usage, nothing lost or doubled."""
    handler = CaptureHandler()
    usages = [usage(10, 1), usage(20, 2, cache_read=5), usage(30, 3, reasoning=1)]
    model = UsageChatModel(responses=["x"], usage=usages)
    model.batch(["a", "b", "c"], config={"callbacks": [handler]})
    per_run = [usage_from_result(r) for r in handler.all_results()]
    assert sorted(f["input_tokens"] for f in per_run) == [10, 20, 30]
    assert sum(f["total_tokens"] for f in per_run) == 66
    assert sum(f["cached_tokens"] or 0 for f in per_run) == 5


def test_generate_result_of_several_prompts_sums_prompts() -> None:
    """The combined result of ``generate`` (several prompts in one LLMResult) is summed."""
    model = UsageChatModel(responses=["x"], usage=[usage(10, 1), usage(20, 2)])
    result = model.generate([[HumanMessage("a")], [HumanMessage("b")]])
    assert tokens(usage_from_result(result)) == {
        **dict.fromkeys(TOKEN_FIELDS),
        "input_tokens": 30,
        "output_tokens": 3,
        "total_tokens": 33,
    }


# -- llm_output ------------------------------------------------------------------------------


def test_openai_usage_in_llm_output_only() -> None:
    handler = CaptureHandler()
    model = UsageChatModel(usage=CACHED, usage_in="openai_llm_output", model_name="gpt-x")
    model.invoke("hi", config={"callbacks": [handler]})
    result = handler.last
    message = result.generations[0][0].message
    assert message.usage_metadata is None
    # LangChain copies llm_output into response_metadata: the same usage in two places.
    assert message.response_metadata["token_usage"] == result.llm_output["token_usage"]
    fields = usage_from_result(result)
    assert tokens(fields) == {**EXPECTED_CACHED, "cache_creation_tokens": None}
    assert fields["model"] == "gpt-x"


def test_anthropic_raw_usage_adds_cache_to_input() -> None:
    """Anthropic's raw ``input_tokens`` leaves cache reads and writes out; ours includes them."""
    handler = CaptureHandler()
    model = UsageChatModel(usage=CACHED, usage_in="anthropic_llm_output")
    model.invoke("hi", config={"callbacks": [handler]})
    assert handler.last.llm_output["usage"]["input_tokens"] == 50
    fields = usage_from_result(handler.last)
    assert tokens(fields) == {**EXPECTED_CACHED, "reasoning_tokens": None}


def test_legacy_llm_batch_total_sits_on_first_run() -> None:
    """LLMResult.flatten gives the batch's llm_output to the first prompt's run only."""
    handler = CaptureHandler()
    prompts = ["one two", "three four five", "six"]
    UsageLLM(reply="a b c d").batch(prompts, config={"callbacks": [handler]})
    per_run = [usage_from_result(r) for r in handler.all_results()]
    assert len(per_run) == 3
    assert tokens(per_run[0]) == {
        **dict.fromkeys(TOKEN_FIELDS),
        "input_tokens": 6,
        "output_tokens": 12,
        "total_tokens": 18,
    }
    assert all(f["total_tokens"] is None for f in per_run[1:])  # empty token_usage: unknown
    assert {f["model"] for f in per_run} == {"fake-legacy-model"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"input_tokens": 90, "output_tokens": 40, "total_tokens": 130,
             "input_tokens_details": {"cached_tokens": 64},
             "output_tokens_details": {"reasoning_tokens": 16}},
            {"input_tokens": 90, "output_tokens": 40, "total_tokens": 130, "cached_tokens": 64,
             "reasoning_tokens": 16},
            id="openai-responses",
        ),
        pytest.param(
            {"inputTokens": 4, "outputTokens": 20, "totalTokens": 1130,
             "cacheReadInputTokens": 1100, "cacheWriteInputTokens": 6},
            {"input_tokens": 1110, "output_tokens": 20, "total_tokens": 1130,
             "cached_tokens": 1100, "cache_creation_tokens": 6},
            id="bedrock-cache-outside-input",
        ),
        pytest.param(
            {"inputTokens": 1110, "outputTokens": 20, "totalTokens": 1130,
             "cacheReadInputTokens": 1100},
            {"input_tokens": 1110, "output_tokens": 20, "total_tokens": 1130,
             "cached_tokens": 1100},
            id="bedrock-cache-inside-input",
        ),
        pytest.param(
            {"prompt_token_count": 100, "candidates_token_count": 30,
             "thoughts_token_count": 20, "total_token_count": 150,
             "cached_content_token_count": 60},
            {"input_tokens": 100, "output_tokens": 50, "total_tokens": 150, "cached_tokens": 60,
             "reasoning_tokens": 20},
            id="gemini",
        ),
        pytest.param(
            {"prompt_tokens": 10, "completion_tokens": 5,
             "prompt_tokens_details": {"audio_tokens": 4},
             "completion_tokens_details": {"audio_tokens": 3}},
            {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
             "input_audio_tokens": 4, "output_audio_tokens": 3},
            id="openai-audio",
        ),
    ],
)  # fmt: skip
def test_provider_usage_shapes_in_llm_output(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    result = LLMResult(generations=[[Generation(text="x")]], llm_output={"token_usage": raw})
    fields = usage_from_result(result)
    assert {k: v for k, v in fields.items() if v is not None} == expected


def test_ollama_counts_in_generation_info() -> None:
    info = {"model": "llama3.2", "prompt_eval_count": 26, "eval_count": 298, "done": True}
    result = LLMResult(generations=[[Generation(text="x", generation_info=info)]])
    fields = usage_from_result(result)
    assert (fields["input_tokens"], fields["output_tokens"], fields["total_tokens"]) == (
        26,
        298,
        324,
    )
    assert fields["model"] == "llama3.2"


def test_usage_metadata_wins_over_llm_output() -> None:
    """Never add the same usage twice when a model reports it in both places."""
    message = AIMessage("x", usage_metadata=usage(7, 3))
    result = LLMResult(
        generations=[[ChatGeneration(message=message)]],
        llm_output={"token_usage": {"prompt_tokens": 7, "completion_tokens": 3}},
    )
    assert usage_from_result(result)["total_tokens"] == 10


def test_total_is_input_plus_output_when_not_reported() -> None:
    result = LLMResult(
        generations=[[Generation(text="x")]],
        llm_output={"usage": {"input_tokens": 11, "output_tokens": 4}},
    )
    assert usage_from_result(result)["total_tokens"] == 15


def test_no_usage_reported_gives_none_not_zero() -> None:
    handler = CaptureHandler()
    UsageChatModel(usage=None).invoke("hi", config={"callbacks": [handler]})
    fields = usage_from_result(handler.last)
    assert tokens(fields) == dict.fromkeys(TOKEN_FIELDS)


# -- model and provider --------------------------------------------------------------------------


def test_model_and_provider_from_real_start_callback() -> None:
    handler = CaptureHandler()
    model = UsageChatModel(model_name="gpt-4o-mini", provider="openai")
    model.invoke("hi", config={"callbacks": [handler]})
    start = handler.starts[handler.order[-1]]
    assert model_and_provider(
        start["serialized"], start["metadata"], start["invocation_params"]
    ) == (
        "gpt-4o-mini",
        "openai",
    )


def test_legacy_llm_start_gives_model_and_class_provider() -> None:
    handler = CaptureHandler()
    UsageLLM(model_name="davinci-x").invoke("hi", config={"callbacks": [handler]})
    start = handler.starts[handler.order[-1]]
    # BaseLLM derives ls_provider from the class name when an integration sets none.
    assert model_and_provider(
        start["serialized"], start["metadata"], start["invocation_params"]
    ) == (
        "davinci-x",
        "usage",
    )


@pytest.mark.parametrize(
    ("serialized", "metadata", "params", "expected"),
    [
        ({}, {"ls_model_name": "a", "ls_provider": "p"}, {"model": "b"}, ("a", "p")),
        ({}, {}, {"model": "b", "model_name": "c", "_type": "openai-chat"}, ("b", "openai")),
        ({}, {}, {"model_id": "d", "_type": "azure-openai-chat"}, ("d", "azure")),
        ({"kwargs": {"model": "e"}}, None, None, ("e", None)),
        ({}, {"ls_model_name": "  "}, {"model": 3, "_type": ""}, (None, None)),
        (None, "not a dict", ["nor", "this"], (None, None)),
    ],
)
def test_model_and_provider_sources(
    serialized: Any, metadata: Any, params: Any, expected: tuple[Any, Any]
) -> None:
    assert model_and_provider(serialized, metadata, params) == expected


def test_model_named_on_every_streamed_chunk_is_not_repeated() -> None:
    """LangChain concatenates string metadata when merging chunks."""
    chunk = AIMessageChunk(content="a", response_metadata={"model_name": "gpt-4o"})
    merged = chunk + AIMessageChunk(content="b", response_metadata={"model_name": "gpt-4o"})
    assert merged.response_metadata["model_name"] == "gpt-4ogpt-4o"
    result = LLMResult(generations=[[ChatGeneration(message=merged)]])
    assert usage_from_result(result)["model"] == "gpt-4o"


def test_response_names_model_and_provider() -> None:
    message = AIMessage(
        "x", response_metadata={"model_name": "claude-x-20250101", "model_provider": "anthropic"}
    )
    fields = usage_from_result(LLMResult(generations=[[ChatGeneration(message=message)]]))
    assert (fields["model"], fields["provider"]) == ("claude-x-20250101", "anthropic")


# -- never raises ------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=30), inner, max_size=5)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["token_usage", "usage", "prompt_tokens", "input_tokens", "inputTokens", "eval_count",
     "prompt_eval_count", "model_name", "input_token_details", "cache_read_input_tokens"]
)  # fmt: skip
_usageish = st.dictionaries(_keys, _json | st.dictionaries(_keys, _json, max_size=4), max_size=5)


@settings(max_examples=examples(200), deadline=None)
@given(llm_output=_usageish, info=_usageish)
def test_arbitrary_payloads_never_raise(llm_output: dict[str, Any], info: dict[str, Any]) -> None:
    result = LLMResult(
        generations=[[Generation(text="x", generation_info=info)]], llm_output=llm_output
    )
    fields = usage_from_result(result)
    assert set(TOKEN_FIELDS) <= set(fields)
    for key in (*TOKEN_FIELDS, *AUDIO_FIELDS):
        value = fields.get(key)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool))


@pytest.mark.parametrize("response", [None, 42, "text", object(), LLMResult(generations=[])])
def test_garbage_response_gives_empty_fields(response: Any) -> None:
    assert usage_from_result(response) == dict.fromkeys(TOKEN_FIELDS)


# -- the fake model itself ---------------------------------------------------------------------


async def test_fake_stream_delay_paces_chunks() -> None:
    """`UsageChatModel(stream_delay=...)` sleeps before each chunk, sync and async alike."""
    import time

    model = UsageChatModel(responses=["a b c d"], usage=usage(1, 1), stream_delay=0.02)
    start = time.perf_counter()
    chunks = list(model.stream("hi"))
    assert time.perf_counter() - start >= 0.02 * 5  # 4 words + the usage chunk
    start = time.perf_counter()
    achunks = [c async for c in model.astream("hi")]
    assert time.perf_counter() - start >= 0.02 * 5
    assert (
        "".join(str(c.content) for c in chunks)
        == "a b c d"
        == "".join(str(c.content) for c in achunks)
    )
    assert model.bind_tools([object()]) is model
