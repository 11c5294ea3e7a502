"""How a reader opens the SQLite file: writable if it can, else read-only, else immutable.

A reader of a WAL database needs its ``-shm`` file (the shared index of the ``-wal``
file).  When the last connection closes, SQLite removes both; on a read-only mount, or in a
directory the reader may not write, it cannot create them again and even a ``mode=ro``
open fails with "unable to open database file".  `open_database` tries, in order:

1. ``read-write`` (unless asked for read-only): a normal connection;
2. ``read-only``: the URI ``file:...?mode=ro``, which still sees a live writer's commits;
3. ``immutable``: ``file:...?mode=ro&immutable=1``, which needs no ``-shm`` file and takes
   no lock: SQLite assumes nobody changes the file.  So a writer elsewhere may still be
   writing, its newer data (and anything still only in a ``-wal`` file left behind) is not
   seen.  A warning says so once per file, with the fix: a writable directory (or a copy
   of the file in one) gives live reads.

The first that can read the file's header wins; an error of another kind (not a database,
locked ...) is raised as it is.

>>> conn, access = open_database("/mnt/ro/traces.db", busy_timeout_ms=2000)  # doctest: +SKIP
>>> access                                                                  # doctest: +SKIP
'immutable'
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse

from lc_observe.storage.schema import configure

logger = logging.getLogger("lc_observe")

READ_WRITE, READ_ONLY, IMMUTABLE = "read-write", "read-only", "immutable"

#: SQLite's names of the errors that mean "cannot open (or write) here", not "bad file".
_CANNOT_OPEN = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR_SHM", "SQLITE_PERM")
_CANNOT_OPEN_TEXT = ("unable to open database file", "readonly database")

_warned: set[tuple[str, str]] = set()


def _uri(path: str, query: str) -> str:
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + "?" + query


def _connect(path: str, access: str) -> sqlite3.Connection:
    if access == READ_WRITE:
        return sqlite3.connect(path, check_same_thread=False)
    query = "mode=ro" if access == READ_ONLY else "mode=ro&immutable=1"
    return sqlite3.connect(_uri(path, query), uri=True, check_same_thread=False)


def cannot_open(exc: BaseException) -> bool:
    """Whether an SQLite error means the file cannot be opened or written where it is
    (worth a read-only retry), rather than a broken, foreign or locked file."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_CANNOT_OPEN) or any(t in str(exc).lower() for t in _CANNOT_OPEN_TEXT)


def open_database(
    path: str, *, read_only: bool = False, busy_timeout_ms: int = 10_000
) -> tuple[sqlite3.Connection, str]:
    """A configured connection to ``path`` that has read its header, and how it is open:
    `READ_WRITE`, `READ_ONLY` or `IMMUTABLE` (see the module docstring).

    Raises:
        sqlite3.DatabaseError: the file cannot be read in any of the ways (the first
            error), or is not a database.
    """
    ways = (READ_ONLY, IMMUTABLE) if read_only else (READ_WRITE, READ_ONLY, IMMUTABLE)
    first: sqlite3.Error | None = None
    for access in ways:
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(path, access)
            configure(conn, busy_timeout_ms)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            if not cannot_open(exc):
                raise
            first = first or exc
            continue
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if access != ways[0]:
            _say_so(path, access, first)
        return conn, access
    assert first is not None
    raise first


def _say_so(path: str, access: str, why: BaseException | None) -> None:
    """One warning per file and way: what the fallback means and how to avoid it."""
    if (path, access) in _warned:
        return
    _warned.add((path, access))
    if access == READ_ONLY:
        logger.warning(
            "lc_observe: %s cannot be opened for writing (%s): reading it read-only; "
            "scores and purge cannot be written to it",
            path,
            why,
        )
        return
    wal = f"{path}-wal"
    pending = os.path.getsize(wal) if os.path.isfile(wal) else 0
    unseen = (
        f"; its -wal file holds {pending} bytes not yet checkpointed, which this reader cannot see"
        if pending
        else ""
    )
    logger.warning(
        "lc_observe: %s is on a read-only filesystem or directory (%s): reading it as "
        "immutable, a snapshot that does not see what a live writer adds%s. For live "
        "reads, give the reader write access to the file's directory (SQLite creates the "
        "-shm file there), or copy the file to a writable directory",
        path,
        why,
        unseen,
    )
