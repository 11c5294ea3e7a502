"""The writer's journal mode: WAL on local disks, checked; DELETE on network filesystems."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.errors import StoreError
from lc_observe.storage import journal

MOUNTS = r"""/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /tmp tmpfs rw 0 0
fileserver:/export/home /home nfs4 rw,vers=4.2 0 0
tmpfs /home/alice/scratch tmpfs rw 0 0
//nas/team\040share /mnt/team\040share cifs rw 0 0
sshfs#bob@host: /mnt/remote fuse.sshfs rw 0 0
/dev/sdb1 /mnt/remote/cache ext4 rw 0 0
overlay /data overlay rw 0 0
server:/a /data nfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "kind", "network"),
    [
        ("/tmp/t.db", "tmpfs", None),
        ("/var/lib/t.db", "ext4", None),
        ("/home/alice/t.db", "nfs4", "nfs4"),
        ("/home", "nfs4", "nfs4"),
        ("/homework/t.db", "ext4", None),  # a prefix of the name, not of the path
        ("/home/alice/scratch/t.db", "tmpfs", None),  # a local mount inside a network one
        ("/mnt/team share/traces/t.db", "cifs", "cifs"),  # /proc/mounts escapes the space
        ("/mnt/remote/t.db", "fuse.sshfs", "fuse.sshfs"),
        ("/mnt/remote/cache/t.db", "ext4", None),
        ("/data/t.db", "nfs", "nfs"),  # mounted over: the last mount of a point wins
    ],
)
def test_filesystem_of_a_path(path: str, kind: str, network: str | None) -> None:
    assert journal.filesystem_type(path, MOUNTS) == kind
    assert journal.network_filesystem(path, MOUNTS) == network


def test_filesystem_of_this_machine() -> None:
    kind = journal.filesystem_type(__file__)
    assert kind is None or kind == journal.filesystem_type(str(Path(__file__).parent))


def _mode(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def _write(db: Path, count: int = 3) -> ObsHandler:
    obs = ObsHandler(db, queue=Queue(schedule_delay=0.01))
    chain = RunnableLambda(lambda x: x + 1, name="step")
    for i in range(count):
        chain.invoke(i, {"callbacks": [obs]})
    assert obs.flush(10)
    return obs


@pytest.fixture
def on_nfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(journal.JOURNAL_ENV, raising=False)
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: "nfs4")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_local_writer_uses_wal(db_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(journal.JOURNAL_ENV, raising=False)
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: None)
    obs = _write(db_path)
    assert _mode(db_path) == "wal" and Path(f"{db_path}-wal").exists()
    obs.close()


def test_network_filesystem_gets_the_rollback_journal(db_path: Path, on_nfs, caplog) -> None:
    obs = _write(db_path)
    assert _mode(db_path) == "delete"
    assert not Path(f"{db_path}-wal").exists()
    with TraceStore(db_path) as store:
        assert len(store.traces()) == 3
    obs.close()
    (said,) = [m for m in _warnings(caplog) if "network filesystem" in m]
    assert "(nfs4)" in said and "local disk" in said and "LC_OBSERVE_JOURNAL=wal" in said


def test_a_wal_file_moved_to_a_network_filesystem_leaves_wal(
    db_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: None)
    _write(db_path).close()
    assert _mode(db_path) == "wal"
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: "cifs")
    obs = _write(db_path, 2)
    assert _mode(db_path) == "delete"
    with TraceStore(db_path) as store:
        assert len(store.traces()) == 5
    obs.close()


def test_a_file_held_in_wal_by_another_process_says_so(db_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: None)
    _write(db_path).close()
    other = sqlite3.connect(db_path)  # another reader has it open in WAL
    other.execute("SELECT count(*) FROM spans").fetchone()
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: "nfs")
    obs = _write(db_path, 1)
    assert _mode(db_path) == "wal"
    with TraceStore(db_path) as store:
        assert len(store.traces()) == 4  # written all the same
    obs.close()
    other.close()
    (said,) = [m for m in _warnings(caplog) if "should leave WAL" in m]
    assert "network filesystem (nfs)" in said and "locked" in said


def test_override_forces_wal(db_path: Path, on_nfs, monkeypatch, caplog) -> None:
    monkeypatch.setenv(journal.JOURNAL_ENV, "wal")
    obs = _write(db_path)
    assert _mode(db_path) == "wal"
    obs.close()
    assert not [m for m in _warnings(caplog) if "network filesystem" in m]


def test_override_forces_delete_quietly(db_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(journal.JOURNAL_ENV, "DELETE")
    obs = _write(db_path)
    assert _mode(db_path) == "delete"
    obs.close()
    assert not [m for m in _warnings(caplog) if "journal" in m.lower()]


def test_unknown_override_is_refused_with_the_choices(db_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(journal.JOURNAL_ENV, "fast")
    conn = sqlite3.connect(db_path)
    with pytest.raises(StoreError, match=r"LC_OBSERVE_JOURNAL='fast'.*auto.*wal or delete"):
        journal.set_journal_mode(conn, str(db_path))
    conn.close()


class _NoSharedMemory:
    """A connection whose WAL index cannot be mapped (as where there is no shared memory)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.failed = False

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        wal = self.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if wal and sql.startswith("SELECT") and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk I/O error (unable to map shared memory)")
        return self.conn.execute(sql, *args)


def test_wal_that_cannot_map_its_index_falls_back(db_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv(journal.JOURNAL_ENV, raising=False)
    conn = sqlite3.connect(db_path)
    proxy = _NoSharedMemory(conn)
    assert journal.set_journal_mode(proxy, str(db_path)) == "delete"  # type: ignore[arg-type]
    assert proxy.failed and _mode(db_path) == "delete"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL outside WAL
    conn.close()
    (said,) = [m for m in _warnings(caplog) if "WAL could not start" in m]
    assert "shared memory" in said and "LC_OBSERVE_JOURNAL=delete" in said


def test_mode_sqlite_keeps_is_reported(monkeypatch, caplog) -> None:
    monkeypatch.delenv(journal.JOURNAL_ENV, raising=False)
    conn = sqlite3.connect(":memory:")  # SQLite answers 'memory' when asked for WAL
    assert journal.set_journal_mode(conn, ":memory:") == "memory"
    assert any("kept journal_mode=memory" in m for m in _warnings(caplog))


def test_a_lock_while_switching_is_raised_for_a_retry(db_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(journal.JOURNAL_ENV, raising=False)
    monkeypatch.setattr(journal, "network_filesystem", lambda path, mounts=None: None)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(db_path, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        journal.set_journal_mode(other, str(db_path))
    holder.execute("ROLLBACK")
    assert journal.set_journal_mode(other, str(db_path)) == "wal"
    other.close()
    holder.close()
