"""OpenTelemetry ids of LangChain runs, and the enclosing trace context (no OTel import).

- The OTel trace id of a trace is the root run's UUID (128 bits), unless the trace ran
  under an OpenTelemetry span or a remote LangSmith run: then it is that trace's id, and
  the root span's parent is that span (the W3C ``traceparent`` the handler recorded).
- A span id is the first 8 bytes of the BLAKE2b hash of the run's UUID.

`enclosing_traceparent` is called by the handler when a root run starts, on the
application's thread: it reads at most two context variables, never raises and imports
nothing that is not imported already (``opentelemetry-api`` is optional).
"""

from __future__ import annotations

import hashlib
import re
import sys
from typing import Any
from uuid import UUID

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def otel_trace_id(trace_id: str) -> int:
    """The OTel trace id of a LangChain trace: the root run's UUID as a 128-bit int."""
    try:
        value = UUID(trace_id).int
    except ValueError:
        value = int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=16).digest(), "big")
    return value or 1


def otel_span_id(span_id: str) -> int:
    """The OTel span id of a run: 8 bytes of BLAKE2b over the run's UUID (never 0)."""
    try:
        raw = UUID(span_id).bytes
    except ValueError:
        raw = span_id.encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") or 1


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> str:
    """A W3C ``traceparent`` header value."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_traceparent(value: str | None) -> tuple[int, int] | None:
    """``(trace_id, span_id)`` of a W3C ``traceparent``, or None if it is not one."""
    match = _TRACEPARENT.match(value.strip().lower()) if isinstance(value, str) else None
    if match is None or not int(match[1], 16) or not int(match[2], 16):
        return None
    return int(match[1], 16), int(match[2], 16)


def enclosing_traceparent(parent_run_id: Any = None) -> str | None:
    """The ``traceparent`` a new root run continues, or None (never raises).

    1. When LangChain handed the run a parent this handler never saw, and that parent is
       LangSmith's remote run (``tracing_context(parent=headers)`` with the
       ``langsmith-trace`` / ``baggage`` headers another process sent): that run's trace,
       and its span id as lc_observe exports it there, so both sides form one tree.
    2. Else the active OpenTelemetry span, when ``opentelemetry`` is already imported (an
       app that uses OTel has imported it; one that does not pays nothing).
    """
    try:
        if parent_run_id is not None and "langsmith.run_helpers" in sys.modules:
            from langsmith.run_helpers import get_tracing_context

            remote = get_tracing_context().get("parent")
            if remote is not None and str(remote.id) == str(parent_run_id):
                return format_traceparent(
                    otel_trace_id(str(remote.trace_id)), otel_span_id(str(remote.id))
                )
        if "opentelemetry.trace" in sys.modules:
            from opentelemetry import trace

            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                return format_traceparent(
                    context.trace_id, context.span_id, bool(context.trace_flags & 1)
                )
    except Exception:  # a broken context never reaches the application
        return None
    return None
