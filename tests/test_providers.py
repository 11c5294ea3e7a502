"""Real provider integrations against a loopback stand-in of their APIs.

Each chat model class (langchain-openai's ``ChatOpenAI`` on Chat Completions and on the
Responses API, ``ChatAnthropic``, ``ChatGoogleGenerativeAI``, ``ChatGroq``,
``ChatMistralAI``) talks through its own client to `tests.providers_server.ProviderServer`,
which answers in that provider's wire format (JSON and Server-Sent Events).  For every
provider and mode (invoke, ainvoke, stream, astream, a ``create_agent`` loop) the test
checks, with `ObsHandler` attached:

- the integration parsed what the server sent (its ``usage_metadata``), so the server is
  realistic, and the span stores those counts;
- the span's cost is the provider's published price (the table below, kept by hand);
- streamed TTFT is the time to the first content delta, which the server holds back
  `DELAY` seconds after the opening framing event;
- errors are error spans and reach the application unchanged;
- chains and graphs roll up their model calls.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.capture.pricing import PriceTable

from .providers_server import ProviderServer, Turn, Usage
from .tiers import need

for _package in (
    "langchain_openai",
    "langchain_anthropic",
    "langchain_google_genai",
    "langchain_groq",
    "langchain_mistralai",
):
    need(_package)

pytestmark = [
    # google-genai's own: its aiohttp session subclass, and an error path of its async
    # client that leaves ClientResponse.json() unawaited (seen when gc runs).
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
    pytest.mark.filterwarnings(
        "ignore:coroutine 'ClientResponse.json' was never awaited:RuntimeWarning"
    ),
]

#: Seconds the server waits between the framing event and the first content delta.
DELAY = 0.2
PROMPT = "What is the weather in Paris?"

# -- published prices (USD per million tokens) of the models used ------------------------------

PRICES: dict[str, dict[str, float]] = {
    # https://platform.openai.com/docs/pricing (standard tier); reasoning billed as output.
    "gpt-5-mini": {"input": 0.25, "cached": 0.025, "output": 2.00},
    # https://platform.openai.com/docs/pricing (flex tier: half the standard prices).
    "gpt-5-mini@flex": {"input": 0.125, "cached": 0.0125, "output": 1.00},
    # https://platform.openai.com/docs/pricing (priority tier).
    "gpt-5-mini@priority": {"input": 0.45, "cached": 0.045, "output": 3.60},
    # https://docs.claude.com/en/docs/about-claude/pricing: cache writes 1.25x (5 minutes)
    # and 2x (1 hour) the input price, reads 0.1x; thinking billed as output.
    "claude-sonnet-4-6": {
        "input": 3.00,
        "write_5m": 3.75,
        "write_1h": 6.00,
        "cached": 0.30,
        "output": 15.00,
    },
    # https://ai.google.dev/gemini-api/docs/pricing: output price includes thinking tokens.
    "gemini-2.5-flash": {"input": 0.30, "cached": 0.03, "output": 2.50},
    # https://groq.com/pricing
    "llama-3.3-70b-versatile": {"input": 0.59, "output": 0.79},
    # https://mistral.ai/pricing (Codestral)
    "codestral-latest": {"input": 0.30, "output": 0.90},
}


def published_cost(model: str, u: Usage, *, one_hour_reported: bool = True) -> float:
    """What the provider bills for ``u``.  ``one_hour_reported=False``: the integration
    did not report the 1-hour part of the cache writes, which can then only be priced at
    the 5-minute rate (langchain-anthropic streams)."""
    p = PRICES[model]
    uncached = u.input - u.cache_read - u.writes
    one_hour = p["write_1h"] if one_hour_reported and "write_1h" in p else p.get("write_5m")
    usd = (
        uncached * p["input"]
        + u.cache_read * p.get("cached", p["input"])
        + u.write_5m * p.get("write_5m", p["input"])
        + u.write_1h * (one_hour or p["input"])
        + u.output * p["output"]
    )
    return usd / 1e6


# -- the providers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    ls_provider: str  # LangChain's provider id, stored on the span
    usage: Usage  # what the server reports for a call
    make: Callable[..., Any]  # (url, model) -> chat model
    #: The integration's ``usage_metadata`` for usage ``u`` (``stream``: streamed call).
    parsed: Callable[[Usage, bool], dict[str, Any]]
    reports: frozenset[str]  # which parts it reports: cached, writes, reasoning
    framing: bool = True  # streams open with an event that carries no content


def _details(**parts: Any) -> dict[str, Any]:
    return {k: v for k, v in parts.items() if v is not None}


def _base(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input, "output_tokens": u.output, "total_tokens": u.total}


def _openai(url: str, model: str, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=f"{url}/v1",
        api_key="sk-loopback",
        max_retries=0,
        stream_usage=True,
        **kwargs,
    )


def _anthropic(url: str, model: str) -> Any:
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model=model, base_url=url, api_key="sk-ant-loopback", max_retries=0)


def _gemini(url: str, model: str) -> Any:
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(
        model=model, google_api_key="loopback", base_url=url, max_retries=0
    )


def _groq(url: str, model: str) -> Any:
    from langchain_groq import ChatGroq

    return ChatGroq(model=model, base_url=url, api_key="gsk_loopback", max_retries=0)


def _mistral(url: str, model: str) -> Any:
    from langchain_mistralai import ChatMistralAI

    return ChatMistralAI(
        model=model, base_url=f"{url}/mistral/v1", api_key="loopback", max_retries=0
    )


def _anthropic_parsed(u: Usage, stream: bool) -> dict[str, Any]:
    if stream:  # message_delta: cumulative totals, no per-TTL breakdown
        details = {"cache_creation": u.writes, "cache_read": u.cache_read}
    else:  # the per-TTL parts, and cache_creation zeroed so that a sum counts once
        details = {
            "cache_read": u.cache_read,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": u.write_5m,
            "ephemeral_1h_input_tokens": u.write_1h,
        }
    return {
        **_base(u),
        "input_token_details": details,
        "output_token_details": {"reasoning": u.reasoning},
    }


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai-chat",
            "gpt-5-mini",
            "openai",
            Usage(input=2_400, output=180, cache_read=2_048, reasoning=64),
            _openai,
            lambda u, stream: {
                **_base(u),
                "input_token_details": {"audio": 0, "cache_read": u.cache_read},
                "output_token_details": {"audio": 0, "reasoning": u.reasoning},
            },
            frozenset({"cached", "reasoning"}),
        ),
        Provider(
            "openai-responses",
            "gpt-5-mini",
            "openai",
            Usage(input=2_400, output=180, cache_read=2_048, reasoning=64),
            functools.partial(_openai, use_responses_api=True),
            lambda u, stream: {
                **_base(u),
                "input_token_details": {"cache_read": u.cache_read},
                "output_token_details": {"reasoning": u.reasoning},
            },
            frozenset({"cached", "reasoning"}),
        ),
        Provider(
            "anthropic",
            "claude-sonnet-4-6",
            "anthropic",
            # The example: 1,502 tokens written to the 5-minute cache.
            Usage(input=1_612, output=130, cache_read=100, write_5m=1_502, reasoning=40),
            _anthropic,
            _anthropic_parsed,
            frozenset({"cached", "writes", "reasoning"}),
        ),
        Provider(
            "gemini",
            "gemini-2.5-flash",
            "google_genai",
            Usage(input=3_000, output=250, cache_read=2_000, reasoning=200),
            _gemini,
            lambda u, stream: {
                **_base(u),
                "input_token_details": {"cache_read": u.cache_read},
                "output_token_details": {"reasoning": u.reasoning},
            },
            frozenset({"cached", "reasoning"}),
            framing=False,  # Gemini's first chunk already carries text
        ),
        Provider(
            "groq",
            "llama-3.3-70b-versatile",
            "groq",
            Usage(input=900, output=75),
            _groq,
            lambda u, stream: _base(u),
            frozenset(),
        ),
        Provider(
            "mistral",
            "codestral-latest",
            "mistralai",
            Usage(input=700, output=60),
            _mistral,
            lambda u, stream: _base(u),
            frozenset(),
        ),
    )
}


def span_counts(p: Provider, u: Usage) -> tuple[Any, ...]:
    """The token columns a model span must hold for a call reporting ``u``."""
    return (
        u.input,
        u.output,
        u.total,
        u.cache_read if "cached" in p.reports else None,
        u.writes if "writes" in p.reports else None,
        u.reasoning if "reasoning" in p.reports else None,
    )


def stored_counts(span: Any) -> tuple[Any, ...]:
    return (
        span.input_tokens,
        span.output_tokens,
        span.total_tokens,
        span.cached_tokens,
        span.cache_creation_tokens,
        span.reasoning_tokens,
    )


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Any:
    with ProviderServer(lifetime=600) as srv:
        yield srv


@pytest.fixture
def obs(db_path: Path) -> Any:
    handler = ObsHandler(db_path, queue=Queue(schedule_delay=0.05))
    yield handler
    handler.close()


class FirstToken(BaseCallbackHandler):
    """Beside ObsHandler: the first ``on_llm_new_token`` of each run, whatever it carries."""

    def __init__(self) -> None:
        self.first: dict[Any, Any] = {}

    def on_llm_new_token(self, token: str, *, run_id: Any, chunk: Any = None, **kw: Any) -> None:
        self.first.setdefault(run_id, chunk)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21 C."


def _merge(chunks: list[Any]) -> AIMessage:
    return functools.reduce(lambda a, b: a + b, chunks)


async def run(mode: str, model: Any, config: dict[str, Any]) -> list[Any]:
    """Run ``model`` one way, in a prompt | model chain or an agent; the AI messages the
    application got back."""
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model
    question = {"question": PROMPT}
    if mode == "invoke":
        return [chain.invoke(question, config=config)]
    if mode == "ainvoke":
        return [await chain.ainvoke(question, config=config)]
    if mode == "stream":
        return [_merge(list(chain.stream(question, config=config)))]
    if mode == "astream":
        return [_merge([c async for c in chain.astream(question, config=config)])]
    from langchain.agents import create_agent

    agent = create_agent(model, tools=[get_weather])
    state = await agent.ainvoke({"messages": [("user", PROMPT)]}, config=config)
    return [m for m in state["messages"] if isinstance(m, AIMessage)]


def _scale(u: Usage, k: int) -> Usage:
    return Usage(
        input=u.input * k,
        output=u.output * k,
        cache_read=u.cache_read * k,
        write_5m=u.write_5m * k,
        write_1h=u.write_1h * k,
        reasoning=u.reasoning * k,
    )


# -- every provider x mode ----------------------------------------------------------------------

MODES = ("invoke", "ainvoke", "stream", "astream", "agent")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_tokens_cost_and_ttft(
    server: ProviderServer, obs: ObsHandler, db_path: Path, name: str, mode: str
) -> None:
    p = PROVIDERS[name]
    streamed = mode in ("stream", "astream")
    delay = DELAY if streamed else 0.0
    if mode == "agent":
        second = _scale(p.usage, 2)
        usages = [p.usage, second]
        server.script(
            Turn(tool_call=("get_weather", {"city": "Paris"}), usage=p.usage),
            Turn(text="It is sunny in Paris, 21 C.", usage=second),
        )
    else:
        usages = [p.usage]
        server.script(Turn(usage=p.usage, first_delay=delay))
    probe = FirstToken()
    messages = await run(mode, p.make(server.url, p.model), {"callbacks": [obs, probe]})
    obs.flush()

    # The integration parsed what the server sent: the server speaks its format.
    assert [m.usage_metadata for m in messages] == [p.parsed(u, streamed) for u in usages]
    if mode == "agent":
        assert messages[0].tool_calls[0]["name"] == "get_weather"
        assert messages[-1].text == "It is sunny in Paris, 21 C."

    store = TraceStore(db_path)
    (trace,) = store.traces()
    spans = store.spans(trace.trace_id, kind="chat_model")
    assert len(spans) == len(usages)
    # Anthropic streams report cache writes without their TTL (see docs/cost.md).
    one_hour = not (streamed and name == "anthropic")
    for span, u in zip(spans, usages, strict=True):
        assert (span.model, span.provider, span.status) == (p.model, p.ls_provider, "ok")
        assert stored_counts(span) == span_counts(p, u)
        expected = published_cost(p.model, u, one_hour_reported=one_hour)
        assert span.cost_usd == pytest.approx(expected, rel=1e-9)
        if streamed:
            # TTFT is the first content delta, held back DELAY after the framing event.
            assert span.ttft_ms >= DELAY * 1000
            assert span.ttft_ms < span.latency_ms
            assert span.tokens_per_s == pytest.approx(
                span.output_tokens / ((span.latency_ms - span.ttft_ms) / 1000)
            )
            first = probe.first[next(iter(probe.first))]
            # The stream opened with a chunk that carries nothing (the framing event).
            assert (first.text == "" and not first.message.tool_call_chunks) == p.framing
        elif mode != "agent":
            assert span.ttft_ms is None

    # Roll-ups: the root (the chain, or the agent's graph) carries the sum of its model calls.
    root = next(s for s in store.spans(trace.trace_id) if s.parent_id is None)
    assert root.kind == "chain" and all(s.parent_id is not None for s in spans)
    for field in ("input_tokens", "output_tokens", "total_tokens", "cached_tokens"):
        values = [getattr(s, field) for s in spans]
        total = None if None in values else sum(values)
        assert getattr(root, field) == total, field
        assert getattr(trace, field) == total, field
    assert root.cost_usd == pytest.approx(sum(s.cost_usd for s in spans), rel=1e-9)
    assert trace.cost_usd == pytest.approx(sum(s.cost_usd for s in spans), rel=1e-9)


# -- errors -------------------------------------------------------------------------------------

ERRORS = [(name, status) for name in PROVIDERS for status in (429, 500)] + [("anthropic", 529)]


@pytest.mark.parametrize(("name", "status"), ERRORS)
@pytest.mark.parametrize("mode", ["invoke", "astream"])
async def test_errors_are_error_spans_and_reach_the_app_unchanged(
    server: ProviderServer, obs: ObsHandler, db_path: Path, name: str, status: int, mode: str
) -> None:
    p = PROVIDERS[name]
    model = p.make(server.url, p.model)
    raised: list[BaseException] = []
    for config in ({}, {"callbacks": [obs]}):
        server.script(Turn(error=status))
        with pytest.raises(Exception) as info:  # any type: compared below
            await run(mode, model, config)
        raised.append(info.value)
    plain, observed = raised
    assert type(observed) is type(plain)
    assert str(observed) == str(plain)
    assert str(status) in str(observed)
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert span.status == "error"
    assert span.error.type == type(plain).__qualname__
    assert span.error.message == str(plain)
    assert span.cost_usd is None and span.total_tokens is None


# -- cases of their own -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["auto", "bundled"])
def test_anthropic_cache_writes_priced_by_ttl(
    server: ProviderServer, db_path: Path, source: str
) -> None:
    """5-minute writes at 1.25x input, 1-hour writes at 2x, from either price table (the
    bundled one has no 1-hour price: it is derived by Anthropic's rule)."""
    p = PROVIDERS["anthropic"]
    cases = [
        Usage(input=1_512, output=130, write_5m=1_502),  # the example
        Usage(input=1_512, output=130, write_1h=1_502),
        Usage(input=5_000, output=130, cache_read=1_000, write_5m=1_500, write_1h=2_000),
    ]
    server.script(*(Turn(usage=u) for u in cases))
    model = p.make(server.url, p.model)
    prices = PriceTable(source=source)
    with ObsHandler(db_path, prices=prices, queue=Queue(schedule_delay=0.05)) as obs:
        for _ in cases:
            model.invoke(PROMPT, config={"callbacks": [obs]})
    spans = TraceStore(db_path).spans(kind="chat_model")
    assert [s.cache_creation_tokens for s in spans] == [u.writes for u in cases]
    assert [s.cost_usd for s in spans] == pytest.approx(
        [published_cost(p.model, u) for u in cases], rel=1e-9
    )
    assert spans[0].cost_usd == pytest.approx(0.0076125)  # was 0.00649: writes as input
    assert spans[1].cost_usd == pytest.approx(0.010992)  # 1,502 x $6 + 10 x $3 + 130 x $15


def test_anthropic_stream_with_restated_message_delta_is_counted_once(
    server: ProviderServer, obs: ObsHandler, db_path: Path
) -> None:
    """Server tools make Anthropic send message_delta more than once, each with the
    cumulative usage; LangChain's merge adds them up, lc_observe keeps the totals."""
    p = PROVIDERS["anthropic"]
    u = p.usage
    server.script(Turn(usage=u, repeat_message_delta=True))
    merged = _merge(list(p.make(server.url, p.model).stream(PROMPT, config={"callbacks": [obs]})))
    assert merged.usage_metadata["input_tokens"] == 2 * u.input  # LangChain's sum
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert stored_counts(span) == span_counts(p, u)
    assert span.cost_usd == pytest.approx(
        published_cost(p.model, u, one_hour_reported=False), rel=1e-9
    )


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_streamed_tool_call_is_the_first_token(
    server: ProviderServer, obs: ObsHandler, db_path: Path, name: str
) -> None:
    """A stream that answers with a tool call: TTFT is its first tool-call chunk."""
    p = PROVIDERS[name]
    call = ("get_weather", {"city": "Paris"})
    server.script(Turn(tool_call=call, usage=p.usage, first_delay=DELAY))
    model = p.make(server.url, p.model).bind_tools([get_weather])
    (message,) = await run("astream", model, {"callbacks": [obs]})
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [call]
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert span.ttft_ms >= DELAY * 1000
    assert stored_counts(span) == span_counts(p, p.usage)


class FirstText(BaseCallbackHandler):
    """Beside ObsHandler: when the first answer text (not thinking) arrived."""

    def __init__(self) -> None:
        self.t0 = self.text_ms = None

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.t0 = time.perf_counter()

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        if self.text_ms is None and chunk is not None and chunk.message.text:
            self.text_ms = (time.perf_counter() - self.t0) * 1000


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_anthropic_thinking_delta_is_the_first_token(
    server: ProviderServer, obs: ObsHandler, db_path: Path, mode: str
) -> None:
    """Extended thinking: the first thinking delta is the first token, not the answer's."""
    from langchain_anthropic import ChatAnthropic

    p = PROVIDERS["anthropic"]
    u = p.usage
    thought = "The user wants the weather; no tool needed."
    server.script(Turn(usage=u, thinking=thought, first_delay=DELAY, answer_delay=DELAY))
    model = ChatAnthropic(
        model=p.model,
        base_url=server.url,
        api_key="sk-ant-loopback",
        max_retries=0,
        max_tokens=4_096,
        thinking={"type": "enabled", "budget_tokens": 2_048},
    )
    probe = FirstText()
    (message,) = await run(mode, model, {"callbacks": [obs, probe]})
    assert message.content[0]["type"] == "thinking"
    assert message.content[0]["thinking"] == thought
    assert message.text == Turn().text
    assert message.usage_metadata == p.parsed(u, True)
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert span.ttft_ms >= DELAY * 1000  # after the framing events
    assert span.ttft_ms < probe.text_ms  # at the thinking, before the answer's text
    assert span.reasoning_tokens == u.reasoning


@pytest.mark.parametrize("tier", ["flex", "priority"])
@pytest.mark.parametrize("responses_api", [False, True])
@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_openai_service_tier_tokens_and_price(
    server: ProviderServer,
    obs: ObsHandler,
    db_path: Path,
    responses_api: bool,
    mode: str,
    tier: str,
) -> None:
    """langchain-openai renames the usage keys of a flex or priority call
    (``flex_cache_read``, ``flex_reasoning``, plus a ``flex`` count); the call is billed
    at that tier's prices."""
    if PriceTable().rates("gpt-5-mini", "openai", service_tier=tier, warn=False) is None:
        pytest.skip(f"the installed price table has no {tier} prices (genai-prices >= 0.2.5)")
    p = PROVIDERS["openai-responses" if responses_api else "openai-chat"]
    u = p.usage
    server.script(Turn(usage=u, service_tier=tier))
    model = _openai(server.url, p.model, use_responses_api=responses_api, service_tier=tier)
    config = {"callbacks": [obs]}
    if mode == "invoke":
        message = model.invoke(PROMPT, config=config)
    else:
        message = _merge(list(model.stream(PROMPT, config=config)))
    details = message.usage_metadata["input_token_details"]
    assert details[f"{tier}_cache_read"] == u.cache_read and "cache_read" not in details
    assert message.usage_metadata["output_token_details"][f"{tier}_reasoning"] == u.reasoning
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert stored_counts(span) == span_counts(p, u)
    assert span.cost_usd == pytest.approx(published_cost(f"gpt-5-mini@{tier}", u), rel=1e-9)


def test_unknown_model_has_no_cost(server: ProviderServer, obs: ObsHandler, db_path: Path) -> None:
    u = Usage(input=500, output=20)
    server.script(Turn(usage=u))
    _openai(server.url, "loopback-private-7b").invoke(PROMPT, config={"callbacks": [obs]})
    obs.flush()
    (span,) = TraceStore(db_path).spans(kind="chat_model")
    assert (span.input_tokens, span.output_tokens) == (500, 20)
    assert span.cost_usd is None
