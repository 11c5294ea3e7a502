"""Heuristic evaluators and the LLM judge, on real LangGraph runs with fake models."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import BaseModel

from lc_observe import ObsHandler, TraceStore
from lc_observe.demo import build_graph
from lc_observe.evaluate import (
    JUDGE_TAG,
    Case,
    Criterion,
    Evaluator,
    MalformedVerdict,
    all_of,
    answer_length,
    any_of,
    contains,
    cost_slo,
    evaluate,
    heuristic,
    json_valid,
    judge,
    latency_slo,
    max_length,
    no_errors,
    parse_verdict,
    refusal,
    regex,
    text_of,
    token_slo,
)
from lc_observe.model import Trace
from lc_observe.testing import FakeJudge

from .tiers import examples

QUESTIONS = ["What is 6 * 7?", "How does LangGraph route between nodes?"]
ANSWERS = ["The answer is 42.", "LangGraph routes between nodes with conditional edges."]
JUDGE_PRICES = {"fake-judge": {"input": 1.0, "output": 2.0}}  # USD per million tokens


@pytest.fixture
def app_store(db_path: Path) -> TraceStore:
    """Four runs of the demo graph (router -> calculator | retriever -> model), the math
    ones with an expected answer in their metadata."""
    graph = build_graph(FakeListChatModel(responses=ANSWERS))
    with ObsHandler(db_path) as obs:
        for question in QUESTIONS * 2:
            meta = {"expected": "42"} if "6 * 7" in question else {}
            graph.invoke({"question": question}, {"callbacks": [obs], "metadata": meta})
    return TraceStore(db_path)


def _by_question(store: TraceStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for trace in store.traces():
        if JUDGE_TAG not in trace.tags:
            question = store.spans(trace_id=trace.trace_id)[0].inputs["question"]
            out.setdefault(question, []).append(trace.trace_id)
    return out


# -- reading free-text verdicts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 0.9, "reasoning": "ok"}', 0.9),
        ('```json\n{"score": 1, "reasoning": "ok"}\n```', 1.0),
        ('Sure! {"rating": "4/5", "explanation": "close"} Hope that helps.', 0.8),
        ('{"passed": true}', 1.0),
        ('{"verdict": "FAIL"}', 0.0),
        ("Reasoning: the date is right.\nScore: 4/5", 0.8),
        ("score = 0.25", 0.25),
        ("I would give it a rating of 8 out of 10.", 0.8),
        ("Grade: 75%", 0.75),
        ("PASS - matches the reference", 1.0),
        ("The answer is plausible. Verdict: incorrect", 0.0),
    ],
)
def test_free_text_verdicts_are_read(text: str, score: float) -> None:
    assert parse_verdict(text)[0] == pytest.approx(score)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no text"),
        ("garbage with no verdict in it", "no score"),
        ("Score: 7", "outside 0..1"),
        ('{"score": "high"}', "not a number"),
        ('{"score": 3, "reasoning": "x"}', "outside 0..1"),
        ("score: 4/0", "no usable scale"),
    ],
)
def test_unreadable_verdicts_say_why(text: str, problem: str) -> None:
    with pytest.raises(MalformedVerdict, match=problem):
        parse_verdict(text)


def test_text_of_reads_the_shapes_langchain_stores() -> None:
    assert text_of("plain") == "plain"
    assert text_of({"answer": "a", "question": "q"}) == "a"
    assert text_of({"output": {"content": "hi", "type": "ai"}}) == "hi"
    messages = [{"type": "human", "content": "q?"}, {"type": "ai", "content": "a!"}]
    assert text_of({"messages": messages}) == "a!"
    assert text_of({"messages": messages}, ("question",), role="human") == "q?"
    llm_result = {"generations": [[{"text": "gen", "type": "ChatGeneration"}]]}
    assert text_of(llm_result) == "gen"
    assert text_of({"x": 1, "y": 2}) == '{"x": 1, "y": 2}'
    assert text_of(None) is None


# -- the judge ---------------------------------------------------------------------------------


def test_structured_judge_grades_every_trace_and_records_scores(app_store: TraceStore) -> None:
    model = FakeJudge()
    report = judge(
        app_store,
        model=model,
        criteria=["correctness", "groundedness", "relevance", "safety"],
        prices=JUDGE_PRICES,
    )
    # 4 traces x 4 criteria; correctness needs a reference (2 have one), groundedness
    # retrieved documents (the 2 search traces have them)
    assert report.calls == 12 and report.count("ok") == 12 and report.count("skipped") == 4
    groups = _by_question(app_store)
    math, search = groups[QUESTIONS[0]], groups[QUESTIONS[1]]
    correctness = {s.trace_id: s.value for s in app_store.scores(name="correctness")}
    assert correctness == dict.fromkeys(math, 1.0)  # "The answer is 42." contains "42"
    grounded = {s.trace_id: s.value for s in app_store.scores(name="groundedness")}
    assert set(grounded) == set(search) and all(0 < v <= 1 for v in grounded.values())
    safety = app_store.scores(name="safety")
    assert len(safety) == 4 and {s.value for s in safety} == {1.0}
    assert {(s.source, s.author) for s in app_store.scores()} == {("judge", "fake-judge")}
    assert all(s.comment for s in app_store.scores())  # the reasoning
    # the judge's own runs: one tagged trace per judge() call, a child run per verdict
    (judge_trace,) = [t for t in app_store.traces(limit=100) if JUDGE_TAG in t.tags]
    assert judge_trace.trace_id == report.judge_trace_id
    assert judge_trace.metadata["judge_model"] == "fake-judge"
    calls = [
        s for s in app_store.spans(trace_id=report.judge_trace_id) if s.name.startswith("judge:")
    ]
    assert len(calls) == 12 and all(JUDGE_TAG in s.tags for s in calls)
    assert {s.metadata["lc_observe_judged_trace"] for s in calls} == set(math + search)
    assert {r.judge_span_id for r in report.results if r.status == "ok"} == {
        s.span_id for s in calls
    }
    score = app_store.scores(name="safety")[0]
    assert score.metadata["judge_trace_id"] == report.judge_trace_id
    # what judging cost: 150 input and 30 output tokens per call at $1 / $2 per million
    assert (report.input_tokens, report.output_tokens) == (12 * 150, 12 * 30)
    assert report.cost_usd == pytest.approx(12 * (150 * 1.0 + 30 * 2.0) / 1e6)
    assert "12 calls" in str(report) and "cost $0.002520" in str(report)


def test_judge_runs_stay_out_of_app_statistics(app_store: TraceStore) -> None:
    before = {(r.group, r.count) for r in app_store.stats(by="name")}
    judge(app_store, model=FakeJudge(), criteria=["relevance"])
    assert {(r.group, r.count) for r in app_store.stats(by="name")} == before
    with_judge = {r.group: r.count for r in app_store.stats(by="name", include_judge=True)}
    assert with_judge["FakeJudge"] == 4
    assert "FakeJudge" not in {r.group for r in app_store.stats(by="model")}
    # a second judging round does not judge the judge
    again = judge(app_store, model=FakeJudge(), criteria=["relevance"], write=False)
    assert again.calls == 4


@pytest.mark.parametrize("style", ["json", "prose"])
def test_free_text_judge_gives_the_structured_verdicts(app_store: TraceStore, style: str) -> None:
    structured = judge(app_store, model=FakeJudge(), criteria=["relevance"], write=False)
    text = judge(app_store, model=FakeJudge(structured=False, style=style), criteria=["relevance"])
    assert text.count("ok") == 4
    by_trace = {r.trace_id: r.value for r in structured.results}
    assert {r.trace_id: r.value for r in text.results} == by_trace
    assert {s.trace_id: s.value for s in app_store.scores(name="relevance")} == by_trace


def test_malformed_and_failed_verdicts_never_crash_the_batch(app_store: TraceStore) -> None:
    replies = ["no idea, sorry", "Score: 7", '{"score": 0.5, "reasoning": "half right"}']
    model = FakeJudge(structured=False, replies=replies)
    report = judge(app_store, model=model, criteria=["relevance"], max_concurrency=1)
    assert [r.status for r in report.results] == ["malformed", "malformed", "ok", "malformed"]
    stored = app_store.scores(name="relevance")
    assert len(stored) == 4
    malformed = [s for s in stored if s.value is None]
    assert len(malformed) == 3 and all(s.value_type == "error" for s in malformed)
    assert {s.error["raw"] for s in malformed} == {"no idea, sorry", "Score: 7"}
    assert "outside 0..1" in " ".join(s.error["message"] for s in malformed)
    (good,) = [s for s in stored if s.value is not None]
    assert (good.value, good.comment) == (0.5, "half right")
    # malformed verdicts never count in means
    (root,) = [row for row in app_store.stats(by="name") if row.group == "demo_agent"]
    assert (root.scores, root.score_counts) == ({"relevance": 0.5}, {"relevance": 1})


class _Flaky(FakeJudge):
    """Fails every second call."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        if "route" in str(messages[-1].content):
            raise ConnectionError("judge endpoint went away")
        return super()._generate(messages, stop, run_manager, **kw)


