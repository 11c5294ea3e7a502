"""What a stored run *says*, in the two vocabularies OTel backends read.

Input is the public (JSON-safe, redacted) form of a span record's ``inputs`` / ``outputs``
as LangChain produced them: a chat model's ``{"messages": [[message, ...]]}`` and its
``LLMResult`` (``{"generations": [[{"message": ..., "generation_info": ...}]]}``), a
tool's arguments and ``{"output": ToolMessage | value}``, a retriever's
``{"documents": [Document, ...]}``.  Serialized messages are dicts with ``type``
(``system``, ``human``, ``ai``, ``tool``, ``chat`` ...), ``content`` (text or content
blocks), ``tool_calls``, ``tool_call_id``.

- `Conversation.genai` gives the OpenTelemetry GenAI parts format: ``{"role", "parts":
  [{"type": "text", "content"}, {"type": "tool_call", "id", "name", "arguments"},
  {"type": "tool_call_response", "id", "response"}], "finish_reason"}``.
- `openinference_messages` flattens messages as OpenInference does
  (``llm.input_messages.0.message.role`` ...).

Everything here is tolerant: an unexpected shape yields less, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_ROLES = {
    "system": "system",
    "developer": "system",
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
#: Provider finish reasons -> the GenAI output message's ``finish_reason`` values.
_FINISH = {
    "tool_calls": "tool_call",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "content_filter": "content_filter",
}
#: Message ids LangChain makes up itself (not a provider's response id).
_LOCAL_ID_PREFIXES = ("run-", "lc_run-", "lc_")


def role(message: dict[str, Any]) -> str:
    """The GenAI role of a serialized LangChain message (``user``, ``assistant`` ...)."""
    kind = str(message.get("type") or message.get("role") or "")
    if kind == "chat":
        kind = str(message.get("role") or "user")
    kind = kind.removesuffix("Chunk").lower()  # AIMessageChunk serialized by class name
    return _ROLES.get(kind.removesuffix("message"), kind or "user")


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return [{"type": "text", "content": str(content)}]
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, dict):
            kind = str(block.get("type") or "unknown")
            if kind == "text":
                parts.append({"type": "text", "content": block.get("text", "")})
            elif kind in ("reasoning", "thinking"):
                text = block.get("reasoning") or block.get("thinking") or block.get("text")
                parts.append({"type": "reasoning", "content": text})
            elif kind not in ("tool_use", "tool_call", "function_call"):  # kept as tool_calls
                parts.append({"type": kind, "content": block})
    return parts


def message_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The GenAI parts of one serialized message."""
    if role(message) == "tool":
        response = message.get("content")
        return [
            {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}
        ]
    parts = _text_parts(message.get("content"))
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": call.get("name"),
                    "arguments": call.get("args"),
                }
            )
    return parts


def genai_message(message: Any) -> dict[str, Any]:
    """A serialized message (or plain text) as a GenAI message ``{"role", "parts"}``."""
    if not isinstance(message, dict):
        return {"role": "user", "parts": _text_parts(message)}
    out: dict[str, Any] = {"role": role(message), "parts": message_parts(message)}
    if message.get("name") and out["role"] != "tool":
        out["name"] = message["name"]
    return out


def finish_reason(generation: dict[str, Any]) -> str | None:
    """The provider's finish reason of one generation, as it reported it."""
    info = generation.get("generation_info")
    message = generation.get("message")
    meta = message.get("response_metadata") if isinstance(message, dict) else None
    for source in (info, meta):
        if isinstance(source, dict):
            for key in ("finish_reason", "stop_reason", "done_reason"):
                if source.get(key):
                    return str(source[key])
    return None


