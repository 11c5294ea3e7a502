"""What every network exporter shares: bounded retry with backoff, counters, one log line.

A network sink turns a batch into a payload (`NetworkSink.prepare`) and sends it
(`NetworkSink.deliver`, which raises on failure).  `NetworkSink.send` retries a failed
payload a bounded number of times with jittered exponential backoff -- the one place a
payload is retried: a sink whose client retries on its own (an OpenTelemetry
``SpanExporter``) sends with ``RetryPolicy(attempts=1)``.  What still fails is counted and
logged once; a request that timed out counts as ``unknown`` (the server may have stored
it), not ``failed``.  While the endpoint keeps failing, later payloads get a single attempt
each (until one succeeds), so an outage costs one request per batch.

A network sink is an exporter: it never queues or runs threads itself.  `ObsHandler` gives
each destination its own bounded queue and worker (`lc_observe.pipeline`), so the network
never slows the application or the local file.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lc_observe.pipeline.processor import Item

logger = logging.getLogger("lc_observe")


@dataclass(frozen=True)
class RetryPolicy:
    """How a network sink retries a payload that failed.

    Attributes:
        attempts: tries per payload, the first one included (>= 1).
        initial_backoff: seconds before the first retry; doubled for each further retry.
        max_backoff: the longest wait between two tries.
    """

    attempts: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("RetryPolicy needs attempts >= 1 and non-negative backoffs")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), with jitter."""
        delay = min(self.max_backoff, self.initial_backoff * 2**retry)
        return delay * random.uniform(0.5, 1.0)


class _QuietOnMirrorThreads(logging.Filter):
    """Drop a client library's per-request log records raised on our mirror threads: the
    sink logs each outage once itself and counts what failed."""

    def __init__(self, thread_prefix: str) -> None:
        super().__init__()
        self.thread_prefix = thread_prefix

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.threadName or ""
        return not (name.startswith(self.thread_prefix) and record.levelno < logging.CRITICAL)


_quieted: set[str] = set()


def quiet_on_mirror_threads(logger_name: str, label: str) -> None:
    """Silence ``logger_name`` on the worker threads of the ``label`` mirror (idempotent)."""
    if logger_name not in _quieted:
        _quieted.add(logger_name)
        logging.getLogger(logger_name).addFilter(_QuietOnMirrorThreads(f"lc_observe-{label}"))


