"""Prompt versions compared: real LangGraph runs with fake models, known differences found
with the right numbers, identical versions with no difference claimed."""

from __future__ import annotations

import contextlib
import math
import random
from pathlib import Path
from typing import Literal, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, TraceStore
from lc_observe.analysis.compare import mann_whitney_u, two_proportion_z
from lc_observe.evaluate import answer_length, evaluate, judge, max_length
from lc_observe.testing import FakeJudge

from .fakes import UsageChatModel, usage

PRICES = {"fake-usage-model": {"input": 1.0, "output": 2.0}}  # USD per million tokens
SHORT, LONG = "It is 42.", "After careful thought, the answer is forty-two (42)."


class _State(TypedDict, total=False):
    n: int
    answer: str


def _graph(version: str):
    """check -(route)-> small | big, each answering with the version's model.

    v2 is the changed prompt: a longer answer with more tokens, it fails on even inputs
    (check raises) and it routes to "big" from n > 5 on instead of n > 10."""
    changed = version == "v2"
    reply, tokens = (LONG, usage(40, 25)) if changed else (SHORT, usage(20, 5))
    model = UsageChatModel(responses=[reply], usage=tokens)

    def check(state: _State) -> _State:
        if changed and state["n"] % 2 == 0:
            raise ValueError("prompt v2 produced unparseable output")
        return {}

    def route(state: _State) -> Literal["small", "big"]:
        return "big" if state["n"] > (5 if changed else 10) else "small"

    def answer(state: _State) -> _State:
        return {"answer": str(model.invoke(f"question {state['n']}").content)}

    builder = StateGraph(_State)
    builder.add_node("check", check)
    builder.add_node("small", answer)
    builder.add_node("big", answer)
    builder.add_edge(START, "check")
    builder.add_conditional_edges("check", route)
    builder.add_edge("small", END)
    builder.add_edge("big", END)
    return builder.compile(name="versioned")


def _record(db_path: Path, versions: dict[str, str]) -> TraceStore:
    """Ten runs (n = 0..9) per label; ``versions`` maps a label to the behaviour it has."""
    with ObsHandler(db_path, prices=PRICES) as obs:
        for label, behaviour in versions.items():
            graph = _graph(behaviour)
            for n in range(10):
                config = {"callbacks": [obs], "metadata": {"prompt_version": label}}
                with contextlib.suppress(ValueError):  # v2 fails on even inputs
                    graph.invoke({"n": n}, config)
    store = TraceStore(db_path)
    evaluate(store, evaluators=[max_length(20), answer_length()])
    return store


def test_known_differences_are_found_with_the_right_numbers(db_path: Path) -> None:
    store = _record(db_path, {"v1": "v1", "v2": "v2"})
    cmp = store.compare(by="metadata.prompt_version", a="v1", b="v2")
    assert (cmp.a_traces, cmp.b_traces) == (10, 10)

    tokens = cmp.row("total_tokens")  # 25 per v1 trace; 65 per successful v2 trace
    assert (tokens.a_n, tokens.b_n, tokens.a_value, tokens.b_value) == (10, 5, 25.0, 65.0)
    assert tokens.difference == 40.0 and tokens.relative == pytest.approx(1.6)
    # Mann-Whitney with ties by hand: U = 0, mu = 25, var = 50/12 * (16 - (990 + 120)/210)
    variance = 50 / 12 * (16 - (10**3 - 10 + 5**3 - 5) / (15 * 14))
    expected_p = math.erfc((25 - 0.5) / math.sqrt(variance) / math.sqrt(2))
    assert tokens.statistic == 0.0 and tokens.p_value == pytest.approx(expected_p)
    assert tokens.significant

    cost = cmp.row("cost_usd")
    assert cost.a_value == pytest.approx(30e-6) and cost.b_value == pytest.approx(90e-6)

    errors = cmp.row("error_rate")  # 0/10 vs 5/10: z = 0.5 / sqrt(.25 * .75 * .2)
    assert (errors.a_value, errors.b_value, errors.a_n, errors.b_n) == (0.0, 0.5, 10, 10)
    z = 0.5 / math.sqrt(0.25 * 0.75 * 0.2)
    assert errors.statistic == pytest.approx(z)
    assert errors.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert errors.p_value == pytest.approx(0.00982, abs=1e-5) and errors.significant

    big = cmp.row("branch:check->big")  # 0 of 10 decisions vs 2 (n = 7, 9) of 5
    assert (big.a_value, big.b_value, big.a_n, big.b_n) == (0.0, 0.4, 10, 5)
    assert big.p_value == pytest.approx(two_proportion_z(0, 10, 2, 5)[1])
    assert big.p_value == pytest.approx(0.0317, abs=1e-4) and big.significant

    length_ok = cmp.row("score:length_ok")  # a boolean score: a pass rate
    assert (length_ok.kind, length_ok.a_value, length_ok.b_value) == ("proportion", 1.0, 0.0)
    assert length_ok.significant
    lengths = cmp.row("score:answer_length")
    assert (lengths.a_value, lengths.b_value) == (len(SHORT), len(LONG))
    assert {r.metric for r in cmp.significant} >= {
        "total_tokens",
        "cost_usd",
        "error_rate",
        "branch:check->big",
        "branch:check->small",
        "score:length_ok",
        "score:answer_length",
    }
    text = str(cmp)
    assert "v1 (10 traces) vs v2 (10 traces)" in text and "error_rate (rate)" in text
    assert "0.0%" in text and "50.0%" in text
    html = cmp._repr_html_()
    assert "<script" not in html and "branch:check-&gt;big" in html

    # the grouping works in stats() as well, scores included
    by_version = {row.group: row for row in store.stats(by="metadata.prompt_version")}
    assert by_version["v1"].count == by_version["v2"].count == 10
    assert by_version["v2"].errors == 5 and by_version["v2"].scores["length_ok"] == 0.0
    assert by_version["v1"].scores == {"answer_length": len(SHORT), "length_ok": 1.0}


