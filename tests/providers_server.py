"""A loopback stand-in for five LLM providers' HTTP APIs, in their own wire formats.

One `ProviderServer` (127.0.0.1, a free port) answers:

- OpenAI Chat Completions ``POST /v1/chat/completions`` and Responses ``POST /v1/responses``;
- Anthropic Messages ``POST /v1/messages``;
- Gemini ``POST /v1beta/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``;
- Groq ``POST /openai/v1/chat/completions`` (OpenAI-like; stream usage under ``x_groq``);
- Mistral ``POST /mistral/v1/chat/completions`` (OpenAI-like; usage on the last chunk).

Each answer is rendered from a provider-neutral `Turn` (text or a tool call, a `Usage`, or
an HTTP error) queued with `ProviderServer.script`.  Streams are Server-Sent Events written
event by event (chunked transfer encoding): the opening framing event (Anthropic
``message_start``, ``response.created``, a role-only chunk) goes out at once, then the
server waits ``Turn.first_delay`` seconds before the first content delta, so a client's
time to first token can be checked against it.  Formats follow the public API references
and what the SDKs parse (openai, anthropic, google-genai, groq, langchain-mistralai's
httpx client); ids and numbers are made up.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lc_observe.testing import LoopbackRequestHandler, LoopbackServer


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, in LangChain's convention: ``input`` counts every prompt
    token (cache reads and writes included), ``reasoning`` is part of ``output``."""

    input: int = 120
    output: int = 30
    cache_read: int = 0
    write_5m: int = 0  # Anthropic cache writes, 5-minute TTL
    write_1h: int = 0  # Anthropic cache writes, 1-hour TTL
    reasoning: int = 0

    @property
    def writes(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def total(self) -> int:
        return self.input + self.output


@dataclass
class Turn:
    """What the server answers to one request."""

    text: str = "It is sunny in Paris."
    tool_call: tuple[str, dict[str, Any]] | None = None  # (name, args)
    usage: Usage = field(default_factory=Usage)
    error: int | None = None  # HTTP status of an error answer
    first_delay: float = 0.0  # seconds between the framing event and the first delta
    service_tier: str | None = None  # OpenAI: echoed as the response's service_tier
    #: Anthropic streams: send message_delta twice (server tools do; both cumulative).
    repeat_message_delta: bool = False
    #: Anthropic: a thinking block (extended thinking) before the answer, which comes
    #: ``answer_delay`` seconds after the thinking.
    thinking: str | None = None
    answer_delay: float = 0.0


class ProviderServer(LoopbackServer):
    """Provider APIs on loopback; `script` the answers, read `bodies` for the requests."""

    def __init__(self, lifetime: float = 120.0) -> None:
        super().__init__(lifetime)
        self.turns: deque[Turn] = deque()
        self.default = Turn()
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def script(self, *turns: Turn) -> None:
        """Answer the next requests with ``turns`` in order, then with `default`."""
        with self.lock:
            self.turns.clear()
            self.turns.extend(turns)

    def next_turn(self) -> Turn:
        with self.lock:
            return self.turns.popleft() if self.turns else self.default


# -- the request handler ------------------------------------------------------------------------


class _Handler(LoopbackRequestHandler):
    owner: ProviderServer

    def end_headers(self) -> None:
        # One request per connection: the SDKs pool async connections per event loop, and
        # each test runs its own loop (a kept-alive connection would outlive it).
        self.send_header("Connection", "close")
        self.close_connection = True
        super().end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = json.loads(body or b"{}")
        path = self.path
        with self.owner.lock:
            self.owner.requests.append(("POST", path, time.monotonic()))
            self.owner.bodies.append((path, request))
        turn = self.owner.next_turn()
        route = path.split("?", 1)[0]
        if route.endswith("/openai/v1/chat/completions"):
            wire: _Wire = _Groq()
        elif route.startswith("/mistral/"):
            wire = _Mistral()
        elif route.endswith("/chat/completions"):
            wire = _OpenAIChat()
        elif route.endswith("/responses"):
            wire = _Responses()
        elif route.endswith("/messages"):
            wire = _Anthropic()
        elif ":generateContent" in route or ":streamGenerateContent" in route:
            wire = _Gemini(route.rsplit("/", 1)[-1].split(":")[0])
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})
            return
        with self.owner.lock:
            wire.uid = str(len(self.owner.requests))
        if turn.error is not None:
            self._json(turn.error, wire.error(turn.error), wire.error_headers())
            return
        stream = bool(request.get("stream")) or ":streamGenerateContent" in route
        if not stream:
            self._json(200, wire.response(request, turn))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        framing, content = wire.stream(request, turn)
        for event in framing:
            self._chunk(event)
        if turn.first_delay:
            time.sleep(turn.first_delay)
        for event in content:
            if event is PAUSE:
                time.sleep(turn.answer_delay)
            else:
                self._chunk(event)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


