"""Exceptions raised by lc_observe's public API.

The handler itself never raises into user code; these come from `TraceStore`,
configuration checks and the CLI, and each message says what to do.
"""

from __future__ import annotations

from typing import Any


class LcObserveError(Exception):
    """Base class of every lc_observe error."""


class StoreError(LcObserveError):
    """A problem with an lc_observe database file."""


class DatabaseNotFoundError(StoreError, FileNotFoundError):
    """The database file does not exist."""


class ForeignDatabaseError(StoreError):
    """The file exists but is not an lc_observe database."""


class DatabaseLockedError(StoreError):
    """The database stayed locked by another writer through every retry."""


class SchemaVersionError(StoreError):
    """The database was written by a newer lc_observe than this one."""


class RunNotEndedError(LcObserveError):
    """Recorded (never raised) as the error of a run whose end LangChain never reported
    before its trace's root run ended: a stream its consumer closed early (LangChain ends
    the root run and none of the runs inside it), a task cancelled between its handlers'
    ends, or a callback that failed.  The span is closed as failed instead of staying
    ``running``."""

    def __init__(self, root_name: str) -> None:
        super().__init__(
            f"LangChain reported no end for this run before the root run {root_name!r} "
            "ended (a stream closed early by its consumer, a task cancelled at its end, or a "
            "callback that failed); lc_observe closed it when the trace ended"
        )


class BudgetExceededError(LcObserveError):
    """A `Budget` with ``action="raise"`` is used up: raised into the run before the next
    model call of its scope starts (the one exception lc_observe lets reach user code,
    and only when asked to).  ``event`` is the `BudgetExceeded` that used it up."""

    def __init__(self, event: Any) -> None:
        self.event = event
        spent = (
            f"${event.spent:.6g} of ${event.limit_value:.6g}"
            if event.metric == "cost_usd"
            else f"{event.spent:.0f} of {event.limit_value:.0f} tokens"
        )
        super().__init__(
            f"lc_observe budget {event.budget!r} is used up for {event.per}={event.scope!r} "
            f"(spent {spent}); no further model calls run for this {event.per}. Raise the "
            "limit, or catch lc_observe.BudgetExceededError where the app can stop gracefully"
        )


class TraceNotFoundError(StoreError, KeyError):
    """No trace (or span) with the requested id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingApiKeyError(LcObserveError):
    """LangSmith was asked for, but no API key is configured (``LANGSMITH_API_KEY``)."""


class AmbiguousIdError(TraceNotFoundError):
    """A piece of a trace id matches more than one trace (the message lists some)."""
