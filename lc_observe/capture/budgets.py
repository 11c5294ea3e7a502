"""Spending limits on model calls: `Budget`, and the bookkeeping behind it.

>>> from lc_observe import Budget, ObsHandler
>>> handler = ObsHandler(budgets=[
...     Budget(max_cost_usd=0.50, per="user_id"),                 # warn: log + stored event
...     Budget(max_tokens=20_000, per="trace", action="raise"),   # stop a runaway agent
... ])                                                            # doctest: +SKIP

Spending is counted when a chat model or LLM call ends: its ``cost_usd`` (calls whose
model has no price count no cost; see `lc_observe.capture.pricing`) and its ``total_tokens``.
LLM-cache hits spend nothing.  A budget is *used up* for a scope (one trace, one user,
one session or one UTC day) once its spending reaches ``max_cost_usd`` or ``max_tokens``;
that moment is a `BudgetExceeded` event, emitted once per budget and scope:

* ``action="warn"`` logs a warning on the ``lc_observe`` logger;
* ``action="raise"`` makes the *next* model call of that scope raise
  `BudgetExceededError` before it starts (the call is recorded as a failed span), and
  every later one too;
* a callable receives the `BudgetExceeded` event (on the callback thread: keep it quick;
  whatever it raises is logged, never passed on).

Every event is also stored (``budget_events`` table, `TraceStore.budget_events`).
Spending lives in the handler's memory: a new process (or handler) starts from zero,
scopes are forgotten when a trace ends (``per="trace"``) or beyond ``max_scopes``
(the least recently charged first), and ``per="day"`` keeps today only.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from lc_observe.errors import BudgetExceededError
from lc_observe.model import BudgetExceeded

__all__ = ["Budget", "BudgetExceeded", "BudgetExceededError", "BudgetTracker"]

Per = Literal["trace", "user_id", "session_id", "day"]
_PERS = ("trace", "user_id", "session_id", "day")
_ACTIONS = ("warn", "raise")


@dataclass(frozen=True)
class Budget:
    """A spending limit on model calls, per trace, user, session or UTC day.

    Args:
        max_cost_usd: limit on the summed ``cost_usd`` of model calls.
        max_tokens: limit on their summed ``total_tokens``.
        per: what one budget covers: ``"trace"`` (one root run), ``"user_id"``,
            ``"session_id"`` (calls without that id are not counted) or ``"day"`` (UTC).
        action: ``"warn"``, ``"raise"`` or a callable taking a `BudgetExceeded`.
        name: label stored with events (default: a description of the limit).
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    per: Per = "trace"
    action: Literal["warn", "raise"] | Callable[[BudgetExceeded], Any] = "warn"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.max_cost_usd is None and self.max_tokens is None:
            raise ValueError("Budget needs max_cost_usd=... or max_tokens=... (or both)")
        for field in ("max_cost_usd", "max_tokens"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not value >= 0):
                raise ValueError(f"Budget {field} must be a number >= 0, got {value!r}")
        if self.per not in _PERS:
            raise ValueError(f"Budget per= must be one of {_PERS}, got {self.per!r}")
        if not callable(self.action) and self.action not in _ACTIONS:
            raise ValueError(
                f"Budget action= must be 'warn', 'raise' or a callable, got {self.action!r}"
            )

    @property
    def label(self) -> str:
        """``name``, or a description such as ``"max_cost_usd=0.5 per user_id"``."""
        if self.name:
            return self.name
        parts = [
            f"{field}={getattr(self, field)}"
            for field in ("max_cost_usd", "max_tokens")
            if getattr(self, field) is not None
        ]
        return f"{' '.join(parts)} per {self.per}"

    @property
    def action_name(self) -> str:
        return self.action if isinstance(self.action, str) else "callable"


class _Spend:
    __slots__ = ("cost", "exceeded", "tokens")

    def __init__(self) -> None:
        self.cost = 0.0
        self.tokens = 0
        self.exceeded: BudgetExceeded | None = None


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


