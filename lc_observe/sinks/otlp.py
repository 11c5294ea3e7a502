"""`OtlpSink`: export spans to any OpenTelemetry collector (optional extra ``[otlp]``).

Built on ``opentelemetry-sdk`` span objects and any ``SpanExporter`` (by default
``OTLPSpanExporter`` over HTTP/protobuf), called on the sink's own worker thread.

A trace's spans are held until its root span has finished, then exported together:
branch decisions that are only known when the trace ends still become events on the
span that decided (OTel spans cannot change once exported).  Spans of a trace already
exported (late children) go out at once; a decision that arrives after its span was
exported travels on a zero-length ``langgraph.branch`` child span.  At most
``max_pending`` spans wait; beyond that the oldest traces are exported unfinished.

Its counters (``handler.stats["otlp"]``) count spans: ``spans_sent``, ``spans_failed``,
``spans_unknown`` (the export timed out: the collector may have stored them).

>>> handler = ObsHandler("traces.db", sinks=[OTLP("http://localhost:4318")])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

from lc_observe.pipeline.processor import Item
from lc_observe.pipeline.serialize import Limits
from lc_observe.trace_context import otel_span_id, otel_trace_id, parse_traceparent

from ..records import RECORD_BRANCH, RECORD_SPAN
from .network import NetworkSink, RetryPolicy, is_timeout, quiet_on_mirror_threads
from .otlp_spans import _SAMPLED, BRANCH_EVENT, SpanBuilder, _ns

_DEFAULT_SERVICE = "lc_observe"
_OTLP_FIELD_CHARS = 32_000  # span attributes: collectors dislike huge values


class ExportFailed(Exception):
    """The span exporter reported a failure (it logs the reason itself)."""


class ExportTimedOut(ExportFailed, TimeoutError):
    """The collector did not answer in time: it may have stored the spans."""


_request_errors = threading.local()  # the last error of the default exporter's requests


def _recording_session() -> Any:
    """A ``requests.Session`` that remembers the error of the last request made on the
    calling thread: the exporter reports only "failure", and a read timeout (the collector
    may have stored the spans) must be told apart from a refusal."""
    import requests

    class RecordingSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            _request_errors.error = None
            try:
                return super().request(*args, **kwargs)
            except Exception as exc:
                _request_errors.error = exc
                raise

    return RecordingSession()


def traces_url(endpoint: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces``; a URL with a path is kept."""
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def otlp_exporter(
    endpoint: str, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> SpanExporter:
    """An ``OTLPSpanExporter`` (HTTP/protobuf) for ``endpoint``, bounded by ``timeout``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "OTLP export needs the [otlp] extra: pip install opentelemetry-sdk "
            "opentelemetry-exporter-otlp-proto-http"
        ) from exc
    try:
        session = _recording_session()
    except ImportError:  # pragma: no cover - requests comes with the exporter
        session = None
    return OTLPSpanExporter(
        endpoint=traces_url(endpoint), timeout=timeout, headers=headers, session=session
    )


def default_resource(service_name: str | None = None) -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` ...), with
    ``service.name`` = ``service_name``, or ``"lc_observe"`` when nothing names one."""
    resource = Resource.create()
    if service_name is not None:
        return resource.merge(Resource({"service.name": service_name}))
    named = str(resource.attributes.get("service.name", ""))
    if not named or named.startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": _DEFAULT_SERVICE}))
    return resource


@dataclass
class _Trace:
    spans: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False  # its root span arrived


class OtlpSink(NetworkSink):
    """Send finished spans, grouped by trace, to an OpenTelemetry ``SpanExporter``.

    Args:
        exporter: any ``SpanExporter``; default: an OTLP/HTTP exporter for ``endpoint``.
        endpoint: collector URL (``http://host:4318`` or the full ``.../v1/traces``).
        headers: extra HTTP headers of the default exporter (e.g. an API key).
        service_name: ``service.name`` of the resource (default: the environment's, or
            ``"lc_observe"``).
        limits: size limits of content attributes (fields at most 32,000 characters).
        redact: redaction applied to content attributes (a sink used on its own; behind
            an `ObsHandler` records are redacted before any sink sees them).
        include_content: put messages, inputs and outputs on spans; None (default): on
            unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false``.  Content is
            always what the privacy stage let through (redacted, bounded).
        openinference: OpenInference attributes too (default on: Phoenix reads only those,
            MLflow reads them first).
        retry: retry policy of a failed export; default one attempt: the exporter retries
            on its own, within its ``timeout`` (retries live in one place).
        timeout: seconds one export of the default exporter may take, retries included;
            also what a flush, close or exit waits for this destination at most.
        max_pending: spans held at most while their trace is still running.
    """

    label = "otlp"
    batch_size = 512
    unit = "spans"

    def __init__(
        self,
        exporter: SpanExporter | None = None,
        *,
        endpoint: str | None = None,
        headers: dict[str, str] | None = None,
        service_name: str | None = None,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        include_content: bool | None = None,
        openinference: bool = True,
        retry: RetryPolicy | None = None,
        timeout: float = 5.0,
        max_pending: int = 10_000,
    ) -> None:
        if exporter is None:
            if endpoint is None:
                raise ValueError("OtlpSink needs an exporter or an endpoint URL")
            exporter = otlp_exporter(endpoint, timeout, headers)
        target = traces_url(endpoint) if endpoint else type(exporter).__name__
        super().__init__(target, retry or RetryPolicy(attempts=1))
        self.timeout = timeout
        limits = limits or Limits()
        limits = dataclasses.replace(
            limits, max_field_chars=min(limits.max_field_chars, _OTLP_FIELD_CHARS)
        )
        self.exporter = exporter
        quiet_on_mirror_threads(type(exporter).__module__, self.label)
        self.builder = SpanBuilder(
            default_resource(service_name), limits, redact, include_content, openinference
        )
        self.max_pending = max_pending
        self._traces: dict[str, _Trace] = {}  # waiting for their root, oldest first
        self._pending = 0
        # Recently exported traces -> the traceparent they ran under (or None).
        self._exported: OrderedDict[str, str | None] = OrderedDict()

    # -- NetworkSink -----------------------------------------------------------------------

    def prepare(self, batch: Sequence[Item]) -> tuple[list[ReadableSpan], int] | None:
        """Buffer the batch by trace; return the spans of every trace ready to go."""
        late = _Trace()
        for kind, record in batch:
            if kind not in (RECORD_SPAN, RECORD_BRANCH):
                continue  # running snapshots: an OTel span is exported once, finished
            trace_id = record["trace_id"]
            trace = late if trace_id in self._exported else self._traces.get(trace_id)
            if trace is None:
                trace = self._traces[trace_id] = _Trace()
            if kind == RECORD_SPAN:
                trace.spans.append(record)
                trace.complete = trace.complete or record["parent_id"] is None
                if trace is not late:
                    self._pending += 1
            else:
                trace.branches.append(record)
        ready = [t for t in self._traces if self._traces[t].complete]
        while self._pending > self.max_pending and len(ready) < len(self._traces):
            ready.append(next(t for t in self._traces if t not in ready))  # oldest first
        return self._take(ready, late)

    def deliver(self, payload: list[ReadableSpan]) -> None:
        _request_errors.error = None
        if self.exporter.export(payload) is not SpanExportResult.SUCCESS:
            cause = getattr(_request_errors, "error", None)
            name = type(self.exporter).__name__
            if is_timeout(cause):
                raise ExportTimedOut(f"{name}.export timed out: {cause}") from cause
            raise ExportFailed(f"{name}.export reported a failure") from cause

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export what is still held (unfinished traces too)."""
        prepared = self._take(list(self._traces), _Trace())
        return prepared is None or self.send(*prepared)

    def shutdown(self) -> None:
        """Export what is still held (unfinished traces too), then shut the exporter down."""
        self.force_flush()
        with contextlib.suppress(Exception):  # an exporter that fails to shut down
            self.exporter.shutdown()

    def cancel(self) -> None:
        super().cancel()
        self.exporter.shutdown()  # ends the OTLP exporter's own retry wait

    def counters(self) -> dict[str, Any]:
        """`NetworkSink.counters` plus ``pending``: spans waiting for their trace to end."""
        return {**super().counters(), "pending": self._pending}

    # -- internals -------------------------------------------------------------------------

    def _take(self, trace_ids: list[str], late: _Trace) -> tuple[list[ReadableSpan], int] | None:
        """``(spans, how many)``: the counters count spans, not records."""
        spans: list[ReadableSpan] = []
        for trace_id in trace_ids:
            trace = self._traces.pop(trace_id)
            self._pending -= len(trace.spans)
            spans.extend(self.builder.spans(trace.spans, trace.branches))
            self._exported[trace_id] = next(
                (s["traceparent"] for s in trace.spans if s.get("traceparent")), None
            )
            if len(self._exported) > 10_000:
                self._exported.popitem(last=False)
        if late.spans or late.branches:
            spans.extend(self.builder.spans(late.spans, late.branches))
            known = {record["span_id"] for record in late.spans}
            orphans = [b for b in late.branches if b["span_id"] not in known]
            spans.extend(
                _branch_span(self.builder, branch, self._exported.get(branch["trace_id"]))
                for branch in orphans
            )
        return (spans, len(spans)) if spans else None


def _branch_span(
    builder: SpanBuilder, branch: dict[str, Any], traceparent: str | None = None
) -> ReadableSpan:
    """A zero-length child of the deciding span carrying a decision that came too late to
    be an event of that (already exported) span."""
    remote = parse_traceparent(traceparent)
    trace_id = remote[0] if remote else otel_trace_id(branch["trace_id"])
    at = _ns(branch.get("time") or 0.0)
    return ReadableSpan(
        name=BRANCH_EVENT,
        context=SpanContext(
            trace_id, otel_span_id(f"{branch['span_id']}/branch/{at}"), False, _SAMPLED
        ),
        parent=SpanContext(trace_id, otel_span_id(branch["span_id"]), False, _SAMPLED),
        resource=builder.resource,
        attributes={
            "langchain.run.id": branch["span_id"],
            "langchain.trace.id": branch["trace_id"],
        },
        events=[builder.branch_event(branch)],
        kind=SpanKind.INTERNAL,
        start_time=at,
        end_time=at,
        instrumentation_scope=builder.scope,
    )