ProviderServer.handler_class = _Handler


#: In a stream's content events: wait `Turn.answer_delay` here.
PAUSE = b""


def sse(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Event (``data`` JSON-encoded unless bytes/str)."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _words(text: str) -> list[str]:
    """Text split in a few deltas, keeping the spaces."""
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


# -- wire formats -------------------------------------------------------------------------------


class _Wire:
    """One provider's format: a JSON answer, and a stream as (framing, content) events.

    ``uid`` makes the ids of one answer unique, as the real services' are (LangGraph's
    message reducer replaces a message whose id it has seen)."""

    uid = "0"

    def response(self, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        raise NotImplementedError

    def error(self, status: int) -> dict[str, Any]:
        kind = {429: "rate_limit_exceeded", 500: "server_error", 529: "overloaded"}
        return {
            "error": {
                "message": f"loopback says {status}",
                "type": kind.get(status, "server_error"),
                "param": None,
                "code": kind.get(status),
            }
        }

    def error_headers(self) -> dict[str, str]:
        return {"x-request-id": "req_loopback"}


class _OpenAIChat(_Wire):
    """Chat Completions: ``chat.completion`` / ``chat.completion.chunk``."""

    created = 1_765_000_000

    def usage(self, u: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": u.input,
            "completion_tokens": u.output,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def envelope(self, request: dict[str, Any], turn: Turn, obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-loopback{self.uid}",
            "object": obj,
            "created": self.created,
            "model": request.get("model"),
            "system_fingerprint": "fp_loopback",
            "service_tier": turn.service_tier or "default",
        }

    def tool_calls(self, turn: Turn) -> list[dict[str, Any]]:
        assert turn.tool_call is not None
        name, args = turn.tool_call
        call = {"name": name, "arguments": json.dumps(args)}
        return [{"id": f"call_loopback1{self.uid}", "type": "function", "function": call}]

    def response(self, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None}
        if turn.tool_call:
            message = {"role": "assistant", "content": None, "tool_calls": self.tool_calls(turn)}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": "tool_calls" if turn.tool_call else "stop",
        }
        return {
            **self.envelope(request, turn, "chat.completion"),
            "choices": [choice],
            "usage": self.usage(turn.usage),
        }

    def chunk(self, request: dict[str, Any], turn: Turn, delta: dict[str, Any], **extra: Any):
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        choice.update(extra)
        return {**self.envelope(request, turn, "chat.completion.chunk"), "choices": [choice]}

    def content_chunks(self, request: dict[str, Any], turn: Turn) -> list[dict[str, Any]]:
        if turn.tool_call:
            (call,) = self.tool_calls(turn)
            args = call["function"]["arguments"]
            head = {**call, "index": 0, "function": {"name": call["function"]["name"]}}
            head["function"]["arguments"] = ""
            return [
                self.chunk(request, turn, {"tool_calls": [head]}),
                self.chunk(
                    request, turn, {"tool_calls": [{"index": 0, "function": {"arguments": args}}]}
                ),
            ]
        return [self.chunk(request, turn, {"content": w}) for w in _words(turn.text)]

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        framing = [sse(self.chunk(request, turn, {"role": "assistant", "content": ""}))]
        content = [sse(c) for c in self.content_chunks(request, turn)]
        finish = "tool_calls" if turn.tool_call else "stop"
        content.append(sse(self.chunk(request, turn, {}, finish_reason=finish)))
        if (request.get("stream_options") or {}).get("include_usage"):
            last = {**self.envelope(request, turn, "chat.completion.chunk"), "choices": []}
            content.append(sse({**last, "usage": self.usage(turn.usage)}))
        content.append(sse("[DONE]"))
        return framing, content


class _Groq(_OpenAIChat):
    """Groq: OpenAI's format; in streams the usage is under ``x_groq`` of the last chunk."""

    def usage(self, u: Usage) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "queue_time": 0.01,
            "prompt_tokens": u.input,
            "prompt_time": 0.002,
            "completion_tokens": u.output,
            "completion_time": 0.05,
            "total_tokens": u.total,
            "total_time": 0.052,
        }
        if u.cache_read:
            usage["prompt_tokens_details"] = {"cached_tokens": u.cache_read}
        if u.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": u.reasoning}
        return usage

    def envelope(self, request: dict[str, Any], turn: Turn, obj: str) -> dict[str, Any]:
        out = super().envelope(request, turn, obj)
        out["service_tier"] = "on_demand"
        return out

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        first = self.chunk(request, turn, {"role": "assistant", "content": ""})
        first["x_groq"] = {"id": "req_loopback"}
        content = [sse(c) for c in self.content_chunks(request, turn)]
        finish = "tool_calls" if turn.tool_call else "stop"
        last = self.chunk(request, turn, {}, finish_reason=finish)
        last["x_groq"] = {"id": "req_loopback", "usage": self.usage(turn.usage)}
        content += [sse(last), sse("[DONE]")]
        return [sse(first)], content


class _Mistral(_OpenAIChat):
    """Mistral: OpenAI-like; usage on the last chunk, tool calls in one delta."""

    def usage(self, u: Usage) -> dict[str, Any]:
        return {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.total}

    def envelope(self, request: dict[str, Any], turn: Turn, obj: str) -> dict[str, Any]:
        return {
            "id": f"cmpl-loopback{self.uid}",
            "object": obj,
            "created": self.created,
            "model": request.get("model"),
        }

    def tool_calls(self, turn: Turn) -> list[dict[str, Any]]:
        assert turn.tool_call is not None
        name, args = turn.tool_call
        call = {"name": name, "arguments": json.dumps(args)}
        return [{"id": "Ab3dE6gH9", "type": "function", "function": call, "index": 0}]

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        framing = [sse(self.chunk(request, turn, {"role": "assistant", "content": ""}))]
        if turn.tool_call:
            deltas = [{"content": "", "tool_calls": self.tool_calls(turn)}]
        else:
            deltas = [{"content": w} for w in _words(turn.text)]
        chunks = [self.chunk(request, turn, d) for d in deltas]
        finish = "tool_calls" if turn.tool_call else "stop"
        last = self.chunk(request, turn, {"content": ""}, finish_reason=finish)
        last["usage"] = self.usage(turn.usage)
        return framing, [*(sse(c) for c in chunks), sse(last), sse("[DONE]")]

    def error(self, status: int) -> dict[str, Any]:
        return {
            "object": "error",
            "message": f"loopback says {status}",
            "type": "rate_limited" if status == 429 else "internal_server_error",
            "param": None,
            "code": str(status),
        }


class _Responses(_Wire):
    """OpenAI Responses API: ``response`` objects and typed stream events."""

    def __init__(self) -> None:
        self.seq = 0

    def event(self, kind: str, **payload: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **payload}
        self.seq += 1
        return sse(data, event=kind)

    def output(self, turn: Turn) -> list[dict[str, Any]]:
        if turn.tool_call:
            name, args = turn.tool_call
            return [
                {
                    "type": "function_call",
                    "id": f"fc_loopback{self.uid}",
                    "call_id": f"call_loopback1{self.uid}",
                    "name": name,
                    "arguments": json.dumps(args),
                    "status": "completed",
                }
            ]
        text = {"type": "output_text", "text": turn.text, "annotations": [], "logprobs": []}
        return [
            {
                "type": "message",
                "id": f"msg_loopback{self.uid}",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        ]

    def body(self, request: dict[str, Any], turn: Turn, done: bool) -> dict[str, Any]:
        u = turn.usage
        return {
            "id": f"resp_loopback{self.uid}",
            "object": "response",
            "created_at": 1_765_000_000,
            "status": "completed" if done else "in_progress",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": request.get("model"),
            "output": self.output(turn) if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": turn.service_tier or "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": {
                "input_tokens": u.input,
                "input_tokens_details": {"cached_tokens": u.cache_read},
                "output_tokens": u.output,
                "output_tokens_details": {"reasoning_tokens": u.reasoning},
                "total_tokens": u.total,
            }
            if done
            else None,
            "metadata": {},
        }

    def response(self, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
        return self.body(request, turn, done=True)

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        start = self.body(request, turn, done=False)
        framing = [
            self.event("response.created", response=start),
            self.event("response.in_progress", response=start),
        ]
        (item,) = self.output(turn)
        if turn.tool_call:
            # The function's name is output: its item's opening is content, not framing.
            opened = {**item, "arguments": "", "status": "in_progress"}
            ids = {"item_id": item["id"], "output_index": 0}
            content = [
                self.event("response.output_item.added", output_index=0, item=opened),
                self.event(
                    "response.function_call_arguments.delta", **ids, delta=item["arguments"]
                ),
                self.event(
                    "response.function_call_arguments.done", **ids, arguments=item["arguments"]
                ),
            ]
        else:
            opened = {**item, "content": [], "status": "in_progress"}
            framing.append(self.event("response.output_item.added", output_index=0, item=opened))
            ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": []}
            framing.append(self.event("response.content_part.added", **ids, part=empty))
            content = [
                self.event("response.output_text.delta", **ids, delta=w, logprobs=[])
                for w in _words(turn.text)
            ]
            done_part = {"type": "output_text", "text": turn.text, "annotations": []}
            content += [
                self.event("response.output_text.done", **ids, text=turn.text, logprobs=[]),
                self.event("response.content_part.done", **ids, part=done_part),
            ]
        content.append(self.event("response.output_item.done", output_index=0, item=item))
        content.append(
            self.event("response.completed", response=self.body(request, turn, done=True))
        )
        return framing, content


class _Anthropic(_Wire):
    """Anthropic Messages: ``message`` objects and ``message_start`` ... ``message_stop``."""

    def usage(self, u: Usage, *, output: int | None = None) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": u.input - u.cache_read - u.writes,  # the uncached rest
            "cache_creation_input_tokens": u.writes,
            "cache_read_input_tokens": u.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": u.write_5m,
                "ephemeral_1h_input_tokens": u.write_1h,
            },
            "output_tokens": u.output if output is None else output,
            "service_tier": "standard",
        }
        if u.reasoning:
            usage["output_tokens_details"] = {"thinking_tokens": u.reasoning}
        return usage

    def delta_usage(self, u: Usage) -> dict[str, Any]:
        """``message_delta`` usage: cumulative counts, no per-TTL breakdown."""
        usage: dict[str, Any] = {
            "input_tokens": u.input - u.cache_read - u.writes,
            "cache_creation_input_tokens": u.writes,
            "cache_read_input_tokens": u.cache_read,
            "output_tokens": u.output,
        }
        if u.reasoning:
            usage["output_tokens_details"] = {"thinking_tokens": u.reasoning}
        return usage

    def blocks(self, turn: Turn) -> list[dict[str, Any]]:
        if turn.tool_call:
            name, args = turn.tool_call
            return [
                {
                    "type": "tool_use",
                    "id": f"toolu_loopback1{self.uid}",
                    "name": name,
                    "input": args,
                }
            ]
        return [{"type": "text", "text": turn.text}]

    def thinking(self, turn: Turn) -> list[dict[str, Any]]:
        if turn.thinking is None:
            return []
        return [{"type": "thinking", "thinking": turn.thinking, "signature": "c2lnbmF0dXJl"}]

    def message(self, request: dict[str, Any], turn: Turn, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"msg_loopback{self.uid}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model"),
            "content": self.thinking(turn) + self.blocks(turn),
            "stop_reason": "tool_use" if turn.tool_call else "end_turn",
            "stop_sequence": None,
            "usage": self.usage(turn.usage),
            **fields,
        }

    def response(self, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
        return self.message(request, turn)

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        start = self.message(
            request, turn, content=[], stop_reason=None, usage=self.usage(turn.usage, output=1)
        )
        framing = [sse({"type": "message_start", "message": start}, "message_start")]
        (block,) = self.blocks(turn)
        content: list[bytes] = []
        at = 0  # index of the block being streamed
        for thought in self.thinking(turn):
            opened = {"type": "thinking", "thinking": "", "signature": ""}
            framing.append(self._ev("content_block_start", index=at, content_block=opened))
            content += [
                self._ev("content_block_delta", index=at, delta={"type": "thinking_delta", **d})
                for d in ({"thinking": w} for w in _words(thought["thinking"]))
            ]
            signature = {"type": "signature_delta", "signature": thought["signature"]}
            content.append(self._ev("content_block_delta", index=at, delta=signature))
            content += [self._ev("content_block_stop", index=at), PAUSE]
            at += 1
        # Framing only before the first block: later block starts come with the output.
        opening = framing if at == 0 else content
        if turn.tool_call:
            # The tool's name is output: its block start is content, not framing.
            opened = {**block, "input": {}}
            content.append(self._ev("content_block_start", index=at, content_block=opened))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            content.append(self._ev("content_block_delta", index=at, delta=delta))
        else:
            opened = {"type": "text", "text": ""}
            opening.append(self._ev("content_block_start", index=at, content_block=opened))
            opening.append(self._ev("ping"))
            content += [
                self._ev("content_block_delta", index=at, delta={"type": "text_delta", "text": w})
                for w in _words(turn.text)
            ]
        content.append(self._ev("content_block_stop", index=at))
        stop = {"stop_reason": start["stop_reason"] or self.message(request, turn)["stop_reason"]}
        delta = self._ev(
            "message_delta",
            delta={**stop, "stop_sequence": None},
            usage=self.delta_usage(turn.usage),
        )
        content += [delta, delta] if turn.repeat_message_delta else [delta]
        content.append(self._ev("message_stop"))
        return framing, content

    @staticmethod
    def _ev(kind: str, **payload: Any) -> bytes:
        return sse({"type": kind, **payload}, kind)

    def error(self, status: int) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        message = {429: "Number of request tokens has exceeded your per-minute rate limit"}
        return {
            "type": "error",
            "error": {"type": kind, "message": message.get(status, f"loopback says {status}")},
            "request_id": "req_loopback",
        }

    def error_headers(self) -> dict[str, str]:
        return {"request-id": "req_loopback", "x-should-retry": "false"}


class _Gemini(_Wire):
    """Gemini API: ``GenerateContentResponse``; streams send running usage on each chunk."""

    def __init__(self, model: str) -> None:
        self.model = model

    def usage(self, u: Usage, *, output: int | None = None) -> dict[str, Any]:
        out = u.output if output is None else output
        usage: dict[str, Any] = {
            "promptTokenCount": u.input,
            "candidatesTokenCount": out - u.reasoning if output is None else out,
            "totalTokenCount": u.input + out,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input}],
        }
        if u.cache_read:
            usage["cachedContentTokenCount"] = u.cache_read
        if u.reasoning and output is None:
            usage["thoughtsTokenCount"] = u.reasoning
        return usage

    def candidate(self, parts: list[dict[str, Any]], finish: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = "STOP"
        return cand

    def parts(self, turn: Turn) -> list[dict[str, Any]]:
        if turn.tool_call:
            name, args = turn.tool_call
            return [{"functionCall": {"name": name, "args": args}}]
        return [{"text": turn.text}]

    def body(self, candidate: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": f"resp-loopback{self.uid}",
        }

    def response(self, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
        return self.body(self.candidate(self.parts(turn), True), self.usage(turn.usage))

    def stream(self, request: dict[str, Any], turn: Turn) -> tuple[list[bytes], list[bytes]]:
        # No framing event: the first chunk already carries content.
        if turn.tool_call:
            return [], [sse(self.response(request, turn))]
        words = _words(turn.text)
        chunks = [
            self.body(self.candidate([{"text": w}], False), self.usage(turn.usage, output=i + 1))
            for i, w in enumerate(words[:-1])
        ]
        last = self.candidate([{"text": words[-1]}], True)
        chunks.append(self.body(last, self.usage(turn.usage)))
        return [], [sse(c) for c in chunks]

    def error(self, status: int) -> dict[str, Any]:
        kind = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
        return {"error": {"code": status, "message": f"loopback says {status}", "status": kind}}

    def error_headers(self) -> dict[str, str]:
        return {}
