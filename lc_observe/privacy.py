"""The privacy stage: every finished record made public once, before any sink sees it.

``ObsHandler`` hands finished records (plain dicts holding the application's own objects)
to its writer thread, which passes each batch through `PrivacyStage.batch` and only then
fans it out to the sinks -- the SQLite file, the LangSmith and OpenTelemetry mirrors and
any sink passed as ``sinks=[...]``.  What a sink receives is a *public record*:

- only public keys (the handler's bookkeeping keys, which start with ``_``, are gone);
- JSON-safe values (`lc_observe.serialize`): dicts with string keys, lists, strings,
  numbers, booleans and None;
- bounded by `Limits`: every string (error messages and tracebacks included), every
  container's item count, nesting depth, and each field's JSON size;
- redacted by the handler's redactor: one walk over keys and strings (`lc_observe.redact`),
  ids copied to columns (``user_id``, ``session_id``, budget scopes) included, within a
  time budget per record.

A LangSmith mirror needs three more facts about model and nested runs; they travel as
public fields too: ``ancestry`` (``[[start_time, span_id], ...]`` from the root down to the
span), ``invocation`` (the model's start arguments) and ``serialized`` (its manifest).

>>> stage = PrivacyStage(Limits(), Redactor())                        # doctest: +SKIP
>>> stage.batch([("span", record)])[0][1]["inputs"]                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from .records import RECORD_RUNNING, RECORD_SPAN
from .redact import BUDGET_EXCEEDED, Redactor
from .serialize import TRUNCATED_KEY, Limits, _clean_str, _encode_plain, dumps, to_jsonable

try:
    import orjson
except ImportError:  # pragma: no cover - PyPy, or langsmith without it
    orjson = None  # type: ignore[assignment]

Item = tuple[str, dict[str, Any]]

#: Fields of a span record that hold the application's values (serialized and redacted).
_PAYLOADS = frozenset({"inputs", "outputs", "metadata", "tags"})
#: Fields that are lc_observe's own ids, kinds and numbers: kept as they are.
_OWN = frozenset({"span_id", "trace_id", "parent_id", "kind", "status"})
#: Private bookkeeping the LangSmith mirror needs, and the public name it travels under.
_LANGSMITH = {"_ls_extra": "invocation", "_ls_serialized": "serialized"}
_REDACTION_FAILED = "…[redaction failed]"
#: A value whose plain JSON is this many times ``max_field_chars`` is bounded the careful
#: way (cut while converting) instead of parsed back whole.
_FAST_PATH_FACTOR = 4


def json_text(value: Any) -> str:
    """Compact JSON text of a JSON-safe value (what the SQLite sink stores)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # an int beyond 64 bits: the stdlib encoder takes it
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> Any:
    return orjson.loads(text) if orjson is not None else json.loads(text)