def test_a_failing_judge_call_is_reported_not_raised(app_store: TraceStore) -> None:
    report = judge(app_store, model=_Flaky(), criteria=["relevance"])
    statuses = sorted(r.status for r in report.results)
    assert statuses == ["error", "error", "ok", "ok"]
    assert all("judge endpoint went away" in r.error for r in report.results if r.error)
    assert len(app_store.scores(name="relevance")) == 2  # no verdict, no score


def test_judge_concurrency_is_limited(app_store: TraceStore) -> None:
    model = FakeJudge(delay=0.02)
    judge(app_store, model=model, criteria=["relevance", "safety"], max_concurrency=2)
    assert 1 <= model.max_in_flight <= 2
    serial = FakeJudge(delay=0.01)
    judge(app_store, model=serial, criteria=["relevance"], max_concurrency=1, write=False)
    assert serial.max_in_flight == 1


def test_references_from_the_caller_and_bad_arguments(app_store: TraceStore) -> None:
    search = _by_question(app_store)[QUESTIONS[1]]
    refs = dict.fromkeys(search, "conditional edges")
    report = judge(app_store, search, model=FakeJudge(), criteria=["correctness"], references=refs)
    assert [r.value for r in report.results] == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown criterion 'tone'"):
        judge(app_store, model=FakeJudge(), criteria=["tone"])
    with pytest.raises(ValueError, match="max_concurrency"):
        judge(app_store, model=FakeJudge(), max_concurrency=0)
    with pytest.raises(ValueError, match="no with_structured_output"):
        judge(app_store, model=FakeJudge(structured=False), structured=True)