def test_identical_versions_show_no_difference(db_path: Path) -> None:
    store = _record(db_path, {"v1": "v1", "v1-again": "v1"})
    judge(store, model=FakeJudge(), criteria=["relevance"])  # judge runs stay out
    cmp = store.compare(by="metadata.prompt_version", a="v1", b="v1-again")
    assert (cmp.a_traces, cmp.b_traces) == (10, 10)
    deterministic = [row for row in cmp.rows if row.metric != "latency_ms"]  # timing noise
    assert {row.metric for row in deterministic} >= {
        "total_tokens",
        "cost_usd",
        "error_rate",
        "score:length_ok",
        "score:relevance",
        "branch:check->small",
    }
    for row in deterministic:
        assert row.a_value == row.b_value and row.difference == 0, row.metric
        assert row.p_value == 1.0 and not row.significant, row.metric
    assert cmp.row("latency_ms").a_n == cmp.row("latency_ms").b_n == 10


def test_compare_by_tag_and_clear_errors(db_path: Path) -> None:
    with ObsHandler(db_path) as obs:
        for tag, behaviour in (("arm-a", "v1"), ("arm-b", "v2")):
            for n in (1, 3, 5):
                _graph(behaviour).invoke({"n": n}, {"callbacks": [obs], "tags": [tag]})
    store = TraceStore(db_path)
    cmp = store.compare(by="tag", a="arm-a", b="arm-b")
    assert cmp.row("total_tokens").b_value == 65.0 and cmp.b_traces == 3
    with pytest.raises(ValueError, match="no finished traces with tag = 'arm-c'"):
        store.compare(by="tag", a="arm-a", b="arm-c")
    with pytest.raises(ValueError, match=r"compare\(by=\.\.\.\) takes"):
        store.compare(by="model", a="x", b="y")
    with pytest.raises(ValueError, match=r"metadata\.KEY"):
        store.compare(by="metadata.bad key", a="x", b="y")
    with pytest.raises(KeyError, match="no metric 'nope'"):
        cmp.row("nope")


def test_statistics_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(7)
    for n1, n2, ties in [(5, 7, False), (12, 15, False), (30, 25, False), (20, 20, True)]:
        for _ in range(5):
            if ties:
                x = [rng.randint(0, 6) for _ in range(n1)]
                y = [rng.randint(1, 7) for _ in range(n2)]
            else:
                x = [rng.gauss(0, 1) for _ in range(n1)]
                y = [rng.gauss(0.5, 1) for _ in range(n2)]
            exact = not ties and n1 + n2 <= 40
            method = "exact" if exact else "asymptotic"
            expected = stats.mannwhitneyu(x, y, alternative="two-sided", method=method)
            u, p = mann_whitney_u(x, y)
            assert u == pytest.approx(expected.statistic)
            assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert mann_whitney_u([1, 1, 1], [1, 1]) == (3.0, 1.0)
    assert two_proportion_z(0, 5, 0, 9) == (0.0, 1.0)
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


def test_holm_adjusted_p_values(db_path: Path) -> None:
    store = _record(db_path, {"v1": "v1", "v2": "v2"})
    cmp = store.compare(by="metadata.prompt_version", a="v1", b="v2")
    tested = sorted((r.p_value, r.metric) for r in cmp.rows if r.p_value is not None)
    holm = cmp.holm()
    assert set(holm) == {metric for _, metric in tested}
    m = len(tested)
    expected, running = {}, 0.0
    for i, (p, metric) in enumerate(tested):  # step-down: max over the smaller ones
        running = max(running, min(1.0, (m - i) * p))
        expected[metric] = running
    assert holm == pytest.approx(expected)
    assert all(holm[r.metric] >= r.p_value for r in cmp.rows if r.p_value is not None)
    assert "p Holm" in str(cmp)