def is_timeout(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) is a request that timed out after it was sent,
    so the server may have stored it: read timeouts, not connection timeouts."""
    seen = 0
    while error is not None and seen < 10:
        names = {cls.__name__ for cls in type(error).__mro__}
        if "ConnectTimeout" in names or "ConnectTimeoutError" in names:
            return False
        if isinstance(error, TimeoutError) or any("Timeout" in name for name in names):
            return True
        if "read timed out" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


class NetworkSink:
    """Base class of sinks that send records over the network.

    Subclasses implement `prepare` (records -> payload, no I/O) and `deliver` (send it,
    raise on failure); `export` does the rest.  Counters (read them through
    ``handler.stats[label]``, see ``docs/reliability.md``): ``sent``, ``failed`` and
    ``unknown`` (timed out: maybe stored) in `unit`, ``retries`` and ``last_error``.
    """

    #: key of this sink's counters in ``ObsHandler.stats``.
    label = "network"
    #: records per batch its processor hands over.
    batch_size = 100
    #: what the counters count: "records" (no prefix) or e.g. "spans" (``spans_sent`` ...).
    unit = "records"
    #: optional public fields this sink needs the privacy stage to add (`pipeline.privacy`).
    wants: frozenset[str] = frozenset()
    #: seconds a flush, close or exit waits for this destination at most.
    timeout = 5.0

    def __init__(self, target: str, retry: RetryPolicy | None = None) -> None:
        self.target = target
        self.retry = retry or RetryPolicy()
        self.sent = 0
        self.failed = 0
        self.unknown = 0  # timed out after sending: the server may have stored it
        self.retries = 0
        self.last_error: str | None = None
        self._failing = False  # the last payload failed: one attempt per payload until one works
        self._cancelled = threading.Event()
        self._convert_logged = False

    # -- to implement ------------------------------------------------------------------------

    def prepare(self, batch: Sequence[Item]) -> tuple[Any, int] | None:
        """``(payload, records it carries)`` for ``batch``; ``None``: nothing to send now."""
        raise NotImplementedError

    def deliver(self, payload: Any) -> None:
        """Send ``payload``; raise on any failure."""
        raise NotImplementedError

    # -- sink protocol ---------------------------------------------------------------------

    def export(self, batch: Sequence[Item]) -> int:
        """Send a batch (with retries); always returns ``len(batch)``: the batch was taken
        over, and what could not be delivered is counted in `failed`."""
        try:
            prepared = self.prepare(batch)
        except Exception as exc:  # a record we cannot convert must not stop the mirror
            self.failed += len(batch)
            self.last_error = _describe(exc)
            if not self._convert_logged:
                self._convert_logged = True
                logger.exception("lc_observe: %s mirror could not convert a batch", self.label)
            return len(batch)
        if prepared is not None:
            self.send(*prepared)
        return len(batch)

    def send(self, payload: Any, records: int) -> bool:
        """Deliver ``payload`` (carrying ``records`` records) with bounded retries."""
        attempts = 1 if self._failing else self.retry.attempts
        error: BaseException | None = None
        for attempt in range(attempts):
            if self._cancelled.is_set():
                break
            try:
                self.deliver(payload)
            except Exception as exc:
                error = exc
                if attempt + 1 < attempts:
                    self.retries += 1
                    self._cancelled.wait(self.retry.backoff(attempt))
                continue
            self.sent += records
            if self._failing:
                self._failing = False
                logger.info("lc_observe: %s mirror reaches %s again", self.label, self.target)
            return True
        self._give_up(records, error)
        return False

    def cancel(self) -> None:
        """Stop retrying: pending and later payloads fail at once (used when closing)."""
        self._cancelled.set()

    def force_flush(self, timeout: float | None = None) -> bool:
        """Send what the sink holds back (nothing, unless a subclass buffers)."""
        return True

    def shutdown(self) -> None:
        """Send what is held back, release resources (subclasses extend)."""

    def close(self) -> None:
        """`shutdown` (the older name)."""
        self.shutdown()

    def counters(self) -> dict[str, Any]:
        """``sent``, ``failed``, ``unknown`` (prefixed by `unit` unless records),
        ``retries`` and ``last_error`` (a snapshot)."""
        prefix = "" if self.unit == "records" else f"{self.unit}_"
        return {
            f"{prefix}sent": self.sent,
            f"{prefix}failed": self.failed,
            f"{prefix}unknown": self.unknown,
            "retries": self.retries,
            "last_error": self.last_error,
        }

    # -- internals -------------------------------------------------------------------------

    def _give_up(self, records: int, error: BaseException | None) -> None:
        timed_out = is_timeout(error)
        if timed_out:
            self.unknown += records
        else:
            self.failed += records
        self.last_error = "cancelled while closing" if error is None else _describe(error)
        if not self._failing:  # once per outage, not once per batch
            logger.warning(
                "lc_observe: %s mirror could not send %d %s to %s (%s). They are counted in "
                "handler.stats[%r] (%s); the application and the local store are not affected.",
                self.label,
                records,
                self.unit,
                self.target,
                self.last_error,
                self.label,
                "unknown: the request timed out, the server may have stored them"
                if timed_out
                else "failed",
            )
        self._failing = True


def _describe(error: BaseException) -> str:
    """An error on one line, short (client errors wrap their cause over several lines)."""
    text = " ".join(line.strip() for line in str(error).strip().splitlines())
    return f"{type(error).__name__}: {text}"[:300]
