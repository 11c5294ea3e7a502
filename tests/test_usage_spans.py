"""Tokens, cost, TTFT, cache hits, statistics and budgets as stored by `ObsHandler`,
from real chat models, LLMs, chains and graphs."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from lc_observe import Budget, BudgetExceeded, BudgetExceededError, ObsHandler, Queue, TraceStore
from lc_observe.capture.pricing import PriceTable
from lc_observe.storage.stats import percentile

from .fakes import UsageChatModel, UsageLLM, usage
from .test_pricing import published

CACHED = usage(5_000, 400, cache_read=4_096, cache_creation=100, reasoning=150)


def gpt4o(**kwargs: Any) -> UsageChatModel:
    return UsageChatModel(model_name="gpt-4o", provider="openai", **kwargs)


def gpt4o_cost(u: dict[str, Any]) -> float:
    """gpt-4o's price from the bundled table's published numbers, times the tokens."""
    price = published("openai", "gpt-4o")
    cached = u.get("input_token_details", {}).get("cache_read", 0)
    return (
        (u["input_tokens"] - cached) * price["input"]
        + cached * price["cached_input"]
        + u["output_tokens"] * price["output"]
    ) / 1e6


@pytest.fixture
def bundled_handler(db_path: Path):
    obs = ObsHandler(db_path, prices=PriceTable(source="bundled"), queue=Queue(schedule_delay=0.05))
    yield obs
    obs.close()


# -- usage on stored spans, and roll-ups -----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_model_span_fields_and_rolled_up_totals(
    bundled_handler: ObsHandler, stream: bool
) -> None:
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | gpt4o(usage=CACHED)
    twice = RunnableLambda(lambda q, config: [chain.invoke({"q": q}, config) for _ in range(2)])
    config = {"callbacks": [bundled_handler]}
    if stream:
        [chunk async for chunk in twice.astream("hi", config=config)]
    else:
        await twice.ainvoke("hi", config=config)
    store = bundled_handler.store
    (trace,) = store.traces()
    models = store.spans(trace.trace_id, kind="chat_model")
    assert len(models) == 2
    for span in models:
        assert (span.model, span.provider) == ("gpt-4o", "openai")
        assert (span.input_tokens, span.output_tokens, span.total_tokens) == (5_000, 400, 5_400)
        assert (span.cached_tokens, span.cache_creation_tokens) == (4_096, 100)
        assert span.reasoning_tokens == 150
        assert span.cost_usd == pytest.approx(gpt4o_cost(CACHED), rel=1e-9)
        assert span.cache_hit is False
    # Each chain carries its model call's totals; the trace carries both.
    for chain_span in store.spans(trace.trace_id, name="RunnableSequence"):
        assert chain_span.total_tokens == 5_400 and chain_span.cached_tokens == 4_096
    assert (trace.input_tokens, trace.output_tokens, trace.total_tokens) == (10_000, 800, 10_800)
    assert (trace.cached_tokens, trace.reasoning_tokens) == (8_192, 300)
    assert trace.cost_usd == pytest.approx(2 * gpt4o_cost(CACHED), rel=1e-9)


def test_legacy_llm_usage_from_llm_output(handler: ObsHandler) -> None:
    UsageLLM(reply="one two three").invoke("a b c d", config={"callbacks": [handler]})
    (span,) = handler.store.spans(kind="llm")
    assert (span.input_tokens, span.output_tokens, span.total_tokens) == (4, 3, 7)
    assert span.cached_tokens is None and span.model == "fake-legacy-model"
    assert span.cache_hit is None  # a cached legacy LLM prompt makes no callback: unknowable


def test_unknown_model_has_no_cost_and_overrides_price_it(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = UsageChatModel(model_name="in-house-7b", provider="acme", usage=usage(1_000, 500))
    with caplog.at_level(logging.INFO, logger="lc_observe"), ObsHandler(db_path) as plain:
        model.invoke("a", config={"callbacks": [plain]})
        model.invoke("b", config={"callbacks": [plain]})
    spans = TraceStore(db_path).spans(kind="chat_model")
    assert [s.cost_usd for s in spans] == [None, None]  # never a made-up 0
    assert [s.total_tokens for s in spans] == [1_500, 1_500]
    assert sum("in-house-7b" in r.getMessage() for r in caplog.records) == 1  # logged once

    priced = db_path.with_name("priced.db")
    prices = {"in-house-7b": {"input": 2.0, "output": 6.0}}
    with ObsHandler(priced, prices=prices) as handler:
        model.invoke("c", config={"callbacks": [handler]})
    (span,) = TraceStore(priced).spans(kind="chat_model")
    assert span.cost_usd == pytest.approx((1_000 * 2.0 + 500 * 6.0) / 1e6)


# -- timing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True])
async def test_ttft_and_tokens_per_second_of_a_stream(handler: ObsHandler, use_async: bool) -> None:
    delay = 0.03
    model = gpt4o(responses=["one two three four"], usage=usage(10, 4), stream_delay=delay)
    config = {"callbacks": [handler]}
    if use_async:
        [c async for c in model.astream("hi", config=config)]
    else:
        list(model.stream("hi", config=config))
    (span,) = handler.store.spans(kind="chat_model")
    # The fake sleeps `delay` before each of its 5 chunks (4 words, then usage).
    assert delay * 1000 <= span.ttft_ms < delay * 1000 + 1_000
    assert span.latency_ms - span.ttft_ms >= 4 * delay * 1000
    assert span.tokens_per_s == pytest.approx(4 * 1000 / (span.latency_ms - span.ttft_ms))
    assert span.tokens_per_s <= 4 / (4 * delay)  # at most 4 tokens in 4 delays


def test_no_ttft_without_streaming(handler: ObsHandler) -> None:
    gpt4o(usage=usage(10, 4)).invoke("hi", config={"callbacks": [handler]})
    (span,) = handler.store.spans(kind="chat_model")
    assert span.ttft_ms is None and span.tokens_per_s is None and span.latency_ms > 0


# -- LangChain's LLM cache -------------------------------------------------------------------


def test_cache_hits_are_counted_and_cost_nothing(bundled_handler: ObsHandler) -> None:
    model = gpt4o(usage=usage(1_000, 100), cache=InMemoryCache())
    config = {"callbacks": [bundled_handler]}
    for prompt in ["a", "a", "b", "a"]:
        model.invoke(prompt, config=config)
    spans = bundled_handler.store.spans(kind="chat_model")
    assert [s.cache_hit for s in spans] == [False, True, False, True]
    hit = spans[1]
    assert hit.cost_usd == 0.0 and hit.total_tokens is None  # nothing was processed
    assert spans[0].cost_usd == pytest.approx(gpt4o_cost(usage(1_000, 100)))
    (row,) = bundled_handler.store.stats(by="model")
    assert (row.model_calls, row.cache_hits, row.cache_hit_rate) == (4, 2, 0.5)
    assert row.total_tokens == 2 * 1_100
    assert row.cost_usd == pytest.approx(2 * gpt4o_cost(usage(1_000, 100)))


# -- statistics ------------------------------------------------------------------------------


def test_percentile_matches_statistics_quantiles() -> None:
    for data in ([5.0], [3.0, 1.0], [float(x * x % 97) for x in range(1, 250)]):
        ordered = sorted(data)
        if len(data) > 1:
            cuts = statistics.quantiles(data, n=100, method="inclusive")
            for q in (50, 95, 99):
                assert percentile(ordered, q / 100) == pytest.approx(cuts[q - 1], rel=1e-12)
        assert percentile(ordered, 0.0) == min(data) and percentile(ordered, 1.0) == max(data)
    assert percentile([], 0.5) is None


def _sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_stats_by_name_match_the_stored_spans(handler: ObsHandler) -> None:
    sleepy = RunnableLambda(_sleepy, name="sleepy")
    fails = RunnableLambda(lambda x: 1 / 0, name="fails")
    config = {"callbacks": [handler]}
    for index in range(23):
        sleepy.invoke(0.001 * (index % 7), config=config)
    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            fails.invoke(0, config=config)
    store = handler.store
    rows = {row.group: row for row in store.stats(by="name")}
    assert list(rows) == ["sleepy", "fails"]  # largest group first
    latencies = [s.latency_ms for s in store.spans(name="sleepy")]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    row = rows["sleepy"]
    assert (row.count, row.errors, row.error_rate) == (23, 0, 0.0)
    assert row.latency_p50_ms == pytest.approx(cuts[49])
    assert row.latency_p95_ms == pytest.approx(cuts[94])
    assert row.latency_p99_ms == pytest.approx(cuts[98])
    assert row.latency_mean_ms == pytest.approx(statistics.fmean(latencies))
    assert (rows["fails"].count, rows["fails"].errors, rows["fails"].error_rate) == (3, 3, 1.0)
    assert {r.group for r in store.stats(by="kind")} == {"chain"}


async def test_stats_by_model_user_session_tag_and_node(bundled_handler: ObsHandler) -> None:
    from .runs import branching_graph

    cheap = UsageChatModel(
        model_name="gpt-4o-mini", provider="openai", usage=usage(100, 10), stream_delay=0.002
    )
    big = gpt4o(usage=CACHED, stream_delay=0.002)
    graph = branching_graph()
    calls = [("alice", "s1", cheap), ("alice", "s1", big), ("bob", "s2", cheap)]
    for user, session, model in calls:
        config = {
            "callbacks": [bundled_handler],
            "metadata": {"user_id": user, "session_id": session},
            "tags": [f"team-{user}"],
        }
        [c async for c in model.astream("hi", config=config)]
        await graph.ainvoke({"n": 3}, config=config)
    store = bundled_handler.store

    by_model = {row.group: row for row in store.stats(by="model")}
    assert set(by_model) == {"gpt-4o-mini", "gpt-4o"}
    mini = by_model["gpt-4o-mini"]
    assert (mini.count, mini.input_tokens, mini.output_tokens) == (2, 200, 20)
    assert mini.ttft_mean_ms is not None and mini.ttft_p95_ms >= 2.0
    assert mini.tokens_per_s is not None and mini.tokens_per_s > 0
    assert by_model["gpt-4o"].cached_tokens == 4_096
    assert by_model["gpt-4o"].reasoning_tokens == 150
    assert by_model["gpt-4o"].cost_usd == pytest.approx(gpt4o_cost(CACHED))

    by_user = {row.group: row for row in store.stats(by="user_id")}
    assert (by_user["alice"].count, by_user["bob"].count) == (4, 2)  # traces, not spans
    assert by_user["alice"].model_calls == 2 and by_user["bob"].model_calls == 1
    assert by_user["alice"].total_tokens == 110 + 5_400
    assert by_user["alice"].cost_usd == pytest.approx(
        sum(s.cost_usd for s in store.spans(kind="chat_model") if s.user_id == "alice")
    )
    by_session = {row.group: row.count for row in store.stats(by="session_id")}
    assert by_session == {"s1": 4, "s2": 2}
    by_tag = {row.group: row.count for row in store.stats(by="tag")}
    assert by_tag == {"team-alice": 4, "team-bob": 2}
    by_node = {row.group: row.count for row in store.stats(by="graph_node")}
    assert by_node["check"] == 3 and sum(by_node.values()) == 6

    # A window selects by start time; an empty window gives no rows.
    assert store.stats(by="model", since="2000-01-01", until="2000-01-02") == []
    assert sum(r.count for r in store.stats(by="model", since=store.spans()[0].start_time)) == 3


def test_stats_rejects_an_unknown_grouping(handler: ObsHandler) -> None:
    RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [handler]})
    with pytest.raises(ValueError, match="model, name, kind"):
        handler.store.stats(by="colour")


# -- budgets ---------------------------------------------------------------------------------


def _agent(model: UsageChatModel, calls: int) -> RunnableLambda:
    """A run that calls ``model`` up to ``calls`` times, like an agent loop."""

    def loop(question: str, config: Any) -> int:
        for index in range(calls):
            model.invoke(f"{question} {index}", config)
        return calls

    return RunnableLambda(loop, name="agent")


def test_budget_raise_stops_the_next_model_call(db_path: Path) -> None:
    model = gpt4o(usage=usage(600, 100))  # 700 tokens per call
    budget = Budget(max_tokens=1_000, per="trace", action="raise")
    with ObsHandler(db_path, budgets=[budget]) as handler:
        config = {"callbacks": [handler]}
        with pytest.raises(BudgetExceededError, match="max_tokens=1000 per trace") as caught:
            _agent(model, calls=5).invoke("q", config=config)
        assert caught.value.event.spent == 1_400 and caught.value.event.metric == "tokens"
        assert next(model._calls) == 2  # the third call never reached the model
        # Per trace: a new trace starts with a fresh budget.
        with pytest.raises(BudgetExceededError):
            _agent(model, calls=5).invoke("again", config=config)
    store = TraceStore(db_path)
    first, _ = sorted(store.traces(), key=lambda t: t.start_time)
    spans = store.spans(first.trace_id, kind="chat_model")
    assert [s.status for s in spans] == ["ok", "ok", "error"]
    assert spans[2].error.type == "BudgetExceededError" and spans[2].total_tokens is None
    assert first.status == "error" and first.total_tokens == 1_400
    (event,) = store.budget_events(trace_id=first.trace_id)
    assert (event.per, event.scope, event.action) == ("trace", first.trace_id, "raise")
    assert event.span_id == str(spans[1].span_id) and event.limit_value == 1_000
    assert len(store.budget_events()) == 2


async def test_budget_raise_in_async_graph_per_user(db_path: Path) -> None:
    from .runs import branching_graph

    model = gpt4o(usage=usage(50, 50))
    budget = Budget(max_cost_usd=0.0, per="user_id", action="raise")  # used up by any cost
    graph = branching_graph()
    with ObsHandler(db_path, budgets=[budget], prices=PriceTable(source="bundled")) as handler:
        alice = {"callbacks": [handler], "metadata": {"user_id": "alice"}}
        await model.ainvoke("first", config=alice)
        with pytest.raises(BudgetExceededError, match="user_id='alice'"):
            await model.ainvoke("second", config=alice)
        await graph.ainvoke({"n": 1}, config=alice)  # no model call: not affected
        bob = {"callbacks": [handler], "metadata": {"user_id": "bob"}}
        await model.ainvoke("bob's first", config=bob)  # another user's budget
    events = TraceStore(db_path).budget_events(per="user_id")
    assert [e.scope for e in events] == ["alice", "bob"]


def test_budget_warn_logs_and_stores_once_per_scope(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = gpt4o(usage=usage(500, 0))
    budgets = [Budget(max_tokens=800, per="session_id"), Budget(max_tokens=10**9, per="day")]
    with (
        caplog.at_level(logging.WARNING, logger="lc_observe"),
        ObsHandler(db_path, budgets=budgets) as handler,
    ):
        for session in ("s1", "s1", "s1", "s2"):
            config = {"callbacks": [handler], "metadata": {"session_id": session}}
            model.invoke("hi", config=config)  # warn never stops the app
    warnings = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert len(warnings) == 1 and "session_id='s1'" in warnings[0]
    (event,) = TraceStore(db_path).budget_events()
    assert (event.scope, event.spent, event.action) == ("s1", 1_000, "warn")
    assert len(TraceStore(db_path).spans(kind="chat_model", status="ok")) == 4


def test_budget_callable_receives_the_event_and_its_errors_are_contained(db_path: Path) -> None:
    received: list[BudgetExceeded] = []

    def on_exceeded(event: BudgetExceeded) -> None:
        received.append(event)
        raise RuntimeError("a buggy budget action")

    model = gpt4o(usage=usage(100, 100))
    budget = Budget(max_cost_usd=1e-9, per="day", action=on_exceeded, name="daily")
    with ObsHandler(db_path, budgets=[budget], prices=PriceTable(source="bundled")) as handler:
        for _ in range(3):
            model.invoke("hi", config={"callbacks": [handler]})
        assert handler.stats["internal_errors"] == 0
    (event,) = received
    assert (event.budget, event.per, event.metric, event.action) == (
        "daily",
        "day",
        "cost_usd",
        "callable",
    )
    assert event.scope == event.time.date().isoformat()
    assert [e.span_id for e in TraceStore(db_path).budget_events()] == [event.span_id]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "max_cost_usd=... or max_tokens"),
        ({"max_tokens": -1}, "max_tokens must be a number >= 0"),
        ({"max_tokens": 5, "per": "week"}, "per= must be one of"),
        ({"max_tokens": 5, "action": "explode"}, "action= must be 'warn', 'raise' or a callable"),
    ],
)
def test_bad_budgets_are_rejected_up_front(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Budget(**kwargs)
