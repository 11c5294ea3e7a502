"""The journal mode of a writer: WAL where it works, a rollback journal where it does not.

WAL lets readers go on while a writer writes, but every process on the file must share the
``-shm`` file's memory map, which a network filesystem (NFS, SMB/CIFS, 9p, sshfs, some
container volumes) does not provide: SQLite's documentation says WAL does not work there
and the file can be corrupted.  A writer (`lc_observe.sinks.sqlite.SQLiteSink`, a
migration) therefore calls `set_journal_mode` on every connection it opens:

- on a local filesystem it sets ``journal_mode=WAL`` and checks that SQLite really
  switched (and that the ``-shm`` file could be mapped): otherwise it logs why and keeps
  the rollback journal (``DELETE``);
- on a network filesystem (`network_filesystem`, from ``/proc/mounts`` on Linux) it uses
  ``journal_mode=DELETE``: correct wherever the filesystem's locks are, with readers
  waiting for writes.  One warning names the reason and the fix.

``LC_OBSERVE_JOURNAL`` overrides the choice: ``auto`` (the default, as above), ``wal``
(always WAL: a mount only ever used from this machine) or ``delete`` (never WAL).

>>> network_filesystem("/data/t.db", mounts="srv:/x /data nfs4 rw 0 0\\n")
'nfs4'
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3

from lc_observe.errors import StoreError
from lc_observe.storage.locking import is_locked

logger = logging.getLogger("lc_observe")

#: The environment variable that overrides the journal mode (auto, wal, delete).
JOURNAL_ENV = "LC_OBSERVE_JOURNAL"
_CHOICES = ("auto", "wal", "delete")

#: Filesystem types (``/proc/mounts``' third field) where WAL is unsafe: their processes
#: share no memory map of the ``-shm`` file (network and host-to-guest shares).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "afs",
        "coda",
        "ceph",
        "glusterfs",
        "gpfs",
        "lustre",
        "beegfs",
        "davfs",
        "virtiofs",
        "osxfs",
        "fakeowner",
        "vboxsf",
        "vmhgfs",
        "fuse.sshfs",
        "fuse.davfs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.goofys",
        "fuse.juicefs",
        "fuse.cephfs",
        "fuse.glusterfs",
        "fuse.grpcfuse",
        "fuse.vmhgfs-fuse",
    }
)

_OCTAL = re.compile(r"\\([0-7]{3})")
_warned: set[tuple[str, str]] = set()


def _unescape(field: str) -> str:
    """A ``/proc/mounts`` field with its octal escapes (``\\040`` for a space) undone."""
    return _OCTAL.sub(lambda match: chr(int(match.group(1), 8)), field)


def filesystem_type(path: str, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (a file or a directory, existing or
    not), from ``mounts`` (the text of ``/proc/mounts``, read when not given); ``None``
    when unknown (no ``/proc/mounts``: not Linux).

    >>> filesystem_type("/mnt/share/t.db", "/dev/sda1 / ext4 rw 0 0\\nsrv /mnt/share cifs rw 0 0")
    'cifs'
    """
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as file:
                mounts = file.read()
        except OSError:
            return None
    target = os.path.realpath(os.path.abspath(path))
    best, best_type = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1]).rstrip("/") or "/"
        inside = point == "/" or target == point or target.startswith(point + "/")
        if inside and len(point) >= best:  # the deepest mount; the last one of equals wins
            best, best_type = len(point), fields[2]
    return best_type


def network_filesystem(path: str, mounts: str | None = None) -> str | None:
    """The filesystem type of ``path`` when it is one where WAL is unsafe, else ``None``."""
    kind = filesystem_type(path, mounts)
    if kind is None:
        return None
    if kind in NETWORK_FILESYSTEMS or kind.startswith(("nfs", "smb")):
        return kind
    return None


def journal_choice() -> str:
    """``LC_OBSERVE_JOURNAL``: auto (default), wal or delete."""
    value = (os.environ.get(JOURNAL_ENV) or "auto").strip().lower()
    if value not in _CHOICES:
        raise StoreError(
            f"{JOURNAL_ENV}={value!r} is not a journal choice: set it to auto (WAL on local "
            "disks, DELETE on network filesystems), wal or delete, or unset it"
        )
    return value


def _warn_once(path: str, key: str, message: str) -> None:
    if (path, key) not in _warned:
        _warned.add((path, key))
        logger.warning(message)


def _set(conn: sqlite3.Connection, mode: str) -> str:
    return str(conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0]).lower()


def set_journal_mode(conn: sqlite3.Connection, path: str) -> str:
    """Give a writer's connection (outside a transaction) the journal mode that is safe
    where ``path`` is (see the module docstring); returns the mode in effect.

    Raises:
        StoreError: ``LC_OBSERVE_JOURNAL`` holds an unknown value.
        sqlite3.OperationalError: the file is locked by another writer (retry).
    """
    choice = journal_choice()
    remote = network_filesystem(path) if choice == "auto" else None
    mode = _rollback(conn, path, remote) if choice == "delete" or remote else _wal(conn, path)
    if mode != "wal":  # synchronous=NORMAL is only crash-safe with WAL
        conn.execute("PRAGMA synchronous = FULL")
    return mode


def _rollback(conn: sqlite3.Connection, path: str, remote: str | None) -> str:
    """``journal_mode=DELETE``, asked for or because ``path`` is on a network filesystem."""
    error: BaseException | str = "SQLite kept it"
    try:
        mode = _set(conn, "DELETE")
    except sqlite3.OperationalError as exc:  # another connection holds the file in WAL
        mode, error = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower(), exc
    if mode == "wal":
        why = f"it is on a network filesystem ({remote})" if remote else f"{JOURNAL_ENV}=delete"
        _warn_once(
            path,
            "leave-wal",
            f"lc_observe: {path} should leave WAL mode ({why}) but could not ({error}): it "
            "stays in WAL until the other processes using it have closed it and a writer "
            "opens it again",
        )
    elif remote:
        _warn_once(
            path,
            "network",
            f"lc_observe: {path} is on a network filesystem ({remote}), where SQLite's WAL "
            "mode is unsafe (its processes share no memory): writing it with "
            "journal_mode=DELETE (readers wait while a batch is written). Put db_path on "
            f"a local disk for concurrent reads and writes, or set {JOURNAL_ENV}=wal if "
            "only this machine ever uses the mount",
        )
    return mode


def _wal(conn: sqlite3.Connection, path: str) -> str:
    """``journal_mode=WAL``, checked: SQLite switched, and the ``-shm`` file maps."""
    try:
        mode = _set(conn, "WAL")
        if mode == "wal":
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # maps the -shm file
    except sqlite3.OperationalError as exc:
        if is_locked(exc):  # another writer is creating the file: the caller retries
            raise
        return _fall_back(conn, path, f"WAL could not start there ({exc})")
    if mode != "wal":
        return _fall_back(conn, path, f"SQLite kept journal_mode={mode} when asked for WAL")
    return mode


def _fall_back(conn: sqlite3.Connection, path: str, why: str) -> str:
    """WAL did not work at ``path``: the rollback journal, with one warning saying why."""
    try:
        mode = _set(conn, "DELETE")
    except sqlite3.OperationalError:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    _warn_once(
        path,
        "no-wal",
        f"lc_observe: {why} for {path}: writing it with journal_mode={mode.upper()} (readers "
        "wait while a batch is written). Put db_path on a local disk with shared memory "
        f"for WAL, or set {JOURNAL_ENV}=delete to choose this mode and silence this message",
    )
    return mode
