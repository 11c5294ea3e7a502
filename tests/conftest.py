"""Shared fixtures: a fresh database path and a handler that is closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lc_observe import ObsHandler, TraceStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


@pytest.fixture
def handler(db_path: Path) -> Iterator[ObsHandler]:
    obs = ObsHandler(db_path, schedule_delay=0.05)
    yield obs
    obs.close()


@pytest.fixture
def read_store(handler: ObsHandler, db_path: Path):
    """Flush the handler and open a store on its file."""

    def read() -> TraceStore:
        assert handler.flush(10), "flush timed out"
        return TraceStore(db_path)

    return read
