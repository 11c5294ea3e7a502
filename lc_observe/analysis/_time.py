"""Durations as the CLI writes them (``"10m"``, ``"7d"``): see `lc_observe.times`."""

from __future__ import annotations

from ..times import duration, is_age

__all__ = ["duration", "is_age"]
