"""Full-text search (schema 6), ids people can type, one time syntax, checked values,
stats that count nested usage once, and push without an API key."""

from __future__ import annotations

import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import LangSmith, ObsHandler, TraceNotFoundError, TraceStore
from lc_observe.cli import main
from lc_observe.storage.ids import AmbiguousIdError, short_id
from lc_observe.storage.schema import SCHEMA_VERSION
from tests.agents import ScriptedChatModel, turns
from tests.scenarios import create_agent_tools


def _agent_traces(handler: ObsHandler, n: int = 1) -> None:
    for i in range(n):
        scenario = create_agent_tools()
        scenario.graph.invoke(
            {"messages": [("human", f"question number {i} about zebras")]},
            {"callbacks": [handler], "configurable": {"thread_id": str(i)}},
        )


def test_search_finds_spans_by_what_was_said(handler, read_store) -> None:
    _agent_traces(handler, 2)
    store = read_store()
    hits = store.search("documented", kind="tool")
    assert {h.name for h in hits} == {"lookup"} and len(hits) == 2
    assert all(h.field == "outputs" and "documented" in h.snippet for h in hits)
    trace_ids = {t.trace_id for t in store.traces()}
    assert {h.trace_id for h in hits} == trace_ids
    # every word must appear; ranked best first; phrase and prefix work
    assert store.search("zebras number 1", kind="chat_model")
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert store.search('"about zebras"') and store.search("zebr*")
    assert store.search("nonexistentword") == []
    assert store.search("call_1 OR NOT") == []  # operators are words, never syntax errors
    with pytest.raises(ValueError, match="nothing to search for"):
        store.search("  ")
    with pytest.raises(ValueError, match="kind must be one of"):
        store.search("add", kind="chatmodel")
    assert store.search("documented", since="2999-01-01") == []


def test_search_newest_first_is_the_write_order(handler, read_store) -> None:
    """``order="newest"`` finds the same spans as ``"rank"``, the last written first (the
    order of SQLite's own rowids of the spans), filtered or not; the limit keeps the
    newest ones; an unknown order lists the valid ones."""
    _agent_traces(handler, 3)
    store = read_store()
    rowid = {
        row["span_id"]: row["rowid"]
        for row in store._query("SELECT rowid, span_id FROM spans")  # SQLite's write order
    }
    for kind in (None, "tool"):
        ranked = store.search("documented", kind=kind, limit=500)
        newest = store.search("documented", kind=kind, order="newest", limit=500)
        assert {h.span_id for h in newest} == {h.span_id for h in ranked}
        assert len(newest) == (3 if kind == "tool" else len(ranked)) and len(newest) >= 3
        order = [rowid[h.span_id] for h in newest]
        assert order == sorted(order, reverse=True)
        top = store.search("documented", kind=kind, order="newest", limit=2)
        assert [h.span_id for h in top] == [h.span_id for h in newest][:2]
    with pytest.raises(ValueError, match="order must be one of rank, newest"):
        store.search("documented", order="oldest")


def test_search_index_follows_replace_and_purge(handler, read_store, db_path) -> None:
    _agent_traces(handler, 1)
    store = read_store()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        # running snapshots were replaced by final rows: one index entry per row, no more
        hits = conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'go OR zebras'")
        assert hits.fetchone()[0] <= spans
        conn.execute("INSERT INTO spans_fts(spans_fts, rank) VALUES('integrity-check', 0)")
    assert store.purge("0s", vacuum=True) == 1
    assert store.search("zebras") == []
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO spans_fts(spans_fts, rank) VALUES('integrity-check', 0)")


