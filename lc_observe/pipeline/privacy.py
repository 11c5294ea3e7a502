"""The privacy stage: every finished record made public once, before any sink sees it.

``ObsHandler`` hands finished records (plain dicts holding the application's own objects)
to its writer thread, which passes each batch through `PrivacyStage.batch` and only then
fans it out to the sinks -- the SQLite file, the LangSmith and OpenTelemetry mirrors and
any sink passed as ``sinks=[...]``.  What a sink receives is a *public record*:

- only public keys (the handler's bookkeeping keys, which start with ``_``, are gone);
- JSON-safe values (`lc_observe.pipeline.serialize`): dicts with string keys, lists, strings,
  numbers, booleans and None;
- bounded by `Limits`: every string (error messages and tracebacks included), every
  container's item count, nesting depth, and each field's JSON size;
- redacted by the handler's redactor: one walk over keys and strings (`lc_observe.pipeline.redact`),
  within a time budget per record.  Every text column that comes from the application is
  redacted too: names, tags, ``user_id`` and ``session_id`` (also when the app gave a dict:
  its JSON text is redacted by key, ``{"api_key": "[REDACTED]"}``), graph and node names,
  model names, error type, message and traceback, branch events' source, condition, result
  and destinations, budget scopes, score comments and labels.  Only lc_observe's own ids,
  kinds, statuses and numbers skip it (by key and by type).

Three more facts about runs travel as public fields when a sink asks for them (its
``wants`` attribute; the LangSmith sink does): ``ancestry`` (``[[start_time, span_id], ...]``
from the root down to the span, from the capture layer's generic run links), ``invocation``
(a model's start arguments) and ``serialized`` (its manifest).

>>> stage = PrivacyStage(Limits(), Redactor())                        # doctest: +SKIP
>>> stage.batch([("span", record)])[0][1]["inputs"]                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Any

from lc_observe.pipeline.redact import BUDGET_EXCEEDED, Redactor
from lc_observe.pipeline.serialize import (
    TRUNCATED_KEY,
    Limits,
    _clean_str,
    _encode_plain,
    dumps,
    to_jsonable,
)
from lc_observe.records import RECORD_RUNNING, RECORD_SPAN

try:
    import orjson
except ImportError:  # pragma: no cover - PyPy, or langsmith without it
    orjson = None  # type: ignore[assignment]

Item = tuple[str, dict[str, Any]]

#: Fields of a span record that hold the application's values (serialized and redacted).
_PAYLOADS = frozenset({"inputs", "outputs", "metadata", "tags", "params"})
#: Fields that are lc_observe's own ids, kinds and numbers: kept as they are.
_OWN = frozenset({"span_id", "trace_id", "parent_id", "kind", "status", "traceparent"})
#: Optional public fields (added when a sink wants them) and the private key they come from.
EXTRAS = {"ancestry": "_link", "invocation": "_invocation", "serialized": "_serialized"}
#: Batches whose JSON texts stay known to `PrivacyStage.text_of`: the local file's writer
#: runs on its own thread, usually at most a batch behind (further behind, it encodes the
#: values itself).  Each generation keeps its values alive: few, to bound memory.
_TEXT_GENERATIONS = 3
_REDACTION_FAILED = "…[redaction failed]"
#: A value whose plain JSON is this many times ``max_field_chars`` is bounded the careful
#: way (cut while converting) instead of parsed back whole.
_FAST_PATH_FACTOR = 4
#: Public forms of values whose plain JSON is at most this long are remembered by that
#: text (this many of them: at most ~8M characters, a few hundred KB for typical values).
_CACHED_TEXT_CHARS = 8_192
_CACHE_SIZE = 512
_NUMBERS = frozenset({int, float, bool})
#: Field texts (names, ids ...) up to this size have their public form remembered.
_CACHED_STRING_CHARS = 1_000
#: Strings longer than this are checked against the time budget one by one.
_LONG_STRING = 1_000
#: First and last characters of a field text that may be the JSON text of a dict or list.
_OPENERS = frozenset("{[")
_CLOSERS = frozenset("}]")


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
        extras: optional public fields to add (keys of `EXTRAS`), those the sinks want.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        *,
        time_budget: float | None = 1.0,
        extras: Collection[str] = (),
    ) -> None:
        unknown = set(extras) - set(EXTRAS)
        if unknown:
            raise ValueError(f"unknown optional fields {sorted(unknown)}; known: {sorted(EXTRAS)}")
        self.ancestry = "ancestry" in extras
        self.extras = {EXTRAS[name]: name for name in extras if name != "ancestry"}
        self.limits = limits or Limits()
        self.redact = redact
        self.redactor = redact if isinstance(redact, Redactor) else None
        self.time_budget = time_budget
        self._deadline: float | None = None
        self._memo: dict[int, Any] = {}
        # id of a public value -> (the value, its JSON), for the last few batches
        self._texts: dict[int, tuple[Any, str]] = {}
        self._generations: deque[dict[int, tuple[Any, str]]] = deque(maxlen=_TEXT_GENERATIONS)
        self._batch_values: dict[str, Any] = {}  # plain JSON -> public value, this batch
        # Remembering results is only sound for a redactor whose verdicts depend on the
        # value alone: ours (a function of the user's might count calls or keep state).
        self._cache_ok = redact is None or self.redactor is not None
        self._cache: dict[str, str] = {}
        self._keys: dict[str, tuple[str, bool]] = {}  # key -> (public name, secret?)
        self._strings: dict[str, str] = {}  # field text -> its public form (Redactor only)

    # -- records -------------------------------------------------------------------------------

    def batch(self, items: Sequence[Item]) -> list[Item]:
        """The public form of every record of a batch (never raises).

        The batch's records keep their objects alive, so an object shared by several
        records (LangChain hands a run's input to its first child) is converted once, and
        equal values within the batch become one public object: sinks treat records as
        read-only (as OpenTelemetry exporters treat spans).
        """
        self._memo = {}
        self._texts = {}
        self._generations.append(self._texts)
        self._batch_values = {}
        try:
            return [(kind, self.record(kind, record)) for kind, record in items]
        finally:
            self._memo = {}  # the texts stay until the next batch: the sinks read them
            self._batch_values = {}

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
        # Most fields are None or numbers and stay as they are: copy all public fields at
        # once, then convert the few that are not.
        out = {key: value for key, value in record.items() if key[0] != "_"}
        strings = self._strings
        for key, value in out.items():
            kind = value.__class__
            if kind is str:  # names, ids, models: public forms remembered (see `text`)
                if key not in _OWN:
                    known = strings.get(value)
                    out[key] = known if known is not None else self.text(value)
                continue
            if value is None or kind in _NUMBERS:
                continue
            if key in _PAYLOADS:
                out[key] = self.value(value)
            elif key in _OWN:
                out[key] = value if isinstance(value, str) else str(value)
            elif key == "error":
                out[key] = self._error(value)
            else:
                out[key] = self.scalar(value)
        if out.get("tags") is None:
            out["tags"] = []
        if out.get("metadata") is None:
            out["metadata"] = {}
        if self.ancestry:
            link = record.get("_link")
            if link is not None:
                out["ancestry"] = _ancestry(link)
        for private, public in self.extras.items():
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
        known = self._strings.get(value)  # names, ids and kinds repeat record after record
        if known is not None:
            return known
        original = value
        if (
            value[:1] in _OPENERS
            and value[-1:] in _CLOSERS
            and self.redact is not None
            and len(value) <= self.limits.max_string_chars  # longer: cut, so not JSON
        ):
            # The JSON text of a dict or list (an id the app gave as a dict, made text by
            # the handler): its keys are redacted as a value's keys are.
            value = self._structured(value) or value
        value = _clean_str(value, self.limits)
        if self.redactor is not None:
            if self._deadline is not None and time.perf_counter() > self._deadline:
                return BUDGET_EXCEEDED
            value = self.redactor.text(value)
            if len(original) <= _CACHED_STRING_CHARS:
                if len(self._strings) >= _CACHE_SIZE:
                    self._strings.clear()
                self._strings[original] = value
            return value
        redacted = self._redacted(value)
        return redacted if isinstance(redacted, str) else json_text(redacted)

    def _structured(self, text: str) -> str | None:
        """The public JSON text of ``text`` when it is the JSON text of a dict or list that
        redaction changes (a secret key, a secret in a string); else None (text rules)."""
        if self.redactor is not None and not self.redactor.may_redact(text):
            return None  # no key or string rule can match anywhere in it: one scan
        try:
            data = _loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, (dict, list)):
            return None
        parsed = data
        if isinstance(data, dict) and data.get(TRUNCATED_KEY) and self.redactor is not None:
            preview = data.get("preview")  # the start of a big value's raw JSON text
            if isinstance(preview, str):
                data = {**data, "preview": _secret_pairs(preview, self.redactor)}
        public = self.value(data)
        if public == parsed:
            return None
        return self.text_of(public) or json_text(public)

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
        try:
            text = _encode_plain(value)
        except Exception:  # not plain data (or NaN, a lone surrogate ...): the careful way
            text = None
        if text is None or len(text) > limits.max_field_chars * _FAST_PATH_FACTOR:
            return self._field_capped(self._redacted(to_jsonable(value, limits)))
        # Equal values repeat across records (a node's state in its first step, metadata
        # every child inherits): the public form of a short value's text is remembered,
        # and parsed again for each use so no two records share mutable objects.
        cacheable = len(text) <= _CACHED_TEXT_CHARS and self._cache_ok
        if cacheable:
            shared = self._batch_values.get(text)  # equal values in one batch: one object
            if shared is not None:
                return shared
            known = self._cache.get(text)
            if known is not None:
                data = _loads(known)
                self._texts[id(data)] = (data, known)
                self._batch_values[text] = data
                return data
        if self._nothing_to_do(text):  # the common case: already public as it is
            data = _loads(text)
            self._texts[id(data)] = (data, text)
            if cacheable:
                self._remember(text, text)
                self._batch_values[text] = data
            return data
        data = self._bound_and_redact(_loads(text))
        if isinstance(data, (dict, list)):
            public = json_text(data)
            if len(public) > limits.max_field_chars:
                data = self._field_capped(data)
                public = json_text(data)
        else:
            public = json_text(data)
        self._texts[id(data)] = (data, public)
        if cacheable and BUDGET_EXCEEDED not in public:  # a verdict cut short: not kept
            self._remember(text, public)
            self._batch_values[text] = data
        return data

    def _remember(self, text: str, public: str) -> None:
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()  # simple and thread-safe; refills within a few traces
        self._cache[text] = public

    def _nothing_to_do(self, text: str) -> bool:
        """Whether the plain JSON ``text`` of a value is provably public already: no
        string, container or nesting can exceed the limits (a string is shorter than the
        text, a container of n items has n - 1 commas, each level one bracket) and no
        redaction rule can match (`Redactor.may_redact`)."""
        limits, size = self.limits, len(text)
        if size > limits.max_string_chars or size > limits.max_field_chars:
            return False
        if size > 2 * limits.max_items and text.count(",") >= limits.max_items:
            return False  # (n items take 2n - 1 characters and n - 1 commas at least)
        if text.count("{") + text.count("[") >= limits.max_depth:
            return False
        if self.redact is None:
            return True
        return self.redactor is not None and not self.redactor.may_redact(text)

    def text_of(self, value: Any) -> str | None:
        """The JSON text of a public value of one of the last batches, when the stage made
        it (the SQLite sink stores it instead of encoding the value again).  Safe from any
        thread: an entry holds its value, so an id is never mistaken for another's."""
        key = id(value)
        for texts in reversed(tuple(self._generations)):  # a snapshot: appended meanwhile
            entry = texts.get(key)
            if entry is not None and entry[0] is value:
                return entry[1]
        return None

    def _bound_and_redact(self, data: Any) -> Any:
        """One walk: cut strings, containers and depth as `to_jsonable` does, redacting keys
        and strings on the way (with a `Redactor`; another function runs afterwards)."""
        if self.redactor is None:
            return self._redacted(_Walk(self.limits, None, None, self._keys).run(data))
        return _Walk(self.limits, self.redactor, self._deadline, self._keys).run(data)

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
    """Bound (and, given a `Redactor`, redact) a JSON-safe value in one pass.

    The hot loop of the writer: containers are walked by two small methods with the
    common leaf types handled inline, keys' public names and verdicts come from a cache,
    and the time budget is checked per container and per long string.
    """

    __slots__ = (
        "deadline",
        "keys",
        "max_chars",
        "max_depth",
        "max_items",
        "redactor",
        "replacement",
        "text",
    )

    def __init__(
        self,
        limits: Limits,
        redactor: Redactor | None,
        deadline: float | None,
        keys: dict[str, tuple[str, bool]],
    ) -> None:
        self.max_chars = limits.max_string_chars
        self.max_items = limits.max_items
        self.max_depth = limits.max_depth
        self.redactor = redactor
        self.text = redactor.text if redactor is not None else None
        self.replacement = redactor.replacement if redactor is not None else None
        self.deadline = deadline
        self.keys = keys

    def run(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return self._dict(value, 0)
        if kind is list:
            return self._list(value, 0)
        if kind is str:
            return self._string(value)
        return value

    def _late(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def _string(self, value: str) -> str:
        if len(value) > self.max_chars:
            cut = len(value) - self.max_chars
            value = f"{value[: self.max_chars]}…[truncated {cut} chars]"
        if self.text is None:
            return value
        if len(value) > _LONG_STRING and self._late():
            return BUDGET_EXCEEDED
        return self.text(value)

    def _key(self, key: str) -> tuple[str, bool]:
        name = key
        if len(name) > self.max_chars:
            name = f"{name[: self.max_chars]}…[truncated {len(key) - self.max_chars} chars]"
        redactor = self.redactor
        known = (
            (name, False)
            if redactor is None
            else (
                redactor.text(name),
                redactor.is_secret_key(key),
            )
        )
        if len(self.keys) < 10_000:
            self.keys[key] = known
        return known

    def _dict(self, value: dict[str, Any], depth: int) -> Any:
        if depth >= self.max_depth:
            return "…[max depth]"
        if self._late():
            return BUDGET_EXCEEDED
        out: dict[str, Any] = {}
        keys, string, replacement = self.keys, self._string, self.replacement
        count = 0
        for key, item in value.items():
            if count == self.max_items:
                out[f"…[truncated {len(value) - self.max_items} items]"] = None
                break
            count += 1
            known = keys.get(key)
            name, secret = known if known is not None else self._key(key)
            if secret:
                out[name] = replacement
                continue
            kind = type(item)
            if kind is str:
                out[name] = string(item)
            elif kind is dict:
                out[name] = self._dict(item, depth + 1)
            elif kind is list:
                out[name] = self._list(item, depth + 1)
            else:
                out[name] = item
        return out

    def _list(self, value: list[Any], depth: int) -> Any:
        if depth >= self.max_depth:
            return "…[max depth]"
        if self._late():
            return BUDGET_EXCEEDED
        out: list[Any] = []
        append, string = out.append, self._string
        for item in value[: self.max_items]:
            kind = type(item)
            if kind is str:
                append(string(item))
            elif kind is dict:
                append(self._dict(item, depth + 1))
            elif kind is list:
                append(self._list(item, depth + 1))
            else:
                append(item)
        if len(value) > self.max_items:
            append(f"…[truncated {len(value) - self.max_items} items]")
        return out


#: ``"key": value`` in JSON text (the value a string, cut or not, or a bare word).
_JSON_PAIR = re.compile(
    r'"((?:[^"\\]|\\.){1,200})"(\s{0,8}:\s{0,8})("(?:[^"\\]|\\.)*(?:"|$)|[^,}\]\s]{1,4096})'
)


def _secret_pairs(text: str, redactor: Redactor) -> str:
    """Values under secret keys replaced in (possibly cut) JSON text, which cannot be
    parsed back: ``{"api_key": "sk-...`` -> ``{"api_key": "[REDACTED]"``."""
    if '"' not in text:
        return text

    def pair(match: re.Match[str]) -> str:
        if not redactor.is_secret_key(match.group(1)):
            return match.group(0)
        return f'"{match.group(1)}"{match.group(2)}{json_text(redactor.replacement)}'

    return _JSON_PAIR.sub(pair, text)


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
