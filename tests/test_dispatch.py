"""The dispatcher: FIFO flush markers, idle worker retirement, failing sinks counted."""

from __future__ import annotations

import time

from lc_observe.pipeline.processor import Dispatcher


class ListSink:
    def __init__(self, fail: bool = False) -> None:
        self.items: list = []
        self.fail = fail
        self.closed = False

    def export(self, batch) -> int:
        if self.fail:
            raise OSError("disk on fire")
        self.items.extend(batch)
        return len(batch)

    def close(self) -> None:
        self.closed = True


def test_flush_waits_for_everything_submitted_before_it() -> None:
    sink = ListSink()
    dispatcher = Dispatcher([sink], batch_size=7, schedule_delay=10)
    for i in range(100):
        dispatcher.submit("span", {"i": i})
    assert dispatcher.flush(10)
    assert [record["i"] for _, record in sink.items] == list(range(100))
    assert dispatcher.stats().as_dict() == {
        "enqueued": 100,
        "written": 100,
        "dropped": 0,
        "failed": 0,
        "queued": 0,
        "in_flight": 0,
        "lost": 0,
    }
    assert dispatcher.close(5) and sink.closed


def test_idle_worker_retires_and_restarts_on_demand() -> None:
    sink = ListSink()
    dispatcher = Dispatcher([sink], schedule_delay=0.01, idle_exit=0.05)
    dispatcher.submit("span", {"i": 1})
    assert dispatcher.flush(5)
    deadline = time.monotonic() + 5
    while dispatcher._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dispatcher._thread is None  # no thread left behind by an idle dispatcher
    dispatcher.submit("span", {"i": 2})
    assert dispatcher.flush(5)
    assert [record["i"] for _, record in sink.items] == [1, 2]
    dispatcher.close(5)


def test_failing_sink_is_counted_not_raised(caplog) -> None:
    dispatcher = Dispatcher([ListSink(fail=True)], schedule_delay=0.01)
    for i in range(5):
        assert dispatcher.submit("span", {"i": i})
    assert dispatcher.flush(5)
    stats = dispatcher.stats()
    assert (stats.written, stats.failed) == (0, 5)
    assert "disk on fire" in caplog.text
    dispatcher.close(5)
    assert dispatcher.submit("span", {}) is False and dispatcher.stats().dropped == 1
