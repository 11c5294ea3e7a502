"""Where ObsHandler's CPU goes: thread CPU time per pipeline stage (used by ``overhead.py``).

Two views of the same block of invokes:

- **stages**: the methods that make up each stage are wrapped (at class level, for the block
  only) so that every call adds its thread CPU time (``time.thread_time``) to its stage:
  the callbacks on the app thread (every ``ObsHandler.on_*``), each worker's ``_drain``
  (queue handling and batching, everything the worker does per wake-up) and, inside it,
  the privacy stage, the fan-out, the SQLite sink's row building and its insert, each
  mirror's conversion (``prepare``) and delivery (``deliver``: the client library and the
  request).  A stage's own time is its inclusive time minus its wrapped children's.  The
  cost of the measuring itself (one ``thread_time`` call per wrapped call, calibrated on a
  no-op method) is subtracted.
- **threads**: the total CPU time of every thread of the process over the block
  (``time.pthread_getcpuclockid``): what the wrappers cannot see (a worker's idle wake-ups,
  the interpreter's garbage collection inside a stage, another library's threads);
- **garbage collection**: the wall time of every collection (``gc.callbacks``), by the
  thread it ran on (the one whose allocation triggered it).

A method that the library no longer has (renamed) is listed in `Meter.missing` and its
stage stays empty: the table then says so instead of failing.
"""

from __future__ import annotations

import functools
import gc
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: (stage, its parent stage or None): the order of the printed table.
STAGES: list[tuple[str, str | None]] = [
    ("app: ObsHandler callbacks (on_*)", None),
    ("intake: queue + batching", None),
    ("intake: privacy stage", "intake: queue + batching"),
    ("intake: fan-out to destination queues", "intake: queue + batching"),
    ("writer: queue + other local sinks", None),
    ("writer: SQLite insert + commit (FTS included)", "writer: queue + other local sinks"),
    ("writer: SQLite rows (JSON texts)", "writer: SQLite insert + commit (FTS included)"),
    ("langsmith: queue + batching", None),
    ("langsmith: convert to runs (prepare)", "langsmith: queue + batching"),
    ("langsmith: client encode + HTTP (deliver)", "langsmith: queue + batching"),
    ("otlp: queue + batching", None),
    ("otlp: convert to spans (prepare)", "otlp: queue + batching"),
    ("otlp: exporter (deliver)", "otlp: queue + batching"),
]

_WORKER_STAGE = {
    "lc_observe-intake": "intake: queue + batching",
    "lc_observe-writer": "writer: queue + other local sinks",
    "lc_observe-langsmith": "langsmith: queue + batching",
    "lc_observe-otlp": "otlp: queue + batching",
}


