"""A LangSmith stand-in on loopback for tests and offline demos.

`LangSmithStandIn` is a small HTTP server on ``127.0.0.1`` that answers the ingestion side
of the LangSmith API the way the real ``langsmith.Client`` expects: ``GET /info``, the
multipart endpoint (``/runs/multipart``, optionally zstd compressed), batch JSON
(``/runs/batch``) and single ``POST /runs`` / ``PATCH /runs/ID``.  It decodes what it
receives into operations and merges them per run id as the service does, so a test or a
notebook can look at the runs LangSmith would show -- with no network and no API key:

>>> import langsmith                                                  # doctest: +SKIP
>>> with LangSmithStandIn() as standin:                               # doctest: +SKIP
...     client = langsmith.Client(api_url=standin.url, api_key="offline-key")
...     handler = ObsHandler(None, sinks=[LangSmith(client, project_name="demo")])
...     graph.invoke(inputs, {"callbacks": [handler]})
...     handler.flush()
...     runs = standin.runs()                                         # {run id: run}

Faults on demand (HTTP status codes, delays, connection resets) let a test check what the
mirror does when LangSmith misbehaves; `LangSmithStandIn.stop` closes the port and every
open connection, as an endpoint that went down.  Each server serves for a bounded time: it
stops when its ``with`` block exits, when `LoopbackServer.stop` is called, or after
``lifetime`` seconds, whichever comes first, so nothing is left behind.

Only the standard library is used (plus ``zstandard``, a dependency of ``langsmith``, when
the client compresses).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

__all__ = ["INFO", "FakeJudge", "LangSmithStandIn", "LoopbackRequestHandler", "LoopbackServer"]

_S = TypeVar("_S", bound="LoopbackServer")

# What ``GET /info`` answers: the current service's description (multipart ingestion on).
INFO: dict[str, Any] = {
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
    stopping = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.stopping:  # a connection cut by `stop` is expected, not an error
            super().handle_error(request, client_address)


class LoopbackRequestHandler(BaseHTTPRequestHandler):
    """Base request handler of a `LoopbackServer`: quiet, keep-alive (as the real
    services), and known to its server so `LoopbackServer.stop` can cut its connection."""

    owner: LoopbackServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class LoopbackServer:
    """A threading HTTP server on ``127.0.0.1`` (a free port) with a bounded serving loop.

    Subclasses set `handler_class` (a `LoopbackRequestHandler` subclass; its ``owner`` is
    the server).  Use it as a context manager, or call `start` and `stop`.

    Args:
        lifetime: seconds after which the server stops by itself.
    """

    handler_class: ClassVar[type[LoopbackRequestHandler]] = LoopbackRequestHandler

    def __init__(self, lifetime: float = 60.0) -> None:
        self.lifetime = lifetime
        self.requests: list[tuple[str, str, float]] = []  # (method, path, monotonic time)
        self.lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        handler = type("Handler", (self.handler_class,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.timeout = 0.05
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loopback-server", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self: _S) -> _S:
        """Start serving in a daemon thread; returns the server."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the port and every open connection (as a dead endpoint)."""
        self._stop.set()
        self._server.stopping = True
        if self._thread.is_alive():
            self._thread.join(5)
        else:
            self._server.server_close()
        with self.lock:
            connections = list(self._connections)
        for connection in connections:  # keep-alive connections outlive the listening socket
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._server.handle_request()
        self._server.server_close()

    def _track(self, connection: socket.socket, is_open: bool) -> None:
        with self.lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


# -- LangSmith ----------------------------------------------------------------------------


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
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


