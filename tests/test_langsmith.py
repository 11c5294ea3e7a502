"""The LangSmith mirror: what the real ``langsmith`` client sends, decoded by a loopback
server, compared with what ``LangChainTracer`` sends for the very same execution."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict
from uuid import uuid4

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.langchain import LangChainTracer
from langgraph.graph import END, START, StateGraph
from langsmith import utils as ls_utils

from lc_observe import LangSmith, ObsHandler, Runs, TraceStore
from lc_observe.cli import main
from lc_observe.demo import QUESTIONS, build_graph
from lc_observe.export.push import push_traces
from lc_observe.records import RECORD_BRANCH, RECORD_SPAN, new_span_record
from lc_observe.sinks.langsmith import LangSmithSink
from lc_observe.sinks.langsmith_runs import BRANCH_EVENT, BRANCHES_KEY
from lc_observe.storage.schema import SCHEMA_VERSION
from lc_observe.testing import LangSmithStandIn as FakeLangSmith

from .loopback import free_port_url, langsmith_client

PROJECT = "lc-observe-tests"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point LangSmith's environment variables at a URL (langsmith caches some of them)."""

    def point(url: str, prefix: str = "LANGSMITH") -> None:
        for name in ("ENDPOINT", "API_KEY", "PROJECT"):
            for other in ("LANGSMITH", "LANGCHAIN"):
                monkeypatch.delenv(f"{other}_{name}", raising=False)
        monkeypatch.setenv(f"{prefix}_ENDPOINT", url)
        monkeypatch.setenv(f"{prefix}_API_KEY", "env-key")
        monkeypatch.setenv(f"{prefix}_PROJECT", PROJECT)
        ls_utils.get_env_var.cache_clear()

    yield point
    ls_utils.get_env_var.cache_clear()


def stamps(dotted: str) -> list[tuple[datetime, str]]:
    """A dotted order's segments as (start time, run id)."""
    return [
        (datetime.strptime(part[:22], "%Y%m%dT%H%M%S%fZ"), part[22:]) for part in dotted.split(".")
    ]


