"""The SQLite sink: batches of records become rows in one transaction.

Runs on the dispatcher's worker thread only (the connection is opened there,
lazily).  Several processes may write the same file: WAL mode, a busy timeout and
a bounded retry on ``database is locked`` keep every writer going (on a network
filesystem, where WAL is unsafe, a rollback journal: `lc_observe.storage.journal`).  A problem with
the file (missing directory, read-only, foreign database, disk full) is logged once
with what to do, and the batch counts as failed; the application never notices.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from itertools import chain
from typing import Any

import sqlite_utils

from lc_observe.pipeline.privacy import PrivacyStage, json_text
from lc_observe.pipeline.processor import Item
from lc_observe.pipeline.serialize import Limits, Redact, dumps
from lc_observe.storage.schema import (
    BRANCH_COLUMNS,
    JSON_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    configure,
    ensure_schema,
)
from lc_observe.storage.scores import RECORD_SCORE, SCORE_INSERT, score_row

from ..errors import StoreError
from ..records import BUDGET_FIELDS, RECORD_BRANCH, RECORD_BUDGET, RECORD_RUNNING, RECORD_SPAN

logger = logging.getLogger("lc_observe")

_MAX_VARIABLES = 32_766  # SQLite >= 3.32; older builds allow 999 (checked at connect)
_SPAN_COLS = tuple(SPAN_COLUMNS)
_SCALAR_SPAN_COLS = tuple(c for c in SPAN_COLUMNS if c not in JSON_COLUMNS)
_TRACE_COLS = tuple(TRACE_COLUMNS)
_BRANCH_COLS = tuple(c for c in BRANCH_COLUMNS if c != "id")


def _insert_sql(table: str, columns: Sequence[str], verb: str = "INSERT OR REPLACE") -> str:
    """The head of a multi-row INSERT; `insert_rows` appends the ``VALUES`` groups."""
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES "


#: Rows per multi-row INSERT at most (a power of two, see `insert_rows`).
_MAX_ROWS_PER_STATEMENT = 256


@functools.lru_cache(maxsize=64)
def _values_sql(head: str, columns: int, rows: int) -> str:
    group = "(" + ",".join("?" * columns) + ")"
    return head + ",".join([group] * rows)


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[tuple]) -> None:
    """Insert ``rows`` with few statements: chunks of 256, 128, ... rows.

    One multi-row INSERT per chunk instead of ``executemany``: sqlite3 releases the GIL
    around every step, and re-taking it behind a busy application thread costs up to
    the interpreter's switch interval (5 ms) each time.  Fewer steps keep the writer
    fast while the app keeps the CPU busy (measured: ~10x more rows/s).
    """
    if not rows:
        return
    columns = len(rows[0])
    largest = max(1, min(_MAX_ROWS_PER_STATEMENT, _MAX_VARIABLES // columns))
    start = 0
    while start < len(rows):
        # Chunk sizes are powers of two: a handful of statement shapes, so sqlite3's cache
        # of prepared statements stays small (one shape per row count would grow SQLite's
        # heap by ~0.5 MB per distinct batch size, up to the 128 cached statements).
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        conn.execute(_values_sql(head, columns, size), list(chain.from_iterable(chunk)))
        start += size


_SPAN_SQL = _insert_sql("spans", _SPAN_COLS)
_TRACE_SQL = _insert_sql("traces", _TRACE_COLS)
_RUNNING_SPAN_SQL = _insert_sql("spans", _SPAN_COLS, "INSERT OR IGNORE")
_RUNNING_TRACE_SQL = _insert_sql("traces", _TRACE_COLS, "INSERT OR IGNORE")
_BRANCH_SQL = _insert_sql("branch_events", _BRANCH_COLS, "INSERT")
_BUDGET_SQL = _insert_sql("budget_events", BUDGET_FIELDS, "INSERT")


def iso(ts: float | None) -> str | None:
    """Epoch seconds to the fixed-width UTC text stored in the database."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")


#: Errors that concern a record, not the database: worth retrying the batch record by record.
_PER_RECORD_ERRORS = (
    sqlite3.InterfaceError,
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    OverflowError,  # an int beyond 64 bits
)


def _bindable(value: Any) -> Any:
    """A value SQLite can bind: plain scalars pass, anything else becomes its (safe) text."""
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return dumps(value)


_PLAIN = frozenset({str, float, type(None)})  # ints go through _bindable: 64-bit range


def _payload(
    value: Any, limits: Limits, memo: dict[int, Any] | None, known: KnownText | None = None
) -> str | None:
    """A public (JSON-safe) value as JSON text.  The privacy stage hands the same public
    object to every record that shared it (a run and its first child ...): ``memo`` (one
    batch, whose records keep the objects alive, so ids are not reused) encodes it once."""
    if value is None:
        return None
    if memo is None or not isinstance(value, (dict, list)):
        return _text(value, limits, known)
    text = memo.get(id(value))
    if text is None:
        text = memo[id(value)] = _text(value, limits, known)
    return text


