"""A database on a read-only filesystem is read (read-only, else immutable, and it says so).

The real cases run on a directory made read-only for this process: a tmpfs remounted
read-only when running as root (root ignores permissions), its permissions otherwise.  The
same fallbacks are also driven at the connection layer (`lc_observe.storage.opening`), so
they are tested where no read-only mechanism is available.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.errors import StoreError
from lc_observe.storage import opening


def _record(db: Path, count: int, *, name: str = "step") -> ObsHandler:
    """``count`` traces of one chain run each, flushed; the handler is left open."""
    obs = ObsHandler(db, queue=Queue(schedule_delay=0.01))
    chain = RunnableLambda(lambda x: x + 1, name=name)
    for i in range(count):
        assert chain.invoke(i, {"callbacks": [obs]}) == i + 1
    assert obs.flush(10)
    return obs


@dataclass
class ReadOnlyDir:
    path: Path
    freeze: Callable[[], None]


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[ReadOnlyDir]:
    """A directory to fill, then make read-only for this process with ``freeze()``."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        yield ReadOnlyDir(path, lambda: path.chmod(0o500))
        path.chmod(0o700)
        return
    mount = shutil.which("mount")
    done = mount and subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)], capture_output=True
    )
    if not done or done.returncode != 0:
        pytest.skip("as root, a read-only directory needs a tmpfs mount, which is not allowed here")

    def freeze() -> None:
        subprocess.run([mount, "-o", "remount,ro", str(path)], check=True, capture_output=True)

    try:
        yield ReadOnlyDir(path, freeze)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- real read-only directories ---------------------------------------------------------------


def test_store_reads_a_closed_database_on_a_read_only_filesystem(ro_dir, caplog) -> None:
    db = ro_dir.path / "t.db"
    _record(db, 3).close()  # the last connection removes -wal and -shm
    ro_dir.freeze()
    for read_only in (False, True):
        with TraceStore(db, read_only=read_only) as store:
            assert store.access == "immutable" and store.read_only
            assert [t.name for t in store.traces()] == ["step"] * 3
            trace_id = store.traces()[0].trace_id
            if not read_only:
                with pytest.raises(StoreError, match="could not write scores"):
                    store.add_score(trace_id, "ok", True)
    said = [m for m in _warnings(caplog) if "immutable" in m]
    assert len(said) == 1  # once per file
    assert str(db) in said[0] and "write access to the file's directory" in said[0]


def test_wal_left_behind_on_a_read_only_filesystem_is_read_whole(ro_dir) -> None:
    """A -wal and -shm left by a writer (a crash, a copy): SQLite reads through them; the
    traces still only in the -wal file are there (an immutable open would miss them)."""
    db = ro_dir.path / "t.db"
    obs = _record(db, 4)
    for suffix in ("", "-wal", "-shm"):  # a snapshot with the writer's WAL in use
        shutil.copyfile(f"{db}{suffix}", f"{ro_dir.path / 'copy.db'}{suffix}")
    obs.close()
    assert os.path.getsize(ro_dir.path / "copy.db-wal") > 0
    ro_dir.freeze()
    with TraceStore(ro_dir.path / "copy.db") as store:
        assert store.access != "immutable"
        assert len(store.traces()) == 4