# -- heuristics --------------------------------------------------------------------------------


def _case(answer: str | None, **trace: Any) -> Case:
    fields = {
        "trace_id": "t",
        "name": "app",
        "kind": "chain",
        "status": "ok",
        "start_time": "2026-01-01T00:00:00Z",
        **trace,
    }
    return Case(trace=Trace.model_validate(fields), answer=answer, reference="Paris")


class _City(BaseModel):
    city: str


@pytest.mark.parametrize(
    ("evaluator", "answer", "value"),
    [
        (answer_length(), "abcd", 4),
        (max_length(5), "abcd", True),
        (max_length(3), "abcd", False),
        (max_length(10, min_chars=5), "abcd", False),
        (json_valid(), '{"a": 1}', True),
        (json_valid(), "not json", False),
        (json_valid(), '```json\n{"a": 1}\n```', True),
        (json_valid({"type": "object", "required": ["city"]}), '{"city": "Paris"}', True),
        (json_valid({"type": "object", "required": ["city"]}), '{"town": "Paris"}', False),
        (
            json_valid({"type": "object", "properties": {"n": {"type": "integer"}}}),
            '{"n": "1"}',
            False,
        ),
        (json_valid({"type": "array", "items": {"enum": [1, 2]}}), "[1, 2, 3]", False),
        (json_valid(_City), '{"city": "Paris"}', True),
        (json_valid(_City), '{"city": 5}', False),
        (regex(r"\d{4}"), "in 1999", True),
        (regex(r"\d{4}", must_match=False), "in 1999", False),
        (refusal(), "I'm sorry, but I can't help with that.", True),
        (refusal(), "I can\u2019t assist with this request.", True),
        (refusal(), "As an AI language model, I have no opinions.", True),
        (refusal(), "Paris is the capital of France.", False),
        (contains(), "It is paris.", True),
        (contains("Lyon"), "It is Paris.", False),
        (contains(["Paris", "France"]), "Paris, France", True),
        (contains("paris", case_sensitive=True), "Paris", False),
        (latency_slo(100), "x", True),
        (cost_slo(0.001), "x", False),
        (token_slo(10), "x", False),
        (no_errors(), "x", True),
    ],
)
def test_heuristics(evaluator: Evaluator, answer: str, value: Any) -> None:
    case = _case(answer, latency_ms=50.0, cost_usd=0.01, total_tokens=20)
    verdict = evaluator(case)
    assert verdict is not None and verdict.value == value
    if value is False and evaluator.name != "refusal":  # refusal=False is the good case
        assert verdict.comment  # a failed check says why


