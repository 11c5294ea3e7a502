"""Loopback HTTP servers for the network sink tests (127.0.0.1 only, stop by themselves).

- `FakeLangSmith`: the ingestion side of the LangSmith API.  It decodes what the real
  ``langsmith`` client sends -- multipart (``/runs/multipart``, optionally zstd
  compressed), batch JSON (``/runs/batch``) and single ``POST /runs`` / ``PATCH /runs/ID``
  -- into operations, and merges them per run id the way the service does.  Faults on
  demand: HTTP status codes, delays, connection resets.
- `OtlpReceiver`: an OTLP/HTTP traces endpoint decoding the protobuf request.

Each server runs a bounded loop: it stops when its context exits or after ``lifetime``
seconds, whichever comes first, so a failing test never leaves a server behind.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INFO = {
    "version": "0.10.0",
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 with a bounded serving loop."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self, lifetime: float = 60.0) -> None:
        self.lifetime = lifetime
        self.requests: list[tuple[str, str, float]] = []  # (method, path, time)
        self.api_keys: set[str | None] = set()
        self.lock = threading.Lock()
        handler = type("Handler", (self.handler_class,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.timeout = 0.05
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._server.handle_request()
        self._server.server_close()

    def start(self) -> _LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- LangSmith --------------------------------------------------------------------------------


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """``(name, payload)`` of each part of a ``multipart/form-data`` body."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    parts: list[tuple[str, bytes]] = []
    for chunk in body.split(b"--" + boundary):
        if not chunk or chunk.startswith(b"--"):
            continue
        head, _, payload = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts.append((name, payload[:-2] if payload.endswith(b"\r\n") else payload))
    return parts


def ops_from_multipart(parts: list[tuple[str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
    """Group parts ``post.ID``, ``post.ID.inputs`` ... into ``(op, run)`` operations."""
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for name, payload in parts:
        op, run_id, *field = name.split(".")
        if op not in ("post", "patch"):
            continue
        run = ops.setdefault((op, run_id), {})
        value = json.loads(payload)
        if field:
            run[field[0]] = value
        else:
            run.update(value)
    return [(op, run) for (op, _), run in ops.items()]


class _LangSmithHandler(BaseHTTPRequestHandler):
    owner: FakeLangSmith
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "zstd":
            import zstandard

            self.owner.compressed += 1
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        return body

    def _fault(self) -> bool:
        """Apply the configured fault; True when the request was answered by it."""
        owner = self.owner
        with owner.lock:
            owner.requests.append((self.command, self.path, time.monotonic()))
            owner.api_keys.add(self.headers.get("x-api-key"))
        if owner.delay:
            time.sleep(owner.delay)
        if owner.reset:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            # RST instead of FIN: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return True
        if owner.status != 200 and not self.path.endswith("/info"):
            self._body()
            self._reply(owner.status, {"detail": "injected fault"})
            return True
        return False

    def do_GET(self) -> None:
        if self._fault():
            return
        if self.path.rstrip("/").endswith("/info"):
            self._reply(200, self.owner.info)
        else:
            self._reply(404, {"detail": "not found"})

    def do_POST(self) -> None:
        if self._fault():
            return
        body = self._body()
        path = self.path.rstrip("/")
        if path.endswith("/runs/multipart"):
            ops = ops_from_multipart(parse_multipart(body, self.headers["Content-Type"]))
        elif path.endswith("/runs/batch"):
            data = json.loads(body)
            ops = [(op, run) for op in ("post", "patch") for run in data.get(op) or []]
        elif path.endswith("/runs"):
            ops = [("post", json.loads(body))]
        else:
            self._reply(404, {"detail": "not found"})
            return
        self.owner.record(path.rsplit("/", 1)[-1], ops)
        self._reply(202 if path.endswith("multipart") else 200, {})

    def do_PATCH(self) -> None:
        if self._fault():
            return
        run = json.loads(self._body())
        run.setdefault("id", self.path.rstrip("/").rsplit("/", 1)[-1])
        self.owner.record("patch", [("patch", run)])
        self._reply(200, {})


class FakeLangSmith(_LoopbackServer):
    """What the real ``langsmith.Client`` sends, decoded.

    Args:
        zstd: advertise ``zstd_compression_enabled`` in ``/info`` (the client then
            compresses what its own background queue sends).
        status: the HTTP status every ingestion request gets (200 = healthy).
        delay: seconds to wait before answering each request.
        reset: reset every connection instead of answering.
    """

    handler_class = _LangSmithHandler

    def __init__(
        self,
        *,
        zstd: bool = False,
        status: int = 200,
        delay: float = 0.0,
        reset: bool = False,
        lifetime: float = 60.0,
    ) -> None:
        super().__init__(lifetime)
        self.info = json.loads(json.dumps(INFO))
        self.info["instance_flags"] = {"zstd_compression_enabled": zstd}
        self.status = status
        self.delay = delay
        self.reset = reset
        self.ops: list[tuple[str, str, dict[str, Any]]] = []  # (endpoint, op, run)
        self.compressed = 0

    def record(self, endpoint: str, ops: list[tuple[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.ops.extend((endpoint, op, run) for op, run in ops)

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run by id, its creates and updates merged as LangSmith does (later
        non-null fields win)."""
        merged: dict[str, dict[str, Any]] = {}
        with self.lock:
            ops = list(self.ops)
        for _, _op, run in sorted(ops, key=lambda item: item[1] != "post"):
            target = merged.setdefault(str(run["id"]), {})
            target.update({k: v for k, v in run.items() if v is not None})
        return merged

    def creates(self) -> list[str]:
        """Run ids in the order their creates arrived (duplicates kept)."""
        with self.lock:
            return [str(run["id"]) for _, op, run in self.ops if op == "post"]

    def wait_for(self, count: int, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
        """Wait until ``count`` distinct runs arrived, then return `runs`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count:
                return runs
            time.sleep(0.02)
        return self.runs()


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


class _OtlpHandler(BaseHTTPRequestHandler):
    owner: OtlpReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

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


class OtlpReceiver(_LoopbackServer):
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