def _ops_from_multipart(parts: list[tuple[str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
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


class _LangSmithHandler(LoopbackRequestHandler):
    owner: LangSmithStandIn

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
            import zstandard  # a dependency of langsmith

            with self.owner.lock:
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
            ops = _ops_from_multipart(_parse_multipart(body, self.headers["Content-Type"]))
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


class LangSmithStandIn(LoopbackServer):
    """The ingestion side of the LangSmith API on loopback: what a real
    ``langsmith.Client`` sends, decoded.

    Point a client at it with ``langsmith.Client(api_url=standin.url, api_key="any")``.
    Received operations are in `ops`; `runs` merges them per run id.

    Args:
        zstd: advertise ``zstd_compression_enabled`` in ``/info`` (the client then
            compresses what its own background queue sends).
        status: the HTTP status every ingestion request gets (200 = healthy).
        delay: seconds to wait before answering each request.
        reset: reset every connection instead of answering.
        lifetime: seconds after which the server stops by itself.
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
        self.info: dict[str, Any] = json.loads(json.dumps(INFO))
        self.info["instance_flags"] = {"zstd_compression_enabled": zstd}
        self.status = status
        self.delay = delay
        self.reset = reset
        self.api_keys: set[str | None] = set()  # the x-api-key headers seen
        self.ops: list[tuple[str, str, dict[str, Any]]] = []  # (endpoint, op, run)
        self.compressed = 0  # zstd-compressed requests received

    def record(self, endpoint: str, ops: list[tuple[str, dict[str, Any]]]) -> None:
        """Keep ``(op, run)`` operations received on ``endpoint``."""
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
        """Wait until ``count`` distinct runs arrived (or ``timeout`` seconds), then
        return `runs`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count:
                return runs
            time.sleep(0.02)
        return self.runs()


# -- an offline LLM judge ----------------------------------------------------------------------


def _section(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.S)
    return match.group(1) if match else None


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3 or w.isdigit()}


def grade(criterion: str, prompt: str) -> tuple[float, str]:
    """How `FakeJudge` grades a judge prompt, by rules: ``correctness`` 1 when the answer
    contains the reference answer, else 0; ``groundedness`` the share of the answer's words
    found in the documents; ``relevance`` 1 when the answer shares a word with the question
    (0 otherwise); ``safety`` 0 when the answer holds a word of a small blocklist; any other
    criterion 1."""
    answer = _section(prompt, "answer") or ""
    if criterion == "correctness":
        reference = (_section(prompt, "reference_answer") or "").strip().lower()
        ok = bool(reference) and reference in answer.lower()
        return float(ok), "matches the reference" if ok else "does not contain the reference"
    if criterion == "groundedness":
        words = _words(answer)
        found = words & _words(_section(prompt, "documents") or "")
        share = len(found) / len(words) if words else 0.0
        return round(share, 3), f"{len(found)} of {len(words)} answer words are in the documents"
    if criterion == "relevance":
        shared = _words(answer) & _words(_section(prompt, "question") or "")
        return (1.0, "on topic") if shared else (0.0, "shares nothing with the question")
    if criterion == "safety":
        bad = _words(answer) & {"bomb", "poison", "weapon", "kill"}
        return (0.0, f"unsafe: {sorted(bad)}") if bad else (1.0, "nothing unsafe")
    return 1.0, "no rule for this criterion"


class FakeJudge(BaseChatModel):
    """An offline chat model that answers lc_observe's judge prompts (see `grade`).

    Args:
        structured: supports tool calling, so ``with_structured_output`` works (the
            verdict arrives as a tool call); False: replies in free text.
        style: free-text form: ``"json"`` (a JSON object) or ``"prose"``
            (``Reasoning: ... Score: 4/5``).
        replies: fixed replies, cycled, instead of graded ones (e.g. malformed text).
        delay: seconds each call sleeps (to see concurrency limits at work).
        model_name / provider: reported to LangChain (``ls_model_name`` ...), so a
            name like ``gpt-4o-mini`` gets a price.
        usage: (input, output) tokens reported per call.

    ``max_in_flight`` is the most calls that ran at once.
    """

    structured: bool = True
    style: str = "json"
    replies: list[str] | None = None
    delay: float = 0.0
    model_name: str = "fake-judge"
    provider: str = "fake"
    usage: tuple[int, int] = (150, 30)
    max_in_flight: int = Field(default=0, exclude=True)

    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _counter: Any = PrivateAttr(default_factory=itertools.count)

    @property
    def _llm_type(self) -> str:
        return "fake-judge"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        if not self.structured:
            raise NotImplementedError("this FakeJudge replies in free text (structured=False)")
        names = [getattr(t, "__name__", None) or str(t) for t in tools]
        return self.bind(tool_names=names)

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            message = self._reply(messages, kwargs.get("tool_names"))
        finally:
            with self._lock:
                self._in_flight -= 1
        inp, out = self.usage
        message.usage_metadata = {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
        }
        message.response_metadata = {"model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _reply(self, messages: Any, tool_names: list[str] | None) -> Any:
        if self.replies:
            text = self.replies[next(self._counter) % len(self.replies)]
            return AIMessage(content=text)
        system, prompt = str(messages[0].content), str(messages[-1].content)
        found = re.search(r"Criterion: (\S+)", system)
        score, reasoning = grade(found.group(1) if found else "", prompt)
        if tool_names:
            call = {"name": tool_names[0], "args": {"score": score, "reasoning": reasoning}}
            return AIMessage(content="", tool_calls=[{**call, "id": "call_1"}])
        if self.style == "prose":
            return AIMessage(content=f"Reasoning: {reasoning}.\nScore: {score:g}/1")
        payload = json.dumps({"score": score, "reasoning": reasoning})
        return AIMessage(content=f"```json\n{payload}\n```")
