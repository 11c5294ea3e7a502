"""Exceptions raised by lc_observe's public API.

The handler itself never raises into user code; these come from `TraceStore`,
configuration checks and the CLI, and each message says what to do.
"""

from __future__ import annotations


class LcObserveError(Exception):
    """Base class of every lc_observe error."""


class StoreError(LcObserveError):
    """A problem with an lc_observe database file."""


class DatabaseNotFoundError(StoreError, FileNotFoundError):
    """The database file does not exist."""


class ForeignDatabaseError(StoreError):
    """The file exists but is not an lc_observe database."""


class SchemaVersionError(StoreError):
    """The database was written by a newer lc_observe than this one."""


class TraceNotFoundError(StoreError, KeyError):
    """No trace (or span) with the requested id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