def test_cli_lists_traces_of_a_read_only_database(ro_dir) -> None:
    db = ro_dir.path / "t.db"
    _record(db, 2, name="listed").close()
    ro_dir.freeze()
    env = {k: v for k, v in os.environ.items() if k != "LC_OBSERVE_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "lc_observe.cli", "traces", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert [t["name"] for t in json.loads(done.stdout)] == ["listed", "listed"]
    assert "immutable" in done.stderr and "write access" in done.stderr


def test_ui_serves_a_read_only_database(ro_dir) -> None:
    from tests.tiers import need

    need("starlette")
    from starlette.testclient import TestClient

    from lc_observe.ui import create_app

    db = ro_dir.path / "t.db"
    _record(db, 2, name="shown").close()
    ro_dir.freeze()
    client = TestClient(create_app(str(db)), base_url="http://127.0.0.1")
    response = client.get("/api/traces")
    assert response.status_code == 200, response.text
    assert [t["name"] for t in response.json()["traces"]] == ["shown", "shown"]
    page = client.get("/")
    assert page.status_code == 200 and "shown" in page.text


def test_metrics_are_read_from_a_read_only_database(ro_dir) -> None:
    from tests.tiers import need

    need("prometheus_client")
    from lc_observe.sinks.prometheus import FileCollector

    db = ro_dir.path / "t.db"
    _record(db, 3, name="counted").close()
    ro_dir.freeze()
    collector = FileCollector(db)
    try:
        runs = {
            tuple(sorted(sample.labels.items())): sample.value
            for family in collector.collect()
            for sample in family.samples
            if sample.name == "lc_observe_runs_total"
        }
    finally:
        collector.close()
    assert sum(runs.values()) == 3


def test_writer_on_a_read_only_filesystem_counts_failures_and_says_why(ro_dir, caplog) -> None:
    ro_dir.freeze()
    obs = ObsHandler(ro_dir.path / "t.db", queue=Queue(schedule_delay=0.01))
    chain = RunnableLambda(lambda x: x * 2, name="double")
    assert [chain.invoke(i, {"callbacks": [obs]}) for i in range(3)] == [0, 2, 4]
    assert obs.flush(10)
    assert obs.stats["failed"] == 3 and obs.stats["written"] == 0
    obs.close()
    assert any("could not write to" in m for m in _warnings(caplog))


# -- the same fallbacks, driven at the connection layer ------------------------------------------


def _refuse(monkeypatch: pytest.MonkeyPatch, *refused: str) -> list[str]:
    """Make SQLite's open fail as on a read-only mount for the ways in ``refused``; the
    ways tried are recorded in the returned list."""
    real = opening._connect
    tried: list[str] = []

    def connect(path: str, access: str) -> sqlite3.Connection:
        tried.append(access)
        if access in refused:
            raise sqlite3.OperationalError("unable to open database file")
        return real(path, access)

    monkeypatch.setattr(opening, "_connect", connect)
    return tried


def test_unwritable_file_is_read_read_only_and_live(monkeypatch, db_path, caplog) -> None:
    obs = _record(db_path, 2)
    tried = _refuse(monkeypatch, opening.READ_WRITE)
    with TraceStore(db_path) as store:
        assert (store.access, store.read_only) == ("read-only", True)
        assert len(store.traces()) == 2
        chain = RunnableLambda(lambda x: x, name="later")
        chain.invoke(1, {"callbacks": [obs]})
        assert obs.flush(10)
        assert len(store.traces()) == 3  # a live reader: sees the writer's new commits
    obs.close()
    assert tried == ["read-write", "read-only"]
    assert any("reading it read-only" in m for m in _warnings(caplog))


def test_immutable_fallback_says_what_it_cannot_see(monkeypatch, db_path, caplog) -> None:
    _record(db_path, 3).close()  # checkpointed into the file
    obs = _record(db_path, 2)  # these two are still only in the -wal file
    tried = _refuse(monkeypatch, opening.READ_WRITE, opening.READ_ONLY)
    with TraceStore(db_path) as store:
        assert store.access == "immutable"
        assert len(store.traces()) == 3  # the snapshot: the -wal file's traces are not seen
    obs.close()
    assert tried == ["read-write", "read-only", "immutable"]
    (said,) = [m for m in _warnings(caplog) if "immutable" in m]
    assert "-wal file holds" in said and "not yet checkpointed" in said


def test_read_only_store_never_tries_to_write(monkeypatch, db_path) -> None:
    _record(db_path, 1).close()
    tried = _refuse(monkeypatch)
    with TraceStore(db_path, read_only=True) as store:
        assert store.access == "read-only" and len(store.traces()) == 1
    assert tried == ["read-only"]


def test_other_errors_are_not_taken_for_a_read_only_mount(monkeypatch, tmp_path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database, but long enough to have a header" * 100)
    tried = _refuse(monkeypatch)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        TraceStore(bad)
    assert tried == ["read-write"]  # no read-only retry of a file that is not a database


def test_every_way_failing_raises_the_first_error(monkeypatch, db_path) -> None:
    _record(db_path, 1).close()
    _refuse(monkeypatch, opening.READ_WRITE, opening.READ_ONLY, opening.IMMUTABLE)
    with pytest.raises(StoreError, match="unable to open database file"):
        TraceStore(db_path)


def test_old_schema_on_a_read_only_mount_names_the_fix(monkeypatch, db_path) -> None:
    _record(db_path, 1).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 7")
    _refuse(monkeypatch, opening.READ_WRITE)
    with pytest.raises(StoreError, match=r"cannot be written where it is.*migrate it"):
        TraceStore(db_path)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("unable to open database file"), True),
        (sqlite3.OperationalError("attempt to write a readonly database"), True),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.DatabaseError("file is not a database"), False),
    ],
)
def test_cannot_open(error: sqlite3.Error, expected: bool) -> None:
    assert opening.cannot_open(error) is expected