def seconds_apart(a: str, b: str) -> float:
    return abs((datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds())


def without_empty(value: Any) -> Any:
    """``value`` without the None / {} / [] fields of its objects (which lc_observe's public
    form of a pydantic model leaves out)."""
    if isinstance(value, dict):
        kept = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [without_empty(v) for v in value]
    return value


def assert_same_runs(theirs: dict[str, dict], ours: dict[str, dict]) -> None:
    """Ours match LangChainTracer's run by run (same ids: both saw the same execution)."""
    assert set(ours) == set(theirs)
    for run_id, want in theirs.items():
        got = ours[run_id]
        for key in ("name", "run_type", "parent_run_id", "trace_id", "session_name"):
            assert got.get(key) == want.get(key), (want["name"], key)
        for key in ("inputs", "outputs"):  # sinks get the public form: empty fields left out
            assert without_empty(got.get(key)) == without_empty(want.get(key)), (want["name"], key)
        if want["run_type"] == "llm":  # a prompt's manifest is not sent (docs/langsmith.md)
            assert got["serialized"] == want["serialized"]
        assert sorted(got["tags"]) == sorted(want["tags"]), want["name"]
        # Same ancestry in the dotted order; the start times differ by the microseconds
        # between the two handlers' callbacks.
        ours_order, theirs_order = stamps(got["dotted_order"]), stamps(want["dotted_order"])
        assert [i for _, i in ours_order] == [i for _, i in theirs_order]
        for (mine, _), (tracer, _) in zip(ours_order, theirs_order, strict=True):
            assert abs((mine - tracer).total_seconds()) < 0.25
        assert seconds_apart(got["start_time"], want["start_time"]) < 0.25
        assert seconds_apart(got["end_time"], want["end_time"]) < 0.25
        metadata = dict(got["extra"]["metadata"])
        metadata.pop(BRANCHES_KEY, None)
        assert metadata == want["extra"]["metadata"], want["name"]
        assert got["extra"]["runtime"] == want["extra"]["runtime"]
        for key in ("invocation_params", "options", "batch_size", "tool_call_count"):
            assert got["extra"].get(key) == want["extra"].get(key), (want["name"], key)
        events = [e["name"] for e in got["events"] if e["name"] != BRANCH_EVENT]
        assert events == [e["name"] for e in want["events"]], want["name"]
        assert (got.get("error") or "").split("\n")[0] == (want.get("error") or "").split("\n")[0]


@pytest.fixture
def servers() -> Iterator[tuple[FakeLangSmith, FakeLangSmith]]:
    """(LangChainTracer's endpoint, ours); the tracer's client compresses with zstd."""
    with FakeLangSmith(zstd=True) as theirs, FakeLangSmith() as ours:
        yield theirs, ours


@pytest.mark.parametrize("local", [True, False], ids=["sqlite+langsmith", "langsmith-only"])
def test_demo_graph_arrives_as_langchain_tracer_sends_it(
    servers: tuple[FakeLangSmith, FakeLangSmith], tmp_path: Path, local: bool
) -> None:
    theirs, ours = servers
    graph = build_graph()
    db = tmp_path / "traces.db" if local else None
    with langsmith_client(theirs.url) as tracer_client, langsmith_client(ours.url) as client:
        tracer = LangChainTracer(client=tracer_client, project_name=PROJECT)
        obs = ObsHandler(
            db, runs=Runs(graphs=[graph]), sinks=[LangSmith(client, project_name=PROJECT)]
        )
        for question in QUESTIONS:
            config = {"callbacks": [tracer, obs], "tags": ["t1"], "metadata": {"user_id": "u1"}}
            graph.invoke({"question": question}, config=config)
        tracer_client.flush()
        assert obs.flush(10)
        sent = obs.stats["langsmith"]
        obs.close()
    ours_runs, theirs_runs = ours.runs(), theirs.wait_for(len(ours.runs()))
    # (Whether the tracer's client compresses with zstd depends on langsmith's process-wide
    # cache of the server's /info, so it is not asserted; the server decodes both.)
    assert len(ours_runs) == 20  # 2 traces of 10 runs (calculator tool | retriever)
    assert_same_runs(theirs_runs, ours_runs)
    assert sent["failed"] == 0 and sent["sent"] == obs.stats["enqueued"]
    assert len(ours.creates()) == len(set(ours.creates()))  # each run created once

    by_name = {run["name"]: run for run in ours_runs.values()}
    model = by_name["DemoChatModel"]
    assert model["run_type"] == "llm"  # LangChainTracer reports chat models as "llm"
    usage = model["extra"]["metadata"]["usage_metadata"]
    assert usage["input_tokens"] in (31, 58) and usage["total_tokens"] in (37, 69)
    # The routing decision is attached to the run that decided it.
    decider = next(r for r in ours_runs.values() if BRANCHES_KEY in r["extra"]["metadata"])
    assert decider["name"] == "route_question"
    [branch] = decider["extra"]["metadata"][BRANCHES_KEY]
    assert branch["source"] == "router" and branch["kind"] == "conditional_edge"
    assert branch["destinations"] in (["calculator"], ["retrieve"])
    assert [e["kwargs"] for e in decider["events"] if e["name"] == BRANCH_EVENT] == [branch]
    assert by_name["router"]["extra"]["metadata"]["langgraph_node"] == "router"
    if local:
        assert len(TraceStore(db).spans()) == len(ours_runs)


def test_errors_and_streamed_tokens_match_the_tracer(
    servers: tuple[FakeLangSmith, FakeLangSmith],
) -> None:
    theirs, ours = servers
    model = GenericFakeChatModel(messages=iter([AIMessage(content="one two three")]))

    def fail(_: Any) -> None:
        raise ValueError("no such route")

    chain = (lambda x: x) | model | RunnableLambda(fail, name="fail")
    with langsmith_client(theirs.url) as tracer_client, langsmith_client(ours.url) as client:
        tracer = LangChainTracer(client=tracer_client, project_name=PROJECT)
        obs = ObsHandler(None, sinks=[LangSmith(client, project_name=PROJECT)])
        with pytest.raises(ValueError):
            for _ in chain.stream("hi", config={"callbacks": [tracer, obs]}):
                pass
        tracer_client.flush()
        assert obs.flush(10)
        obs.close()
    ours_runs = ours.runs()
    assert_same_runs(theirs.wait_for(len(ours_runs)), ours_runs)
    failed = next(r for r in ours_runs.values() if r["name"] == "fail")
    assert failed["error"].startswith("ValueError('no such route')Traceback")
    streamed = next(r for r in ours_runs.values() if r["run_type"] == "llm")
    assert [e["name"] for e in streamed["events"]] == ["start", "new_token", "end"]


class Counter(TypedDict):
    n: int


def test_unfinished_runs_are_created_then_updated_once(tmp_path: Path) -> None:
    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        obs = ObsHandler(tmp_path / "t.db", sinks=[LangSmith(client, project_name=PROJECT)])

        def flushing_node(state: Counter) -> Counter:
            assert obs.flush(5)  # the graph and this node are still running
            return {"n": state["n"] + 1}

        builder = StateGraph(Counter)
        builder.add_node("work", flushing_node)
        builder.add_edge(START, "work")
        builder.add_edge("work", END)
        builder.compile().invoke({"n": 1}, {"callbacks": [obs]})
        assert obs.flush(5)
        obs.close()
    creates = server.creates()
    assert len(creates) == len(set(creates))  # never created twice
    patched = {str(run["id"]) for _, op, run in server.ops if op == "patch"}
    runs = server.runs()
    root = next(r for r in runs.values() if r.get("parent_run_id") is None)
    assert root["id"] in patched and root["end_time"] and root["outputs"] == {"n": 2}
    assert all(run.get("end_time") for run in runs.values())


def record(name: str, span_id: str, **fields: Any) -> dict[str, Any]:
    rec = new_span_record(span_id, span_id, None, name, "chain", time.time(), {"q": 1}, [], {})
    rec.update(end_time=time.time(), status="ok", outputs={"a": 2}, **fields)
    return rec


def test_late_branch_event_updates_the_run_already_sent() -> None:
    span_id = "0193f0c1-0000-7000-8000-000000000001"
    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        sink = LangSmithSink(client, project_name=PROJECT)
        sink.export([(RECORD_SPAN, record("router", span_id))])
        branch = {"trace_id": span_id, "span_id": span_id, "source": "router", "kind": "command"}
        sink.export([(RECORD_BRANCH, {**branch, "destinations": ["b"], "time": time.time()})])
    assert [op for _, op, _ in server.ops] == ["post", "patch"]
    run = server.runs()[span_id]
    assert run["outputs"] == {"a": 2} and run["inputs"] == {"q": 1}  # kept by the update
    assert [e["name"] for e in run["events"]] == ["start", "end", BRANCH_EVENT]
    assert run["extra"]["metadata"][BRANCHES_KEY][0]["destinations"] == ["b"]
    assert sink.counters()["sent"] == 2


def test_a_child_starting_after_its_parent_ended_keeps_its_place() -> None:
    root, child = uuid4(), uuid4()
    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        obs = ObsHandler(None, sinks=[LangSmith(client, project_name=PROJECT)])
        obs.on_chain_start({"name": "root"}, {"q": 1}, run_id=root)
        obs.on_chain_end({"a": 1}, run_id=root)
        obs.on_chain_start({"name": "late"}, {"q": 2}, run_id=child, parent_run_id=root)
        obs.on_chain_end({"a": 2}, run_id=child)
        assert obs.flush(5)
        obs.close()
    late = server.runs()[str(child)]
    assert late["trace_id"] == late["parent_run_id"] == str(root)
    assert [i for _, i in stamps(late["dotted_order"])] == [str(root), str(child)]


@pytest.mark.parametrize("prefix", ["LANGSMITH", "LANGCHAIN"])
def test_langsmith_true_is_configured_by_langsmith_environment(
    env: Callable[..., None], prefix: str
) -> None:
    with FakeLangSmith() as server:
        env(server.url, prefix)
        obs = ObsHandler(None, sinks=[LangSmith()])
        RunnableLambda(lambda x: x + 1, name="add_one").invoke(1, {"callbacks": [obs]})
        assert obs.flush(5)
        obs.close()
    [run] = server.runs().values()
    assert run["name"] == "add_one" and run["session_name"] == PROJECT
    assert server.api_keys == {"env-key"}


# -- backfill -------------------------------------------------------------------------------


def record_offline(db: Path, runs: int = 2) -> list[str]:
    graph = build_graph()
    with ObsHandler(db, runs=Runs(graphs=[graph])) as obs:
        for question in QUESTIONS[:runs]:
            graph.invoke({"question": question}, {"callbacks": [obs]})
    return [t.trace_id for t in TraceStore(db).traces()]


def test_push_uploads_the_stored_tree_once(tmp_path: Path) -> None:
    db = tmp_path / "offline.db"
    trace_ids = record_offline(db)
    spans = {s.span_id: s for s in TraceStore(db).spans()}
    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        first = push_traces(db, client=client, project_name=PROJECT)
        sent_first = len(server.ops)
        again = push_traces(db, client=client, project_name=PROJECT)
        sent_again = len(server.ops) - sent_first
        forced = push_traces(db, client=client, project_name=PROJECT, force=True)
    assert sorted(first.pushed) == sorted(trace_ids) and first.runs == len(spans)
    assert sent_first == len(spans) and len(server.creates()) == 2 * len(spans)
    assert again.pushed == [] and sorted(again.skipped) == sorted(trace_ids) and sent_again == 0
    assert sorted(forced.pushed) == sorted(trace_ids)
    runs = server.runs()
    assert set(runs) == set(spans)  # a forced push re-sends the same ids: no duplicates
    for run_id, run in runs.items():
        span = spans[run_id]
        assert run.get("parent_run_id") == span.parent_id and run["trace_id"] == span.trace_id
        ids = [i for _, i in stamps(run["dotted_order"])]
        assert ids[-1] == run_id and ids[0] == span.trace_id
        assert stamps(run["dotted_order"])[-1][0] == span.start_time.replace(tzinfo=None)
        if span.parent_id:
            assert ids[-2] == span.parent_id
    model = next(r for r in runs.values() if r["run_type"] == "llm")
    assert model["extra"]["metadata"]["usage_metadata"]["input_tokens"] in (31, 58)
    assert any(BRANCHES_KEY in r["extra"]["metadata"] for r in runs.values())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM pushes").fetchone()[0] == len(trace_ids)


def test_push_cli_migrates_a_version_1_file(
    tmp_path: Path, env: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.db"
    trace_ids = record_offline(db, runs=1)
    with sqlite3.connect(db) as conn:  # as lc_observe 0.1 left it
        conn.execute("DROP TABLE pushes")
        conn.execute("PRAGMA user_version = 1")
    with FakeLangSmith() as server:
        env(server.url)
        assert main(["push", "--db", str(db), "--json", "--since", "1h"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(["push", "--db", str(db), "--json", "--trace", trace_ids[0][:8]]) == 0
        second = json.loads(capsys.readouterr().out)
    assert first["pushed"] == trace_ids and second["skipped"] == trace_ids
    assert first["destination"] == f"langsmith:{server.url}/{PROJECT}"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- never in the way -----------------------------------------------------------------------

FAULTS = {
    "down": {},
    "http-500": {"status": 500},
    "http-429": {"status": 429},
    "slow-3s": {"delay": 3.0},
    "reset": {"reset": True},
}


def run_demo(obs: ObsHandler, graph: Any, times: int) -> None:
    for i in range(times):
        graph.invoke({"question": QUESTIONS[i % 2]}, {"callbacks": [obs]})


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_endpoint_never_slows_the_app_nor_the_store(
    fault: str, tmp_path: Path, env: Callable[..., None]
) -> None:
    """Behaviour, not wall-clock time: the app's runs all return and are all in the local
    file while the endpoint has accepted nothing; bounded flush and close return (False:
    the mirror did not finish) and what the mirror could not send is counted."""
    graph, times = build_graph(), 8
    server = None if fault == "down" else FakeLangSmith(**FAULTS[fault]).start()
    try:
        env(free_port_url() if server is None else server.url)
        obs = ObsHandler(tmp_path / "mirrored.db", sinks=[LangSmith(timeout=1.0)])
        run_demo(obs, graph, times)
        local = obs.store  # waits for the local writer only
        assert len(local.spans()) == times * 10  # 10 spans per demo run
        assert obs.stats["langsmith"]["sent"] == 0  # ... and the endpoint took none of them
        obs.flush(timeout=1.0)  # bounded: returns whatever the endpoint does
        if fault != "slow-3s":
            assert wait_until(lambda: obs.stats["langsmith"]["failed"] > 0, 30)
            stats = obs.stats["langsmith"]
            assert stats["failed"] > 0 and stats["sent"] == 0 and stats["last_error"]
        obs.close(timeout=1.0)
        stats = obs.stats["langsmith"]
    finally:
        if server is not None:
            server.stop()
    print(f"{fault}: {stats}")
    assert stats["sent"] == 0
    # Every record the mirror took is accounted for: failed, unknown, or lost at close.
    assert stats["failed"] + stats["unknown"] + stats["lost"] + stats["dropped"] > 0


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` (generous) runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.slow  # child processes: the slow tier
def test_process_exit_waits_for_the_mirror_at_most_network_timeout(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from lc_observe import ObsHandler, Runs, LangSmith
        from lc_observe.demo import build_graph
        obs = ObsHandler(sys.argv[1], sinks=[LangSmith(timeout=1.0)])
        graph = build_graph()
        for _ in range(3):
            graph.invoke({"question": "What is 6 * 7?"}, {"callbacks": [obs]})
        print(time.time(), flush=True)  # the script ends here; the exit flush follows
        """
    )
    # The endpoint answers after 120 s; the process must end long before (the subprocess
    # timeout, 90 s, would fail the test), on its own bound, and say what it abandoned.
    with FakeLangSmith(delay=120.0) as server:
        env = {**_clean_env(), "LANGSMITH_ENDPOINT": server.url, "LANGSMITH_API_KEY": "k"}
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "exit.db")],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr
    assert "langsmith mirror stopped with" in done.stderr, done.stderr
    assert len(TraceStore(tmp_path / "exit.db").spans()) == 30  # the local store got it all


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}


def test_a_network_sink_in_sinks_gets_its_own_thread(tmp_path: Path) -> None:
    release = threading.Event()

    class Stuck(LangSmithSink):
        def deliver(self, payload: Any) -> None:
            release.wait(30)  # the endpoint does not answer until the test says so

    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        stuck = Stuck(client, project_name=PROJECT)
        obs = ObsHandler(tmp_path / "t.db", sinks=[stuck])
        run_demo(obs, build_graph(), 2)
        # The local file has every span while the mirror is still stuck in its first send.
        assert len(obs.store.spans()) == 20
        assert obs.stats["langsmith"]["sent"] == 0
        assert obs.close(timeout=0.5) is False  # bounded: the stuck mirror did not finish
        release.set()
        assert obs.stats["langsmith"]["lost"] + obs.stats["langsmith"]["unknown"] > 0


def test_push_records_what_it_sent_behind_a_long_write_lock(tmp_path: Path) -> None:
    """Another process's write lock (1.5 s) outlasts the busy timeout (0.2 s): recording
    the push retries instead of dying with "database is locked"."""
    import threading

    db = tmp_path / "offline.db"
    trace_ids = record_offline(db)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(1.5)
        conn.execute("COMMIT")
        conn.close()

    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        TraceStore(db).close()  # migrated already: the lock meets the push's own write
        push_traces(db, client=client, project_name=PROJECT, trace_id=trace_ids[0])
        holder = threading.Thread(target=hold)
        holder.start()
        assert locked.wait(10)
        result = push_traces(db, client=client, project_name=PROJECT, busy_timeout=0.2)
        holder.join()
    assert sorted(result.pushed + result.skipped) == sorted(trace_ids) and not result.failed
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM pushes").fetchone()[0] == len(trace_ids)
