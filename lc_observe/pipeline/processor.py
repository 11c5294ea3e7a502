"""The processor of one destination: a bounded queue and one background worker.

The shape of OpenTelemetry's ``BatchSpanProcessor``: `Dispatcher.submit` only appends to
a deque (or counts a drop when the queue is full); a daemon worker thread wakes when a
batch is ready or every ``schedule_delay`` seconds, and hands the batch to its exporters
(`Sink`: ``export`` / ``force_flush`` / ``shutdown``).  ``flush`` waits until everything
submitted before it was handled.  An `ObsHandler` runs one processor in front of the
privacy stage and one per destination (`lc_observe.pipeline`); an ``atexit`` hook shuts
every live pipeline (and stand-alone processor) down so a script that never calls
``flush()`` still loses nothing.

Process lifecycle (one place for all of it): the exit flush also runs on SIGTERM (then
the process ends by the signal) and from multiprocessing's finalizers in child processes;
``os.register_at_fork`` gives a forked child empty queues.  Whatever an exit flush cannot
write in time is counted and logged once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("lc_observe")

#: A queued item: ``(record_type, record_dict)``.
Item = tuple[str, dict[str, Any]]

_FLUSH = "__flush__"  # queue marker type, never handed to a sink


class Sink(Protocol):
    """The exporter contract of every destination (as OpenTelemetry's ``SpanExporter``).

    Runs on its destination's worker thread only.  An `ObsHandler`'s sinks receive public
    records (`lc_observe.pipeline.privacy`): JSON-safe, bounded, redacted, without the handler's
    private keys; records of one batch may share values, so a sink treats them as
    read-only.  A sink does not queue, batch or run threads: its processor does.

    ``force_flush`` (send what the sink itself holds back) and ``shutdown`` are optional;
    a sink with a ``close()`` method instead of ``shutdown()`` keeps working.
    """

    def export(self, batch: Sequence[Item]) -> int:
        """Persist a batch; return how many items were persisted (the rest count as failed)."""
        ...

    def shutdown(self) -> None:
        """Send what is held back, release resources; called once, on the worker thread."""
        ...


def shutdown_sink(sink: Any) -> None:
    """Call a sink's ``shutdown()`` (or the older ``close()``), logging what it raises."""
    stop = getattr(sink, "shutdown", None) or getattr(sink, "close", None)
    if stop is None:
        return
    try:
        stop()
    except Exception:
        logger.exception("lc_observe: shutting sink %s down failed", type(sink).__name__)


@dataclass
class DispatchStats:
    """Counters of what went through the queue (a snapshot, see `ObsHandler.stats`)."""

    enqueued: int = 0
    written: int = 0
    dropped: int = 0
    failed: int = 0
    queued: int = 0
    in_flight: int = 0  # records of the batch the worker is exporting right now
    lost: int = 0  # still unwritten when close or the exit flush ran out of time

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class ExitParticipant(Protocol):
    """What the exit flush shuts down: a pipeline, or a processor of its own."""

    def exit_flush(self) -> None:
        """Flush and close within the participant's own exit time bound."""
        ...


#: shut down at exit (pipelines and stand-alone processors)
_live: weakref.WeakSet[Any] = weakref.WeakSet()
#: every processor, owned or not: each forgets its parent's queue in a forked child
_processors: weakref.WeakSet[Dispatcher] = weakref.WeakSet()
_exiting = False  # the exit flush is running (atexit, SIGTERM or a multiprocessing finalizer)
_sigterm_during_exit = False  # a SIGTERM arrived meanwhile: honour it once the flush is done


def flush_all_at_exit() -> None:
    """Shut every live pipeline and processor down, each within its own bounds; once per process.

    Runs from ``atexit``, from the SIGTERM hook and from multiprocessing's finalizers (which
    run in children that end with ``os._exit``, where ``atexit`` never does).  What cannot
    be written in time is counted and logged (see `Dispatcher.close`).
    """
    global _exiting
    if _exiting:
        return
    _exiting = True
    # Each pipeline orders its own destinations (local file first, then mirrors).
    for participant in list(_live):
        try:
            participant.exit_flush()
        except Exception:  # pragma: no cover - never fail interpreter shutdown
            logger.exception("lc_observe: flush at exit failed")


def _exit_hook() -> None:
    flush_all_at_exit()
    if _sigterm_during_exit:  # the flush was not aborted; now end as the SIGTERM asked
        _die_by(signal.SIGTERM)


atexit.register(_exit_hook)

_sigterm_installed = False


def install_sigterm_exit() -> bool:
    """On SIGTERM, flush every handler (bounded by its ``exit_timeout``), then end the
    process as SIGTERM's default action does (killed by the signal), even while other
    non-daemon threads are busy.

    Only when SIGTERM still has its default action (nobody else handles it) and only from
    the main thread.  A SIGTERM that arrives while the exit flush runs (at normal exit or
    after a first SIGTERM) never aborts it: the process ends by that signal once the flush
    is done.  Returns True when the hook is (already) installed.
    """
    global _sigterm_installed
    if _sigterm_installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except (ValueError, OSError, AttributeError):  # no signals here (embedded interpreter ...)
        return False
    _sigterm_installed = True
    return True


def _exit_on_sigterm(signum: int, frame: object) -> None:
    global _sigterm_during_exit
    if _exiting:  # the exit flush is running (it is bounded): let it finish
        _sigterm_during_exit = True
        return
    try:
        flush_all_at_exit()
    finally:
        _die_by(signum)


def _die_by(signum: int) -> None:
    """End the process now, killed by ``signum`` (its default action), whatever other
    threads are doing; ``os._exit`` if the signal somehow does not end it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream
            stream.flush()
    try:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    finally:
        os._exit(128 + signum)


# -- processes: fork and multiprocessing ---------------------------------------------------------

_mp_hooked_pid: int | None = None


class _AfterForkToken:
    """A weakref-able key for ``multiprocessing.util.register_after_fork``."""


_after_fork_token = _AfterForkToken()


def _hook_multiprocessing(_: object = None) -> None:
    """Flush at the end of a multiprocessing child: register a ``multiprocessing.util``
    finalizer, which ``Process._bootstrap`` runs before ``os._exit`` (fork, forkserver,
    spawn, ``Pool`` and ``ProcessPoolExecutor`` workers alike).  Once per process; a child
    started by fork registers again after multiprocessing cleared the inherited finalizers.
    """
    global _mp_hooked_pid
    if _mp_hooked_pid == os.getpid():
        return
    _mp_hooked_pid = os.getpid()
    try:
        from multiprocessing import util
    except ImportError:  # pragma: no cover - a stripped-down interpreter
        return
    util.Finalize(None, flush_all_at_exit, exitpriority=100)
    util.register_after_fork(_after_fork_token, _rehook_after_fork)


def _rehook_after_fork(_: object) -> None:
    global _mp_hooked_pid
    _mp_hooked_pid = None
    _hook_multiprocessing()


def _after_fork_in_child() -> None:
    """``os.register_at_fork`` hook: a forked child starts with empty queues.

    What the parent had queued is the parent's to write (written here too, it would be
    stored twice); its worker threads do not exist here; its locks may be held forever.
    """
    global _exiting, _sigterm_during_exit, _mp_hooked_pid
    _exiting = _sigterm_during_exit = False
    _mp_hooked_pid = None
    for dispatcher in list(_processors):
        dispatcher._reset_after_fork()
    if _processors:
        _hook_multiprocessing()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Dispatcher:
    """Bounded queue + one batching worker thread.

    Args:
        sinks: where batches go, in order; the first one decides what counts as written.
        max_queue: records held in memory at most; beyond it new records are dropped and counted.
        batch_size: records handed to the sinks at once.
        schedule_delay: seconds the worker waits for a full batch before writing what it has.
        exit_timeout: seconds the ``atexit`` flush may take at most.
        idle_exit: seconds without records after which the worker thread ends (restarted on
            demand), so handlers that are dropped leave no thread behind.
        name: the worker thread's name.
        owned: a pipeline shuts this processor down (at exit too); otherwise the exit
            flush does, on its own.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        schedule_delay: float = 0.2,
        exit_timeout: float = 10.0,
        idle_exit: float = 30.0,
        name: str = "lc_observe-writer",
        owned: bool = False,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be >= 1")
        if schedule_delay <= 0:
            raise ValueError("schedule_delay must be > 0 seconds")
        self.sinks = list(sinks)
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.schedule_delay = schedule_delay
        self.exit_timeout = exit_timeout
        self.idle_exit = idle_exit
        self.name = name
        self.before_exit: list[Callable[[], None]] = []
        #: called in a forked child, after this dispatcher dropped the parent's queue
        self.after_fork: list[Callable[[], None]] = []
        #: turns each batch into what the sinks receive (the privacy stage), on the worker
        self.prepare: Callable[[list[Item]], list[Item]] | None = None
        self._queue: deque[Item] = deque()
        self._wake = threading.Event()
        self._count_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._busy = False  # the worker holds a batch it has not finished exporting
        self._in_flight = 0
        self._enqueued = 0
        self._dropped = 0
        self._written = 0
        self._failed = 0
        self._lost = 0
        self._closed = False
        self._drop_logged = False
        self._thread: threading.Thread | None = None
        self._owned = owned
        if not owned:
            _live.add(self)
        _processors.add(self)
        _hook_multiprocessing()

    # -- callback side -------------------------------------------------------------------------

    def submit(self, kind: str, record: dict[str, Any]) -> bool:
        """Queue one record; never blocks.  Returns False (and counts) when it was dropped."""
        if self._closed or len(self._queue) >= self.max_queue:
            with self._count_lock:
                self._dropped += 1
            if not self._drop_logged:
                self._drop_logged = True
                full = f"queue of {self.name} is full ({self.max_queue})"
                reason = "handler is closed" if self._closed else full
                logger.warning(
                    "lc_observe: dropping records because the %s; see handler.stats. "
                    "Raise the queue bound (Queue(max_size=...)) or call flush() more often.",
                    reason,
                )
            return False
        with self._count_lock:
            self._enqueued += 1
        self._queue.append((kind, record))
        if self._thread is None:  # read after the append: see _retire
            self._start_worker()
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        return True

    def submit_many(self, items: Sequence[Item]) -> int:
        """Queue a batch (from another processor's worker); what does not fit is dropped
        and counted.  Returns how many were queued."""
        room = 0 if self._closed else max(0, self.max_queue - len(self._queue))
        taken = items if len(items) <= room else items[:room]
        if len(taken) < len(items):
            with self._count_lock:
                self._dropped += len(items) - len(taken)
            if not self._drop_logged:
                self._drop_logged = True
                logger.warning(
                    "lc_observe: dropping records because the queue of %s is %s; see "
                    "handler.stats. Raise the queue bound (Queue(max_size=...)).",
                    self.name,
                    "closed" if self._closed else f"full ({self.max_queue})",
                )
        if not taken:
            return 0
        with self._count_lock:
            self._enqueued += len(taken)
        self._queue.extend(taken)
        if self._thread is None:  # read after the append: see _retire
            self._start_worker()
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        return len(taken)

    # -- control -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted so far was handled; True if it was in time.

        A marker goes through the FIFO queue behind the records: when the worker reaches it,
        everything submitted before this call has been exported.
        """
        if not self._queue and not self._busy:
            return True
        marker = threading.Event()
        self._queue.append((_FLUSH, {"event": marker}))  # markers bypass the bound
        self._start_worker()
        self._wake.set()
        return marker.wait(timeout)

    def close(
        self, timeout: float | None = None, *, at_exit: bool = False, report: bool = True
    ) -> bool:
        """Flush (within ``timeout``), stop the worker and close the sinks.  Idempotent.

        Records still unwritten when ``timeout`` runs out are counted (``stats().lost``),
        taken off the queue (the exporter never sees them) and, unless ``report`` is
        False, logged once with what to do about it.
        """
        if self._closed:
            return True
        flushed = self.flush(timeout)
        self._closed = True
        if not flushed:
            self._count_lost(timeout, at_exit, report)
            markers = [item for item in list(self._queue) if item[0] is _FLUSH]
            self._queue.clear()  # in place: the worker may be draining this very deque
            self._queue.extend(markers)
        self._wake.set()
        thread = self._thread
        # A worker that could not flush in time is stuck in a sink: waiting more only delays.
        if flushed and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0 if timeout is None else max(0.0, min(timeout, 1.0)))
        if thread is None or not thread.is_alive():
            self._close_sinks()
        _live.discard(self)
        return flushed

    def exit_flush(self) -> None:
        """The exit flush of a stand-alone processor: its hooks, then `close`."""
        for hook in self.before_exit:
            hook()
        self.close(timeout=self.exit_timeout, at_exit=True)

    def stats(self) -> DispatchStats:
        """A snapshot of the counters."""
        return DispatchStats(
            enqueued=self._enqueued,
            written=self._written,
            dropped=self._dropped,
            failed=self._failed,
            queued=sum(1 for kind, _ in list(self._queue) if kind is not _FLUSH),
            in_flight=self._in_flight,
            lost=self._lost,
        )

    def _count_lost(self, timeout: float | None, at_exit: bool, report: bool) -> None:
        """Count (and log once) what a close that ran out of time leaves unwritten."""
        left = self.stats()
        lost = left.queued + left.in_flight
        self._lost += lost
        if not report or lost == 0:
            return
        when = "at exit" if at_exit else "by close()"
        fix = "ObsHandler(queue=Queue(exit_timeout=...))" if at_exit else "close(timeout=...)"
        logger.warning(
            "lc_observe: %d records were not written %s: the %s thread ran out of its %.1f s. "
            "They are lost. Give it more time (a larger %s) or call handler.flush() before "
            "the program ends.",
            lost,
            when,
            self.name,
            timeout or 0.0,
            fix,
        )

    def _reset_after_fork(self) -> None:
        """In a forked child: forget the parent's queue, worker, locks and counters."""
        self._queue = deque()
        self._wake = threading.Event()
        self._count_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread = None
        self._busy = False
        self._in_flight = 0
        self._enqueued = self._dropped = self._written = self._failed = self._lost = 0
        self._drop_logged = False
        for hook in self.after_fork:
            try:
                hook()
            except Exception:  # pragma: no cover - never break the child
                logger.exception("lc_observe: resetting after fork failed")

    # -- worker --------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            woken = self._wake.wait(self.schedule_delay)
            self._wake.clear()
            try:
                if self._queue:
                    idle_since = time.monotonic()
                self._drain()
            except Exception:  # pragma: no cover - the worker must survive anything
                self._busy = False
                logger.exception("lc_observe: writer loop failed; continuing")
            if self._closed and not self._queue:
                self._close_sinks()
                return
            if not woken and time.monotonic() - idle_since > self.idle_exit and self._retire():
                return

    def _retire(self) -> bool:
        """End an idle worker so an unused dispatcher holds no thread; the next submit restarts it.

        The order matters: the thread slot is cleared *before* the queue is checked, so a
        submit either lands in the queue before the check or sees the empty slot.
        """
        with self._start_lock:
            self._thread = None
            if self._queue:
                self._thread = threading.current_thread()
                return False
        return True

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            self._busy = True
            batch: list[Item] = []
            markers: list[threading.Event] = []
            try:
                while len(batch) < self.batch_size:
                    kind, record = queue.popleft()
                    if kind is _FLUSH:
                        markers.append(record["event"])
                        break  # everything before the marker must be exported first
                    batch.append((kind, record))
            except IndexError:
                pass
            if batch:
                self._in_flight = len(batch)
                self._export(batch)
                self._in_flight = 0
            self._busy = False
            for marker in markers:
                marker.set()

    def _export(self, batch: list[Item]) -> None:
        if self.prepare is not None:
            try:
                batch = self.prepare(batch)
            except Exception:  # pragma: no cover - the stage never raises per record
                logger.exception("lc_observe: preparing a batch failed; it is not written")
                with self._count_lock:
                    self._failed += len(batch)
                return
        written = 0
        for index, sink in enumerate(self.sinks):
            try:
                count = sink.export(batch)
            except Exception:
                logger.exception("lc_observe: sink %s failed on a batch", type(sink).__name__)
                count = 0
            if index == 0:
                written = count
        if not self.sinks:
            written = len(batch)
        with self._count_lock:
            self._written += written
            self._failed += len(batch) - written

    def _close_sinks(self) -> None:
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            shutdown_sink(sink)