def test_checks_that_do_not_apply_record_nothing() -> None:
    case = _case(None)
    for evaluator in (answer_length(), max_length(5), json_valid(), regex("x"), refusal()):
        assert evaluator(case) is None
    assert cost_slo(1.0)(_case("x")) is None  # unknown cost: no verdict, never "cheap"
    assert contains()(Case(trace=_case("x").trace, answer="x")) is None  # no reference


def test_evaluators_compose() -> None:
    short, paris = max_length(20), contains("Paris")
    case = _case("Paris is in France, a long answer indeed")
    assert (short & paris)(case).value is False
    assert "length_ok" in (short & paris)(case).comment
    assert (short | paris)(case).value is True
    assert all_of(short, paris, name="good").name == "good"
    assert any_of(short, paris).name == "length_ok_or_contains"
    with pytest.raises(TypeError, match="pass/fail checks"):
        (answer_length() & paris)(case)

    @heuristic("polite")
    def polite(case: Case) -> bool:
        return "please" in (case.answer or "")

    assert polite(_case("please")).value is True and polite.named("p2").name == "p2"


def test_evaluate_writes_heuristic_scores_and_survives_a_broken_check(app_store) -> None:
    def broken(case: Case) -> bool:
        raise RuntimeError("bug in my check")

    report = evaluate(
        app_store,
        evaluators=[max_length(30), contains(), Evaluator("broken", broken)],
    )
    groups = _by_question(app_store)
    math, search = groups[QUESTIONS[0]], groups[QUESTIONS[1]]
    assert report.traces == 4
    lengths = {s.trace_id: s.value for s in app_store.scores(name="length_ok")}
    assert lengths == {**dict.fromkeys(math, True), **dict.fromkeys(search, False)}
    # contains() without an argument uses the reference: only the math traces have one
    assert {s.trace_id: s.value for s in app_store.scores(name="contains")} == dict.fromkeys(
        math, True
    )
    assert app_store.scores(name="broken") == []
    assert report.summary()["broken"] == {"n": 4, "mean": None, "errors": 4}
    assert report.summary()["length_ok"]["mean"] == 0.5
    assert {s.source for s in app_store.scores()} == {"heuristic"}


