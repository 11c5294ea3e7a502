"""Export stored traces: JSON lines (one object per span) or OTLP (``lc-observe export``).

>>> export_jsonl("lc_observe.db", "spans.jsonl")                       # doctest: +SKIP
>>> export_otlp("lc_observe.db", "http://localhost:4318")              # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from lc_observe.export.replay import finished_trace_ids, stored_traces
from lc_observe.storage.store import TimeLike, TraceStore

_SPANS_PER_EXPORT = 512
#: Seconds one OTLP request of ``export_otlp`` may take: a cold MLflow tracking server took
#: 7.7 s to answer its first POST (measured, docs/otlp.md), so this stays well above that.
DEFAULT_EXPORT_TIMEOUT = 30.0


def export_jsonl(
    db_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | IO[str],
    *,
    since: TimeLike | timedelta | None = None,
    trace_id: str | None = None,
) -> int:
    """Write one JSON object per span (the `Span` fields, plus ``branches``: the routing
    decisions the span took) to ``output`` (a path, ``"-"`` for stdout, or a text file);
    traces oldest first, spans in start order.  Returns the number of spans written."""
    count = 0
    if output == "-":
        target: Any = nullcontext(sys.stdout)
    elif isinstance(output, (str, os.PathLike)):
        target = open(output, "w", encoding="utf-8")  # noqa: SIM115 - closed by `with`
    else:
        target = nullcontext(output)
    with TraceStore(db_path) as store, target as out:
        for trace in finished_trace_ids(store, since=since, trace_id=trace_id):
            decided: dict[str | None, list[Any]] = {}
            for branch in store.branches(trace_id=trace):
                decided.setdefault(branch.span_id, []).append(
                    branch.model_dump(mode="json", exclude={"id"})
                )
            for span in store.spans(trace_id=trace):
                line = span.model_dump(mode="json")
                line["branches"] = decided.get(span.span_id, [])
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
    return count


@dataclass
class OtlpExportResult:
    """Spans sent, and spans the collector did not accept."""

    sent: int = 0
    failed: int = 0


def export_otlp(
    db_path: str | os.PathLike[str],
    endpoint: str | None = None,
    *,
    exporter: Any = None,
    since: TimeLike | timedelta | None = None,
    trace_id: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_EXPORT_TIMEOUT,
) -> OtlpExportResult:
    """Send stored traces to an OpenTelemetry collector (``endpoint``) or ``exporter``, with
    the same span ids, names and attributes as the live export (needs ``[otlp]``)."""
    from lc_observe.sinks.otlp import OtlpSink

    sink = OtlpSink(exporter, endpoint=endpoint, headers=headers, timeout=timeout)
    result = OtlpExportResult()
    spans: list[Any] = []
    records = 0

    def send() -> None:
        ok = sink.send(spans, records)
        if ok:
            result.sent += len(spans)
        else:
            result.failed += len(spans)
        spans.clear()

    try:
        with TraceStore(db_path) as store:
            for trace in stored_traces(store, since=since, trace_id=trace_id):
                spans.extend(sink.builder.spans(trace.spans, trace.branches))
                records += len(trace.spans) + len(trace.branches)
                if len(spans) >= _SPANS_PER_EXPORT:
                    send()
                    records = 0
            if spans:
                send()
    finally:
        sink.exporter.shutdown()
    return result