class BudgetTracker:
    """Spending per (budget, scope); the handler calls `blocked` at each model start and
    `spend` at each model end.  Thread-safe; O(budgets) per call."""

    def __init__(self, budgets: Sequence[Budget], max_scopes: int = 100_000) -> None:
        for budget in budgets:
            if not isinstance(budget, Budget):
                raise TypeError(f"budgets= takes Budget objects, got {budget!r}")
        self.budgets = tuple(budgets)
        self.raises = any(b.action == "raise" for b in self.budgets)
        self._per_trace = [i for i, b in enumerate(self.budgets) if b.per == "trace"]
        self.max_scopes = max_scopes
        self._spend: OrderedDict[tuple[int, str], _Spend] = OrderedDict()  # oldest charge first
        self._day = _today()
        self._lock = threading.Lock()

    @staticmethod
    def scope(budget: Budget, record: dict[str, Any]) -> str | None:
        """The scope a span record counts in for ``budget`` (None: not counted)."""
        if budget.per == "trace":
            return record["trace_id"]
        if budget.per == "day":
            return _today()
        value = record.get(budget.per)
        return None if value is None else str(value)

    def blocked(self, record: dict[str, Any]) -> BudgetExceededError | None:
        """The error to raise before the model call ``record`` starts, if a ``raise``
        budget of its scope is used up."""
        for index, budget in enumerate(self.budgets):
            if budget.action != "raise":
                continue
            scope = self.scope(budget, record)
            spend = self._spend.get((index, scope)) if scope is not None else None
            if spend is not None and spend.exceeded is not None:
                return BudgetExceededError(spend.exceeded)
        return None

    def spend(self, record: dict[str, Any]) -> list[tuple[Budget, BudgetExceeded]]:
        """Charge a finished model call; returns the budgets it used up (each once)."""
        cost = record.get("cost_usd") or 0.0
        tokens = record.get("total_tokens") or 0
        if not cost and not tokens:
            return []
        events = []
        with self._lock:
            self._roll_day()
            for index, budget in enumerate(self.budgets):
                scope = self.scope(budget, record)
                if scope is None:
                    continue
                key = (index, scope)
                spend = self._spend.get(key)
                if spend is None:
                    spend = self._spend[key] = _Spend()
                else:
                    self._spend.move_to_end(key)  # most recently charged last
                spend.cost += cost
                spend.tokens += tokens
                if spend.exceeded is None:
                    spend.exceeded = self._exceeded(budget, scope, spend, record)
                    if spend.exceeded is not None:
                        events.append((budget, spend.exceeded))
            while len(self._spend) > self.max_scopes:
                self._spend.popitem(last=False)
        return events

    def trace_ended(self, trace_id: str) -> None:
        """Forget per-trace spending of a finished trace."""
        if self._per_trace:
            with self._lock:
                for index in self._per_trace:
                    self._spend.pop((index, trace_id), None)

    def _roll_day(self) -> None:
        today = _today()
        if today != self._day:
            self._day = today
            days = {i for i, b in enumerate(self.budgets) if b.per == "day"}
            for key in [k for k in self._spend if k[0] in days and k[1] != today]:
                del self._spend[key]

    @staticmethod
    def _exceeded(
        budget: Budget, scope: str, spend: _Spend, record: dict[str, Any]
    ) -> BudgetExceeded | None:
        if budget.max_cost_usd is not None and spend.cost >= budget.max_cost_usd:
            metric, limit, spent = "cost_usd", float(budget.max_cost_usd), spend.cost
        elif budget.max_tokens is not None and spend.tokens >= budget.max_tokens:
            metric, limit, spent = "tokens", float(budget.max_tokens), float(spend.tokens)
        else:
            return None
        return BudgetExceeded(
            time=datetime.fromtimestamp(time.time(), timezone.utc),
            budget=budget.label,
            per=budget.per,
            scope=scope,
            metric=metric,
            limit_value=limit,
            spent=spent,
            action=budget.action_name,
            trace_id=record["trace_id"],
            span_id=record["span_id"],
            user_id=record.get("user_id"),
            session_id=record.get("session_id"),
        )
