"""A loopback stand-in for the LangSmith ingestion API, run as a child process.

    python benchmarks/_langsmith_stub.py [--lifetime SECONDS] [--no-zstd]

Prints ``PORT <n>`` on its first line, then answers on 127.0.0.1 only: ``GET /info`` with a
server description like the current service's (multipart ingestion on, and the instance
flag ``zstd_compression_enabled`` so the client compresses, unless ``--no-zstd``), every
``POST``/``PATCH``/``PUT`` with 202 and ``{}`` after reading the body, and ``GET /__stats``
with the request counts per path, the bytes received and, per client, the runs received.

A client may put a prefix before the API's paths (``api_url=http://127.0.0.1:<port>/c/<name>``):
``/__stats`` then counts its requests and runs under ``<name>`` (``clients``), so one stand-in
tells the benchmark's configurations apart.  Runs are counted by id (distinct ids of run
creates and updates: a run created and then updated counts once), from multipart bodies
(zstd-compressed or not: the part names ``post.<id>`` / ``patch.<id>``), batch bodies
(``{"post": [...], "patch": [...]}``) and single runs.
The serving loop is bounded: it ends after ``--lifetime`` seconds or when its standard input
closes (the parent benchmark ended), whichever comes first.  Running in its own process, it
takes no CPU time (GIL) from the benchmarked interpreter.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lc_observe.testing import INFO as SERVICE_INFO

# The current service's description, plus the flag that makes the client compress.
INFO = {**SERVICE_INFO, "instance_flags": {"zstd_compression_enabled": True}}

_counts: dict[str, int] = {}
_bytes = 0
_lock = threading.Condition()
_pending = 0  # ingest requests answered, not yet counted
_to_count: queue.Queue[_Request] = queue.Queue()
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")
_PREFIX = re.compile(r"^/c/([^/]+)(/.*)$")
_PART = re.compile(rb'name="(?:post|patch)\.([0-9a-f]{8}-[0-9a-f-]{27})"')


@dataclass
class _Client:
    """What one client (path prefix) sent: requests and the ids of its runs."""

    requests: int = 0
    runs: set[str] = field(default_factory=set)


_clients: dict[str, _Client] = {}


def _decompress(body: bytes, encoding: str) -> bytes:
    """The body as sent before compression (zstd or gzip); unchanged otherwise."""
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    return body


def run_ids(body: bytes, content_type: str) -> set[str]:
    """The ids of the runs a request body creates or updates."""
    if "multipart" in content_type:
        return {match.decode() for match in _PART.findall(body)}
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return set()
    if isinstance(data, dict) and ("post" in data or "patch" in data):
        runs = [*(data.get("post") or []), *(data.get("patch") or [])]
    else:
        runs = [data]
    return {str(run["id"]) for run in runs if isinstance(run, dict) and "id" in run}


@dataclass
class _Request:
    """What counting needs of one request (the handler object serves the next one)."""

    command: str
    path: str
    encoding: str = ""
    content_type: str = ""
    body: bytes = b""


def split_path(path: str) -> tuple[str | None, str]:
    """(client name or None, the API path without the client prefix and query)."""
    path = path.split("?")[0]
    match = _PREFIX.match(path)
    return (match.group(1), match.group(2)) if match else (None, path)


def count(request: _Request) -> None:
    """Add one request to the counters (its runs: by id, from its body)."""
    global _bytes
    client, path = split_path(request.path)
    key = f"{request.command} {_ID.sub('{id}', path)}"
    ids: set[str] = set()
    if request.body and request.command in ("POST", "PATCH") and "/runs" in path:
        ids = run_ids(_decompress(request.body, request.encoding), request.content_type)
    with _lock:
        _counts[key] = _counts.get(key, 0) + 1
        _bytes += len(request.body)
        if client is not None:
            seen = _clients.setdefault(client, _Client())
            seen.requests += 1
            seen.runs.update(ids)


def _counting() -> None:
    """The counting thread: counts answered ingest requests, in order."""
    global _pending
    while True:
        request = _to_count.get()
        try:
            count(request)
        finally:
            with _lock:
                _pending -= 1
                _lock.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path.startswith("/__stats"):
            with _lock:
                _lock.wait_for(lambda: _pending == 0, timeout=10)
                clients = {
                    name: {"requests": seen.requests, "runs": len(seen.runs)}
                    for name, seen in _clients.items()
                }
                self._reply(200, {"requests": dict(_counts), "bytes": _bytes, "clients": clients})
            return
        count(_Request(self.command, self.path))
        self._reply(200, INFO if split_path(self.path)[1].startswith("/info") else {})

    def _ingest(self) -> None:
        """Answer at once; the counting thread decompresses and parses the body later (no
        client waits for it); ``/__stats`` waits until every answered request is counted."""
        global _pending
        body = self._read_body()
        with _lock:
            _pending += 1
        encoding = self.headers.get("Content-Encoding", "").lower()
        content_type = self.headers.get("Content-Type", "")
        _to_count.put(_Request(self.command, self.path, encoding, content_type, body))
        self._reply(202, {})

    do_POST = do_PATCH = do_PUT = _ingest

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=1800.0)
    parser.add_argument("--no-zstd", action="store_true", help="do not offer zstd compression")
    args = parser.parse_args()
    if args.no_zstd:
        INFO["instance_flags"] = {}
    server = _Server(("127.0.0.1", 0), _Handler)
    server.timeout = 0.2
    stop = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=_counting, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    deadline = time.monotonic() + args.lifetime
    while not stop.is_set() and time.monotonic() < deadline:
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()