@dataclass
class Meter:
    """Thread CPU seconds and calls per stage, while `installed`."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missing: list[str] = field(default_factory=list)
    #: CPU seconds one wrapped call adds by being measured (calibrated)
    bias: float = 0.0

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def exclusive(self) -> dict[str, float]:
        """Seconds per stage, without its children's, without the measuring's own cost."""
        own = {
            stage: self.seconds.get(stage, 0.0) - self.bias * self.calls.get(stage, 0)
            for stage, _ in STAGES
        }
        for stage, parent in STAGES:
            if parent is not None:
                own[parent] -= self.seconds.get(stage, 0.0)
        return own


def _timed(meter: Meter, method: Callable[..., Any], stage: Callable[[Any], str | None]) -> Any:
    clock = time.thread_time

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = stage(self)
        if name is None:
            return method(self, *args, **kwargs)
        start = clock()
        try:
            return method(self, *args, **kwargs)
        finally:
            meter.seconds[name] += clock() - start
            meter.calls[name] += 1

    return wrapper


def _targets() -> list[tuple[Any, str, Callable[[Any], str | None]]]:
    """(class, method name, instance -> stage) of every measured method."""
    from lc_observe import ObsHandler
    from lc_observe.pipeline.fanout import FanOut
    from lc_observe.pipeline.privacy import PrivacyStage
    from lc_observe.pipeline.processor import Dispatcher
    from lc_observe.sinks.langsmith import LangSmithSink
    from lc_observe.sinks.sqlite import SQLiteSink

    def const(name: str) -> Callable[[Any], str]:
        return lambda _self: name

    targets: list[tuple[Any, str, Callable[[Any], str | None]]] = [
        (ObsHandler, name, const("app: ObsHandler callbacks (on_*)"))
        for name in sorted(vars(ObsHandler))
        if name.startswith("on_") and callable(getattr(ObsHandler, name))
    ]
    targets += [
        (Dispatcher, "_drain", lambda self: _WORKER_STAGE.get(self.name)),
        (PrivacyStage, "batch", const("intake: privacy stage")),
        (FanOut, "export", const("intake: fan-out to destination queues")),
        (SQLiteSink, "_rows", const("writer: SQLite rows (JSON texts)")),
        (SQLiteSink, "_write", const("writer: SQLite insert + commit (FTS included)")),
        (LangSmithSink, "prepare", const("langsmith: convert to runs (prepare)")),
        (LangSmithSink, "deliver", const("langsmith: client encode + HTTP (deliver)")),
    ]
    try:
        from lc_observe.sinks.otlp import OtlpSink
    except ImportError:
        return targets
    targets += [
        (OtlpSink, "prepare", const("otlp: convert to spans (prepare)")),
        (OtlpSink, "deliver", const("otlp: exporter (deliver)")),
    ]
    return targets


@contextmanager
def installed(meter: Meter) -> Iterator[Meter]:
    """Wrap the measured methods for the block; put the originals back after it."""
    originals: list[tuple[Any, str, Any]] = []
    for owner, name, stage in _targets():
        original = owner.__dict__.get(name)
        if original is None:
            meter.missing.append(f"{owner.__name__}.{name}")
            continue
        originals.append((owner, name, original))
        setattr(owner, name, _timed(meter, original, stage))
    meter.bias = calibrate()
    try:
        yield meter
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


class _Probe:
    def noop(self) -> None:
        pass


def calibrate(calls: int = 20_000) -> float:
    """CPU seconds a wrapped call reports for a method that does nothing (the median of
    five tries): the measuring's own share of every wrapped call."""
    scratch = Meter()
    probe = _Probe()
    timed = _timed(scratch, _Probe.noop, lambda _self: "probe")
    tries = []
    for _ in range(5):
        scratch.reset()
        for _ in range(calls):
            timed(probe)
        tries.append(scratch.seconds["probe"] / calls)
    return sorted(tries)[2]


# -- every thread's CPU time -------------------------------------------------------------------

_NUMBERED = re.compile(r"^Thread-\d+ \((.+)\)$|^(.+?)[-_]\d+(?:_\d+)?$")


def _group(name: str) -> str:
    """A thread's name without the counters Python adds (``Thread-7 (run)`` -> ``run``)."""
    match = _NUMBERED.match(name)
    if match:
        return match.group(1) or match.group(2)
    return name


def thread_cpu() -> dict[int, tuple[str, float]]:
    """Thread ident -> (name group, CPU seconds so far) for every live thread."""
    result = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            result[thread.ident] = (_group(thread.name), time.clock_gettime(clock))
        except (OSError, AttributeError):  # the thread just ended, or not on this OS
            continue
    return result


def thread_deltas(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per thread name group between two `thread_cpu` snapshots (threads
    started in between count from zero; threads that ended in between are not seen)."""
    spent: dict[str, float] = defaultdict(float)
    for ident, (name, seconds) in after.items():
        spent[name] += seconds - before.get(ident, (name, 0.0))[1]
    return dict(spent)


# -- garbage collection ------------------------------------------------------------------------


@dataclass
class GcMeter:
    """Seconds of garbage collection per thread name group, while `collecting`."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _started: dict[int, float] = field(default_factory=dict)

    def hook(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` entry (runs on the thread that triggered the collection)."""
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.perf_counter()
        elif ident in self._started:
            spent = time.perf_counter() - self._started.pop(ident)
            self.seconds[_group(threading.current_thread().name)] += spent


@contextmanager
def collecting(meter: GcMeter) -> Iterator[GcMeter]:
    """Time every garbage collection during the block."""
    gc.callbacks.append(meter.hook)
    try:
        yield meter
    finally:
        gc.callbacks.remove(meter.hook)
