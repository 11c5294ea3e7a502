"""The pipeline: capture -> privacy stage -> one queue and worker per destination.

Checked on real runs: a full or stuck destination drops (and counts) only its own records,
every sink -- the user's too -- receives redacted public records, options that conflict
are refused with the fix, old keyword names still work with a DeprecationWarning, and a
request that timed out counts as "unknown", not "failed"."""

from __future__ import annotations

import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from langchain_core.runnables import RunnableLambda
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lc_observe import OTLP, LangSmith, ObsHandler, Privacy, Queue, Runs, TraceStore
from lc_observe.sinks.network import NetworkSink, RetryPolicy
from lc_observe.testing import LangSmithStandIn as FakeLangSmith

from .loopback import free_port_url, langsmith_client
from .runs import nested_lambdas

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx0123"


class Stuck:
    """A sink whose export waits until released; records what it got."""

    label = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.items: list[tuple[str, dict[str, Any]]] = []

    def export(self, batch: Any) -> int:
        self.release.wait(30)
        self.items.extend(batch)
        return len(batch)

    def shutdown(self) -> None:
        self.release.set()


class Capture:
    label = "capture"

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def export(self, batch: Any) -> int:
        self.items.extend(batch)
        return len(batch)


def test_a_full_destination_never_drops_another_destinations_records(db_path: Path) -> None:
    stuck, capture = Stuck(), Capture()
    queue = Queue(max_size=8, batch_size=4, schedule_delay=0.01)
    obs = ObsHandler(db_path, sinks=[stuck, capture], queue=queue)
    chain = nested_lambdas()  # 4 runs per invoke
    for i in range(10):
        chain.invoke(i, {"callbacks": [obs]})
        obs.store  # noqa: B018 - flushes the local file only: it keeps up, "stuck" does not
    assert len(TraceStore(db_path).spans()) == 40  # the local file lost nothing
    assert len(capture.items) == 40  # nor did the other sink
    stats = obs.stats
    assert stats["written"] == 40 and stats["dropped"] == 0
    assert stats["stuck"]["dropped"] > 0  # only the stuck destination dropped, counted
    assert stats["capture"]["dropped"] == 0 and stats["capture"]["written"] == 40
    stuck.release.set()
    assert obs.close(timeout=10)
    got = obs.stats["stuck"]
    assert len(stuck.items) == got["written"] and got["written"] + got["dropped"] == 40


def test_every_sink_given_by_the_user_sits_behind_the_privacy_stage(db_path: Path) -> None:
    exporter, capture = InMemorySpanExporter(), Capture()
    with FakeLangSmith() as server, langsmith_client(server.url) as client:
        sinks = [capture, OTLP(exporter=exporter), LangSmith(client, project_name="p")]
        with ObsHandler(db_path, sinks=sinks) as obs:
            echo = RunnableLambda(lambda x: "ok", name="echo")
            echo.invoke({"api_key": SECRET, "text": f"token {SECRET}"}, {"callbacks": [obs]})
        assert obs.stats["langsmith"]["sent"] == 1
        sent = list(server.ops)
    assert capture.items and SECRET not in repr(capture.items)
    spans = exporter.get_finished_spans()
    assert len(spans) == 1 and SECRET not in repr(dict(spans[0].attributes))
    assert sent and SECRET not in repr(sent)
    assert SECRET not in repr([s.inputs for s in TraceStore(db_path).spans()])


def test_the_common_case_and_option_groups(db_path: Path) -> None:
    obs = ObsHandler(
        db_path,
        queue=Queue(batch_size=10),
        privacy=Privacy(hide_inputs=True),
        runs=Runs(max_open=100),
    )
    RunnableLambda(lambda x: x, name="n").invoke({"q": SECRET}, {"callbacks": [obs]})
    span = obs.store.spans()[0]
    assert span.inputs == "…[hidden]" and obs.max_open_runs == 100
    obs.close()


def test_old_keyword_names_work_for_one_release_with_a_warning(db_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"max_queue= -> queue=Queue\(max_size=...\)"):
        obs = ObsHandler(db_path, max_queue=5, redact=False)
    assert obs.queue.max_size == 5 and obs.privacy.redact is False
    obs.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling warns about nothing
        ObsHandler(db_path, queue=Queue(max_size=5)).close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"otlp_endpoint": "http://x:4318", "otlp_exporter": object()}, "ambiguous"),
        ({"queue": Queue(), "max_queue": 5}, "not both"),
        ({"privacy": Privacy(), "redact": False}, "not both"),
        ({"project_name": "p"}, r"sinks=\[LangSmith\(project_name=...\)\]"),
    ],
)
def test_conflicting_options_are_refused_with_the_fix(
    db_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=message):
        ObsHandler(db_path, **kwargs)


def test_an_unknown_keyword_is_a_type_error(db_path: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_queues'"):
        ObsHandler(db_path, max_queues=5)


def test_otlp_needs_one_of_endpoint_and_exporter() -> None:
    with pytest.raises(ValueError, match="exactly one of endpoint"):
        OTLP("http://x:4318", exporter=InMemorySpanExporter())
    with pytest.raises(ValueError, match="exactly one of endpoint"):
        OTLP()


class _Silent:
    """A loopback TCP server that accepts requests and never answers."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class HttpSink(NetworkSink):
    """A network sink that POSTs each batch with ``requests`` (read timeout 0.3 s)."""

    label = "http"

    def __init__(self, url: str) -> None:
        super().__init__(url, RetryPolicy(attempts=2, initial_backoff=0.01))
        self.url = url

    def prepare(self, batch: Any) -> tuple[Any, int]:
        return [record["span_id"] for _, record in batch], len(batch)

    def deliver(self, payload: Any) -> None:
        requests.post(self.url, json=payload, timeout=(5, 0.3)).raise_for_status()


def test_a_request_that_timed_out_counts_as_unknown_not_failed(db_path: Path) -> None:
    """The endpoint took the request and never answered: it may have stored the records,
    so they count as "unknown"; a refused connection counts as "failed"."""
    with _Silent() as url, ObsHandler(db_path, sinks=[HttpSink(url)]) as obs:
        RunnableLambda(lambda x: x, name="n").invoke(1, {"callbacks": [obs]})
        assert obs.flush(timeout=30)
        stats = obs.stats["http"]
    assert stats["unknown"] == 1 and stats["failed"] == 0 and stats["sent"] == 0
    assert stats["retries"] == 1 and "ReadTimeout" in stats["last_error"]
    with ObsHandler(db_path, sinks=[HttpSink(free_port_url())]) as obs:
        RunnableLambda(lambda x: x, name="n").invoke(1, {"callbacks": [obs]})
        assert obs.flush(timeout=30)
        stats = obs.stats["http"]
    assert stats["failed"] == 1 and stats["unknown"] == 0
