"""Bounded retry of a write that meets a locked database (another process's long write).

The handler's SQLite sink retries its batches itself; the writes outside it (``purge``,
``push`` recording what it sent, a schema migration on open) go through `retry_locked`,
so every command that writes survives a lock as the handler does, and reports one clear
line (`DatabaseLockedError`) when the lock outlasts every retry.

>>> deleted = retry_locked(lambda: store.purge(cutoff), path="t.db", what="purge")  # doctest: +SKIP
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from lc_observe.errors import DatabaseLockedError

T = TypeVar("T")

#: Attempts of a write, the first one included (each waits the connection's busy timeout).
ATTEMPTS = 6


def is_locked(exc: BaseException) -> bool:
    """Whether an SQLite error means "another connection holds the lock": worth retrying."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry_locked(
    action: Callable[[], T],
    *,
    path: str,
    what: str,
    attempts: int = ATTEMPTS,
    backoff: float = 0.05,
) -> T:
    """Run ``action``; while it fails on a locked database, wait (jittered exponential
    backoff, at most 2 s) and run it again, ``attempts`` times in all.

    Raises:
        DatabaseLockedError: still locked after the last attempt (message says what to do).
    """
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            if attempt + 1 == attempts:
                raise DatabaseLockedError(
                    f"{path} stayed locked by another writer through {attempts} attempts, so "
                    f"{what} did not run ({exc}); try again once the other process's long "
                    "write is over, or give it more time with --busy-timeout SECONDS"
                ) from None
            time.sleep(min(2.0, backoff * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover
