"""Live alerts: rules evaluated on the writer thread, once per episode, log / callable /
webhook (received by a loopback server), stored and queryable."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlite_utils

from lc_observe import AlertRule, ObsHandler, Queue, TraceStore, Webhook
from lc_observe.analysis.alerts import AlertSink
from lc_observe.demo_drift import PRICES, Knobs, build_graph, record_drift, run_tickets
from lc_observe.model import Alert
from lc_observe.storage.schema import ensure_schema
from lc_observe.testing import LoopbackRequestHandler, LoopbackServer

from .loopback import free_port_url


class _Hook(LoopbackRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.owner.lock:
            self.owner.bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class WebhookReceiver(LoopbackServer):
    """A Slack-like incoming webhook on 127.0.0.1 that keeps the JSON bodies it got."""

    handler_class = _Hook

    def __init__(self, lifetime: float = 120.0) -> None:
        super().__init__(lifetime)
        self.bodies: list[dict] = []


def test_error_rate_alert_fires_once_per_episode_to_every_action(tmp_path, caplog) -> None:
    db = str(tmp_path / "alerts.db")
    knobs = Knobs(seed=1, error_rate=0.0)
    graph = build_graph(knobs)
    seen: list[tuple[Alert, str]] = []

    def on_alert(alert: Alert) -> None:
        seen.append((alert, threading.current_thread().name))

    with WebhookReceiver() as hook:
        rule = AlertRule.error_rate(
            above=0.05, window="10m", min_traces=20, actions=["log", on_alert, Webhook(hook.url)]
        )
        handler = ObsHandler(
            db, prices=PRICES, alerts=[rule], alert_every=0, queue=Queue(batch_size=10)
        )
        caplog.set_level(logging.WARNING, logger="lc_observe")
        run_tickets(graph, handler, 30)
        assert handler.flush(30)
        assert seen == [] and hook.bodies == []  # no errors yet: nothing fired
        knobs.error_rate = 0.6
        for _ in range(3):  # many evaluations while the rate stays high: still one alert
            run_tickets(graph, handler, 15)
            assert handler.flush(30)
        handler.close()
        assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert set(body) == {"text"} and "error rate" in body["text"] and "above 5.0%" in body["text"]
    assert len(seen) == 1
    alert, thread = seen[0]
    assert thread == "lc_observe-writer"  # evaluated on the writer, never the callback path
    assert alert.kind == "error_rate" and alert.value > 0.05 and alert.threshold == 0.05
    assert sum("lc_observe alert" in r.message for r in caplog.records) == 1
    with TraceStore(db) as store:
        stored = store.alerts()
        assert len(stored) == 1
        assert stored[0].rule == rule.name and stored[0].actions == [
            "log",
            "on_alert",
            "webhook 200",
        ]
        assert stored[0].trace_ids and all(
            store.trace(t).status == "error" for t in stored[0].trace_ids
        )
        assert store.alerts(rule="another rule") == []
        assert "error_rate" in stored._repr_html_()


def _trace_rows(db_path, moments, failed) -> None:
    db = sqlite_utils.Database(db_path)
    ensure_schema(db, str(db_path))
    db["traces"].insert_all(
        {
            "trace_id": str(uuid.uuid4()),
            "name": "support",
            "kind": "chain",
            "status": "error" if bad else "ok",
            "start_time": moment.isoformat(timespec="microseconds"),
            "latency_ms": 10.0,
            "cost_usd": 0.5,
            "total_tokens": 100,
        }
        for moment, bad in zip(moments, failed, strict=True)
    )
    db.close()


def test_an_episode_ends_when_the_condition_clears_and_the_next_one_fires_again(tmp_path) -> None:
    db = tmp_path / "episodes.db"
    t0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
    minute = timedelta(minutes=1)
    # minutes 0-9: 50% errors; 10-29: none; 30-39: 50% errors again
    moments, failed = [], []
    for m in range(40):
        for k in range(4):
            moments.append(t0 + m * minute + k * timedelta(seconds=10))
            failed.append((m < 10 or m >= 30) and k % 2 == 0)
    _trace_rows(db, moments, failed)
    got: list[Alert] = []
    sink = AlertSink(str(db), [AlertRule.error_rate(0.05, "10m", actions=[got.append])], every=0)
    fired = []
    for m in range(1, 41):
        fired.append(len(sink.evaluate(now=t0 + m * minute)))
    sink.close()
    assert sum(fired) == 2 and len(got) == 2
    first, second = (i + 1 for i, n in enumerate(fired) if n)
    assert first == 5  # 5 minutes of data hold the 20 traces the rule waits for
    assert 30 < second <= 32  # the second episode, not a repeat of the first
    with TraceStore(db) as store:
        assert [a.time for a in store.alerts()] == [a.time for a in got]


def test_cost_and_anomaly_rules(tmp_path) -> None:
    db = str(tmp_path / "drift.db")
    split = record_drift(db, baseline=240, recent=100, seed=4, review_rate=0.45)
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    rules = [
        AlertRule.cost(above=0.0001, window="1d"),
        AlertRule.cost(above=1000.0, window="1d", name="big spend"),
        AlertRule.anomaly("branch_rate_change", window=now - split, baseline="1h"),
    ]
    sink = AlertSink(db, rules, every=0)
    fired = sink.evaluate(now=now)
    assert sink.evaluate(now=now) == []  # same episodes
    sink.close()
    by_rule = {(a.rule, a.group) for a in fired}
    assert (rules[0].name, None) in by_rule
    assert all(a.rule != "big spend" for a in fired)
    assert (rules[2].name, "classify -> human_review") in by_rule
    branch = next(a for a in fired if a.group == "classify -> human_review")
    assert branch.kind == "branch_rate_change" and "classify -> human_review" in branch.message


def test_a_dead_webhook_is_noted_and_the_writer_goes_on(tmp_path) -> None:
    db = str(tmp_path / "dead.db")
    rule = AlertRule.tokens(above=1, window="1h", actions=[Webhook(free_port_url(), timeout=2)])
    handler = ObsHandler(db, prices=PRICES, alerts=[rule], alert_every=0)
    run_tickets(build_graph(Knobs(seed=2, error_rate=0)), handler, 5)
    assert handler.flush(30)
    run_tickets(build_graph(Knobs(seed=3, error_rate=0)), handler, 5)
    assert handler.flush(30)
    assert handler.stats["failed"] == 0 and handler.stats["written"] > 0
    handler.close()
    with TraceStore(db) as store:
        (alert,) = store.alerts()
        assert alert.actions[0].startswith("failed: URLError")
        assert len(store.traces()) == 10


def test_rules_and_handler_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown: use a threshold"):
        AlertRule("x", "nope")
    with pytest.raises(ValueError, match="needs a threshold"):
        AlertRule("x", "cost")
    with pytest.raises(ValueError, match="cannot read '10 minutes' as a duration"):
        AlertRule.error_rate(0.05, window="10 minutes")
    with pytest.raises(ValueError, match="not 'log', a Webhook or a callable"):
        AlertRule.cost(1.0, actions=["email"])
    with pytest.raises(ValueError, match="must start with http"):
        Webhook("ftp://example.com")
    with pytest.raises(ValueError, match="pass a db_path"):
        ObsHandler(None, alerts=[AlertRule.cost(1.0)], sinks=[AlertSink("x.db", [])])
    assert AlertRule.error_rate(0.05).name == "error_rate > 0.05 over 10m"
    assert isinstance(AlertRule.cost(5, actions=["https://hooks.example/x"]).actions[0], Webhook)


def test_a_version_4_file_gains_the_alerts_table(tmp_path) -> None:
    import sqlite3

    from lc_observe.storage.schema import SCHEMA_VERSION

    db = tmp_path / "v4.db"
    first = ObsHandler(db, prices=PRICES, queue=Queue(handle_sigterm=False))
    run_tickets(build_graph(Knobs(seed=9, error_rate=0)), first, 3)
    first.close()
    with sqlite3.connect(db) as conn:  # as lc_observe with schema 4 left it
        conn.execute("DROP TABLE alerts")
        conn.execute("PRAGMA user_version = 4")
    with TraceStore(db) as store:
        assert store.alerts() == [] and len(store.traces()) == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
        conn.execute("DROP TABLE alerts")
        conn.execute("PRAGMA user_version = 4")
    rules = [AlertRule.tokens(above=1, window="1h")]
    handler = ObsHandler(db, prices=PRICES, alerts=rules, alert_every=0)
    run_tickets(build_graph(Knobs(seed=10, error_rate=0)), handler, 2)
    handler.close()
    with TraceStore(db) as store:
        assert len(store.alerts()) == 1 and len(store.traces()) == 5
