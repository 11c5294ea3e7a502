"""What a stored run *says*, encoded in the two vocabularies OTel backends read.

The payloads are read by `lc_observe.conversation` (the one reader of LangChain's shapes:
roles, content blocks, tool calls, finish reasons, response ids, tool results, documents);
this module only encodes what it returns:

- `Conversation.genai_inputs` / `Conversation.genai_outputs` give the OpenTelemetry GenAI
  parts format: ``{"role", "parts": [{"type": "text", "content"}, {"type": "tool_call",
  "id", "name", "arguments"}, {"type": "tool_call_response", "id", "response"}],
  "finish_reason"}``;
- `Conversation.openinference` flattens messages as OpenInference does
  (``llm.input_messages.0.message.role`` ...);
- `documents` gives a retriever's documents as ``{"id", "score", "content", "metadata"}``.

Everything here is tolerant: an unexpected shape yields less, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lc_observe.conversation import (
    Block,
    Message,
    read_documents,
    read_message,
    read_model_call,
    read_tool_result,
)
from lc_observe.conversation import tool_call_id as _tool_call_id

#: lc_observe's roles -> GenAI roles (``system`` and ``tool`` are the same in both).
_ROLES = {"human": "user", "ai": "assistant", "chat": "user"}
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


def role(message: Message) -> str:
    """The GenAI role of a message (``user``, ``assistant``, ``system``, ``tool`` ...)."""
    return _ROLES.get(message.role, message.role)


def _parts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block.type == "text":
            parts.append({"type": "text", "content": block.text or ""})
        elif block.is_reasoning:
            parts.append({"type": "reasoning", "content": block.reasoning})
        else:
            parts.append({"type": block.type or "unknown", "content": block.data})
    return parts


def message_parts(message: Message | dict[str, Any]) -> list[dict[str, Any]]:
    """The GenAI parts of one message (or of a serialized one)."""
    if not isinstance(message, Message):
        read = read_message(message)
        if read is None:
            return []
        message = read
    if message.role == "tool":
        return [
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}
        ]
    parts = _parts(message.blocks)
    for call in message.tool_calls:
        if call.error is None:  # a call LangChain could not parse was not made
            parts.append(
                {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.args}
            )
    return parts


def genai_message(message: Message) -> dict[str, Any]:
    """A message as a GenAI message ``{"role", "parts"}`` (and ``name``)."""
    out: dict[str, Any] = {"role": role(message), "parts": message_parts(message)}
    if message.name and out["role"] != "tool":
        out["name"] = message.name
    return out


@dataclass
class Conversation:
    """A model call's first prompt and its answers: system instructions (GenAI parts),
    the other input messages, and the generations."""

    system: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Message] = field(default_factory=list)
    outputs: list[Message] = field(default_factory=list)

    @classmethod
    def of(cls, inputs: Any, outputs: Any) -> Conversation:
        """The conversation of a chat model (or LLM) span's public inputs and outputs."""
        call = read_model_call(inputs, outputs)
        found = cls(outputs=list(call.generations[0]) if call.generations else [])
        for message in call.prompts[0] if call.prompts else ():
            if message.role == "system":
                found.system.extend(_parts(message.blocks))
            else:
                found.inputs.append(message)
        return found

    @property
    def finish_reasons(self) -> list[str | None]:
        """Each generation's finish reason, as the provider reported it."""
        return [m.finish_reason for m in self.outputs]

    @property
    def response_id(self) -> str | None:
        """The provider's id of the response (the first generation that has one)."""
        return next((m.response_id for m in self.outputs if m.response_id), None)

    def genai_inputs(self) -> list[dict[str, Any]]:
        return [genai_message(m) for m in self.inputs]

    def genai_outputs(self) -> list[dict[str, Any]]:
        out = []
        for message in self.outputs:
            item = genai_message(message)
            item["role"] = "assistant"
            reason = message.finish_reason
            item["finish_reason"] = _FINISH.get(reason or "", reason or "stop")
            out.append(item)
        return out

    def openinference(self, text: Callable[[Any], str]) -> Iterator[tuple[str, Any]]:
        """``llm.input_messages.*`` (system instructions first) and ``llm.output_messages.*``."""
        system = [Message("system", "", content=p.get("content")) for p in self.system]
        yield from openinference_messages("llm.input_messages", [*system, *self.inputs], text)
        yield from openinference_messages("llm.output_messages", self.outputs, text)


def tool_result(outputs: Any) -> Any:
    """A tool span's result: the ToolMessage's content, or the returned value."""
    return read_tool_result(outputs).value


def tool_call_id(record: dict[str, Any]) -> str | None:
    """The model's id of the tool call a tool span ran (from its start or its ToolMessage)."""
    return _tool_call_id(record.get("params"), record.get("outputs"))


def documents(outputs: Any) -> list[dict[str, Any]]:
    """A retriever's documents as ``{"id", "score", "content", "metadata"}`` (those known)."""
    found: list[dict[str, Any]] = []
    for doc in read_documents(outputs):
        item: dict[str, Any] = {}
        if doc.id is not None:
            item["id"] = doc.id
        if doc.score is not None:
            item["score"] = doc.score
        item["content"] = doc.content
        if doc.metadata:
            item["metadata"] = doc.metadata
        found.append(item)
    return found


def openinference_messages(
    prefix: str, messages: Iterable[Message], text: Callable[[Any], str]
) -> Iterator[tuple[str, Any]]:
    """OpenInference's flattened messages: ``{prefix}.{i}.message.role`` / ``.content`` /
    ``.tool_calls.{j}.tool_call.function.name`` ... (``text`` makes JSON strings)."""
    for i, message in enumerate(messages):
        head = f"{prefix}.{i}.message"
        yield f"{head}.role", role(message)
        texts = [b.text or "" for b in message.blocks if b.type == "text"]
        if texts:
            yield f"{head}.content", "\n".join(texts)
        if message.name:
            yield f"{head}.name", message.name
        if message.tool_call_id:
            yield f"{head}.tool_call_id", message.tool_call_id
        calls = [c for c in message.tool_calls if c.error is None]
        for j, call in enumerate(calls):
            call_head = f"{head}.tool_calls.{j}.tool_call"
            if call.id:
                yield f"{call_head}.id", call.id
            yield f"{call_head}.function.name", call.name
            yield f"{call_head}.function.arguments", text(call.args or {})
