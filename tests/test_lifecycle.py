"""Process lifecycle: SIGTERM, exit, fork and multiprocessing children lose nothing and
write nothing twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lc_observe import TraceStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _counts(db: Path) -> tuple[int, int, int]:
    """(spans, distinct span ids, branch events) in ``db``."""
    with sqlite3.connect(db) as conn:
        spans, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT span_id) FROM spans"
        ).fetchone()
        branches = conn.execute("SELECT count(*) FROM branch_events").fetchone()[0]
    return spans, distinct, branches


@pytest.mark.slow  # child processes: the slow tier
def test_sigterm_ends_the_process_although_a_non_daemon_thread_is_busy(db_path: Path) -> None:
    """The issue's case: a long task on a ThreadPoolExecutor thread kept the process alive
    after SIGTERM.  Now the finished spans are flushed and the process is killed by the
    signal at once, as it would be without the hook."""
    code = """
        import sys, time
        from concurrent.futures import ThreadPoolExecutor
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue
        handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=30))
        for i in range(50):
            RunnableLambda(lambda x: x, name="done").invoke(i, {"callbacks": [handler]})
        pool = ThreadPoolExecutor(1)
        pool.submit(time.sleep, 120)        # a busy non-daemon thread
        print("ready", flush=True)
        # the main thread ends here: the interpreter waits for the pool thread
    """
    proc = _start(code, str(db_path))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # let the main thread reach the interpreter's wait for the pool thread
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)  # the task sleeps 120 s: this returns only if SIGTERM ended it
    took = time.monotonic() - sent
    print(f"process ended {took:.2f} s after SIGTERM")
    assert proc.returncode == -signal.SIGTERM
    assert took < 30  # generous: the flush is bounded by exit_timeout (10 s)
    spans = TraceStore(db_path).spans()
    assert sum(s.name == "done" and s.status == "ok" for s in spans) == 50


@pytest.mark.slow  # child processes: the slow tier
def test_a_sigterm_during_the_exit_flush_does_not_abort_it(db_path: Path) -> None:
    """The exit flush of 3,000 spans through a slow sink is interrupted by SIGTERM: it goes
    on to the end, then the process ends by the signal."""
    code = """
        import sys, time
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue
        from lc_observe.pipeline import processor as dispatch

        class SlowSink:
            announced = False
            def export(self, batch):
                if dispatch._exiting and not SlowSink.announced:  # the exit flush runs
                    SlowSink.announced = True
                    print("flushing", flush=True)
                time.sleep(0.1)
                return len(batch)
            def close(self):
                pass

        queue = Queue(batch_size=100, schedule_delay=60, exit_timeout=60)
        handler = ObsHandler(sys.argv[1], sinks=[SlowSink()], queue=queue)
        for i in range(3000):
            RunnableLambda(lambda x: x, name="n").invoke(i, {"callbacks": [handler]})
        # no flush: the writer lags behind the slow sink; the exit flush writes the rest
    """
    proc = _start(code, str(db_path))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "flushing"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr.read() if proc.stderr else ""
    assert _counts(db_path)[:2] == (3000, 3000)


def test_records_not_written_at_exit_are_counted_and_logged_once(db_path: Path) -> None:
    code = """
        import sys, time
        from langchain_core.runnables import RunnableLambda
        from lc_observe import ObsHandler, Queue

        class StuckSink:
            def export(self, batch):
                time.sleep(3600)
            def close(self):
                pass

        queue = Queue(batch_size=10, exit_timeout=0.5)
        handler = ObsHandler(None, sinks=[StuckSink()], queue=queue)
        for i in range(100):
            RunnableLambda(lambda x: x, name="n").invoke(i, {"callbacks": [handler]})
    """
    done = _run(code, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "not written" in line]
    assert len(lines) == 1, done.stderr
    assert "100 records were not written at exit" in lines[0]
    assert "exit_timeout" in lines[0] and "flush()" in lines[0]


_GRAPH = """
import sys
from typing import TypedDict
from langgraph.graph import END, START, StateGraph
from lc_observe import ObsHandler, Queue

class State(TypedDict):
    n: int

def route(state: State) -> str:
    return "done" if state["n"] % 2 else "other"

def build():
    graph = StateGraph(State)
    graph.add_node("start", lambda s: {"n": s["n"]})
    graph.add_node("done", lambda s: s)
    graph.add_node("other", lambda s: s)
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", route, ["done", "other"])
    graph.add_edge("done", END)
    graph.add_edge("other", END)
    return graph.compile()

def work(args):
    db, start, count = args
    handler = ObsHandler(db)
    graph = build()
    for i in range(start, start + count):
        graph.invoke({"n": i}, {"callbacks": [handler]})
    return count  # no flush: the child's exit must write everything
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_children_flush_at_their_exit(tmp_path: Path, method: str) -> None:
    db = tmp_path / "mp.db"
    code = (
        _GRAPH
        + """
if __name__ == "__main__":
    import multiprocessing as mp
    ctx = mp.get_context(sys.argv[2])
    procs = [ctx.Process(target=work, args=((sys.argv[1], k * 100, 100),)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print([p.exitcode for p in procs])
"""
    )
    script = tmp_path / "main.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script), str(db), method], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0 and done.stdout.strip() == "[0, 0]", done.stderr
    spans, distinct, branches = _counts(db)
    assert branches == 200  # one routing decision per invoke, none twice
    assert spans == distinct and spans % 200 == 0 and spans >= 200 * 4


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pool-spawn", "pool-fork", "executor-fork", "executor-spawn"])
def test_pool_workers_flush_at_their_exit(tmp_path: Path, kind: str) -> None:
    """``with Pool()`` terminates its workers with SIGTERM; ``ProcessPoolExecutor`` workers
    end with ``os._exit`` under fork: every span is stored either way, none twice."""
    db = tmp_path / "pool.db"
    code = (
        _GRAPH
        + """
if __name__ == "__main__":
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    kind, method = sys.argv[2].split("-")
    ctx = mp.get_context(method)
    jobs = [(sys.argv[1], k * 50, 50) for k in range(4)]
    if kind == "pool":
        with ctx.Pool(2) as pool:
            print(sum(pool.map(work, jobs)))
    else:
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            print(sum(pool.map(work, jobs)))
"""
    )
    script = tmp_path / "main.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script), str(db), kind], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0 and done.stdout.strip() == "200", done.stderr
    spans, distinct, branches = _counts(db)
    assert branches == 200
    assert spans == distinct and spans % 200 == 0 and spans >= 200 * 4


def test_os_fork_child_does_not_write_the_parents_queue_again(db_path: Path) -> None:
    """Records queued in the parent at fork time are the parent's: the child (which runs
    graphs of its own) writes only its own, so branch events are not doubled."""
    code = (
        _GRAPH
        + """
import os
# the parent's records stay queued:
handler = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=60))
graph = build()
for i in range(20):
    graph.invoke({"n": i}, {"callbacks": [handler]})
assert handler.stats["queued"] > 0
pid = os.fork()
if pid == 0:
    for i in range(20, 30):
        graph.invoke({"n": i}, {"callbacks": [handler]})
    sys.exit(0)  # a plain exit: atexit flushes the child's own records
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    )
    done = _run(code, str(db_path))
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
    spans, distinct, branches = _counts(db_path)
    assert branches == 30  # 20 from the parent, 10 from the child, none twice
    assert spans == distinct and spans % 30 == 0