#: Gives the privacy stage's JSON text of a public value of the batch being written
#: (`PrivacyStage.text_of`), or None.
KnownText = Callable[[Any], "str | None"]


def _text(value: Any, limits: Limits, known: KnownText | None = None) -> str:
    text = known(value) if known is not None else None
    if text is not None:
        return text
    try:
        return json_text(value)
    except (TypeError, ValueError):  # not public data after all: still stored safely
        return dumps(value, limits)


def span_row(
    record: dict[str, Any],
    limits: Limits,
    memo: dict[int, Any] | None = None,
    known: KnownText | None = None,
) -> tuple:
    """The ``spans`` row of a public span record (`lc_observe.pipeline.privacy`), in `SPAN_COLUMNS`
    order."""
    error = record["error"] or {}
    row: dict[str, Any] = {}
    for key in _SCALAR_SPAN_COLS:
        value = record.get(key)
        row[key] = value if value.__class__ in _PLAIN else _bindable(value)
    row["start_time"] = iso(record["start_time"])
    row["end_time"] = iso(record["end_time"])
    row["error_type"] = error.get("type")
    row["error_message"] = error.get("message")
    row["error_traceback"] = error.get("traceback")
    row["inputs"] = _payload(record["inputs"], limits, memo, known)
    row["outputs"] = _payload(record["outputs"], limits, memo, known)
    row["tags"] = _payload(record["tags"] or [], limits, None, known)
    row["metadata"] = _payload(record["metadata"] or {}, limits, memo, known)
    row["params"] = _payload(record.get("params"), limits, memo, known)
    return tuple(map(row.get, _SPAN_COLS))


