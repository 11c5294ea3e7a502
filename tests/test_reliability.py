"""Storage faults, kill -9, many writers and a reader, and fuzzed inputs never hurt the app."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.runnables import RunnableLambda

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.pipeline.serialize import TRUNCATED_KEY

from .runs import Explosive, nested_lambdas
from .tiers import FUZZ_CASES


def _invoke_many(obs: ObsHandler, count: int) -> None:
    chain = nested_lambdas()
    for i in range(count):
        assert chain.invoke(i, {"callbacks": [obs]}) == (i + 1) * 2 - 1


def test_missing_directory_is_logged_once_and_counted(tmp_path: Path, caplog) -> None:
    obs = ObsHandler(tmp_path / "nope" / "t.db", queue=Queue(batch_size=4, schedule_delay=0.01))
    _invoke_many(obs, 10)
    assert obs.flush(10)
    assert obs.stats["failed"] == 40 and obs.stats["written"] == 0
    messages = [r.getMessage() for r in caplog.records if "does not exist" in r.getMessage()]
    assert len(messages) == 1 and "create it or pass another db_path" in messages[0]
    (tmp_path / "nope").mkdir()  # fixing the problem fixes the writes
    _invoke_many(obs, 1)
    assert obs.flush(10) and obs.stats["written"] == 4
    obs.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_directory(tmp_path: Path) -> None:  # pragma: no cover - not as root
    tmp_path.chmod(0o500)
    try:
        obs = ObsHandler(tmp_path / "t.db")
        _invoke_many(obs, 3)
        assert obs.flush(10) and obs.stats["failed"] == 12
        obs.close()
    finally:
        tmp_path.chmod(0o700)


def test_file_deleted_while_running_is_recreated(db_path: Path, caplog) -> None:
    obs = ObsHandler(db_path, queue=Queue(schedule_delay=0.01))
    _invoke_many(obs, 5)
    assert obs.flush(10)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    _invoke_many(obs, 7)
    assert obs.flush(10)
    assert len(TraceStore(db_path).traces(limit=100)) == 7  # the new file has what came after
    assert "deleted or replaced" in caplog.text
    obs.close()


def test_disk_full_is_counted_and_logged(db_path: Path, caplog) -> None:
    # The empty schema takes ~24 pages of 16 KB; room for about a third of the 300 spans.
    obs = ObsHandler(
        db_path, max_db_bytes=800 * 1024, queue=Queue(batch_size=20, schedule_delay=0.01)
    )
    big = RunnableLambda(lambda x: "y" * 3000, name="big")
    start = time.perf_counter()
    for i in range(300):
        big.invoke(i, {"callbacks": [obs]})
    elapsed = time.perf_counter() - start
    assert obs.flush(30)
    stats = obs.stats
    assert stats["failed"] > 0 and stats["written"] > 0
    assert stats["failed"] + stats["written"] == 300
    assert "database or disk is full" in caplog.text
    assert elapsed < 30  # the app kept going (generous bound; see benchmarks for overhead)
    stored = len(TraceStore(db_path).spans())
    assert stored == stats["written"]
    obs.close()


@pytest.mark.parametrize("content", [b"garbage" * 1000, b""], ids=["corrupt", "empty"])
def test_corrupt_or_empty_file(db_path: Path, content: bytes, caplog) -> None:
    db_path.write_bytes(content)
    obs = ObsHandler(db_path, queue=Queue(schedule_delay=0.01))
    _invoke_many(obs, 3)
    assert obs.flush(10)
    if content:  # a corrupt file is never overwritten
        assert obs.stats["failed"] == 12 and "not a database" in caplog.text
        assert db_path.read_bytes() == content
    else:  # an empty file is a new database
        assert obs.stats["written"] == 12
    obs.close()


@pytest.mark.slow
def test_kill_9_leaves_a_sound_database_and_loses_at_most_the_unwritten(db_path: Path) -> None:
    code = """
        import sys
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue
        handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=0.01))
        chain = RunnableLambda(lambda x: x + 1, name="inc") | RunnableLambda(str, name="fmt")
        i = 0
        while True:
            chain.invoke(i, {"callbacks": [handler]})
            i += 1
            if i % 200 == 0:
                print(i, flush=True)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    finished = 0
    while finished < 3000:
        finished = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        traces = conn.execute("SELECT count(*) FROM traces").fetchone()[0]
        spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        orphans = conn.execute(
            "SELECT count(*) FROM traces t WHERE NOT EXISTS "
            "(SELECT 1 FROM spans s WHERE s.span_id = t.trace_id)"
        ).fetchone()[0]
    assert orphans == 0  # a batch is one transaction: all of it or none of it
    assert traces >= 1500  # the writer kept up until the kill
    print(f"\nkill -9 after >= {finished} finished traces: {traces} traces / {spans} spans on disk")


