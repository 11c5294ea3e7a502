"""TraceStore: filters, clear errors, hostile input, pandas export."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import sqlite_utils
from langchain_core.runnables import RunnableLambda

from lc_observe import (
    DatabaseNotFoundError,
    ForeignDatabaseError,
    ObsHandler,
    Queue,
    SchemaVersionError,
    StoreError,
    TraceNotFoundError,
    TraceStore,
)
from lc_observe.storage.schema import APPLICATION_ID, MIGRATIONS, PAGE_SIZE, SCHEMA_VERSION

from .runs import branching_graph, chat_chain


@pytest.fixture
def filled(db_path):
    obs = ObsHandler(db_path)
    chat_chain(["a", "b", "c"]).invoke({"q": "one"}, {"callbacks": [obs], "tags": ["first"]})
    branching_graph().invoke({"n": 1}, {"callbacks": [obs], "metadata": {"user_id": "bob"}})
    with pytest.raises(ZeroDivisionError):
        RunnableLambda(lambda x: 1 / x, name="divide").invoke(0, {"callbacks": [obs]})
    obs.close()
    return TraceStore(db_path)


def test_traces_newest_first_with_filters(filled: TraceStore) -> None:
    traces = filled.traces()
    assert [t.name for t in traces] == ["divide", "LangGraph", "RunnableSequence"]
    assert [t.name for t in filled.traces(limit=1, offset=1)] == ["LangGraph"]
    assert [t.name for t in filled.traces(status="error")] == ["divide"]
    assert [t.name for t in filled.traces(user_id="bob")] == ["LangGraph"]
    assert [t.name for t in filled.traces(tag="first")] == ["RunnableSequence"]
    assert [t.name for t in filled.traces(name="LangGraph")] == ["LangGraph"]
    assert filled.traces(since=timedelta(minutes=5)) == traces
    assert filled.traces(until=datetime(2000, 1, 1)) == []
    assert filled.traces(since="2999-01-01T00:00:00Z") == []
    assert len(filled.traces(since=datetime.now(timezone.utc) - timedelta(hours=1))) == 3


def test_spans_filters_and_single_lookups(filled: TraceStore) -> None:
    graph = filled.traces(name="LangGraph")[0]
    spans = filled.spans(trace_id=graph.trace_id)
    assert [s.name for s in spans][:2] == ["LangGraph", "check"]
    assert all(s.trace_id == graph.trace_id for s in spans)
    assert [s.name for s in filled.spans(kind="chat_model")] == ["FakeListChatModel"]
    assert [s.name for s in filled.spans(status="error")] == ["divide"]
    assert filled.span(spans[0].span_id) == spans[0]
    assert filled.trace(graph.trace_id).name == "LangGraph"
    assert len(filled.spans(limit=2)) == 2


def test_hostile_filter_strings_are_just_values(filled: TraceStore) -> None:
    hostile = "'; DROP TABLE spans; --"
    assert filled.traces(name=hostile, tag=hostile, user_id=hostile) == []
    assert filled.spans(name=hostile) == [] and filled.branches(source=hostile) == []
    with pytest.raises(TraceNotFoundError):  # a trace id is resolved: unknown ids raise
        filled.spans(trace_id=hostile)
    with pytest.raises(TraceNotFoundError):
        filled.branches(trace_id=hostile)
    assert len(filled.spans()) > 0  # table still there


def test_unknown_ids_raise_clear_errors(filled: TraceStore) -> None:
    with pytest.raises(TraceNotFoundError, match="no trace with id 'nope'"):
        filled.trace("nope")
    with pytest.raises(TraceNotFoundError, match="no span with id"):
        filled.span("nope")
    with pytest.raises(TraceNotFoundError):
        filled.format_trace("nope")
    with pytest.raises(ValueError, match=r"an age like '1d'.*or an ISO 8601 time"):
        filled.traces(since="yesterday")


def test_missing_foreign_and_newer_files(tmp_path) -> None:
    with pytest.raises(DatabaseNotFoundError, match="no lc_observe database"):
        TraceStore(tmp_path / "missing.db")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(ForeignDatabaseError, match="not an lc_observe one"):
        TraceStore(foreign)
    text = tmp_path / "notes.db"
    text.write_text("this is not sqlite at all, just a text file with enough bytes" * 10)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        TraceStore(text)


def test_newer_schema_is_refused(filled: TraceStore) -> None:
    with sqlite3.connect(filled.db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError, match="Upgrade lc_observe"):
        TraceStore(filled.db_path)


def test_version_2_file_is_migrated_when_opened(filled: TraceStore) -> None:
    with sqlite3.connect(filled.db_path) as conn:  # as lc_observe with schema 2 left it
        conn.execute("DROP TABLE budget_events")
        conn.execute("ALTER TABLE spans DROP COLUMN cache_hit")
        conn.execute("PRAGMA user_version = 2")
    store = TraceStore(filled.db_path)
    by_kind = {row.group: row.count for row in store.stats(by="kind")}
    assert by_kind == {"chain": 6, "prompt": 1, "chat_model": 1, "parser": 1}
    assert store.budget_events() == []
    assert all(span.cache_hit is None for span in store.spans())
    with sqlite3.connect(filled.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_new_files_get_large_pages_and_old_files_keep_theirs(filled: TraceStore, tmp_path) -> None:
    with sqlite3.connect(filled.db_path) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    old = tmp_path / "old.db"  # a version 1 file, made with SQLite's default 4 KB pages
    db = sqlite_utils.Database(old)
    MIGRATIONS[1](db)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.close()
    obs = ObsHandler(old)
    RunnableLambda(lambda x: x + 1).invoke(1, {"callbacks": [obs]})
    assert obs.flush(10) and obs.stats["written"] == 1
    obs.close()
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert len(TraceStore(old).spans()) == 1


def test_handler_never_writes_into_a_foreign_database(tmp_path, caplog) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    obs = ObsHandler(foreign)
    assert RunnableLambda(lambda x: x * 3).invoke(2, {"callbacks": [obs]}) == 6
    obs.flush(10)
    assert obs.stats["failed"] == 1 and obs.stats["written"] == 0
    assert "not an lc_observe one" in caplog.text
    with sqlite3.connect(foreign) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}
    obs.close()


def test_print_trace_shows_the_tree(filled: TraceStore, capsys) -> None:
    graph = filled.traces(name="LangGraph")[0]
    filled.print_trace(graph.trace_id)
    lines = capsys.readouterr().out.splitlines()
    out = [line for line in lines if "⤷" not in line and "· " not in line]
    assert out[0] == f"trace {graph.trace_id}  (4 spans)"
    # each span is followed by a one-line preview of its input and output
    assert (
        lines[lines.index(out[1]) + 1] == '│  · {"n": 1}  ⇒ {"n": 1, "trail": ["check", "small"]}'
    )
    assert out[1].startswith("LangGraph [chain]  ok")
    assert out[2].startswith("├─ check [chain]  step=1  ok")
    assert out[3].startswith("│  └─ route [chain]  node=check  step=1  ok")
    assert out[4].startswith("└─ small [chain]  step=2  ok")
    error = filled.traces(name="divide")[0]
    text = filled.format_trace(error.trace_id)
    assert "divide [chain]  ERROR" in text and "ZeroDivisionError: division by zero" in text


def test_to_pandas_dtypes(filled: TraceStore) -> None:
    pd = pytest.importorskip("pandas")
    frame = filled.to_pandas("spans")
    assert len(frame) == len(filled.spans())
    assert isinstance(frame["start_time"].dtype, pd.DatetimeTZDtype)
    traces = filled.to_pandas("traces", status="error")
    assert list(traces["name"]) == ["divide"]
    with pytest.raises(ValueError, match="table must be one of"):
        filled.to_pandas("nope")


def test_db_file_is_private(filled: TraceStore) -> None:
    import os
    import stat

    assert stat.S_IMODE(os.stat(filled.db_path).st_mode) == 0o600


def test_purge_deletes_old_traces_only(db_path) -> None:
    import time

    from lc_observe.cli import main

    obs = ObsHandler(db_path)
    RunnableLambda(lambda x: x, name="old").invoke(1, {"callbacks": [obs]})
    obs.flush(10)
    time.sleep(0.01)
    cutoff = datetime.now(timezone.utc)
    RunnableLambda(lambda x: x, name="new").invoke(1, {"callbacks": [obs]})
    obs.close()
    store = TraceStore(db_path)
    assert store.purge(older_than=cutoff) == 1
    assert [t.name for t in store.traces()] == ["new"]
    assert [s.name for s in store.spans()] == ["new"]
    assert store.purge(timedelta(days=1)) == 0
    assert main(["purge", "--db", str(db_path), "--older-than", "0s", "--vacuum"]) == 0
    assert store.traces() == [] and store.spans() == []
    assert main(["purge", "--db", str(db_path), "--older-than", "soon"]) == 2


def test_full_reads_return_each_trace_once_while_an_app_writes(tmp_path) -> None:
    """OFFSET pages over newest-first rows repeated traces when new ones arrived between
    pages (3,045 rows for 3,000 traces); keyset pages return each one once."""
    import io
    import json
    import threading
    import time

    from lc_observe import ObsHandler
    from lc_observe.export.exporters import export_jsonl

    db = tmp_path / "busy.db"
    chain = RunnableLambda(lambda x: x, name="a") | RunnableLambda(lambda x: x, name="b")
    handler = ObsHandler(db, queue=Queue(batch_size=50, schedule_delay=0.01))
    for i in range(1_100):
        chain.invoke(i, {"callbacks": [handler]})
    assert handler.flush(30)
    stop = threading.Event()

    def app() -> None:
        while not stop.is_set():
            chain.invoke(0, {"callbacks": [handler]})
            time.sleep(0.001)

    writer = threading.Thread(target=app)
    writer.start()
    try:
        store = TraceStore(db)
        seen = []
        for trace in store:  # pages of 500; new traces arrive while we read
            seen.append(trace.trace_id)
            if len(seen) % 100 == 0:
                time.sleep(0.05)
        paged = [t.trace_id for t in store.iter_traces(page_size=7)]
        frame = store.traces_df()
        out = io.StringIO()
        exported = export_jsonl(db, out)
    finally:
        stop.set()
        writer.join()
        handler.close()
    written = TraceStore(db).traces(limit=100_000)
    print(f"read {len(seen)} traces while {len(written) - 1_100} more were written")
    assert len(written) > 1_100  # the app did write while we read
    assert len(seen) == len(set(seen)) >= 1_100
    assert len(paged) == len(set(paged)) >= 1_100
    assert frame["trace_id"].is_unique and len(frame) >= 1_100
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert exported == len(lines) == len({line["span_id"] for line in lines}) >= 3 * 1_100
