"""A loopback stand-in for the LangSmith ingestion API, run as a child process.

    python benchmarks/_langsmith_stub.py [--lifetime SECONDS] [--no-zstd]

Prints ``PORT <n>`` on its first line, then answers on 127.0.0.1 only: ``GET /info`` with a
server description like the current service's (multipart ingestion on, and the instance
flag ``zstd_compression_enabled`` so the client compresses, unless ``--no-zstd``), every
``POST``/``PATCH``/``PUT`` with 202 and ``{}`` after reading the body, and ``GET /__stats``
with the request counts per path.
The serving loop is bounded: it ends after ``--lifetime`` seconds or when its standard input
closes (the parent benchmark ended), whichever comes first.  Running in its own process, it
takes no CPU time (GIL) from the benchmarked interpreter.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lc_observe.testing import INFO as SERVICE_INFO

# The current service's description, plus the flag that makes the client compress.
INFO = {**SERVICE_INFO, "instance_flags": {"zstd_compression_enabled": True}}

_counts: dict[str, int] = {}
_bytes = 0
_lock = threading.Lock()
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return len(self.rfile.read(length)) if length else 0

    def _count(self, size: int) -> None:
        global _bytes
        key = f"{self.command} {_ID.sub('{id}', self.path.split('?')[0])}"
        with _lock:
            _counts[key] = _counts.get(key, 0) + 1
            _bytes += size

    def do_GET(self) -> None:
        if self.path.startswith("/__stats"):
            with _lock:
                self._reply(200, {"requests": dict(_counts), "bytes": _bytes})
            return
        self._count(0)
        self._reply(200, INFO if self.path.startswith("/info") else {})

    def _ingest(self) -> None:
        self._count(self._read_body())
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
    print(f"PORT {server.server_address[1]}", flush=True)
    deadline = time.monotonic() + args.lifetime
    while not stop.is_set() and time.monotonic() < deadline:
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()
