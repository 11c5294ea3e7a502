"""`ForwardingSink`: a network sink behind a queue and worker thread of its own.

The local writer hands every batch to a `ForwardingSink`, which only appends the records
to a dedicated `Dispatcher` (microseconds) and returns.  That dispatcher's worker does
the network I/O, so a LangSmith endpoint that takes seconds to answer (or never does)
delays neither the application nor the SQLite writes.  Its queue is bounded like the
local one: when the endpoint cannot keep up, new records are dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..dispatch import Dispatcher, Item
from .network import NetworkSink

logger = logging.getLogger("lc_observe")


class ForwardingSink:
    """Forward batches to ``sink`` through its own bounded queue and worker thread.

    Args:
        sink: the network sink that does the sending.
        max_queue: records waiting for the network at most; beyond it they are dropped
            (counted in ``stats()["dropped"]``).
        timeout: seconds `flush` (without a timeout), `shutdown` and the exit flush wait
            for the network at most; then pending retries are abandoned.
        schedule_delay: seconds the worker waits to fill a batch.
    """

    def __init__(
        self,
        sink: NetworkSink,
        *,
        max_queue: int = 100_000,
        timeout: float = 5.0,
        schedule_delay: float = 0.25,
    ) -> None:
        self.sink = sink
        self.label = sink.label
        self.timeout = timeout
        self.dispatcher = Dispatcher(
            [sink],
            max_queue=max_queue,
            batch_size=sink.batch_size,
            schedule_delay=schedule_delay,
            exit_timeout=timeout,
            name=f"lc_observe-{sink.label}",
        )
        # At exit, dispatchers close newest first: the local writer (created after this one)
        # has flushed into this queue by the time this hook runs.
        self.dispatcher.before_exit.append(self.shutdown)

    def export(self, batch: Sequence[Item]) -> int:
        """Queue the batch for the network worker; returns how many records were queued."""
        submit = self.dispatcher.submit
        return sum(submit(kind, record) for kind, record in batch)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout``, default `timeout`) until the queue was sent or given up."""
        return self.dispatcher.flush(self.timeout if timeout is None else timeout)

    def close(self) -> None:
        """Nothing here: the local writer (which calls this) must never wait for the network.
        The queue is closed by `shutdown`: from ``ObsHandler.close`` or at exit, after the
        local writer has flushed into it."""

    def shutdown(self, timeout: float | None = None) -> bool:
        """Send what is queued within ``timeout`` (default `timeout`), then stop; what is
        still unsent is abandoned, counted and logged.  True if everything was handled."""
        timeout = self.timeout if timeout is None else timeout
        done = self.dispatcher.flush(timeout)
        if not done:
            # Stop retrying: the worker then counts what is left as failed instead of
            # sleeping through backoffs (a request in flight ends on its own; the worker is
            # a daemon thread and never holds up the exit).
            self.sink.cancel()
            left = self.dispatcher.stats()
            logger.warning(
                "lc_observe: %s mirror stopped with %d records not sent after %.1f s "
                "(endpoint slow or down; they count as failed); see handler.stats[%r]",
                self.label,
                left.queued + left.in_flight,
                timeout,
                self.label,
            )
        self.dispatcher.close(timeout if done else 0.0, report=False)  # logged just above
        return done

    def stats(self) -> dict[str, Any]:
        """The sink's counters plus the queue's: ``sent``, ``failed``, ``retries``,
        ``dropped`` (queue full), ``queued`` and ``last_error``."""
        queue = self.dispatcher.stats()
        return {**self.sink.counters(), "dropped": queue.dropped, "queued": queue.queued}
