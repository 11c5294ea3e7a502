"""Shared fixtures (a fresh database path, a handler closed after each test) and the
test tiers (`tests.tiers`: fast locally, everything when ``CI`` is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from lc_observe import ObsHandler, Queue, TraceStore

from .tiers import IN_CI, RUN_SLOW, SLOW_MARKERS

# Property tests without an explicit budget: the full one in CI, a small one locally.
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile(
    "dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if IN_CI else "dev")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run tests marked slow (always run when CI is set)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if RUN_SLOW or config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow tier: runs when CI is set, or with --run-slow")
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(skip)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


@pytest.fixture
def handler(db_path: Path) -> Iterator[ObsHandler]:
    obs = ObsHandler(db_path, queue=Queue(schedule_delay=0.05))
    yield obs
    obs.close()


@pytest.fixture
def read_store(handler: ObsHandler, db_path: Path):
    """Flush the handler and open a store on its file."""

    def read() -> TraceStore:
        assert handler.flush(10), "flush timed out"
        return TraceStore(db_path)

    return read
