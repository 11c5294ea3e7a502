"""Scores: add_score / handler.score / scores() / scores_df, bad input, migration, processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path
from typing import TypedDict

import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, Queue, TraceNotFoundError, TraceStore
from lc_observe.storage.schema import SCHEMA_VERSION

from .runs import branching_graph, chat_chain


class _State(TypedDict, total=False):
    question: str
    answer: str


def _scoring_graph(handler: ObsHandler):
    """A graph whose node scores its own trace from inside the run."""

    def answer(state: _State) -> _State:
        text = f"answer to {state['question']}"
        handler.score("answer_length", len(text), source="heuristic")
        handler.score("tone", "neutral", comment="set inside the node")
        return {"answer": text}

    builder = StateGraph(_State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="scored")


@pytest.fixture
def recorded(db_path: Path) -> tuple[TraceStore, str]:
    with ObsHandler(db_path) as obs:
        chat_chain(["hello"]).invoke({"q": "hi"}, {"callbacks": [obs]})
    store = TraceStore(db_path)
    return store, store.traces()[0].trace_id


def test_numeric_boolean_and_categorical_values_round_trip(recorded) -> None:
    store, trace_id = recorded
    a = store.add_score(trace_id, "accuracy", 0.75, comment="one date wrong", author="ann")
    b = store.add_score(trace_id, "helpful", True, source="feedback", author="u1")
    c = store.add_score(trace_id, "tone", "friendly", source="judge")
    d = store.add_score(trace_id, "steps", 3)
    assert (a.value, a.value_type, a.numeric, a.comment, a.author) == (
        0.75,
        "numeric",
        0.75,
        "one date wrong",
        "ann",
    )
    assert (b.value, b.value_type, b.numeric, b.source) == (True, "boolean", 1.0, "feedback")
    assert (c.value, c.value_type, c.numeric) == ("friendly", "categorical", None)
    assert (d.value, d.value_type) == (3.0, "numeric")
    assert [s.name for s in store.scores(trace_id)] == ["accuracy", "helpful", "tone", "steps"]
    assert [s.name for s in store.scores(source="feedback")] == ["helpful"]
    assert [s.name for s in store.scores(name="tone")] == ["tone"]
    assert [s.name for s in store.scores(author="ann")] == ["accuracy"]
    with pytest.raises(TraceNotFoundError):  # an unknown trace id raises, as everywhere
        store.scores(trace_id="other")
    assert len(store.scores(limit=2)) == 2
    assert store.scores(since="2999-01-01") == []


def test_span_scores_find_their_trace(recorded) -> None:
    store, trace_id = recorded
    model_span = store.spans(trace_id=trace_id, kind="chat_model")[0]
    score = store.add_score(span_id=model_span.span_id, name="fluent", value=False)
    assert (score.trace_id, score.span_id, score.value) == (trace_id, model_span.span_id, False)
    assert store.scores(span_id=model_span.span_id) == [score]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"trace_id": "nope", "name": "x", "value": 1}, TraceNotFoundError, "no trace with id"),
        ({"span_id": "nope", "name": "x", "value": 1}, TraceNotFoundError, "no span with id"),
        ({"name": "x", "value": 1}, ValueError, "needs a trace_id or a span_id"),
        ({"name": "x", "value": [1]}, TypeError, "a number, a bool or a string"),
        ({"name": "x", "value": float("nan")}, ValueError, "finite number"),
        ({"name": "x", "value": ""}, ValueError, "non-empty string"),
        ({"name": "", "value": 1}, ValueError, "needs a name"),
        ({"name": "x", "value": 1, "source": "robot"}, ValueError, "human, judge, heuristic"),
        ({"name": "x", "value": 1, "comment": 5}, TypeError, "comment must be a string"),
    ],
)
def test_bad_scores_are_refused_with_what_to_fix(recorded, kwargs, error, message) -> None:
    store, trace_id = recorded
    if "trace_id" not in kwargs and "span_id" not in kwargs and "needs a trace_id" not in message:
        kwargs = {"trace_id": trace_id, **kwargs}
    with pytest.raises(error, match=message):
        store.add_score(**kwargs)
    assert store.scores() == []


def test_span_of_another_trace_is_refused(db_path: Path) -> None:
    with ObsHandler(db_path) as obs:
        chat_chain(["a"]).invoke({"q": "1"}, {"callbacks": [obs]})
        chat_chain(["b"]).invoke({"q": "2"}, {"callbacks": [obs]})
    store = TraceStore(db_path)
    first, second = store.traces()
    span = store.spans(trace_id=first.trace_id)[1]
    with pytest.raises(ValueError, match="belongs to trace"):
        store.add_score(second.trace_id, "x", 1, span_id=span.span_id)


def test_handler_scores_the_current_trace_from_inside_a_graph(db_path: Path) -> None:
    obs = ObsHandler(db_path)
    graph = _scoring_graph(obs)
    graph.invoke({"question": "q1"}, {"callbacks": [obs]})
    graph.invoke({"question": "q22"}, {"callbacks": [obs]})
    obs.close()
    store = TraceStore(db_path)
    newest, oldest = store.traces()
    lengths = {s.trace_id: s.value for s in store.scores(name="answer_length")}
    assert lengths == {oldest.trace_id: 12.0, newest.trace_id: 13.0}
    tone = store.scores(trace_id=newest.trace_id, name="tone")[0]
    assert (tone.value, tone.source, tone.comment) == ("neutral", "human", "set inside the node")


async def test_handler_scores_inside_async_runs(db_path: Path) -> None:
    obs = ObsHandler(db_path)

    async def step(x: int) -> int:
        await asyncio.sleep(0)
        obs.score("parity", "even" if x % 2 == 0 else "odd")
        return x

    chain = RunnableLambda(step, name="step")
    await asyncio.gather(*(chain.ainvoke(i, {"callbacks": [obs]}) for i in range(4)))
    await obs.aflush()
    obs.close()
    store = TraceStore(db_path)
    by_trace = {s.trace_id: s.value for s in store.scores()}
    expected = {t.trace_id: t.name for t in store.traces()}
    assert len(by_trace) == 4 and set(by_trace) == set(expected)
    for span in store.spans():
        assert by_trace[span.trace_id] == ("even" if span.inputs["input"] % 2 == 0 else "odd")


def test_handler_scores_after_the_run_and_old_traces(db_path: Path) -> None:
    obs = ObsHandler(db_path)
    chat_chain(["x"]).invoke({"q": "1"}, {"callbacks": [obs]})
    trace_id = obs.store.traces()[0].trace_id
    obs.score("thumbs_up", True, trace_id=trace_id, source="feedback", author="u7")
    with pytest.raises(ValueError, match="outside a run"):
        obs.score("thumbs_up", True)
    with pytest.raises(ValueError, match="source must be one of"):
        obs.score("thumbs_up", True, trace_id=trace_id, source="bot")
    obs.close()
    later = ObsHandler(db_path)  # a new process would not remember the trace either
    later.score("revisited", 0.5, trace_id=trace_id)
    with pytest.raises(TraceNotFoundError, match="no trace with id"):
        later.score("x", 1, trace_id="2b1b5e42-0000-4000-8000-000000000000")
    later.close()
    store = TraceStore(db_path)
    assert [(s.name, s.value) for s in store.scores(trace_id)] == [
        ("thumbs_up", True),
        ("revisited", 0.5),
    ]


def test_sampled_out_traces_get_no_scores(db_path: Path) -> None:
    obs = ObsHandler(db_path, sample_rate=0.0, sinks=[])
    graph = _scoring_graph(obs)
    graph.invoke({"question": "q"}, {"callbacks": [obs]})
    obs.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_comments_are_redacted(recorded) -> None:
    store, trace_id = recorded
    key = "sk-" + "a1B2" * 12
    score = store.add_score(trace_id, "x", 1, comment=f"my key is {key}")
    assert key not in score.comment


def test_version_3_file_is_migrated_and_keeps_its_scores(db_path: Path) -> None:
    with ObsHandler(db_path) as obs:
        branching_graph().invoke({"n": 1}, {"callbacks": [obs]})
    trace_id = TraceStore(db_path).traces()[0].trace_id
    with sqlite3.connect(db_path) as conn:  # the scores table as schema 3 left it
        conn.execute("DROP TABLE scores")
        conn.execute(
            "CREATE TABLE scores (id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, "
            "span_id TEXT, name TEXT, value FLOAT, comment TEXT, time TEXT)"
        )
        conn.execute(
            "INSERT INTO scores (trace_id, name, value, comment, time) VALUES "
            "(?, 'old', 0.5, 'from v3', '2026-01-01T00:00:00.000000+00:00')",
            (trace_id,),
        )
        conn.execute("PRAGMA user_version = 3")
    store = TraceStore(db_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
        columns = {row[1] for row in conn.execute("PRAGMA table_info(scores)")}
    assert {"value_type", "label", "source", "author", "metadata", "error"} <= columns
    (old,) = store.scores()
    assert (old.value, old.value_type, old.source, old.comment) == (
        0.5,
        "numeric",
        "human",
        "from v3",
    )
    store.add_score(trace_id, "new", "good", source="judge")
    assert [s.value for s in store.scores(trace_id)] == [0.5, "good"]


def test_scores_df_is_typed(recorded) -> None:
    pytest.importorskip("pandas")
    store, trace_id = recorded
    store.add_score(trace_id, "helpful", True)
    store.add_score(trace_id, "accuracy", 0.5)
    store.add_score(trace_id, "tone", "ok")
    df = store.scores_df()
    assert list(df["name"]) == ["helpful", "accuracy", "tone"]
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert str(df["numeric"].dtype) == "Float64"
    assert df["numeric"].mean() == pytest.approx(0.75)
    assert list(df["value"]) == [True, 0.5, "ok"]


def _add_scores(path: str, trace_id: str, worker: int, count: int) -> None:
    store = TraceStore(path)
    for i in range(count):
        store.add_score(trace_id, f"w{worker}", float(i), source="heuristic")
    store.close()


@pytest.mark.slow
def test_several_processes_score_one_file_while_a_handler_writes(db_path: Path) -> None:
    obs = ObsHandler(db_path)
    chat_chain(["x"]).invoke({"q": "1"}, {"callbacks": [obs]})
    trace_id = obs.store.traces()[0].trace_id
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_add_scores, args=(str(db_path), trace_id, w, 40)) for w in range(3)
    ]
    for worker in workers:
        worker.start()
    for i in range(30):  # the handler keeps writing spans and scores meanwhile
        chat_chain(["y"]).invoke({"q": str(i)}, {"callbacks": [obs]})
        obs.score("live", i, trace_id=trace_id)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    obs.close()
    store = TraceStore(db_path)
    counts = {}
    for score in store.scores(trace_id):
        counts[score.name] = counts.get(score.name, 0) + 1
    assert counts == {"w0": 40, "w1": 40, "w2": 40, "live": 30}


def test_trace_view_shows_scores_escaped(recorded) -> None:
    store, trace_id = recorded
    assert "Scores" not in store.view(trace_id).to_html()
    store.add_score(trace_id, "<b>tone</b>", "<script>x</script>", comment="<i>why</i>")
    html = store.view(trace_id).to_html()
    assert "Scores" in html and "&lt;b&gt;tone&lt;/b&gt;" in html
    assert "<script>" not in html and "<i>why" not in html
    assert store.scores()[0]._repr_html_().count("<script>") == 0


def test_a_score_given_inside_a_run_waits_in_the_queue(db_path: Path) -> None:
    obs = ObsHandler(
        db_path, queue=Queue(batch_size=10_000, schedule_delay=60)
    )  # writes only on flush
    seen: list[int] = []

    def step(x: int) -> int:
        before = obs.stats["enqueued"]
        obs.score("checked", True)
        with sqlite3.connect(db_path) as conn:  # nothing written from the app's thread
            seen.append(conn.execute("SELECT count(*) FROM scores").fetchone()[0])
        seen.append(obs.stats["enqueued"] - before)
        return x

    RunnableLambda(step).invoke(1, {"callbacks": [obs]})
    assert seen == [0, 1]
    obs.close()
    assert [s.name for s in TraceStore(db_path).scores()] == ["checked"]