def test_heuristics_run_live_on_the_writer_thread(db_path: Path) -> None:
    threads: set[str] = set()

    @heuristic("seen")
    def seen(case: Case) -> bool:
        threads.add(threading.current_thread().name)
        return True

    graph = build_graph(FakeListChatModel(responses=ANSWERS))
    with ObsHandler(db_path, evaluators=[seen, max_length(30), refusal()]) as obs:
        for question in QUESTIONS:
            graph.invoke({"question": question}, {"callbacks": [obs]})
        caller = threading.current_thread().name
    store = TraceStore(db_path)
    assert threads == {"lc_observe-writer"} and caller not in threads
    by_name: dict[str, int] = {}
    for score in store.scores():
        by_name[score.name] = by_name.get(score.name, 0) + 1
    assert by_name == {"seen": 2, "length_ok": 2, "refusal": 2}
    with pytest.raises(ValueError, match="pass a db_path"):
        ObsHandler(None, evaluators=[seen], sinks=[object()])


def test_a_model_that_binds_tools_but_answers_in_text_is_still_read(app_store) -> None:
    from .fakes import UsageChatModel  # bind_tools accepted, never calls a tool

    model = UsageChatModel(responses=['Here you go: {"score": 0.7, "reasoning": "mostly"}'])
    report = judge(app_store, model=model, criteria=["relevance"])
    assert [r.status for r in report.results] == ["ok"] * 4
    assert {r.value for r in report.results} == {0.7}
    assert {r.reasoning for r in report.results} == {"mostly"}


def test_judge_report_html_is_escaped(app_store) -> None:
    criterion = Criterion("<b>tone</b>", "Is the tone <i>right</i>?")
    report = judge(app_store, model=FakeJudge(), criteria=[criterion], write=False)
    html = report._repr_html_()
    assert "&lt;b&gt;tone&lt;/b&gt;" in html and "<b>tone" not in html and "<script" not in html
    assert repr(report).startswith("<JudgeReport fake-judge: 4 calls, ok 4")


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=300))
def test_any_reply_gives_a_score_in_range_or_a_malformed_verdict(text: str) -> None:
    try:
        score, reasoning = parse_verdict(text)
    except MalformedVerdict:
        return
    assert 0.0 <= score <= 1.0 and isinstance(reasoning, str)


class _OutOfRange(FakeJudge):
    """Calls the verdict tool with a score the schema refuses (1-5 instead of 0-1)."""

    def _reply(self, messages: Any, tool_names: list[str] | None) -> Any:
        from langchain_core.messages import AIMessage

        call = {"name": tool_names[0], "args": {"score": 4, "reasoning": "good"}, "id": "c1"}
        return AIMessage(content="", tool_calls=[call])


def test_a_structured_verdict_the_schema_refuses_is_malformed_with_its_arguments(
    app_store,
) -> None:
    report = judge(app_store, model=_OutOfRange(), criteria=["relevance"])
    assert {r.status for r in report.results} == {"malformed"}
    assert {r.raw for r in report.results} == {'{"score": 4, "reasoning": "good"}'}
    stored = app_store.scores(name="relevance")
    assert len(stored) == 4 and all(
        s.value is None and "outside 0..1" in s.error["message"] for s in stored
    )


async def test_ajudge_uses_the_async_api_and_the_same_limits(app_store) -> None:
    from lc_observe.evaluate import ajudge

    model = FakeJudge(delay=0.01)
    report = await ajudge(
        app_store, model=model, criteria=["relevance", "safety"], max_concurrency=2
    )
    sync = judge(app_store, model=FakeJudge(), criteria=["relevance", "safety"], write=False)
    assert report.count("ok") == 8 and 1 <= model.max_in_flight <= 2
    key = lambda r: (r.trace_id, r.criterion)  # noqa: E731
    assert sorted((key(r), r.value) for r in report.results) == sorted(
        (key(r), r.value) for r in sync.results
    )
    assert len(app_store.scores(source="judge")) == 8
    judge_traces = [t for t in app_store.traces(limit=50) if JUDGE_TAG in t.tags]
    assert report.judge_trace_id in {t.trace_id for t in judge_traces}
