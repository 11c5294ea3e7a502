"""Durations as the CLI writes them (``"10m"``, ``"7d"``), shared by anomalies and alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def is_age(text: str) -> bool:
    """Whether ``text`` reads as a duration such as ``"90m"`` or ``"1.5h"``."""
    number, unit = text[:-1], text[-1:].lower()
    return unit in _UNITS and number.replace(".", "", 1).isdigit()


def duration(value: Any) -> timedelta:
    """A timedelta, seconds, or ``"45s"``/``"10m"``/``"12h"``/``"7d"``/``"2w"`` as a timedelta.

    >>> duration("10m")
    datetime.timedelta(seconds=600)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value)
    if is_age(text):
        return timedelta(seconds=float(text[:-1]) * _UNITS[text[-1:].lower()])
    raise ValueError(f"cannot read {value!r} as a duration: use e.g. '10m', '1d' or seconds")
