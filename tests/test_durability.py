"""Nothing recorded is lost: exit without flush, several processes on one file, bad input."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import ObsHandler, Runs, TraceStore
from lc_observe.sinks.sqlite import _values_sql, insert_rows

from .runs import Explosive


def _run_script(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_script_exiting_without_flush_loses_nothing(db_path: Path) -> None:
    code = """
        import sys
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue, Runs
        # the writer would sleep past exit:
        handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=30))
        chain = RunnableLambda(lambda x: x + 1, name="inc") | RunnableLambda(str, name="fmt")
        for i in range(300):
            chain.invoke(i, {"callbacks": [handler]})
        print(handler.stats["written"])
    """
    done = _run_script(code, str(db_path))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 900  # nothing was written before exit ...
    store = TraceStore(db_path)
    assert len(store.traces(limit=1000)) == 300  # ... and the atexit flush wrote it all
    assert len(store.spans()) == 900


def _cyclic() -> dict:
    data: dict = {"name": "loop"}
    data["me"] = data
    return data


@pytest.mark.parametrize(
    "payload",
    [
        {"cyclic": _cyclic()},
        {"obj": Explosive()},
        {"huge": "z" * 2_000_000},
        {"long": list(range(100_000))},
        {"bytes": b"\xff" * 100, "nan": math.nan, "inf": math.inf},
        {"deep": json.loads("[" * 500 + "]" * 500)},
        {1: "int key", None: "none key", (1, 2): "tuple key"},
        {"surrogate": "\ud800 lone"},
    ],
    ids=[
        "cyclic",
        "explosive-repr",
        "huge-string",
        "long-list",
        "bytes-nan",
        "deep",
        "keys",
        "surr",
    ],
)
def test_bad_inputs_and_outputs_never_reach_the_user(payload, db_path: Path) -> None:
    obs = ObsHandler(db_path)
    echo = RunnableLambda(lambda x: x, name="echo")
    result = echo.invoke(payload, {"callbacks": [obs], "metadata": {"odd": Explosive()}})
    assert result is payload
    assert obs.flush(30)
    assert obs.stats["failed"] == 0 and obs.stats["internal_errors"] == 0
    span = TraceStore(db_path).spans()[0]
    text = json.dumps(span.inputs)
    assert len(text) < 400_000  # bounded by Limits.max_field_chars (+ escaping)
    obs.close()


def test_truncation_of_huge_output_is_marked(db_path: Path) -> None:
    obs = ObsHandler(db_path)
    RunnableLambda(lambda x: "q" * 50_000, name="big").invoke(1, {"callbacks": [obs]})
    obs.close()
    span = TraceStore(db_path).spans()[0]
    assert span.outputs["output"].endswith("…[truncated 30000 chars]")


def _half_consumed_stream(obs: ObsHandler):
    from langchain_core.runnables import RunnableGenerator

    def twice(items):
        for item in items:
            yield item
            yield item

    chain = RunnableLambda(lambda x: x, name="first") | RunnableGenerator(twice, name="twice")
    stream = chain.stream(1, {"callbacks": [obs]})
    assert next(stream) == 1
    return stream


def test_open_runs_are_written_as_running_at_flush_and_replaced_when_done(db_path: Path) -> None:
    obs = ObsHandler(db_path)
    stream = _half_consumed_stream(obs)
    assert obs.stats["open_runs"] == 3
    assert obs.flush(10)
    store = TraceStore(db_path)
    assert {(s.name, s.status, s.end_time) for s in store.spans()} == {
        ("RunnableSequence", "running", None),
        ("first", "running", None),
        ("twice", "running", None),
    }
    assert store.traces()[0].status == "running"
    assert list(stream) == [1]
    assert obs.flush(10)
    assert {(s.name, s.status) for s in store.spans()} == {
        ("RunnableSequence", "ok"),
        ("first", "ok"),
        ("twice", "ok"),
    }
    assert [(t.status, t.span_count) for t in store.traces()] == [("ok", 3)]
    obs.close()


def test_open_run_map_is_bounded_and_evictions_are_counted(db_path: Path) -> None:
    obs = ObsHandler(db_path, runs=Runs(max_open=2))
    streams = [_half_consumed_stream(obs) for _ in range(3)]
    assert obs.stats["open_runs"] <= 2
    assert obs.stats["abandoned"] == 3 * 3 - 2
    assert obs.flush(10)
    spans = TraceStore(db_path).spans()
    assert len(spans) == 9 and {s.status for s in spans} == {"running"}  # nothing vanished
    for stream in streams:
        assert list(stream) == [1]
    obs.close()


def test_script_killed_mid_run_by_sys_exit_keeps_finished_and_open_spans(db_path: Path) -> None:
    code = """
        import sys
        from langchain_core.runnables import RunnableLambda, RunnableGenerator
        from lc_observe import ObsHandler, Queue, Runs
        handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=30))
        for i in range(10):
            RunnableLambda(lambda x: x, name="done").invoke(i, {"callbacks": [handler]})
        def forever(items):
            for item in items:
                while True:
                    yield item
        stream = RunnableGenerator(forever, name="forever").stream(1, {"callbacks": [handler]})
        next(stream)
        sys.exit(3)
    """
    done = _run_script(code, str(db_path))
    assert done.returncode == 3, done.stderr
    spans = TraceStore(db_path).spans()
    assert sum(s.name == "done" and s.status == "ok" for s in spans) == 10
    assert [s.status for s in spans if s.name == "forever"] == ["running"]


def test_sigterm_mid_run_flushes_finished_spans(db_path: Path) -> None:
    import signal

    code = """
        import sys, time
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue, Runs
        handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=30))
        for i in range(20):
            RunnableLambda(lambda x: x, name="done").invoke(i, {"callbacks": [handler]})
        def wait(x):
            print("ready", flush=True)
            time.sleep(60)
        RunnableLambda(wait, name="sleeper").invoke(0, {"callbacks": [handler]})
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM  # ended by the signal, as without the hook
    spans = TraceStore(db_path).spans()
    assert sum(s.name == "done" and s.status == "ok" for s in spans) == 20
    sleeper = [s for s in spans if s.name == "sleeper"]
    assert len(sleeper) == 1 and sleeper[0].status == "running"  # open: written as a snapshot


def test_inserts_use_few_statement_shapes() -> None:
    # Every distinct multi-row INSERT is a prepared statement sqlite3 caches (up to 128),
    # each ~0.5 MB of SQLite heap at full size: batch sizes must map onto a few shapes.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    _values_sql.cache_clear()
    sizes = range(1, 600, 7)
    total = 0
    for size in sizes:
        insert_rows(conn, "INSERT INTO t (a, b) VALUES ", [(i, f"row {i}") for i in range(size)])
        total += size
    stored = conn.execute("SELECT count(*), count(DISTINCT b) FROM t").fetchone()
    assert stored == (total, max(sizes))
    assert _values_sql.cache_info().currsize <= 9  # 256, 128, ..., 1 rows
