"""LangGraph's and langchain-core's own suites with an ObsHandler injected (the slow
tier runs ``scripts/injected_suites.py``), and the pytest plugin that injects it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lc_observe import TraceStore

from .tiers import unavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "injected_suites.py"
EXIT_UNAVAILABLE = 3  # scripts/injected_suites.py: sources or tools could not be fetched


def _run_pytest_with_plugin(
    tmp_path: Path, source: str
) -> tuple[subprocess.CompletedProcess, Path]:
    (tmp_path / "test_app.py").write_text(textwrap.dedent(source))
    out = tmp_path / "injected"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "lc_observe.testing_plugin",
         "-p", "no:cacheprovider", "-p", "no:phoenix", "-p", "no:langsmith_plugin",
         f"--lc-observe-dir={out}", "test_app.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done, out


def test_plugin_records_every_run_sync_async_and_in_threads(tmp_path: Path) -> None:
    done, out = _run_pytest_with_plugin(
        tmp_path,
        """
        import asyncio, threading
        from langchain_core.runnables import RunnableLambda

        def increment(x):
            return x + 1

        def double(x):
            return x * 2

        def halve(x):
            return x // 2

        def test_sync():
            assert RunnableLambda(increment).invoke(1) == 2

        def test_async():
            assert asyncio.run(RunnableLambda(double).ainvoke(2)) == 4

        def test_plain_thread():
            results = []
            run = lambda: results.append(RunnableLambda(halve).invoke(8))
            thread = threading.Thread(target=run)
            thread.start()
            thread.join()
            assert results == [4]
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lc_observe injected ObsHandler" in done.stdout
    (stats,) = [json.loads(p.read_text()) for p in out.glob("stats-*.json")]
    assert stats["internal_errors"] == 0
    assert stats["written"] >= 3
    summed = json.loads((out / "totals.json").read_text())
    assert summed["processes"] == 1
    assert summed["written"] == stats["written"]
    names = {t.name for t in TraceStore(stats["db_path"]).traces()}
    assert {"increment", "double", "halve"} <= names


def test_an_internal_error_of_the_handler_fails_a_session_whose_tests_pass(
    tmp_path: Path,
) -> None:
    done, out = _run_pytest_with_plugin(
        tmp_path,
        """
        from langchain_core.runnables import RunnableLambda
        from lc_observe.capture.handler import ObsHandler

        def boom(self, *args, **kwargs):
            raise RuntimeError("a bug in the handler")

        def test_app_still_works(monkeypatch):
            monkeypatch.setattr(ObsHandler, "_start", boom)
            assert RunnableLambda(lambda x: x + 1).invoke(1) == 2
        """,
    )
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: the injected ObsHandler had internal errors" in done.stdout
    (stats,) = [json.loads(p.read_text()) for p in out.glob("stats-*.json")]
    assert stats["internal_errors"] >= 1


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_langgraph_and_langchain_core_suites_pass_with_the_handler_injected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "suites")],
        capture_output=True,
        text=True,
        timeout=1700,
    )
    with capsys.disabled():  # the summary table, in CI's log even when the test passes
        print(f"\n{done.stdout}\n{done.stderr[-5000:]}")
    if done.returncode == EXIT_UNAVAILABLE:
        unavailable(
            f"the suites' sources or test tools could not be fetched: {done.stderr[-2000:]}"
        )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
