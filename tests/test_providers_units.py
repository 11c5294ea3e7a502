"""The rules behind the provider tests, one by one: which streamed chunk carries content
(TTFT), how cache writes by TTL and service-tier usage keys are read, and how they are
priced (`lc_observe.capture.usage`, `lc_observe.capture.pricing`)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, GenerationChunk, LLMResult

from lc_observe.capture.pricing import PriceTable, derive_rates
from lc_observe.capture.usage import carries_content, usage_from_result


def _chunk(**fields: Any) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(**fields))


# -- which chunk is the first token -------------------------------------------------------------

FRAMING = {
    # langchain-anthropic, message_start (content list when tools are bound)
    "anthropic message_start": _chunk(content=[], response_metadata={"model_name": "claude"}),
    "anthropic message_start, text mode": _chunk(content=""),
    # langchain-openai, Responses API: response.created / output_item.added / part added
    "responses created": _chunk(content=[], id="resp_1"),
    "responses reasoning item added": _chunk(
        content=[{"type": "reasoning", "id": "rs_1", "summary": [], "index": 0}]
    ),
    "responses summary part added": _chunk(
        content=[
            {"type": "reasoning", "summary": [{"index": 0, "type": "summary_text", "text": ""}]}
        ]
    ),
    "responses text done": _chunk(content=[{"type": "text", "text": "", "index": 0}]),
    # Chat Completions: the role-only first chunk, the usage-only last chunk
    "chat role chunk": _chunk(content=""),
    "chat usage chunk": _chunk(
        content="", usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    ),
    # a tool-call chunk without name or arguments yet
    "empty tool call chunk": _chunk(
        content="", tool_call_chunks=[{"name": None, "args": "", "id": "c1", "index": 0}]
    ),
}

CONTENT = {
    "text": _chunk(content="Hi"),
    "text block": _chunk(content=[{"type": "text", "text": "Hi", "index": 0}]),
    "anthropic thinking": _chunk(content=[{"type": "thinking", "thinking": "Let me", "index": 0}]),
    "responses reasoning summary": _chunk(
        content=[{"type": "reasoning", "summary": [{"type": "summary_text", "text": "First"}]}]
    ),
    "tool call name": _chunk(
        content=[], tool_call_chunks=[{"name": "get_weather", "args": "", "id": "c", "index": 0}]
    ),
    "tool call args": _chunk(
        content="", tool_call_chunks=[{"name": None, "args": '{"ci', "id": None, "index": 0}]
    ),
    "anthropic input_json_delta": _chunk(
        content=[{"type": "input_json_delta", "partial_json": '{"city"', "index": 1}]
    ),
    "groq reasoning": _chunk(content="", additional_kwargs={"reasoning_content": "Hmm"}),
    "redacted thinking": _chunk(content=[{"type": "redacted_thinking", "data": "x", "index": 0}]),
}


@pytest.mark.parametrize("name", list(FRAMING))
def test_framing_chunks_are_not_the_first_token(name: str) -> None:
    chunk = FRAMING[name]
    assert carries_content(chunk.text, chunk) is False


@pytest.mark.parametrize("name", list(CONTENT))
def test_content_chunks_are(name: str) -> None:
    chunk = CONTENT[name]
    assert carries_content(chunk.text, chunk) is True


def test_legacy_llm_tokens_and_odd_input() -> None:
    assert carries_content("a", None) is True
    assert carries_content("", None) is False
    assert carries_content("", GenerationChunk(text="")) is False
    assert carries_content("", GenerationChunk(text="x")) is True
    assert carries_content(None, object()) is False  # never raises


# -- usage: cache writes by TTL, service tiers --------------------------------------------------


def _result(usage: dict[str, Any], **metadata: Any) -> LLMResult:
    message = AIMessage("ok", usage_metadata=usage, response_metadata=metadata)
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def test_anthropic_ttl_breakdown_is_the_cache_write_total() -> None:
    # What langchain-anthropic makes of a non-streamed response with a TTL breakdown.
    usage = {
        "input_tokens": 1_612,
        "output_tokens": 130,
        "total_tokens": 1_742,
        "input_token_details": {
            "cache_read": 100,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": 1_000,
            "ephemeral_1h_input_tokens": 502,
        },
    }
    fields = usage_from_result(_result(usage))
    assert fields["cache_creation_tokens"] == 1_502
    assert fields["cache_creation_1h_tokens"] == 502
    assert fields["cached_tokens"] == 100


def test_total_beside_the_ttl_parts_is_not_counted_twice() -> None:
    details = {"cache_creation": 1_502, "ephemeral_5m_input_tokens": 1_502}
    usage = {"input_tokens": 2_000, "output_tokens": 1, "total_tokens": 2_001}
    usage["input_token_details"] = details
    assert usage_from_result(_result(usage))["cache_creation_tokens"] == 1_502


@pytest.mark.parametrize("tier", ["flex", "priority"])
def test_openai_service_tier_keys(tier: str) -> None:
    # What langchain-openai makes of a flex / priority call's usage.
    usage = {
        "input_tokens": 2_400,
        "output_tokens": 180,
        "total_tokens": 2_580,
        "input_token_details": {f"{tier}_cache_read": 2_048, tier: 352},
        "output_token_details": {f"{tier}_reasoning": 64, tier: 116},
    }
    fields = usage_from_result(_result(usage, service_tier=tier))
    assert (fields["cached_tokens"], fields["reasoning_tokens"]) == (2_048, 64)
    assert fields["service_tier"] == tier


def test_service_tier_from_metadata_only_when_billed_apart() -> None:
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    assert usage_from_result(_result(usage, service_tier="flex"))["service_tier"] == "flex"
    assert "service_tier" not in usage_from_result(_result(usage, service_tier="default"))
    assert "service_tier" not in usage_from_result(_result(usage))


# -- pricing ------------------------------------------------------------------------------------


def test_claude_one_hour_write_price_is_derived_where_missing() -> None:
    rates = {"input": 3.0, "output": 15.0, "cache_write": 3.75}
    assert derive_rates(rates, "claude-sonnet-4-6", "anthropic")["cache_write_1h"] == 6.0
    # Claude on another provider follows Anthropic's rule; other models get nothing.
    bedrock = derive_rates(rates, "us.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock")
    assert bedrock == {**rates, "cache_write_1h": 6.0}
    assert derive_rates(rates, "gpt-5-mini", "openai") is rates
    # A table's own 1-hour price wins; tiered input prices are multiplied tier by tier.
    assert (
        derive_rates({**rates, "cache_write_1h": 5.0}, "claude-x", "anthropic")["cache_write_1h"]
        == 5.0
    )
    tiered = {"input": (3.0, ((200_000, 6.0),)), "output": 15.0}
    assert derive_rates(tiered, "claude-x", "anthropic")["cache_write_1h"] == (
        6.0,
        ((200_000, 12.0),),
    )


def test_one_hour_writes_priced_apart_and_checked() -> None:
    prices = PriceTable(overrides={"m": {"input": 1.0, "output": 2.0, "cache_write": 1.25}})
    base = {"input_tokens": 1_000_000, "output_tokens": 0, "cache_creation_tokens": 1_000_000}
    assert prices.cost("m", None, base) == pytest.approx(1.25)
    # No 1-hour price and not a Claude model: 1-hour writes at the (5-minute) write price.
    assert prices.cost("m", None, {**base, "cache_creation_1h_tokens": 400_000}) == 1.25
    claude = PriceTable(overrides={"claude-z": {"input": 1.0, "output": 2.0, "cache_write": 1.25}})
    mixed = {**base, "cache_creation_1h_tokens": 400_000}
    assert claude.cost("claude-z", "anthropic", mixed) == pytest.approx(0.6 * 1.25 + 0.4 * 2.0)
    # More 1-hour writes than writes: contradictory counts, no cost.
    assert claude.cost("claude-z", None, {**base, "cache_creation_1h_tokens": 2_000_000}) is None


def test_same_cost_as_genai_prices_with_one_hour_writes() -> None:
    genai_prices = pytest.importorskip("genai_prices")
    fields = {
        "input_tokens": 5_000,
        "output_tokens": 130,
        "cached_tokens": 1_000,
        "cache_creation_tokens": 3_500,
        "cache_creation_1h_tokens": 2_000,
    }
    usage = genai_prices.Usage(
        input_tokens=5_000,
        output_tokens=130,
        cache_read_tokens=1_000,
        cache_write_tokens=3_500,
        cache_write_1h_tokens=2_000,
    )
    try:
        expected = genai_prices.calc_price(usage, "claude-sonnet-4-6", provider_id="anthropic")
    except Exception as exc:  # an older genai-prices without 1-hour writes
        pytest.skip(f"genai-prices cannot price 1-hour writes: {exc}")
    got = PriceTable(source="genai-prices").cost("claude-sonnet-4-6", "anthropic", fields)
    assert got == pytest.approx(float(expected.total_price), rel=1e-9)
    # The bundled table has no 1-hour price; the derived one gives the same cost.
    bundled = PriceTable(source="bundled").cost("claude-sonnet-4-6", "anthropic", fields)
    assert bundled == pytest.approx(float(expected.total_price), rel=1e-9)


@pytest.mark.parametrize("tier", ["flex", "priority"])
def test_service_tier_prices_as_genai_prices(tier: str) -> None:
    genai_prices = pytest.importorskip("genai_prices")
    table = PriceTable(source="genai-prices")
    if table.rates("gpt-5-mini", "openai", service_tier=tier, warn=False) is None:
        pytest.skip("this genai-prices has no service-tier prices")
    fields = {"input_tokens": 10_000, "output_tokens": 500, "cached_tokens": 8_000}
    usage = genai_prices.Usage(input_tokens=10_000, output_tokens=500, cache_read_tokens=8_000)
    expected = genai_prices.calc_price(
        usage, "gpt-5-mini", provider_id="openai", price_context={"service_tier": tier}
    ).total_price
    got = table.cost("gpt-5-mini", "openai", {**fields, "service_tier": tier})
    assert got == pytest.approx(float(expected), rel=1e-9)
    assert got != table.cost("gpt-5-mini", "openai", fields)


def test_unknown_service_tier_price_is_no_cost() -> None:
    fields = {"input_tokens": 1_000, "output_tokens": 10, "service_tier": "flex"}
    assert PriceTable(source="bundled").cost("gpt-5-mini", "openai", fields) is None
    # An override is the user's price for every tier.
    override = PriceTable(overrides={"gpt-5-mini": {"input": 1.0, "output": 1.0}})
    assert override.cost("gpt-5-mini", "openai", fields) == pytest.approx(1_010 / 1e6)
