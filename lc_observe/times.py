"""The one time syntax of lc_observe: every ``since=``/``until=`` of the API and every
``--since``/``--until`` of the CLI goes through `to_datetime`.

A time is an aware or naive (taken as UTC) ``datetime``, an ISO 8601 string
(``"2026-01-31"``, ``"2026-01-31T12:00:00Z"``), epoch seconds, a ``timedelta`` meaning
"that long ago", or an age string meaning the same: ``"45s"``, ``"90m"``, ``"12h"``,
``"1d"``, ``"2w"`` (decimals allowed: ``"1.5h"``).

>>> to_datetime("2026-01-31T12:00:00Z").isoformat()
'2026-01-31T12:00:00+00:00'
>>> duration("10m")
datetime.timedelta(seconds=600)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

TimeLike = datetime | str | float | int | timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_HINT = "use an age like '1d', '2h', '30m' or an ISO 8601 time like '2026-01-31T12:00:00Z'"


def is_age(text: str) -> bool:
    """Whether ``text`` reads as an age such as ``"90m"`` or ``"1.5h"``."""
    text = text.strip()
    number, unit = text[:-1], text[-1:].lower()
    return unit in _UNITS and number.replace(".", "", 1).isdigit()


def duration(value: Any) -> timedelta:
    """A timedelta, seconds, or an age string (``"45s"``, ``"10m"``, ``"7d"``, ``"2w"``)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    if is_age(text):
        return timedelta(seconds=float(text[:-1]) * _UNITS[text[-1:].lower()])
    raise ValueError(f"cannot read {value!r} as a duration: use e.g. '10m', '1d' or seconds")


def to_datetime(value: TimeLike, *, now: datetime | None = None) -> datetime:
    """``value`` (see the module docstring) as an aware UTC datetime.

    Raises:
        ValueError: a string that is neither an age nor an ISO time (the message shows both).
        TypeError: a value of another type.
    """
    if isinstance(value, str):
        text = value.strip()
        if is_age(text):
            value = duration(text)
        else:
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"cannot read {value!r} as a time: {_HINT}") from None
    if isinstance(value, timedelta):
        value = (now or datetime.now(timezone.utc)) - value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, timezone.utc)
    if not isinstance(value, datetime):
        raise TypeError(
            f"expected a datetime, an ISO string, an age like '1d', epoch seconds or a "
            f"timedelta: {value!r}"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def to_db_time(value: TimeLike | None) -> str | None:
    """A time as the fixed-width UTC text the database stores (None stays None)."""
    if value is None:
        return None
    return to_datetime(value).isoformat(timespec="microseconds")
