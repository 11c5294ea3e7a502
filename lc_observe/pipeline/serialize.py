"""Safe JSON for anything a LangChain run can carry.

`to_jsonable` never raises: messages, documents, pydantic models, dataclasses,
bytes, sets, cycles, NaN, objects whose ``repr`` raises, lone surrogates - each
becomes something `json.dumps` accepts.  Oversize values are cut and the cut is
marked, so a reader can always tell a truncated value from a real one:

- a long string ends with ``"…[truncated N chars]"``;
- a long list or dict ends with the element/key ``"…[truncated N items]"``;
- a field whose JSON is still above ``max_field_chars`` becomes
  ``{"__truncated__": true, "chars": N, "preview": "..."}``.

>>> dumps({"q": "hi", "n": float("nan")}, Limits())
'{"q":"hi","n":"NaN"}'

The text is compact JSON (no spaces after ``,`` and ``:``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

from pydantic import BaseModel

try:  # a dependency of langsmith on CPython: ~3x faster than the stdlib encoder
    import orjson
except ImportError:  # pragma: no cover - PyPy, or langsmith without it
    orjson = None  # type: ignore[assignment]

TRUNCATED_KEY = "__truncated__"


@dataclass(frozen=True)
class Limits:
    """Size limits applied when a value is serialized for storage.

    Attributes:
        max_string_chars: longer strings are cut to this many characters.
        max_items: longer lists/tuples/sets/dicts keep this many items.
        max_depth: deeper nesting is replaced by ``"…[max depth]"``.
        max_field_chars: a whole field (inputs, outputs, metadata) whose JSON is longer
            is replaced by a marked preview.
    """

    max_string_chars: int = 20_000
    max_items: int = 1_000
    max_depth: int = 32
    max_field_chars: int = 256_000

    def __post_init__(self) -> None:
        for name in ("max_string_chars", "max_items", "max_depth", "max_field_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:
        try:
            return f"<unrepresentable {type(obj).__qualname__}>"
        except Exception:
            return "<unrepresentable object>"


def _clean_str(text: str, limits: Limits) -> str:
    if len(text) > limits.max_string_chars:
        cut = len(text) - limits.max_string_chars
        text = f"{text[: limits.max_string_chars]}…[truncated {cut} chars]"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be stored as UTF-8
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def to_jsonable(obj: Any, limits: Limits | None = None) -> Any:
    """Return a JSON-safe copy of ``obj`` within ``limits``; never raises."""
    limits = limits or Limits()
    try:
        return _convert(obj, limits, 0, set())
    except Exception:  # last resort: something exotic failed deep inside
        return _clean_str(_safe_repr(obj), limits)


def _convert(obj: Any, limits: Limits, depth: int, path: set[int]) -> Any:
    # Fast paths first: most values are plain.
    kind = type(obj)
    if kind is str:
        return _clean_str(obj, limits)
    if kind is int or kind is bool or obj is None:
        return obj
    if kind is float:
        return _float(obj)
    if depth >= limits.max_depth:
        return "…[max depth]"
    if isinstance(obj, (dict, list, tuple, set, frozenset, BaseModel, Mapping)) or (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        key = id(obj)
        if key in path:
            return "…[cycle]"
        path.add(key)
        try:
            return _convert_container(obj, limits, depth, path)
        finally:
            path.discard(key)
    return _convert_scalar(obj, limits)


def _convert_container(obj: Any, limits: Limits, depth: int, path: set[int]) -> Any:
    if isinstance(obj, BaseModel):
        return _convert_mapping(_model_fields(obj), limits, depth, path)
    if isinstance(obj, Mapping):
        return _convert_mapping(obj, limits, depth, path)
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj) if not isinstance(obj, (set, frozenset)) else _sorted_safely(obj)
        out = [_convert(item, limits, depth + 1, path) for item in items[: limits.max_items]]
        if len(items) > limits.max_items:
            out.append(f"…[truncated {len(items) - limits.max_items} items]")
        return out
    fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    return _convert_mapping(fields, limits, depth, path)


def _model_fields(model: BaseModel) -> dict[str, Any]:
    """A pydantic model's fields, without dumping nested objects (we recurse ourselves).

    Empty values (None, {}, []) are left out: they keep LangChain messages and documents
    readable and are pure noise.  Field values live in the instance ``__dict__`` (read
    directly: ~3x cheaper than a getattr per field); ``fields`` skips anything else there.
    """
    fields = type(model).model_fields
    return {
        k: v
        for k, v in model.__dict__.items()
        if k in fields and v is not None and v != {} and v != []
    }


def _convert_mapping(obj: Mapping, limits: Limits, depth: int, path: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = obj.items()
    total = len(obj)
    for index, (key, value) in enumerate(items):
        if index >= limits.max_items:
            out[f"…[truncated {total - limits.max_items} items]"] = None
            break
        out[_key(key, limits)] = _convert(value, limits, depth + 1, path)
    return out


def _key(key: Any, limits: Limits) -> str:
    if isinstance(key, str):
        return _clean_str(key, limits)
    if isinstance(key, Enum):
        key = key.value
    if isinstance(key, (int, float, bool)) or key is None:
        return json.dumps(_float(key) if isinstance(key, float) else key)
    return _clean_str(_safe_repr(key), limits)


def _sorted_safely(items: set | frozenset) -> list[Any]:
    try:
        return sorted(items)
    except Exception:
        return list(items)


def _convert_scalar(obj: Any, limits: Limits) -> Any:
    if isinstance(obj, Enum):  # first: a str or int Enum is stored as its value
        return _convert_scalar(obj.value, limits)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, str):
        return _clean_str(str(obj), limits)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
        head = raw[: max(1, limits.max_string_chars * 3 // 4)]
        out: dict[str, Any] = {"__bytes__": len(raw), "base64": base64.b64encode(head).decode()}
        if len(head) < len(raw):
            out[TRUNCATED_KEY] = True
        return out
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, (UUID, PurePath)):
        return str(obj)
    if isinstance(obj, Decimal):
        return _float(float(obj))
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    return _clean_str(_safe_repr(obj), limits)


Redact = Callable[[Any], Any]


class _NotPlain(Exception):
    """Raised inside the fast path: this value needs the careful conversion."""


def _plain_default(obj: Any) -> Any:
    """`json.dumps` ``default=`` for the fast path: common LangChain objects, else give up."""
    if isinstance(obj, BaseModel):
        return _model_fields(obj)
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    raise _NotPlain


_SEPARATORS = (",", ":")
_FAST_ENCODER = json.JSONEncoder(
    default=_plain_default, allow_nan=False, ensure_ascii=False, separators=_SEPARATORS
)


def _encode_plain(obj: Any) -> str:
    """One C pass over plain data; raises when something needs care (see `_fast_dumps`)."""
    if orjson is not None:
        data = orjson.dumps(obj, default=_plain_default)  # its errors are TypeErrors
        # orjson writes NaN/inf as null (and rejects lone surrogates itself): a null may
        # be a NaN, which the stdlib encoder below rejects so the careful path keeps it.
        if b"null" not in data:
            return data.decode()
    text = _FAST_ENCODER.encode(obj)
    text.encode("utf-8")  # lone surrogates cannot be stored as UTF-8
    return text


def _fast_dumps(obj: Any, limits: Limits, redact: Redact | None) -> str | None:
    """JSON of ``obj`` in one C-accelerated pass when nothing needs care, else ``None``.

    It needs care when it holds cycles, NaN/inf, exotic objects or keys, lone surrogates,
    when its text is longer than ``max_string_chars`` (limits may cut it), or when it is
    to be redacted (redaction walks the structure, never the JSON text).
    """
    try:
        text = _encode_plain(obj)
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError, _NotPlain):
        return None
    if len(text) > limits.max_string_chars or len(text) > limits.max_field_chars:
        return None
    return text if redact is None else None  # redaction walks the structure


def dumps(obj: Any, limits: Limits | None = None, redact: Redact | None = None) -> str:
    """Serialize ``obj`` to JSON text within ``limits``, redacted by ``redact``; never raises.

    Values whose JSON is at most ``max_string_chars`` long and holds only plain data take a
    fast path (one `json.dumps`); others are converted carefully by `to_jsonable`, which
    applies every limit.  Both give the same text for the same plain value.
    """
    limits = limits or Limits()
    text = _fast_dumps(obj, limits, redact)
    if text is not None:
        return text
    safe = to_jsonable(obj, limits)
    if redact is not None:
        try:
            safe = redact(safe)
        except Exception:  # a failing redactor must not leak the unredacted value
            safe = "…[redaction failed]"
    try:
        text = json.dumps(safe, ensure_ascii=False, separators=_SEPARATORS)
    except Exception:  # pragma: no cover - to_jsonable output is always dumpable
        text = json.dumps(_safe_repr(obj), ensure_ascii=False)
    if len(text) > limits.max_field_chars:
        preview = text[: limits.max_field_chars // 2]
        text = json.dumps(
            {TRUNCATED_KEY: True, "chars": len(text), "preview": preview},
            ensure_ascii=False,
            separators=_SEPARATORS,
        )
    return text


def dumps_or_none(
    obj: Any, limits: Limits | None = None, redact: Redact | None = None
) -> str | None:
    """Like `dumps`, but keeps ``None`` as SQL NULL."""
    return None if obj is None else dumps(obj, limits, redact)
