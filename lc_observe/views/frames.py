"""pandas DataFrames of lc_observe records, with dtypes taken from the pydantic models.

* times: ``datetime64[ns, UTC]`` (tz-aware), missing as ``NaT``
* counts (tokens, steps, span counts): nullable ``Int64``, missing as ``<NA>``
* cost, latency: nullable ``Float64`` (unknown cost stays ``<NA>``, never 0)
* text: ``string``; lists and dicts (tags, metadata, inputs ...): ``object``

Empty selections give an empty frame with the same columns and dtypes.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    import pandas as pd


def require_pandas() -> Any:
    """Import pandas or say how to install it."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - exercised only without pandas
        raise ImportError(
            "DataFrames need pandas: pip install pandas (the [pandas] extra)"
        ) from None
    return pd


def _dtype(annotation: Any) -> str:
    """The pandas dtype for a pydantic field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _dtype(args[0]) if len(args) == 1 else "object"
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return "string" if all(isinstance(v, str) for v in values) else "object"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "Int64"
    if annotation is float:
        return "Float64"
    if annotation is str:
        return "string"
    if annotation is datetime:
        return "datetime"
    return "object"


def _column(pd: Any, values: list[Any], dtype: str) -> Any:
    if dtype == "datetime":
        # ns on every pandas version, empty or not (pandas 3 would infer "us" or "s")
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype(
            "datetime64[ns, UTC]"
        )
    if dtype == "object":
        return pd.Series(values, dtype=object)
    return pd.Series(pd.array(values, dtype=dtype))


def frame(
    items: Sequence[BaseModel],
    model: type[BaseModel],
    *,
    flatten: Mapping[str, Mapping[str, str]] | None = None,
    drop: Sequence[str] = (),
) -> pd.DataFrame:
    """A DataFrame with one row per item and one typed column per field of ``model``.

    ``flatten`` turns a nested field into several columns, e.g. ``{"error": {"type":
    "error_type"}}``; ``drop`` leaves fields out.

    >>> from lc_observe.model import BranchStat
    >>> frame([BranchStat(source="a", destination="b", count=1, decisions=2, rate=0.5)],
    ...       BranchStat).dtypes["count"]
    Int64Dtype()
    """
    pd = require_pandas()
    flatten = flatten or {}
    rows = [item.model_dump() for item in items]
    columns: dict[str, Any] = {}
    for name, info in _own_fields_first(model):
        if name in drop:
            continue
        if name in flatten:
            for key, column in flatten[name].items():
                values = [(row[name] or {}).get(key) for row in rows]
                columns[column] = _column(pd, values, "string")
            continue
        columns[name] = _column(pd, [row[name] for row in rows], _dtype(info.annotation))
    for name, computed in model.model_computed_fields.items():  # e.g. Span.tokens_per_s
        if name not in drop:
            values = [row[name] for row in rows]
            columns[name] = _column(pd, values, _dtype(computed.return_type))
    return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))


def _own_fields_first(model: type[BaseModel]) -> list[tuple[str, Any]]:
    """Fields declared by ``model`` itself, then inherited ones (ids before token counts)."""
    inherited: set[str] = set()
    for base in model.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
            inherited.update(base.model_fields)
    items = list(model.model_fields.items())
    return [i for i in items if i[0] not in inherited] + [i for i in items if i[0] in inherited]


#: How `Span.error` becomes columns.
SPAN_ERROR_COLUMNS = {
    "error": {"type": "error_type", "message": "error_message", "traceback": "error_traceback"}
}
