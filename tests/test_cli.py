"""The lc-observe command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lc_observe import TraceStore
from lc_observe.cli import main


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lc-observe")
    command = [exe] if exe else [sys.executable, "-m", "lc_observe.cli"]
    env = {k: v for k, v in os.environ.items() if k != "LC_OBSERVE_DB"}
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_demo_in_a_fresh_directory(tmp_path: Path) -> None:
    done = _cli("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "demo_agent [chain]" in done.stdout
    assert "Traced 2 runs of the demo agent into lc_observe.db" in done.stdout

    store = TraceStore(tmp_path / "lc_observe.db")
    traces = store.traces()
    assert len(traces) == 2 and {t.name for t in traces} == {"demo_agent"}
    for trace in traces:
        assert trace.graph_name == "demo_agent" and trace.session_id == "demo"
        spans = store.spans(trace_id=trace.trace_id)
        nodes = [s.graph_node for s in spans if s.parent_id == trace.trace_id]
        assert nodes[0] == "router" and nodes[-1] == "answer"
        assert nodes[1] in {"calculator", "retrieve"}
        kinds = {s.kind for s in spans}
        assert {"chain", "chat_model", "prompt", "parser"} <= kinds
        assert ("tool" in kinds) != ("retriever" in kinds)
    paths = sorted(
        tuple(s.graph_node for s in store.spans(trace_id=t.trace_id) if s.parent_id == t.trace_id)
        for t in traces
    )
    assert paths == [("router", "calculator", "answer"), ("router", "retrieve", "answer")]


def test_traces_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "x.db")
    assert main(["demo", "--db", db]) == 0
    capsys.readouterr()

    assert main(["traces", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 2 and listed[0]["name"] == "demo_agent"

    assert main(["traces", "--db", db]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["id", "start"] and len(table) == 3
    assert table[1].startswith(listed[0]["trace_id"][-8:])  # the random tail tells ids apart

    prefix = listed[0]["trace_id"][:13]
    assert main(["show", prefix, "--db", db]) == 0
    assert capsys.readouterr().out.startswith(f"trace {listed[0]['trace_id']}")

    assert main(["show", listed[0]["trace_id"], "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {s["trace_id"] for s in shown["spans"]} == {listed[0]["trace_id"]}


def test_stats_and_budgets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "s.db")
    assert main(["demo", "--db", db]) == 0
    capsys.readouterr()
    assert main(["stats", "--by", "model", "--db", db, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["group"] == "gpt-4o-mini" and row["count"] == 2
    assert row["input_tokens"] == 31 + 58 and row["output_tokens"] == 6 + 11
    assert row["ttft_p95_ms"] > 0 and row["cost_usd"] > 0 and row["cache_hit_rate"] == 0

    assert main(["stats", "--by", "model", "--db", db, "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert "gpt-4o-mini" in table and "p95 ms" in table and "ttft p95" in table
    monkeypatch.setenv("COLUMNS", "100")  # a 100-column terminal: the table fits it
    assert main(["stats", "--by", "graph_node", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["graph_node", "count", "errors"]
    assert all(len(line) <= 100 for line in lines)
    assert lines[-1].startswith("(") and "left out to fit 100 columns" in lines[-1]
    rows = {line.split()[0] for line in lines[1:-1]}
    assert rows == {"router", "calculator", "retrieve", "answer"}
    assert main(["stats", "--by", "model", "--db", db, "--until", "2000-01-01"]) == 0
    assert "nothing recorded" in capsys.readouterr().out

    assert main(["budgets", "--db", db]) == 0
    assert "no budget used up" in capsys.readouterr().out


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["traces", "--db", str(tmp_path / "none.db")]) == 1
    assert "no lc_observe database" in capsys.readouterr().err
    db = str(tmp_path / "x.db")
    main(["demo", "--db", db])
    capsys.readouterr()
    assert main(["show", "ffffffff", "--db", db]) == 1
    assert "no trace with id 'ffffffff'" in capsys.readouterr().err
    assert main(["traces", "--db", db, "--since", "last week"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def _locked_for(db: Path, seconds: float | None) -> tuple:
    """Hold the write lock of ``db`` in a thread for ``seconds`` (None: until released)."""
    import sqlite3
    import threading

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM pushes")  # a write transaction, as a long purge would be
        locked.set()
        release.wait(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(10)
    return thread, release


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    from lc_observe.demo import run_demo

    db = tmp_path / "demo.db"
    run_demo(str(db))
    return db


def test_purge_retries_behind_a_long_write_lock(demo_db: Path, capsys) -> None:
    """The lock (1.5 s) outlasts the busy timeout (0.2 s): purge retries and succeeds."""
    thread, _ = _locked_for(demo_db, 1.5)
    code = main(["purge", "--db", str(demo_db), "--older-than", "0s", "--busy-timeout", "0.2"])
    thread.join()
    assert code == 0, capsys.readouterr().err
    assert "Deleted 2 traces" in capsys.readouterr().out
    assert TraceStore(demo_db).traces() == []


def test_purge_behind_a_lock_that_never_ends_reports_one_line(demo_db: Path, capsys) -> None:
    thread, release = _locked_for(demo_db, None)
    try:
        code = main(["purge", "--db", str(demo_db), "--older-than", "0s", "--busy-timeout", "0.05"])
    finally:
        release.set()
        thread.join()
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "stayed locked by another writer" in err and "purge did not run" in err
    assert "--busy-timeout" in err
    assert len(TraceStore(demo_db).traces()) == 2  # nothing half-deleted


def test_every_option_has_help_and_version_prints(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from lc_observe import __version__
    from lc_observe.cli import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"lc-observe {name} {action.option_strings or action.dest}"
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"lc-observe {__version__}"


@pytest.mark.slow  # child processes: the slow tier
def test_broken_pipe_ends_quietly_and_export_json(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    for _ in range(6):  # enough JSON lines to fill a pipe's buffer
        assert main(["demo", "--db", str(db), "--json"]) == 0
    exe = shutil.which("lc-observe")
    command = [exe] if exe else [sys.executable, "-m", "lc_observe.cli"]
    reader = subprocess.Popen(
        [*command, "export", "--jsonl", "-", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stdout.readline().startswith(b"{")
    reader.stdout.close()  # what `| head -1` does
    _, err = reader.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    done = _cli(
        "export", "--jsonl", str(tmp_path / "out.jsonl"), "--db", str(db), "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert summary == {"spans": len(lines), "file": str(tmp_path / "out.jsonl")}