def trace_row(record: dict[str, Any], span: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``traces`` row of a root span record (its rolled-up totals are the trace's)."""
    by_name = dict(zip(_SPAN_COLS, span, strict=True))
    by_name["graph_name"] = record.get("graph_name")
    return tuple(by_name.get(column) for column in _TRACE_COLS)


def branch_row(record: dict[str, Any], limits: Limits) -> tuple:
    """The ``branch_events`` row of a public branch event record."""
    row = {key: _bindable(value) for key, value in record.items()}
    row["result"] = _text(record.get("result"), limits)
    row["destinations"] = _text(record.get("destinations") or [], limits)
    error = record.get("error")
    row["error"] = None if error is None else _text(error, limits)
    row["time"] = iso(record.get("time"))
    return tuple(row.get(column) for column in _BRANCH_COLS)


def budget_row(record: dict[str, Any]) -> tuple:
    """The ``budget_events`` row of a budget event record (`lc_observe.capture.budgets`)."""
    row = {key: _bindable(record.get(key)) for key in BUDGET_FIELDS}
    row["time"] = iso(record.get("time"))
    return tuple(row.values())


def _check_variable_limit(conn: sqlite3.Connection) -> None:
    global _MAX_VARIABLES
    getlimit = getattr(conn, "getlimit", None)  # Python >= 3.11
    if getlimit is not None:
        _MAX_VARIABLES = min(_MAX_VARIABLES, getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    elif sqlite3.sqlite_version_info < (3, 32, 0):
        _MAX_VARIABLES = 999


class SQLiteSink:
    """Write public span and branch records (`lc_observe.pipeline.privacy`) to an lc_observe file.

    Args:
        path: the database file; created (mode 0600) with its schema on first write.
        limits: size limits (of values that reach the sink not yet public).
        redact: only for a sink used on its own: given, the sink passes every batch
            through a `PrivacyStage` with this redactor first.  An `ObsHandler` makes its
            records public before any sink sees them and passes none.
        busy_timeout: seconds SQLite waits for another writer's lock.
        max_retries: extra attempts when the database stays locked past the timeout.
        max_bytes: a size cap for the file (SQLite ``max_page_count``); once reached, new
            records are counted as failed and a message says so.  ``None``: no cap.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        redact: Redact | None = None,
        busy_timeout: float = 10.0,
        max_retries: int = 5,
        max_bytes: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.limits = limits or Limits()
        self.redact = redact
        self._stage = PrivacyStage(self.limits, redact) if redact is not None else None
        #: the JSON text the privacy stage made of a value (set by `ObsHandler`, or by this
        #: sink's own stage): each value is encoded once
        self.known_text: KnownText | None = self._stage.text_of if self._stage else None
        self.busy_timeout = busy_timeout
        self.max_retries = max_retries
        self.max_bytes = max_bytes
        self._db: sqlite_utils.Database | None = None
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the open file
        self._pid = os.getpid()
        self._logged: set[str] = set()

    # -- sink protocol ---------------------------------------------------------------------

    def open(self) -> bool:
        """Open (and create or migrate) the database now; False, logged, if it cannot be.

        Called when the handler is built, so the first batch does not pay for the schema
        while the application keeps the interpreter busy.  A failure is retried later.
        """
        try:
            self._connect()
            return True
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._fail(exc)
            return False

    def export(self, batch: Sequence[Item]) -> int:
        """Write a batch in one transaction; returns how many records were stored."""
        if self._stage is not None:
            batch = self._stage.batch(batch)
        return self._write(batch)

    def _write(self, batch: Sequence[Item]) -> int:
        statements = self._rows(batch)
        for attempt in range(self.max_retries + 1):
            try:
                db = self._connect()
                with db.atomic():
                    for head, rows in statements.items():
                        insert_rows(db.conn, head, rows)
                return len(batch)
            except sqlite3.OperationalError as exc:
                transient = "locked" in str(exc) or "busy" in str(exc)
                if transient and attempt < self.max_retries:
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                self._fail(exc)
                return 0
            except (sqlite3.Error, StoreError, OSError, OverflowError) as exc:
                if len(batch) > 1 and isinstance(exc, _PER_RECORD_ERRORS):
                    # One bad record must not sink the batch: store the others one by one.
                    return sum(self._write([item]) for item in batch)
                self._fail(exc)
                return 0
        return 0  # pragma: no cover - loop always returns

    def shutdown(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    close = shutdown  # the older name of the exporter contract's shutdown

    # -- internals ---------------------------------------------------------------------------

    def _rows(self, batch: Iterable[Item]) -> dict[str, list[tuple]]:
        """Rows per statement, in the order they must run (running snapshots never win)."""
        rows: dict[str, list[tuple]] = {
            _RUNNING_SPAN_SQL: [],
            _RUNNING_TRACE_SQL: [],
            _SPAN_SQL: [],
            _TRACE_SQL: [],
            _BRANCH_SQL: [],
            _BUDGET_SQL: [],
            SCORE_INSERT: [],
        }
        limits = self.limits
        memo: dict[int, Any] = {}
        for kind, record in batch:
            if kind in (RECORD_SPAN, RECORD_RUNNING):
                row = span_row(record, limits, memo, self.known_text)
                final = kind == RECORD_SPAN
                rows[_SPAN_SQL if final else _RUNNING_SPAN_SQL].append(row)
                if record["parent_id"] is None:
                    rows[_TRACE_SQL if final else _RUNNING_TRACE_SQL].append(trace_row(record, row))
            elif kind == RECORD_BRANCH:
                rows[_BRANCH_SQL].append(branch_row(record, limits))
            elif kind == RECORD_BUDGET:
                rows[_BUDGET_SQL].append(budget_row(record))
            elif kind == RECORD_SCORE:
                rows[SCORE_INSERT].append(score_row(record))  # public: redacted before the sinks
        return rows

    def _connect(self) -> sqlite_utils.Database:
        if self._db is not None and self._pid != os.getpid():
            self._db = None  # forked: a connection must not cross fork(); never close it here
        if self._db is not None:
            if self._same_file():
                return self._db
            # Writing on would go to an unlinked inode and vanish: start a new file.
            self._warn_once(
                "replaced",
                "lc_observe: %s was deleted or replaced while in use; writing to a new file",
            )
            self.close()
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StoreError(
                f"the directory of db_path={self.path!r} does not exist; create it or pass "
                "another db_path"
            )
        created = not os.path.exists(self.path)
        if created:  # create with owner-only permissions: traces hold prompts and outputs
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
        try:
            configure(conn, int(self.busy_timeout * 1000))
            db = sqlite_utils.Database(conn)
            ensure_schema(db, self.path)
            _check_variable_limit(conn)
            if self.max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page_size)}")
            stat = os.stat(self.path)
        except BaseException:
            conn.close()
            raise
        self._db = db
        self._file_id = (stat.st_dev, stat.st_ino)
        self._pid = os.getpid()
        return db

    def _same_file(self) -> bool:
        try:
            stat = os.stat(self.path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._file_id

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, self.path)

    def _fail(self, exc: BaseException) -> None:
        """Log a storage problem once per kind of problem; drop the connection to retry later."""
        message = str(exc)
        key = f"{type(exc).__name__}:{message}"
        if key not in self._logged:
            self._logged.add(key)
            logger.error(
                "lc_observe: could not write to %s: %s. Records are counted in "
                "handler.stats['failed']; the application is not affected.",
                self.path,
                message,
            )
        self.close()
