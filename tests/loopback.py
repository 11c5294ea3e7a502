"""Loopback HTTP servers for the network sink tests (127.0.0.1 only, stop by themselves).

- The LangSmith stand-in is `lc_observe.testing.LangSmithStandIn` (public: offline demos
  use it too); `langsmith_client` here builds a real client for it.
- `OtlpReceiver`: an OTLP/HTTP traces endpoint decoding the protobuf request.

Each server runs a bounded loop: it stops when its context exits or after ``lifetime``
seconds, whichever comes first, so a failing test never leaves a server behind.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lc_observe.testing import LoopbackRequestHandler, LoopbackServer


def free_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def langsmith_client(url: str, **kwargs: Any) -> Iterator[Any]:
    """A real ``langsmith.Client`` for ``url`` (closed afterwards)."""
    import langsmith

    client = langsmith.Client(api_url=url, api_key="test-key", **kwargs)
    try:
        yield client
    finally:
        client.cleanup() if hasattr(client, "cleanup") else None


# -- OpenTelemetry ----------------------------------------------------------------------------


class _OtlpHandler(LoopbackRequestHandler):
    owner: OtlpReceiver

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner = self.owner
        with owner.lock:
            owner.requests.append((self.command, self.path, time.monotonic()))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        status = owner.status if self.path.rstrip("/").endswith("/v1/traces") else 404
        if status == 200:
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            with owner.lock:
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            owner.spans.append((resource_spans.resource, span))
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class OtlpReceiver(LoopbackServer):
    """An OTLP/HTTP traces endpoint (``/v1/traces``) keeping the decoded protobuf spans.

    Args:
        status: the HTTP status every export gets (200 = healthy).
    """

    handler_class = _OtlpHandler

    def __init__(self, *, status: int = 200, lifetime: float = 60.0) -> None:
        super().__init__(lifetime)
        self.status = status
        self.spans: list[tuple[Any, Any]] = []  # (resource, span) protobuf messages

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until ``count`` spans arrived; return the spans."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.spans) < count:
            time.sleep(0.02)
        with self.lock:
            return [span for _, span in self.spans]


def attributes(message: Any) -> dict[str, Any]:
    """A protobuf span's (or event's) attributes as a plain dict."""
    out: dict[str, Any] = {}
    for item in message.attributes:
        value = item.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[item.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[item.key] = getattr(value, kind)
    return out
