"""A pytest plugin that attaches one `ObsHandler` to every LangChain run of a test session.

Load it with ``-p``; it is not registered as an entry point, so it never loads by itself:

    python -m pytest -p lc_observe.testing_plugin tests/

It attaches the handler the way a user attaching it globally would: through LangChain's
documented configure hook (`langchain_core.tracers.context.register_configure_hook`), an
inheritable handler that ``CallbackManager.configure`` and ``AsyncCallbackManager.configure``
add to every manager they build -- every ``invoke``/``ainvoke``/``stream``/``batch`` of a
runnable or a LangGraph graph, sync or async, in any thread or task (the context
variable's *default* is the handler, so threads and fresh contexts see it too).

Any test suite that exercises LangChain can so be run with lc_observe in the loop: a test
that passes without the plugin and fails with it is a behaviour change caused by the
handler (``scripts/injected_suites.py`` runs LangGraph's and langchain-core's own suites
this way).

At the end of the session the handler is closed and its `ObsHandler.stats` are written to
``stats-<worker>.json`` in the plugin's directory and shown in the terminal summary.  An
internal error of the handler (``stats["internal_errors"]``: an exception swallowed in a
callback) fails the session even if every test passed: it is a bug of ours.

Options (command line or environment):

- ``--lc-observe-dir DIR`` / ``LC_OBSERVE_INJECT_DIR``: where the SQLite files and stats
  go (a new temporary directory by default).  With pytest-xdist each worker writes its own
  ``injected-<worker>.db``.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest

#: Name of the environment variable naming the output directory.
DIR_ENV = "LC_OBSERVE_INJECT_DIR"
#: Exit status of a session whose tests passed but whose handler had internal errors.
INTERNAL_ERROR_STATUS = pytest.ExitCode.TESTS_FAILED


class _Injection:
    """The handler of this process and where its results go."""

    def __init__(self, directory: Path, worker: str) -> None:
        from langchain_core.tracers.context import register_configure_hook

        from lc_observe import ObsHandler

        self.directory = directory
        self.worker = worker
        self.db_path = directory / f"injected-{worker}.db"
        self.stats_path = directory / f"stats-{worker}.json"
        self.handler = ObsHandler(self.db_path)
        self.stats: dict[str, Any] | None = None
        # handle_class=None: added unless this very handler is on the manager already.
        register_configure_hook(
            ContextVar("lc_observe_injected_handler", default=self.handler), inheritable=True
        )

    def close(self) -> dict[str, Any]:
        """Flush and close the handler once; write and return its stats."""
        if self.stats is None:
            closed = self.handler.close(timeout=60)
            stats = dict(self.handler.stats)
            stats["closed_in_time"] = closed
            stats["db_path"] = str(self.db_path)
            self.stats_path.write_text(json.dumps(stats, default=str, indent=1))
            self.stats = stats
        return self.stats


def read_stats(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The stats every process of a session wrote into ``directory``, one dict each."""
    return [json.loads(path.read_text()) for path in sorted(Path(directory).glob("stats-*.json"))]


#: The counters summed over the processes of a session (`totals`).
TOTALS = (
    "enqueued",
    "written",
    "dropped",
    "failed",
    "lost",
    "abandoned",
    "reused_run_ids",
    "unended",
    "internal_errors",
)


def totals(directory: str | os.PathLike[str]) -> dict[str, int]:
    """The counters of every process of a session, summed, and ``processes``."""
    stats = read_stats(directory)
    summed = {key: sum(int(s.get(key) or 0) for s in stats) for key in TOTALS}
    summed["processes"] = len(stats)
    return summed


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lc-observe-dir",
        default=os.environ.get(DIR_ENV),
        help="directory of the injected ObsHandler's SQLite files and stats "
        f"(default ${DIR_ENV}, else a new temporary directory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("--lc-observe-dir")
    worker_input = getattr(config, "workerinput", None)
    if not directory:
        if worker_input is not None:  # xdist worker: the controller chose the directory
            directory = worker_input["lc_observe_dir"]
        else:
            directory = tempfile.mkdtemp(prefix="lc_observe_injected_")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if worker_input is None:  # a directory used before: its old counters are not this run's
        for stale in [*path.glob("stats-*.json"), path / "totals.json"]:
            stale.unlink(missing_ok=True)
    config.option.lc_observe_dir = str(path)
    worker = worker_input["workerid"] if worker_input is not None else "main"
    # An xdist controller runs no test: only its workers get a handler.
    controller = (
        worker_input is None
        and bool(getattr(config.option, "numprocesses", None))
        and getattr(config.option, "dist", "no") != "no"
    )
    config.stash[_KEY] = None if controller else _Injection(path, worker)


def pytest_configure_node(node: Any) -> None:
    """pytest-xdist hook: hand the directory to each worker (used only under xdist)."""
    node.workerinput["lc_observe_dir"] = node.config.option.lc_observe_dir


pytest_configure_node.optionalhook = True  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    injection = config.stash.get(_KEY, None)
    if injection is not None:
        injection.close()
    if hasattr(config, "workerinput"):
        return  # the controller judges every worker's stats
    summed = totals(_directory(config))
    (Path(_directory(config)) / "totals.json").write_text(json.dumps(summed))
    if summed["internal_errors"] and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = INTERNAL_ERROR_STATUS


def _directory(config: pytest.Config) -> str:
    return str(config.option.lc_observe_dir)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    total = totals(_directory(config))
    terminalreporter.write_sep("-", "lc_observe injected ObsHandler")
    terminalreporter.write_line(", ".join(f"{k}={v}" for k, v in total.items()))
    terminalreporter.write_line(f"files: {_directory(config)}")
    if total["internal_errors"]:
        terminalreporter.write_line(
            "FAILED: the injected ObsHandler had internal errors (a bug in lc_observe: "
            "see the 'lc_observe: internal error' log records above)",
            red=True,
        )


_KEY = pytest.StashKey["_Injection | None"]()