def test_migration_indexes_existing_spans(handler, read_store, db_path) -> None:
    _agent_traces(handler, 1)
    read_store().close()
    handler.close()
    with sqlite3.connect(db_path) as conn:  # back to a version 5 file
        for name in ("spans_fts_insert", "spans_fts_delete", "spans_fts_update"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE spans_fts")
        conn.execute("PRAGMA user_version = 5")
    store = TraceStore(db_path)  # migrates
    assert {h.name for h in store.search("documented", kind="tool")} == {"lookup"}


def test_ids_people_can_type(handler, read_store, capsys) -> None:
    _agent_traces(handler, 3)
    store = read_store()
    ids = [t.trace_id for t in store.traces()]
    db = str(store.db_path)
    for trace_id in ids:
        tail = short_id(trace_id)
        assert store.trace(tail).trace_id == trace_id
        assert store.trace(tail.upper()).trace_id == trace_id
        assert store.path(tail) == store.path(trace_id)
        assert main(["show", tail, "--db", db]) == 0
        assert main(["branches", tail, "--db", db]) == 0
    # UUID v7: traces of one minute share their head, which is ambiguous
    head = ids[0][:8]
    assert all(i.startswith(head) for i in ids)
    with pytest.raises(AmbiguousIdError, match="matches several traces"):
        store.trace(head)
    capsys.readouterr()
    assert main(["traces", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert all(short_id(i) in listed for i in ids) and ids[0] not in listed
    # unknown ids: the same error everywhere in the API, exit 1 in every CLI command
    for method in (store.trace, store.path, store.view, store.format_trace):
        with pytest.raises(TraceNotFoundError):
            method("zzzz")
    with pytest.raises(TraceNotFoundError):
        store.spans(trace_id="zzzz")
    for argv in (
        ["show", "zzzz"],
        ["branches", "zzzz"],
        ["scores", "zzzz"],
        ["diff", "zzzz", "zzzz"],
    ):
        assert main([*argv, "--db", db]) == 1
        assert "no trace with id 'zzzz'" in capsys.readouterr().err


def test_one_time_syntax_and_checked_values(handler, read_store, capsys) -> None:
    _agent_traces(handler, 1)
    store = read_store()
    db = str(store.db_path)
    assert len(store.traces(since="1d")) == 1 and store.traces(until="1d") == []
    assert len(store.spans(since="2h")) == len(store.spans())
    for argv in (
        ["traces", "--since", "1d"],
        ["branches", "--since", "1d"],
        ["paths", "--since", "2h"],
    ):
        capsys.readouterr()
        assert main([*argv, "--db", db]) == 0
        assert "(no" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="status must be one of ok, error"):
        store.traces(status="failed")
    with pytest.raises(ValueError, match="kind must be one of chain, chat_model"):
        store.spans(kind="chatmodel")
    with pytest.raises(ValueError, match="source must be one of human, judge"):
        store.scores(source="humans")
    with pytest.raises(SystemExit):
        main(["traces", "--status", "bogus", "--db", db])


def test_errors_column_and_filter(handler, read_store, capsys) -> None:
    from langchain_core.tools import tool

    @tool
    def broken(x: int) -> int:
        """Fails."""
        raise ValueError("tool broke")

    def careful(x: int, config) -> int:  # calls a tool that fails, and recovers
        try:
            return broken.invoke({"x": x}, config)
        except ValueError:
            return 0

    RunnableLambda(careful, name="recovered").invoke(1, {"callbacks": [handler]})
    RunnableLambda(lambda x: x, name="fine").invoke(1, {"callbacks": [handler]})
    store = read_store()
    [bad] = store.traces(has_errors=True)
    assert bad.status == "ok" and bad.error_count >= 1
    assert [t.name for t in store.traces(has_errors=False)] == ["fine"]
    capsys.readouterr()
    assert main(["traces", "--errors", "--db", str(store.db_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "errors" in out[0] and len(out) == 2 and short_id(bad.trace_id) in out[1]


def test_stats_by_kind_counts_nested_usage_once(handler, read_store) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    model = ScriptedChatModel(script=turns(("fine thanks", [])))
    inner = ChatPromptTemplate.from_messages([("human", "{q}")]) | model
    outer = RunnableLambda(lambda x: x, name="pre") | inner.with_config(run_name="inner")
    for question in ("how are you", "and now"):
        outer.with_config(run_name="outer").invoke({"q": question}, {"callbacks": [handler]})
    store = read_store()
    models = store.spans(kind="chat_model")
    used = sum(s.input_tokens for s in models), sum(s.output_tokens for s in models)
    cost = sum(s.cost_usd for s in models)
    assert len(store.spans(kind="chain")) >= 4  # chains inside chains
    rows = {row.group: row for row in store.stats(by="kind")}
    for kind in ("chain", "chat_model"):
        assert (rows[kind].input_tokens, rows[kind].output_tokens) == used
        assert rows[kind].cost_usd == pytest.approx(cost)
    assert rows["chain"].count == len(store.spans(kind="chain"))


class _Counter(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        _Counter.hits.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


def test_push_and_mirror_without_api_key_send_nothing(
    handler, read_store, monkeypatch, capsys, caplog, tmp_path
) -> None:
    RunnableLambda(lambda x: x, name="fine").invoke(1, {"callbacks": [handler]})
    db = str(read_store().db_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LANGSMITH_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert main(["push", "--db", db]) == 1
        err = capsys.readouterr().err
        assert "LANGSMITH_API_KEY" in err and err.count("\n") == 1 and "Nothing was sent" in err
        with pytest.raises(ValueError, match="LANGSMITH_API_KEY"):
            LangSmith()
        # The deprecated keyword keeps its old behaviour: one warning, local recording only.
        with caplog.at_level("WARNING", logger="lc_observe"), pytest.deprecated_call():
            obs = ObsHandler(tmp_path / "m.db", langsmith=True)
            for _ in range(3):
                RunnableLambda(lambda x: x, name="r").invoke(1, {"callbacks": [obs]})
            assert obs.flush(10)
            obs.close()
        warnings = [r for r in caplog.records if "LANGSMITH_API_KEY" in r.getMessage()]
        assert len(warnings) == 1
        assert len(TraceStore(tmp_path / "m.db").traces()) == 3  # local recording goes on
        assert _Counter.hits == []
    finally:
        server.shutdown()


def test_version_8_index_is_rebuilt_with_metadata_as_text(handler, read_store, db_path) -> None:
    """Schema 9 indexes metadata as its JSON text: a version 8 file (metadata values from
    json_tree) is indexed anew, and rows replaced afterwards leave no stale entry."""
    from lc_observe.storage.search import _text_sql

    handler.metadata["customer"] = "acme-zebra-77"
    _agent_traces(handler, 1)
    read_store().close()
    handler.close()
    old_values = f"new.name, {_text_sql('new.inputs')}, {_text_sql('new.outputs')}, " + (
        "nullif(trim(coalesce(new.error_type, '') || ' ' || coalesce(new.error_message, '')), '')"
        f", {_text_sql('new.metadata')}"
    )
    with sqlite3.connect(db_path) as conn:  # back to a version 8 file and its index
        for name in ("spans_fts_insert", "spans_fts_delete", "spans_fts_update"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("INSERT INTO spans_fts(spans_fts) VALUES ('delete-all')")
        conn.execute(
            "INSERT INTO spans_fts(rowid, name, inputs, outputs, error, metadata) "
            f"SELECT rowid, {old_values.replace('new.', '')} FROM spans"
        )
        conn.execute("PRAGMA user_version = 8")
    store = TraceStore(db_path)  # migrates
    spans = len(store.spans())
    assert len(store.search("acme-zebra-77", limit=500)) == spans  # every span carries it
    assert store.search("customer", limit=500)  # keys of metadata are words now
    store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 9
        # replace every row (as a final row replaces its running snapshot): the delete
        # trigger removes exactly what the insert trigger indexed
        conn.execute("PRAGMA recursive_triggers = ON")
        conn.execute("INSERT OR REPLACE INTO spans SELECT * FROM spans")
        conn.execute("INSERT INTO spans_fts(spans_fts, rank) VALUES('integrity-check', 0)")
        hits = conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'customer'")
        assert hits.fetchone()[0] == spans
