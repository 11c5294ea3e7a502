"""The application thread's worst case: the time of each ObsHandler callback (used by
``overhead.py``).

Every ``ObsHandler.on_*`` call is timed (wall time, ``perf_counter_ns``, what the
application waits for; and thread CPU time, what it spends itself) in four situations:

- **normal**: the benchmark agent through a default ObsHandler;
- **worker busy (5 MB payload)**: the same, and after every `BIG_EVERY` th invoke a chain
  run whose input is a 5 MB dict (a 5 MB document text and a list of 2,000 short records),
  so the intake worker is busy with it (privacy stage: serialize, bound, redact) while the
  next invokes' callbacks run.  The big run's own callbacks are reported on a line of
  their own (on_chain_start receives the 5 MB input);
- **sink stalled**: a sink whose ``export`` blocks until the block ends (its queue fills
  behind it);
- **LangSmith server not answering**: a LangSmith mirror whose server accepts connections
  (kernel backlog) but never answers (requests time out after 2 s).

Each situation runs in a child process of its own (``python _tail.py SITUATION``), so no
heap is left over from another measurement.

A callback's wall time includes waiting for the GIL when a worker holds it (up to the
interpreter's switch interval, 5 ms, or as long as a C call that does not release it) and
the garbage collections that happen to run in it (allocation there triggers them): the
table counts those and gives the longest ("GCs inside", "max GC µs").
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from _common import agent_input, build_agent, print_table
from _configs import silent_client
from langchain_core.runnables import RunnableLambda

from lc_observe import LangSmith, ObsHandler, Queue

BIG_EVERY = 5
WARMUP = 10
BIG_BYTES = 5_000_000


@dataclass
class Timings:
    """Per-call wall and CPU nanoseconds of the callbacks, per tag (``agent``, ``big``),
    and the garbage collections that ran inside a callback (nanoseconds each)."""

    wall: dict[str, list[int]] = field(default_factory=dict)
    cpu: dict[str, list[int]] = field(default_factory=dict)
    gc_pauses: dict[str, list[int]] = field(default_factory=dict)
    tag: str = "agent"
    inside: int = 0  # the thread ident of a callback in progress, or 0
    _gc_start: int = 0

    def add(self, wall: int, cpu: int) -> None:
        self.wall.setdefault(self.tag, []).append(wall)
        self.cpu.setdefault(self.tag, []).append(cpu)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` hook: time the collections that run inside a callback."""
        if self.inside != threading.get_ident():
            return
        if phase == "start":
            self._gc_start = time.perf_counter_ns()
        elif self._gc_start:
            pause = time.perf_counter_ns() - self._gc_start
            self.gc_pauses.setdefault(self.tag, []).append(pause)
            self._gc_start = 0


@contextmanager
def timed_callbacks(timings: Timings) -> Iterator[Timings]:
    """Time every ``ObsHandler.on_*`` call into ``timings`` during the block."""
    originals = {
        name: method
        for name, method in vars(ObsHandler).items()
        if name.startswith("on_") and callable(method)
    }

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer = timings.inside
            timings.inside = threading.get_ident()
            wall, cpu = wall_clock(), cpu_clock()
            try:
                return method(*args, **kwargs)
            finally:
                timings.add(wall_clock() - wall, cpu_clock() - cpu)
                timings.inside = outer

        return wrapper

    for name, method in originals.items():
        setattr(ObsHandler, name, wrap(method))
    gc.callbacks.append(timings.on_gc)
    try:
        yield timings
    finally:
        gc.callbacks.remove(timings.on_gc)
        for name, method in originals.items():
            setattr(ObsHandler, name, method)


