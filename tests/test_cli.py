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
    assert table[0].startswith("trace_id") and len(table) == 3

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
    for module in ("rich", "rich.console", "rich.table"):  # the plain table, without rich
        monkeypatch.setitem(sys.modules, module, None)
    assert main(["stats", "--by", "graph_node", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["graph_node", "count", "errors"]
    assert {line.split()[0] for line in lines[1:]} == {"router", "calculator", "retrieve", "answer"}
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
