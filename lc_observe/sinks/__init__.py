"""Sinks: where the background writer sends batches of records."""

from .sqlite import SQLiteSink

__all__ = ["SQLiteSink"]