@pytest.mark.slow
def test_four_writers_and_a_reader_lose_nothing(db_path: Path) -> None:
    writer = """
        import sys
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue
        handler = ObsHandler(sys.argv[1], queue=Queue(batch_size=100, schedule_delay=0.01))
        chain = RunnableLambda(lambda x: x + 1, name="inc") | RunnableLambda(str, name="fmt")
        for i in range(1000):
            chain.invoke(i, {"callbacks": [handler]})
        handler.close()
        s = handler.stats
        print(s["written"], s["failed"], s["dropped"])
    """
    reader = """
        import sys, time
        from lc_observe import TraceStore
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                store = TraceStore(sys.argv[1])
                break
            except Exception:
                time.sleep(0.01)
        queries = 0
        while time.time() < deadline:
            traces = store.traces(limit=20)
            if traces:
                store.spans(trace_id=traces[0].trace_id)
            queries += 1
            if len(store.traces(limit=5000)) == 4000:
                break
        print(queries)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(db_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code in [writer] * 4 + [reader]
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err, err
    for out, _ in outputs[:4]:
        assert out.split() == ["3000", "0", "0"]
    assert int(outputs[4][0]) > 0
    store = TraceStore(db_path)
    assert len(store.traces(limit=10_000)) == 4000
    assert len(store.spans()) == 12_000


def _cycle(value: object) -> list:
    cyclic: list = [value]
    cyclic.append(cyclic)
    return cyclic


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=()), max_size=50),  # surrogates included
    st.binary(max_size=50),
    st.integers(min_value=0, max_value=60_000).map(lambda n: "h" * n),
    st.builds(Explosive),
)
_keys = st.one_of(st.text(max_size=10), st.integers(), st.tuples(st.integers()), st.none())
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(_keys, inner, max_size=6),
        st.tuples(inner, inner),
        inner.map(_cycle),
    ),
    max_leaves=25,
)


def test_fuzzed_inputs_outputs_metadata_and_tags(tmp_path: Path) -> None:
    db_path = tmp_path / "fuzz.db"
    obs = ObsHandler(db_path, queue=Queue(batch_size=2000))
    echo = RunnableLambda(lambda x: x["out"], name="echo")
    cases = 0

    @settings(
        max_examples=FUZZ_CASES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        payload=_values,
        output=_values,
        meta=st.dictionaries(st.text(max_size=10), _values, max_size=3),
        tags=st.lists(st.text(st.characters(exclude_categories=()), max_size=10), max_size=3),
    )
    def run(payload, output, meta, tags) -> None:
        nonlocal cases
        result = echo.invoke(
            {"in": payload, "out": output}, {"callbacks": [obs], "metadata": meta, "tags": tags}
        )
        assert result is output
        cases += 1

    run()
    assert obs.flush(120)
    stats = obs.stats
    assert stats["written"] == cases and stats["failed"] == 0 and stats["internal_errors"] == 0
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT inputs, outputs, metadata, tags FROM spans").fetchall()
    assert len(rows) == cases >= min(FUZZ_CASES, 100)
    truncated = 0
    for row in rows:
        for text in row:
            if text is not None:
                value = json.loads(text)  # valid JSON, always
                truncated += "…[truncated" in text or TRUNCATED_KEY in text
                assert not (isinstance(value, float) and math.isnan(value))
    print(f"fuzz: {cases} cases, {truncated} truncated fields")
    obs.close()
