"""Live alerts: rules evaluated on the writer thread, actions when an episode starts.

>>> from lc_observe.analysis.alerts import AlertRule, Webhook            # doctest: +SKIP
>>> handler = ObsHandler("app.db", alerts=[                               # doctest: +SKIP
...     AlertRule.error_rate(above=0.05, window="10m"),
...     AlertRule.cost(above=20.0, window="1d", actions=["log", Webhook(SLACK_URL)]),
...     AlertRule.anomaly("branch_rate_change", window="1h", baseline="7d"),
... ])

`AlertSink` is a `Sink` placed right after the SQLite sink: after a batch is written, and
at most every ``every`` seconds, it evaluates every rule against the database file (the
callback path never sees any of it).  A rule fires once per *episode*: when its condition
becomes true for a group, it runs its actions and stores an `Alert` row
(`TraceStore.alerts`); while the condition stays true nothing more happens; once it is
false again the episode is over and the next crossing fires again.

Actions: ``"log"`` (a warning on the ``lc_observe`` logger), any callable taking the
`Alert`, or a `Webhook` (an HTTP POST of JSON; Slack-compatible ``{"text": ...}`` by
default).  An action that fails is logged and noted in the stored alert; it never stops
the writer.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from lc_observe.pipeline.processor import Item
from lc_observe.storage.schema import ALERT_COLUMNS, configure
from lc_observe.storage.stats import percentile
from lc_observe.times import duration as _duration

from ..model import Alert

logger = logging.getLogger("lc_observe")

ThresholdMetric = Literal["error_rate", "cost", "tokens", "latency_p95", "traces"]
_THRESHOLDS = ("error_rate", "cost", "tokens", "latency_p95", "traces")


@dataclass(frozen=True)
class Webhook:
    """POST the alert as JSON to ``url`` (``urllib``; ``timeout`` seconds at most).

    ``payload="slack"`` sends ``{"text": message}`` (Slack, Mattermost, Discord's
    ``/slack`` endpoints, Teams workflows); ``"full"`` adds ``"alert"``: every field.
    """

    url: str
    timeout: float = 3.0
    payload: Literal["slack", "full"] = "slack"
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"Webhook url must start with http:// or https://, got {self.url!r}")

    def __call__(self, alert: Alert) -> str:
        body: dict[str, Any] = {"text": alert.message}
        if self.payload == "full":
            body["alert"] = alert.model_dump(mode="json")
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return f"webhook {response.status}"


Action = Literal["log"] | Webhook | Callable[[Alert], Any]


@dataclass(frozen=True)
class AlertRule:
    """One alert rule: a threshold over a trailing window, or an anomaly kind.

    Build with the class methods (`error_rate`, `cost`, `tokens`, `latency_p95`,
    `anomaly`); ``kind`` is a threshold metric or an anomaly kind
    (`lc_observe.analysis.anomalies.KINDS`).
    """

    name: str
    kind: str
    threshold: float | None = None
    window: timedelta = timedelta(minutes=10)
    actions: tuple[Action, ...] = ("log",)
    min_traces: int = 1
    baseline: timedelta = timedelta(days=7)
    by: str = "name"
    config: Any = None  # an AnomalyConfig for anomaly rules

    def __post_init__(self) -> None:
        from .anomalies import KINDS

        if self.kind not in _THRESHOLDS and self.kind not in KINDS:
            raise ValueError(
                f"AlertRule kind {self.kind!r} is unknown: use a threshold "
                f"({', '.join(_THRESHOLDS)}) or an anomaly kind ({', '.join(KINDS)})"
            )
        if self.kind in _THRESHOLDS and self.threshold is None:
            raise ValueError(f"AlertRule {self.name!r}: a {self.kind} rule needs a threshold")
        for action in self.actions:
            if action != "log" and not callable(action):
                raise ValueError(
                    f"AlertRule {self.name!r}: action {action!r} is not 'log', a Webhook "
                    "or a callable taking the Alert"
                )

    @classmethod
    def _threshold(
        cls,
        kind: str,
        above: float,
        window: Any,
        name: str | None,
        actions: Sequence[Any],
        min_traces: int = 1,
    ) -> AlertRule:
        window = _duration(window)
        return cls(
            name=name or f"{kind} > {above:g} over {_text(window)}",
            kind=kind,
            threshold=float(above),
            window=window,
            actions=tuple(_action(a) for a in actions),
            min_traces=min_traces,
        )

    @classmethod
    def error_rate(
        cls,
        above: float,
        window: Any = "10m",
        *,
        min_traces: int = 20,
        actions: Sequence[Any] = ("log",),
        name: str | None = None,
    ) -> AlertRule:
        """Share of failed traces in the trailing ``window`` above ``above`` (0..1), once
        the window holds ``min_traces`` traces.

        >>> AlertRule.error_rate(0.05, "10m").name
        'error_rate > 0.05 over 10m'
        """
        return cls._threshold("error_rate", above, window, name, actions, min_traces)

    @classmethod
    def cost(
        cls,
        above: float,
        window: Any = "1d",
        *,
        actions: Sequence[Any] = ("log",),
        name: str | None = None,
    ) -> AlertRule:
        """Total cost (USD) of the traces in the trailing ``window`` above ``above``."""
        return cls._threshold("cost", above, window, name, actions)

    @classmethod
    def tokens(
        cls,
        above: float,
        window: Any = "1h",
        *,
        actions: Sequence[Any] = ("log",),
        name: str | None = None,
    ) -> AlertRule:
        """Total tokens of the traces in the trailing ``window`` above ``above``."""
        return cls._threshold("tokens", above, window, name, actions)

    @classmethod
    def latency_p95(
        cls,
        above_ms: float,
        window: Any = "10m",
        *,
        min_traces: int = 20,
        actions: Sequence[Any] = ("log",),
        name: str | None = None,
    ) -> AlertRule:
        """p95 trace latency (ms) in the trailing ``window`` above ``above_ms``, once the
        window holds ``min_traces`` traces."""
        return cls._threshold("latency_p95", above_ms, window, name, actions, min_traces)

    @classmethod
    def anomaly(
        cls,
        kind: str,
        window: Any = "1h",
        *,
        baseline: Any = "7d",
        by: str = "name",
        config: Any = None,
        actions: Sequence[Any] = ("log",),
        name: str | None = None,
    ) -> AlertRule:
        """Any `TraceStore.anomalies` finding of ``kind`` in the trailing ``window`` against
        the ``baseline`` before it; one episode per anomaly group."""
        window = _duration(window)
        return cls(
            name=name or f"{kind} over {_text(window)}",
            kind=kind,
            window=window,
            actions=tuple(_action(a) for a in actions),
            baseline=_duration(baseline),
            by=by,
            config=config,
        )


def _action(value: Any) -> Action:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return Webhook(value)
    return value


def _text(window: timedelta) -> str:
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _by(column: str) -> Callable[[Any], float]:
    """Sort key: largest ``column`` first."""
    return lambda row: -(row[column] or 0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class AlertSink:
    """Evaluate `AlertRule` s on the writer thread, after the SQLite sink wrote a batch.

    Args:
        db_path: the database the handler writes (read for the rules; alerts stored there).
        rules: the rules.
        every: seconds between two evaluations at most (0: after every batch).
    """

    def __init__(self, db_path: str, rules: Sequence[AlertRule], every: float = 30.0) -> None:
        if every < 0:
            raise ValueError("alert_every must be >= 0 seconds")
        self.db_path = db_path
        self.rules = list(rules)
        self.every = every
        self._last = float("-inf")
        self._active: set[tuple[str, str | None]] = set()  # (rule, group) in an episode
        self._conn: sqlite3.Connection | None = None
        self._store: Any = None
        self._pid = os.getpid()
        self.evaluations = 0

    # -- Sink --------------------------------------------------------------------------------

    def export(self, batch: Sequence[Item]) -> int:
        if self._pid != os.getpid():  # forked: a connection must not cross fork(); drop it
            self._pid, self._store, self._conn = os.getpid(), None, None
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.evaluate()
        return len(batch)

    def shutdown(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._conn is not None:
            self._conn.close()
        self._store = self._conn = None

    close = shutdown  # the older name of the exporter contract's shutdown

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> list[Alert]:
        """Evaluate every rule once; returns the alerts that fired (new episodes)."""
        now = now or datetime.now(timezone.utc)
        self.evaluations += 1
        fired: list[Alert] = []
        for rule in self.rules:
            try:
                findings = self._check(rule, now)
            except Exception:
                logger.exception("lc_observe: alert rule %r could not be evaluated", rule.name)
                continue
            current = set()
            for group, value, message, trace_ids in findings:
                key = (rule.name, group)
                current.add(key)
                if key in self._active:
                    continue  # same episode: fired already
                self._active.add(key)
                fired.append(self._fire(rule, now, group, value, message, trace_ids))
            for key in [k for k in self._active if k[0] == rule.name and k not in current]:
                self._active.discard(key)  # the episode is over
        return fired

    def _reader(self) -> Any:
        if self._store is None:
            from lc_observe.storage.store import TraceStore

            self._store = TraceStore(self.db_path)
        return self._store

    def _check(self, rule: AlertRule, now: datetime) -> list[tuple]:
        """``(group, value, message, example trace ids)`` for each group over the rule."""
        store = self._reader()
        since = now - rule.window
        if rule.kind not in _THRESHOLDS:
            from .anomalies import AnomalyConfig, find_anomalies

            config = rule.config or AnomalyConfig()
            config = config.model_copy(update={"kinds": (rule.kind,)})
            found = find_anomalies(
                store, since=since, until=now, baseline=rule.baseline, by=rule.by, config=config
            )
            return [
                (a.group, a.recent_value, f"[{rule.name}] {a.explanation}", a.trace_ids)
                for a in found
            ]
        rows = store._query(
            "SELECT trace_id, status, latency_ms, total_tokens, cost_usd FROM traces "
            "WHERE start_time >= ? AND start_time < ? AND status != 'running'",
            (_iso(since), _iso(now)),
        )
        if len(rows) < rule.min_traces:
            return []
        window = _text(rule.window)
        if rule.kind == "error_rate":
            failed = [r["trace_id"] for r in rows if r["status"] == "error"]
            value = len(failed) / len(rows)
            message = (
                f"[{rule.name}] error rate {value:.1%} over the last {window} "
                f"({len(failed)}/{len(rows)} traces) is above {rule.threshold:.1%}"
            )
            examples = failed[-3:]
        elif rule.kind == "cost":
            value = sum(r["cost_usd"] or 0.0 for r in rows)
            message = (
                f"[{rule.name}] ${value:.4f} spent over the last {window} "
                f"({len(rows)} traces) is above ${rule.threshold:g}"
            )
            examples = [r["trace_id"] for r in sorted(rows, key=_by("cost_usd"))]
        elif rule.kind == "tokens":
            value = float(sum(r["total_tokens"] or 0 for r in rows))
            message = (
                f"[{rule.name}] {value:,.0f} tokens over the last {window} "
                f"is above {rule.threshold:,.0f}"
            )
            examples = [r["trace_id"] for r in sorted(rows, key=_by("total_tokens"))]
        elif rule.kind == "latency_p95":
            latencies = sorted(r["latency_ms"] for r in rows if r["latency_ms"] is not None)
            value = percentile(latencies, 0.95) or 0.0
            message = (
                f"[{rule.name}] p95 latency {value:,.0f} ms over the last {window} "
                f"is above {rule.threshold:,.0f} ms"
            )
            examples = [r["trace_id"] for r in sorted(rows, key=_by("latency_ms"))]
        else:  # traces
            value = float(len(rows))
            message = (
                f"[{rule.name}] {len(rows)} traces over the last {window} "
                f"is above {rule.threshold:g}"
            )
            examples = [r["trace_id"] for r in rows[-3:]]
        if value <= (rule.threshold or 0.0):
            return []
        return [(None, value, message, examples[:3])]

    def _fire(
        self,
        rule: AlertRule,
        now: datetime,
        group: str | None,
        value: float | None,
        message: str,
        trace_ids: list[str],
    ) -> Alert:
        alert = Alert(
            time=now,
            rule=rule.name,
            kind=rule.kind,
            group=group,
            value=value,
            threshold=rule.threshold,
            message=message,
            trace_ids=list(trace_ids),
        )
        outcomes = []
        for action in rule.actions:
            try:
                if action == "log":
                    logger.warning("lc_observe alert: %s", message)
                    outcomes.append("log")
                else:
                    result = action(alert)  # type: ignore[operator]
                    label = (
                        result
                        if isinstance(result, str)
                        else getattr(action, "__name__", type(action).__name__)
                    )
                    outcomes.append(str(label))
            except Exception as exc:
                logger.warning("lc_observe: alert action %r failed: %s", action, exc)
                outcomes.append(f"failed: {type(exc).__name__}: {exc}"[:200])
        alert = alert.model_copy(update={"actions": outcomes})
        self._store_alert(alert)
        return alert

    def _store_alert(self, alert: Alert) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.db_path, check_same_thread=False)
                configure(self._conn)
            row = alert.model_dump(mode="json", exclude={"id"})
            row["time"] = _iso(alert.time)
            row["actions"] = json.dumps(row["actions"])
            row["trace_ids"] = json.dumps(row["trace_ids"])
            columns = [c for c in ALERT_COLUMNS if c != "id"]
            quoted = ", ".join(f'"{c}"' for c in columns)
            with self._conn:
                self._conn.execute(
                    f"INSERT INTO alerts ({quoted}) VALUES ({', '.join('?' * len(columns))})",
                    [row[c] for c in columns],
                )
        except sqlite3.Error as exc:
            logger.warning("lc_observe: could not store alert %r: %s", alert.rule, exc)