@dataclass
class Conversation:
    """A model call's messages: system instructions, input and output messages."""

    system: list[dict[str, Any]] = field(default_factory=list)  # parts
    inputs: list[dict[str, Any]] = field(default_factory=list)  # serialized messages
    outputs: list[dict[str, Any]] = field(default_factory=list)  # serialized AI messages
    finish_reasons: list[str | None] = field(default_factory=list)
    response_id: str | None = None

    @classmethod
    def of(cls, inputs: Any, outputs: Any) -> Conversation:
        """The conversation of a chat model (or LLM) span's public inputs and outputs."""
        found = cls()
        messages: list[Any] = []
        if isinstance(inputs, dict):
            batches = inputs.get("messages")
            if isinstance(batches, list) and batches:
                first = batches[0]
                messages = first if isinstance(first, list) else batches  # the first prompt
            elif isinstance(inputs.get("prompts"), list):
                messages = [{"type": "human", "content": p} for p in inputs["prompts"][:1]]
        for message in messages:
            if isinstance(message, dict) and role(message) == "system":
                found.system.extend(_text_parts(message.get("content")))
            else:
                found.inputs.append(message if isinstance(message, dict) else {"content": message})
        generations = outputs.get("generations") if isinstance(outputs, dict) else None
        first = generations[0] if isinstance(generations, list) and generations else []
        for generation in first if isinstance(first, list) else ():
            if not isinstance(generation, dict):
                continue
            message = generation.get("message")
            if not isinstance(message, dict):
                message = {"type": "ai", "content": generation.get("text")}
            found.outputs.append(message)
            found.finish_reasons.append(finish_reason(generation))
            if found.response_id is None:
                found.response_id = _response_id(message)
        return found

    def genai_inputs(self) -> list[dict[str, Any]]:
        return [genai_message(m) for m in self.inputs]

    def genai_outputs(self) -> list[dict[str, Any]]:
        out = []
        for message, reason in zip(self.outputs, self.finish_reasons, strict=True):
            item = genai_message(message)
            item["role"] = "assistant"
            item["finish_reason"] = _FINISH.get(reason or "", reason or "stop")
            out.append(item)
        return out


def _response_id(message: dict[str, Any]) -> str | None:
    meta = message.get("response_metadata")
    if isinstance(meta, dict) and isinstance(meta.get("id"), str):
        return meta["id"]
    ident = message.get("id")
    if isinstance(ident, str) and not ident.startswith(_LOCAL_ID_PREFIXES):
        return ident
    return None


def tool_result(outputs: Any) -> Any:
    """A tool span's result: the ToolMessage's content, or the returned value."""
    if not isinstance(outputs, dict) or "output" not in outputs:
        return outputs
    output = outputs["output"]
    if isinstance(output, dict) and output.get("type") == "tool" and "content" in output:
        return output["content"]
    return output


def tool_call_id(record: dict[str, Any]) -> str | None:
    """The model's id of the tool call a tool span ran (from its start or its ToolMessage)."""
    params = record.get("params")
    if isinstance(params, dict) and isinstance(params.get("tool_call_id"), str):
        return params["tool_call_id"]
    outputs = record.get("outputs")
    output = outputs.get("output") if isinstance(outputs, dict) else None
    if isinstance(output, dict) and isinstance(output.get("tool_call_id"), str):
        return output["tool_call_id"]
    return None


def documents(outputs: Any) -> list[dict[str, Any]]:
    """A retriever's documents as ``{"id", "score", "content", "metadata"}`` (those known)."""
    docs = outputs.get("documents") if isinstance(outputs, dict) else None
    found: list[dict[str, Any]] = []
    for doc in docs if isinstance(docs, list) else ():
        if not isinstance(doc, dict):
            found.append({"content": doc})
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        item: dict[str, Any] = {}
        ident = doc.get("id") or meta.get("id")
        if ident is not None:
            item["id"] = str(ident)
        score = next((meta[k] for k in ("score", "relevance_score") if k in meta), None)
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            item["score"] = float(score)
        item["content"] = doc.get("page_content")
        if meta:
            item["metadata"] = meta
        found.append(item)
    return found


def openinference_messages(
    prefix: str, messages: list[dict[str, Any]], text: Any
) -> Iterator[tuple[str, Any]]:
    """OpenInference's flattened messages: ``{prefix}.{i}.message.role`` / ``.content`` /
    ``.tool_calls.{j}.tool_call.function.name`` ... (``text`` makes JSON strings)."""
    for i, message in enumerate(messages):
        head = f"{prefix}.{i}.message"
        yield f"{head}.role", role(message)
        content = message.get("content")
        if isinstance(content, str):
            if content:
                yield f"{head}.content", content
        elif content is not None:
            texts = [p["content"] for p in _text_parts(content) if p["type"] == "text"]
            if texts:
                yield f"{head}.content", "\n".join(str(t) for t in texts)
        if message.get("name"):
            yield f"{head}.name", str(message["name"])
        if message.get("tool_call_id"):
            yield f"{head}.tool_call_id", str(message["tool_call_id"])
        for j, call in enumerate(message.get("tool_calls") or ()):
            if not isinstance(call, dict):
                continue
            call_head = f"{head}.tool_calls.{j}.tool_call"
            if call.get("id"):
                yield f"{call_head}.id", str(call["id"])
            yield f"{call_head}.function.name", str(call.get("name"))
            yield f"{call_head}.function.arguments", text(call.get("args") or {})
