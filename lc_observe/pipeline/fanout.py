"""capture -> intake queue -> privacy stage -> fan-out -> one processor per destination.

::

    ObsHandler callbacks (app thread: in-memory bookkeeping only)
        │ submit(kind, record)                     bounded; full: stats["dropped"]
        ▼
    intake processor ── worker "lc_observe-intake" ──▶ PrivacyStage.batch  (once per record)
        │ FanOut.export(public batch)
        ├──▶ "local"      processor ─▶ SQLiteSink ─▶ Prometheus ─▶ alerts ─▶ evaluators
        ├──▶ "langsmith"  processor ─▶ LangSmithSink
        ├──▶ "otlp"       processor ─▶ OtlpSink
        └──▶ <label>      processor ─▶ any sink given in ``sinks=[...]``

Worker threads: ``lc_observe-intake``, ``lc_observe-writer`` (the local file) and
``lc_observe-<label>`` per other destination.  Every destination has a bounded queue and a
worker of its own (`Dispatcher`, shaped as
OpenTelemetry's ``BatchSpanProcessor``) in front of exporters that share one contract
(`lc_observe.pipeline.processor.Sink`: ``export`` / ``force_flush`` / ``shutdown``): a destination
that is slow or full drops (and counts) only its own records.  Every sink, the user's
included, sits behind the privacy stage.  Shutdown order is by design: the intake first,
then the local file, then the network mirrors, each within its own time bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lc_observe.pipeline.processor import Dispatcher, Item, Sink, _live

logger = logging.getLogger("lc_observe")

#: The key of the local destination's counters.  Its counters are also the top-level ones.
LOCAL = "local"


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


@dataclass
class Destination:
    """One destination: its label, its processor and the exporters it feeds (in order)."""

    label: str
    processor: Dispatcher
    exporters: list[Any]
    #: seconds a flush without a timeout, a close or the exit flush waits for it at most
    #: (``None``: no bound but the caller's)
    timeout: float | None

    @property
    def network(self) -> bool:
        return self.label != LOCAL and self.timeout is not None

    def stats(self) -> dict[str, Any]:
        """The processor's counters and, for a network sink, the exporter's own."""
        queue = self.processor.stats()
        counters: dict[str, Any] = {
            "enqueued": queue.enqueued,
            "dropped": queue.dropped,
            "queued": queue.queued,
            "in_flight": queue.in_flight,
            "lost": queue.lost,
        }
        own = getattr(self.exporters[0], "counters", None)
        if callable(own):
            counters.update(own())
        else:
            counters["written"] = queue.written
            counters["failed"] = queue.failed
        return counters


class FanOut:
    """The intake's exporter: hands every public batch to each destination's queue."""

    def __init__(self, destinations: Sequence[Destination]) -> None:
        self.destinations = list(destinations)

    def export(self, batch: Sequence[Item]) -> int:
        for destination in self.destinations:
            destination.processor.submit_many(batch)
        return len(batch)

    def shutdown(self) -> None:
        """Nothing: the pipeline shuts the destinations down, in order."""


class Pipeline:
    """The processors of one handler, started, flushed and shut down in order.

    Args:
        prepare: the privacy stage (``PrivacyStage.batch``), run once per record.
        local: the local exporters, in order (the first one decides what counts as
            written); empty: no local destination.
        sinks: the other destinations' exporters, one destination each.
        max_queue / batch_size / schedule_delay / exit_timeout: the intake's and the
            local destination's queue (see `lc_observe.config.Queue`).
    """

    def __init__(
        self,
        prepare: Callable[[list[Item]], list[Item]],
        local: Sequence[Sink],
        sinks: Sequence[Any],
        *,
        max_queue: int,
        batch_size: int,
        schedule_delay: float,
        exit_timeout: float,
    ) -> None:
        self.exit_timeout = exit_timeout
        destinations: list[Destination] = []
        if local:
            processor = Dispatcher(
                local,
                max_queue=max_queue,
                batch_size=batch_size,
                schedule_delay=schedule_delay,
                exit_timeout=exit_timeout,
                name="lc_observe-writer",
                owned=True,
            )
            destinations.append(Destination(LOCAL, processor, list(local), None))
        labels = {LOCAL}
        for sink in sinks:
            label = _unique(getattr(sink, "label", None) or type(sink).__name__, labels)
            timeout = getattr(sink, "timeout", None) if hasattr(sink, "deliver") else None
            processor = Dispatcher(
                [sink],
                max_queue=max_queue,
                batch_size=getattr(sink, "batch_size", batch_size),
                schedule_delay=schedule_delay,
                exit_timeout=exit_timeout if timeout is None else timeout,
                name=f"lc_observe-{label}",
                owned=True,
            )
            destinations.append(Destination(label, processor, [sink], timeout))
        self.destinations = destinations
        self.fanout = FanOut(destinations)
        self.intake = Dispatcher(
            [self.fanout],
            max_queue=max_queue,
            batch_size=batch_size,
            schedule_delay=schedule_delay,
            exit_timeout=exit_timeout,
            name="lc_observe-intake",
            owned=True,
        )
        self.intake.prepare = prepare
        #: called first at exit (the handler queues its open runs)
        self.before_exit: list[Callable[[], None]] = []
        self._closed = False
        _live.add(self)

    @property
    def primary(self) -> Destination:
        """The destination behind the top-level counters: the local file, else the first."""
        return self.destinations[0]

    @property
    def mirrors(self) -> list[Destination]:
        return [d for d in self.destinations if d.network]

    # -- control -------------------------------------------------------------------------------

    def submit(self, kind: str, record: dict[str, Any]) -> bool:
        return self.intake.submit(kind, record)

    def flush(self, timeout: float | None = None, *, local_only: bool = False) -> bool:
        """Everything submitted so far through the intake and into every destination (the
        network ones each bounded by their own timeout when ``timeout`` is None), or into
        the local file only."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self.intake.flush(timeout)
        for destination in self.destinations:
            if local_only and destination.label != LOCAL:
                continue
            bound = _remaining(deadline)
            if bound is None and destination.network:
                bound = destination.timeout
            done = destination.processor.flush(bound) and done
        return done

    def close(self, timeout: float | None = None, *, at_exit: bool = False) -> bool:
        """Flush and stop: intake, local file, then the mirrors (each within its bound).
        Idempotent.  What a destination could not finish in time is counted (``lost``)
        and logged once."""
        if self._closed:
            return True
        self._closed = True
        _live.discard(self)
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self.intake.close(timeout, at_exit=at_exit)
        for destination in self.destinations:
            if not destination.network:
                done = destination.processor.close(_remaining(deadline), at_exit=at_exit) and done
        for destination in self.mirrors:
            done = self._close_mirror(destination, deadline, at_exit) and done
        return done

    def exit_flush(self) -> None:
        """At exit: open runs queued, then `close` within ``exit_timeout`` (the local part)
        and each mirror's own timeout."""
        for hook in self.before_exit:
            hook()
        self.close(self.exit_timeout, at_exit=True)

    def _close_mirror(
        self, destination: Destination, deadline: float | None, at_exit: bool
    ) -> bool:
        bound = destination.timeout
        if deadline is not None:
            bound = min(bound or 0.0, _remaining(deadline) or 0.0)
        processor = destination.processor
        done = processor.flush(bound)
        if not done:
            # Stop retrying: the batch in flight fails at once instead of sleeping through
            # backoffs (a request in flight ends on its own; the worker is a daemon thread).
            cancel = getattr(destination.exporters[0], "cancel", None)
            if cancel is not None:
                cancel()
            left = processor.stats()
            logger.warning(
                "lc_observe: %s mirror stopped with %d records not sent after %.1f s "
                "(endpoint slow or down; they are counted as lost); see handler.stats[%r]",
                destination.label,
                left.queued + left.in_flight,
                bound or 0.0,
                destination.label,
            )
        return processor.close(bound if done else 0.0, at_exit=at_exit, report=False) and done

    def stats(self) -> dict[str, Any]:
        """Top-level counters (the intake and the primary destination: the local file, or
        the first sink without one) and one dict per destination but the local file."""
        intake = self.intake.stats()
        primary = self.primary.processor.stats()
        counters: dict[str, Any] = {
            "enqueued": intake.enqueued,
            "written": primary.written,
            "dropped": intake.dropped + primary.dropped,
            "failed": intake.failed + primary.failed,
            "queued": intake.queued + primary.queued,
            "in_flight": intake.in_flight + primary.in_flight,
            "lost": intake.lost + primary.lost,
        }
        for destination in self.destinations:
            if destination.label != LOCAL:
                counters[destination.label] = destination.stats()
        return counters


def _unique(label: str, taken: set[str]) -> str:
    name, n = label, 2
    while name in taken:
        name, n = f"{label}-{n}", n + 1
    taken.add(name)
    return name