class PrivacyStage:
    """Turn finished records into public records (see the module docstring).

    Args:
        limits: size limits of every value.
        redact: the handler's redactor: a `Redactor`, any function on JSON-safe values,
            or ``None`` (no redaction).
        time_budget: seconds the redaction of one record may take; what it has not
            reached by then becomes ``"…[redaction budget exceeded]"`` (never kept in
            clear).  A `Redactor`'s own ``time_budget`` applies per call otherwise.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        *,
        time_budget: float | None = 1.0,
    ) -> None:
        self.limits = limits or Limits()
        self.redact = redact
        self.redactor = redact if isinstance(redact, Redactor) else None
        self.time_budget = time_budget
        self._deadline: float | None = None
        self._memo: dict[int, Any] = {}

    # -- records -------------------------------------------------------------------------------

    def batch(self, items: Sequence[Item]) -> list[Item]:
        """The public form of every record of a batch (never raises).

        The batch's records keep their objects alive, so an object shared by several
        records (LangChain hands a run's input to its first child) is converted once.
        """
        self._memo = {}
        try:
            return [(kind, self.record(kind, record)) for kind, record in items]
        finally:
            self._memo = {}

    def record(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        """The public form of one record of type ``kind`` (span, running, branch, budget)."""
        budget = self.time_budget
        self._deadline = None if budget is None else time.perf_counter() + budget
        try:
            if kind in (RECORD_SPAN, RECORD_RUNNING):
                return self._span(record)
            return self._generic(record)  # branch and budget events, anything else
        except Exception:  # pragma: no cover - every step below is guarded already
            return {key: None for key in record if not key.startswith("_")}

    def _span(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key[:1] == "_":
                continue
            if key in _PAYLOADS:
                out[key] = self.value(value)
            elif key in _OWN:
                out[key] = value if value is None or isinstance(value, str) else str(value)
            elif key == "error":
                out[key] = None if value is None else self._error(value)
            else:
                out[key] = self.scalar(value)
        if out.get("tags") is None:
            out["tags"] = []
        if out.get("metadata") is None:
            out["metadata"] = {}
        link = record.get("_ls_order")
        if link is not None:
            out["ancestry"] = _ancestry(link)
        for private, public in _LANGSMITH.items():
            if record.get(private) is not None:
                out[public] = self.value(record[private])
        return out

    def _generic(self, record: dict[str, Any]) -> dict[str, Any]:
        """Branch and budget events: containers as values, everything else as scalars."""
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key[:1] == "_":
                continue
            if isinstance(value, (dict, list, tuple, set, frozenset)):
                out[key] = self.value(value)
            else:
                out[key] = self.scalar(value)
        return out

    def _error(self, error: Any) -> dict[str, Any]:
        if not isinstance(error, dict):
            return {"type": self.scalar(type(error).__name__), "message": self.text(str(error))}
        return {
            "type": self.scalar(error.get("type")),
            "message": self.text(error.get("message")),
            "traceback": self.text(error.get("traceback")),
        }

    # -- values --------------------------------------------------------------------------------

    def scalar(self, value: Any) -> Any:
        """A plain field: numbers and None as they are, text bounded and redacted, anything
        else as its (bounded, redacted) JSON text."""
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            return int(value) if -(2**63) <= value < 2**63 else str(value)
        if isinstance(value, str):
            return self.text(value)
        return dumps(value, self.limits, self.redact)

    def text(self, value: Any) -> str | None:
        """A string bounded by ``max_string_chars`` and redacted."""
        if value is None:
            return None
        if not isinstance(value, str):
            value = str(value)
        redacted = self._redacted(_clean_str(value, self.limits))
        return redacted if isinstance(redacted, str) else json_text(redacted)

    def value(self, value: Any) -> Any:
        """An application value as public data: JSON-safe, bounded and redacted."""
        if value is None:
            return None
        memo = self._memo
        key = id(value) if isinstance(value, (dict, list)) else None
        if key is not None and key in memo:
            return memo[key]
        result = self._value(value)
        if key is not None:
            memo[key] = result
        return result

    def _value(self, value: Any) -> Any:
        limits = self.limits
        data: Any = None
        fast = False
        try:
            text = _encode_plain(value)
            if len(text) <= limits.max_field_chars * _FAST_PATH_FACTOR:
                data, fast = _loads(text), True
        except Exception:  # not plain data (or NaN, a lone surrogate ...): the careful way
            fast = False
        if not fast:
            return self._field_capped(self._redacted(to_jsonable(value, limits)))
        data = self._bound_and_redact(data)
        return self._field_capped(data)

    def _bound_and_redact(self, data: Any) -> Any:
        """One walk: cut strings, containers and depth as `to_jsonable` does, redacting keys
        and strings on the way (with a `Redactor`; another function runs afterwards)."""
        if self.redactor is None:
            return self._redacted(_Walk(self.limits, None, None).run(data))
        return _Walk(self.limits, self.redactor, self._deadline).run(data)

    def _redacted(self, data: Any) -> Any:
        if self.redact is None:
            return data
        try:
            if self.redactor is not None:
                return self.redactor.redact(data, self._deadline)
            return self.redact(data)
        except Exception:  # a failing redactor must not leak the unredacted value
            return _REDACTION_FAILED

    def _field_capped(self, data: Any) -> Any:
        """A value whose JSON exceeds ``max_field_chars`` becomes a marked preview."""
        if isinstance(data, (str, int, float, bool)) or data is None:
            return data
        text = json_text(data)
        limit = self.limits.max_field_chars
        if len(text) <= limit:
            return data
        return {TRUNCATED_KEY: True, "chars": len(text), "preview": text[: limit // 2]}


class _Walk:
    """Bound (and, given a `Redactor`, redact) a JSON-safe value in one pass."""

    __slots__ = ("deadline", "max_chars", "max_depth", "max_items", "replacement", "secret", "text")

    def __init__(self, limits: Limits, redactor: Redactor | None, deadline: float | None) -> None:
        self.max_chars = limits.max_string_chars
        self.max_items = limits.max_items
        self.max_depth = limits.max_depth
        self.text = redactor.text if redactor is not None else None
        self.secret = redactor.is_secret_key if redactor is not None else None
        self.replacement = redactor.replacement if redactor is not None else None
        self.deadline = deadline

    def run(self, value: Any) -> Any:
        return self._walk(value, 0)

    def _string(self, value: str, budget: bool = True) -> str:
        if len(value) > self.max_chars:
            cut = len(value) - self.max_chars
            value = f"{value[: self.max_chars]}…[truncated {cut} chars]"
        if self.text is None:
            return value
        if budget and self.deadline is not None and time.perf_counter() > self.deadline:
            return BUDGET_EXCEEDED
        return self.text(value)

    def _walk(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return self._string(value)
        if kind is dict:
            if depth >= self.max_depth:
                return "…[max depth]"
            out: dict[str, Any] = {}
            secret = self.secret
            for index, (key, item) in enumerate(value.items()):
                if index >= self.max_items:
                    out[f"…[truncated {len(value) - self.max_items} items]"] = None
                    break
                name = self._string(key, budget=False)  # keys stay distinct
                if secret is not None and secret(key):
                    out[name] = self.replacement
                else:
                    out[name] = self._walk(item, depth + 1)
            return out
        if kind is list:
            if depth >= self.max_depth:
                return "…[max depth]"
            items = [self._walk(item, depth + 1) for item in value[: self.max_items]]
            if len(value) > self.max_items:
                items.append(f"…[truncated {len(value) - self.max_items} items]")
            return items
        return value


def _ancestry(link: tuple) -> list[list[Any]]:
    """A dotted-order link ``(parent link, start, span_id)`` as ``[[start, span_id], ...]``
    from the root down."""
    chain: list[list[Any]] = []
    while link is not None:
        parent, start, span_id = link
        chain.append([start, span_id])
        link = parent
    chain.reverse()
    return chain