def big_input() -> dict[str, Any]:
    """A 5 MB input: a long text and many small records (both walked by the privacy stage)."""
    words = ("invoice", "total", "due", "customer", "shipment", "order", "refund", "note")
    text = " ".join(f"{words[i % len(words)]}{i % 97}" for i in range(BIG_BYTES // 8))
    rows = [
        {"id": i, "sku": f"SKU-{i:06d}", "qty": i % 7, "memo": words[i % len(words)]}
        for i in range(2000)
    ]
    return {"document": text[: BIG_BYTES - 100_000], "rows": rows}


class StalledSink:
    """A sink whose export blocks until `release` (a destination that stopped moving)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def export(self, batch: Any) -> int:
        self.released.wait(600)
        return len(batch)

    def release(self) -> None:
        self.released.set()

    def shutdown(self) -> None:
        self.release()


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback socket that accepts connections (kernel backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1024)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_scenario(
    graph: Any, handler: ObsHandler, invokes: int, big: bool = False, stuck: bool = False
) -> Timings:
    """Invoke the agent ``invokes`` times (and the 5 MB run every `BIG_EVERY` th invoke
    when ``big``) with ``handler``, every callback timed (warm-up not counted; flushed
    unless a destination is ``stuck``: its flush would only wait for its timeout)."""
    config = {"callbacks": [handler]}
    chain = RunnableLambda(lambda data: {"pages": len(data["document"]) // 4000}, name="big_doc")
    payload = big_input() if big else None
    for _ in range(WARMUP):
        graph.invoke(agent_input(), config)
    if not stuck:
        handler.flush(timeout=30)
    with timed_callbacks(Timings()) as timings:
        for index in range(invokes):
            timings.tag = "agent"
            graph.invoke(agent_input(), config)
            if payload is not None and index % BIG_EVERY == 0:
                timings.tag = "big"
                chain.invoke(payload, config)
    return timings


@contextmanager
def _scenario(name: str, tmpdir: str) -> Iterator[tuple[ObsHandler, bool, bool]]:
    """(handler, big payloads?, a destination stuck?) of one situation; closed after."""
    path = os.path.join(tmpdir, "tail.db")
    queue = Queue(handle_sigterm=False)
    if name == "sink stalled (export blocks)":
        sink = StalledSink()
        handler = ObsHandler(path, sinks=[sink], queue=queue)
        yield handler, False, True
        sink.release()
        handler.close(timeout=10)
    elif name == "LangSmith server not answering":
        with silent_server() as url:
            mirror = LangSmith(silent_client(url), project_name="tail", timeout=2.0)
            handler = ObsHandler(path, sinks=[mirror], queue=queue)
            yield handler, False, True
            handler.close(timeout=5)
    else:
        handler = ObsHandler(path, queue=queue)
        yield handler, name == "worker busy (5 MB payload)", False
        handler.close()


SCENARIOS = [
    "normal",
    "worker busy (5 MB payload)",
    "sink stalled (export blocks)",
    "LangSmith server not answering",
]


def child(name: str, invokes: int) -> list[dict[str, Any]]:
    """Run one situation in this (fresh) process; one summary per tag."""
    graph = build_agent()
    with tempfile.TemporaryDirectory() as tmpdir, _scenario(name, tmpdir) as setup:
        handler, big, stuck = setup
        timings = run_scenario(graph, handler, invokes, big=big, stuck=stuck)
        tracked = len(gc.get_objects())
    return [
        _summary(label, timings, tag, tracked)
        for tag, label in (("agent", name), ("big", f"{name}: the 5 MB run's own callbacks"))
        if tag in timings.wall
    ]


def _summary(label: str, timings: Timings, tag: str, tracked: int) -> dict[str, Any]:
    wall, cpu = timings.wall[tag], timings.cpu[tag]
    pauses = timings.gc_pauses.get(tag, [])
    return {
        "situation": label,
        "calls": len(wall),
        "p50_us": _percentile(wall, 0.5) / 1e3,
        "p99_us": _percentile(wall, 0.99) / 1e3,
        "p999_us": _percentile(wall, 0.999) / 1e3,
        "max_us": max(wall) / 1e3,
        "p99_cpu_us": _percentile(cpu, 0.99) / 1e3,
        "max_cpu_us": max(cpu) / 1e3,
        "gcs": len(pauses),
        "max_gc_us": max(pauses, default=0) / 1e3,
        "tracked": tracked,
    }


def measure(invokes: int) -> dict[str, dict[str, Any]]:
    """Run every situation in a child process of its own (no heap left over from another
    measurement: a garbage collection's pause grows with the objects alive), print one
    table of callback times; return the figures per situation."""
    results: list[dict[str, Any]] = []
    for name in SCENARIOS:
        command = [sys.executable, os.path.abspath(__file__), name, "--invokes", str(invokes)]
        out = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"the tail scenario {name!r} failed:\n{out.stderr[-3000:]}")
        results += json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n## One ObsHandler callback on the app thread (sync invoke, {invokes} invokes)\n")
    headers = ["situation", "calls", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "p99 CPU µs"]
    headers += ["max CPU µs", "GCs inside", "max GC µs", "GC-tracked objects"]
    keys = ["calls", "p50_us", "p99_us", "p999_us", "max_us", "p99_cpu_us", "max_cpu_us", "gcs"]
    rows = [
        [r["situation"], *(_cell(r[k]) for k in keys), _cell(r["max_gc_us"]), f"{r['tracked']:,}"]
        for r in results
    ]
    print_table(headers, rows)
    return {r["situation"]: r for r in results}


def _cell(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="one situation of the callback tail table")
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--invokes", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(child(args.scenario, args.invokes)))


if __name__ == "__main__":
    main()
