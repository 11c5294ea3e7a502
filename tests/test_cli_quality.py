"""lc-observe scores / score / compare / diff / show with scores, run through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lc_observe import TraceStore
from lc_observe.cli import main
from lc_observe.evaluate import judge
from lc_observe.testing import FakeJudge

from .test_compare import _record


def _app_traces(path: Path) -> dict[str, str]:
    """A finished trace of each prompt version (not the judge's)."""
    return {
        t.metadata["prompt_version"]: t.trace_id
        for t in TraceStore(path).traces(limit=100, status="ok")
        if "prompt_version" in t.metadata
    }


@pytest.fixture
def quality_db(db_path: Path) -> Path:
    store = _record(db_path, {"v1": "v1", "v2": "v2"})  # + heuristic scores
    judge(store, model=FakeJudge(replies=['{"score": 1, "reasoning": "ok"}', "?"]))
    return db_path


def test_scores_summary_and_list(quality_db: Path, capsys) -> None:
    assert main(["scores", "--db", str(quality_db)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["length_ok"][:5] == ["length_ok", "heuristic", "boolean", "15", "15"]
    assert lines["length_ok"][5] == "0.6667"  # 10 of 15 finished traces are short enough
    assert lines["relevance"][:5] == ["relevance", "judge", "numeric", "20", "20"]
    assert lines["relevance"][-1] == "10"  # every second verdict was unreadable
    assert main(["scores", "--db", str(quality_db), "--json", "--source", "judge"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["count"], row["malformed"], row["mean"]) == ("relevance", 20, 10, 1.0)
    assert main(["scores", "--db", str(quality_db), "--list", "--name", "answer_length"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 15 and all("heuristic" in line for line in listed)


def test_score_a_trace_then_show_it(quality_db: Path, capsys) -> None:
    trace_id = TraceStore(quality_db).traces()[0].trace_id
    code = main(
        ["score", trace_id[:13], "helpful", "true", "--comment", "nice", "--db", str(quality_db)]
    )
    assert code == 0 and "helpful = true" in capsys.readouterr().out
    main(["score", trace_id, "tone", "friendly", "--source", "feedback", "--db", str(quality_db)])
    main(["score", trace_id, "stars", "4", "--db", str(quality_db)])
    capsys.readouterr()
    assert main(["scores", trace_id, "--db", str(quality_db), "--json"]) == 0
    values = {s["name"]: s["value"] for s in json.loads(capsys.readouterr().out)}
    assert {k: values[k] for k in ("helpful", "tone", "stars")} == {
        "helpful": True,
        "tone": "friendly",
        "stars": 4.0,
    }
    assert main(["show", trace_id, "--db", str(quality_db)]) == 0
    out = capsys.readouterr().out
    assert "score helpful = true  [human]  nice" in out and "score tone = friendly" in out
    assert main(["score", "nope", "x", "1", "--db", str(quality_db)]) == 1
    assert "no trace with id 'nope'" in capsys.readouterr().err


def test_compare_prints_a_table(quality_db: Path, capsys) -> None:
    argv = ["compare", "v1", "v2", "--by", "metadata.prompt_version", "--db", str(quality_db)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("compare metadata.prompt_version: v1 (10 traces) vs v2 (10 traces)")
    error_line = next(line for line in out.splitlines() if line.startswith("error_rate"))
    assert "0.0% (10)" in error_line and "50.0% (10)" in error_line
    assert "0.0098" in error_line and error_line.rstrip().endswith("*")
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a_traces"] == 10 and any(r["metric"] == "score:length_ok" for r in data["rows"])
    assert (
        main(["compare", "v1", "v9", "--by", "metadata.prompt_version", "--db", str(quality_db)])
        == 2
    )
    assert "no finished traces" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stats", "--by", "metadata.no spaces", "--db", str(quality_db)])


def test_stats_by_metadata_key(quality_db: Path, capsys) -> None:
    assert (
        main(["stats", "--by", "metadata.prompt_version", "--db", str(quality_db), "--json"]) == 0
    )
    rows = {row["group"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"v1", "v2"} and rows["v2"]["errors"] == 5
    assert rows["v1"]["scores"]["length_ok"] == 1.0


def test_diff_two_traces(quality_db: Path, capsys) -> None:
    by_version = _app_traces(quality_db)
    assert main(["diff", by_version["v1"], by_version["v2"], "--db", str(quality_db)]) == 0
    out = capsys.readouterr().out
    assert f"A {by_version['v1']}" in out and "output differs" in out
    assert (
        main(["diff", by_version["v1"], by_version["v2"], "--db", str(quality_db), "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["trace_a"] == by_version["v1"] and data["spans"][0]["tokens_delta"] == 40
