"""Stored traces sent elsewhere: JSON lines or OTLP (`exporters`), LangSmith (`push`),
both reading the records back from the file (`replay`)."""

from lc_observe.export.exporters import export_jsonl, export_otlp

__all__ = ["export_jsonl", "export_otlp"]
