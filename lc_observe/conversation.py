"""What a span's payload *says*: chat messages, tool calls, documents, prompt variables.

`read_span` turns the JSON a span stored (as `lc_observe.pipeline.serialize` wrote it) into a
neutral structure that every view renders its own way: the notebook HTML
(`lc_observe.views.payload`), the text tree and ``lc-observe show`` (`lc_observe.views.tree`),
and anything else that wants to show a conversation.  The rules for LangChain's payload
shapes live here and nowhere else:

=================== ==========================================================================
span                what is read
=================== ==========================================================================
chat model input    ``{"messages": [[message, ...]]}`` (one list per prompt of a batch)
LLM input           ``{"prompts": [text, ...]}``
model output        ``{"generations": [[{"text", "message"}, ...]], ...}``
tool input          the tool's arguments (shown as a tool call card)
tool output         ``{"output": ToolMessage | text | value}``
retriever           ``{"query": text}`` in, ``{"documents": [Document, ...]}`` out
prompt template     its variables in, ``{"output": {"messages": [...]} | {"text": ...}}`` out
anything else       keys holding messages (``{"messages": [...]}``, LangGraph state) as
                    conversations, the other keys as a value
=================== ==========================================================================

A message is a dict with a ``type`` (``human``, ``ai``, ``system``, ``tool`` ...) and a
``content``, an OpenAI-style ``{"role", "content"}`` dict, or a ``[role, text]`` pair.
Nothing here raises on odd data: what is not understood stays a ``"value"`` part.

The OTLP export (`lc_observe.sinks.otlp_content`) reads payloads through the same
functions (`read_model_call`, `read_tool_result`, `read_documents`, `read_message`) and
only encodes what they return.

>>> parts = read_parts({"messages": [[{"type": "human", "content": "hi"}]]}, "chat_model", "in")
>>> parts[0].messages[0].role, parts[0].messages[0].text
('human', 'hi')
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

#: Metadata keys LangGraph and LangChain add to every run (folded away in views).
BOOKKEEPING_PREFIXES = ("langgraph_", "ls_", "__pregel", "lc_")
BOOKKEEPING_KEYS = frozenset({"checkpoint_ns", "thread_id", "checkpoint_id", "run_attempt"})

_ROLES = {
    "human": "human",
    "user": "human",
    "ai": "ai",
    "assistant": "ai",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "remove": "remove",
}
_CHUNK_SUFFIX = "MessageChunk"
#: Content blocks that are tool calls (each also in the message's ``tool_calls``).
TOOL_CALL_BLOCKS = frozenset({"tool_use", "tool_call", "function_call"})
#: Content blocks that hold the model's reasoning.
REASONING_BLOCKS = frozenset({"reasoning", "thinking"})
#: Where providers report why a generation ended.
_FINISH_KEYS = ("finish_reason", "stop_reason", "done_reason")
#: Message ids LangChain makes up itself (not a provider's response id).
_LOCAL_ID_PREFIXES = ("run-", "lc_run-", "lc_")


@dataclass(frozen=True)
class ToolCall:
    """A tool call an AI message asked for (or a tool span's own input).  ``error`` is set
    on a call the model made but LangChain could not parse (``invalid_tool_calls``)."""

    name: str
    args: Any
    id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Block:
    """One block of a message's content (tool call blocks are left out: they are the
    message's ``tool_calls``).  ``type`` is ``"text"`` for plain text, else the block's own
    type (``"image"``, ``"reasoning"`` ...; ``""`` when it has none); ``text`` is the text it
    carries, if any; ``data`` the block as stored (None for plain text)."""

    type: str
    text: str | None = None
    data: Any = None

    @property
    def is_reasoning(self) -> bool:
        return self.type in REASONING_BLOCKS

    @property
    def reasoning(self) -> Any:
        """A reasoning block's reasoning (``reasoning``, ``thinking`` or ``text``)."""
        data = self.data if isinstance(self.data, dict) else {}
        return data.get("reasoning") or data.get("thinking") or data.get("text")


@dataclass(frozen=True)
class Message:
    """One chat turn; ``role`` is ``system``, ``human``, ``ai``, ``tool`` or the type as
    stored when it is none of these.  ``text`` is the content as one text (non-text blocks
    named ``[image]`` ...); ``content`` the content as stored (text or blocks, see
    `blocks`).  ``finish_reason`` (as the provider said it) and ``response_id`` (the
    provider's id of the response) are known on model answers."""

    role: str
    text: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    status: str | None = None  # a tool result's status ("error" ...)
    content: Any = None
    finish_reason: str | None = None
    response_id: str | None = None

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The content as `Block` s."""
        return content_blocks(self.content)


@dataclass(frozen=True)
class Document:
    """A retrieved document: its text, metadata, id (its own or its metadata's) and
    relevance score (the metadata's ``score`` or ``relevance_score``)."""

    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class ModelCall:
    """A chat model or LLM span: the conversations it was sent (one per prompt of a batch)
    and its answers (one tuple of generations per prompt)."""

    prompts: tuple[tuple[Message, ...], ...] = ()
    generations: tuple[tuple[Message, ...], ...] = ()


@dataclass(frozen=True)
class ToolResult:
    """A tool span's result: ``value`` is what the tool returned (its ToolMessage's
    content, else the value itself); ``message`` the ToolMessage, when it returned one."""

    value: Any
    message: Message | None = None


@dataclass(frozen=True)
class Part:
    """One piece of a payload.  ``kind`` says which field holds it:

    - ``"messages"``: ``messages`` (a conversation);
    - ``"documents"``: ``documents``;
    - ``"variables"``: ``value`` (a prompt template's variables, a dict);
    - ``"tool_call"``: ``tool_call`` (a tool span's input);
    - ``"text"``: ``text`` (a query, a prompt, a plain answer);
    - ``"value"``: ``value`` (anything else, as stored).

    ``label`` names where it came from (``"messages"``, ``"query"``, a state key ...).
    """

    kind: str
    label: str = ""
    messages: tuple[Message, ...] = ()
    documents: tuple[Document, ...] = ()
    tool_call: ToolCall | None = None
    text: str | None = None
    value: Any = None


class SpanLike(Protocol):
    name: str
    kind: str
    inputs: Any
    outputs: Any
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SpanPayload:
    """What `read_span` returns: the parts of the input and of the output, and the
    metadata split into what the user set and LangGraph/LangChain bookkeeping."""

    inputs: list[Part]
    outputs: list[Part]
    metadata: dict[str, Any]
    bookkeeping: dict[str, Any]


def read_span(span: SpanLike) -> SpanPayload:
    """The input and output of ``span`` as `Part` lists, with its metadata split."""
    shown, folded = split_metadata(span.metadata or {})
    return SpanPayload(
        read_parts(span.inputs, span.kind, "in", span.name),
        read_parts(span.outputs, span.kind, "out", span.name),
        shown,
        folded,
    )


def is_bookkeeping(key: str) -> bool:
    """Whether a metadata key is LangGraph/LangChain bookkeeping, not the user's."""
    return key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES)


def split_metadata(metadata: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user metadata, bookkeeping)``: see `is_bookkeeping`."""
    shown = {k: v for k, v in metadata.items() if not is_bookkeeping(str(k))}
    folded = {k: v for k, v in metadata.items() if is_bookkeeping(str(k))}
    return shown, folded


# -- reading ---------------------------------------------------------------------------------


def read_parts(value: Any, kind: str, side: str, name: str = "") -> list[Part]:
    """The parts of one payload (``side``: ``"in"`` or ``"out"``) of a span of ``kind``."""
    if value is None:
        return []
    try:
        return _read(value, kind, side, name)
    except Exception:  # odd data: shown as stored, never an error
        return [Part("value", value=value)]


def _read(value: Any, kind: str, side: str, name: str) -> list[Part]:
    if isinstance(value, str):
        return [Part("text", text=value)]
    if not isinstance(value, dict):
        messages = _messages(value)
        return [Part("messages", messages=messages)] if messages else [Part("value", value=value)]
    if kind in ("chat_model", "llm"):
        if side == "in":
            return _model_input(value)
        if "generations" in value:
            return _generations(value)
    if kind == "tool":
        if side == "in":
            args = value.get("input", value) if set(value) == {"input"} else value
            return [Part("tool_call", label=name, tool_call=ToolCall(name, args))]
        if set(value) == {"output"}:
            return _read_any(value["output"], "")
    if kind == "retriever":
        if side == "in" and isinstance(value.get("query"), str):
            return [Part("text", label="query", text=value["query"])]
        if side == "out" and isinstance(value.get("documents"), list):
            return [Part("documents", label="documents", documents=_documents(value["documents"]))]
    if kind == "prompt":
        if side == "in":
            return [Part("variables", label="variables", value=value)]
        if set(value) == {"output"}:
            return _read_any(value["output"], "prompt")
    return _read_dict(value)


def _read_any(value: Any, label: str) -> list[Part]:
    if isinstance(value, str):
        return [Part("text", label=label, text=value)]
    message = _message(value)
    if message is not None:
        return [Part("messages", label=label, messages=(message,))]
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list) and set(value) <= {"messages", "type"}:
            messages = _messages(value["messages"])
            if messages:
                return [Part("messages", label=label, messages=messages)]
        if set(value) <= {"text", "type"} and isinstance(value.get("text"), str):
            return [Part("text", label=label, text=value["text"])]  # StringPromptValue
        return _read_dict(value)
    messages = _messages(value)
    if messages:
        return [Part("messages", label=label, messages=messages)]
    return [Part("value", label=label, value=value)]


_COMMAND_KEYS = frozenset({"graph", "update", "resume", "goto"})


def _command_update(item: Any) -> Any:
    """The state update of a LangGraph ``Command`` (or a list of them), else ``item``."""
    if isinstance(item, dict) and "update" in item and set(item) <= _COMMAND_KEYS:
        return item["update"]
    if isinstance(item, list) and len(item) == 1:
        inner = _command_update(item[0])
        return inner if inner is not item[0] else item
    return item


def _tool_call_list(item: Any) -> list[ToolCall]:
    """``[{"name", "args", "id", "type": "tool_call"}, ...]`` (a ToolNode's input)."""
    if not isinstance(item, list) or not item:
        return []
    calls = []
    for call in item:
        if not (isinstance(call, dict) and call.get("type") == "tool_call" and "name" in call):
            return []
        calls.append(ToolCall(str(call["name"]), call.get("args"), _str(call.get("id"))))
    return calls


def _read_dict(value: dict[str, Any]) -> list[Part]:
    """Keys holding messages become conversations; the other keys one value."""
    parts: list[Part] = []
    rest: dict[str, Any] = {}
    for key, item in value.items():
        item = _command_update(item)
        if isinstance(item, dict) and item is not value.get(key):  # a Command's update
            parts.extend(_read_dict(item))
            continue
        calls = _tool_call_list(item)
        if calls:
            parts.extend(Part("tool_call", label=c.name, tool_call=c) for c in calls)
            continue
        message = _message(item)
        messages = (message,) if message is not None else _messages(item)
        if messages:
            parts.append(Part("messages", label=str(key), messages=messages))
        elif isinstance(item, str) and len(value) == 1:
            parts.append(Part("text", label=str(key), text=item))
        else:
            rest[key] = item
    if rest:
        parts.append(Part("value", value=rest))
    return parts


def _model_input(value: dict[str, Any]) -> list[Part]:
    parts = [Part("messages", label="messages", messages=m) for m in _prompt_batches(value)]
    if not isinstance(value.get("messages"), list) and isinstance(value.get("prompts"), list):
        for prompt in value["prompts"]:
            parts.append(Part("text", label="prompt", text=_content_text(prompt)))
    rest = {k: v for k, v in value.items() if k not in ("messages", "prompts")}
    if rest:
        parts.append(Part("value", value=rest))
    return parts or [Part("value", value=value)]


def _generations(value: dict[str, Any]) -> list[Part]:
    messages = tuple(m for batch in _generation_batches(value) for m in batch)
    parts = [Part("messages", label="generations", messages=messages)]
    extra = value.get("llm_output")
    if extra:
        parts.append(Part("value", label="llm_output", value=extra))
    return parts


def read_model_call(inputs: Any, outputs: Any) -> ModelCall:
    """What a chat model (``{"messages": [[...]]}``) or LLM (``{"prompts": [...]}``, each
    read as a human message) was sent, and its ``generations``."""
    try:
        return _model_call(inputs, outputs)
    except Exception:  # odd data: nothing read
        return ModelCall()


def _model_call(inputs: Any, outputs: Any) -> ModelCall:
    prompts: list[tuple[Message, ...]] = []
    if isinstance(inputs, dict):
        prompts = _prompt_batches(inputs)
        if not prompts and isinstance(inputs.get("prompts"), list):
            prompts = [(Message("human", _content_text(p), content=p),) for p in inputs["prompts"]]
    generations = _generation_batches(outputs) if isinstance(outputs, dict) else []
    return ModelCall(tuple(prompts), tuple(generations))


def _prompt_batches(value: dict[str, Any]) -> list[tuple[Message, ...]]:
    """A chat model's input conversations: ``[[message, ...], ...]`` (or one flat list)."""
    batches = value.get("messages")
    if not isinstance(batches, list):
        return []
    if batches and all(isinstance(b, list) for b in batches):
        return [_messages(batch) for batch in batches]
    return [_messages(batches)]


def _generation_batches(value: dict[str, Any]) -> list[tuple[Message, ...]]:
    """An ``LLMResult``'s generations, one tuple per prompt: each generation's message (or
    its text as an AI message) with the generation's finish reason."""
    found = []
    for batch in value.get("generations") or []:
        messages = []
        for generation in batch if isinstance(batch, list) else [batch]:
            if not isinstance(generation, dict):
                continue
            message = _message(generation.get("message"))
            if message is None:
                text = generation.get("text", "")
                message = Message("ai", _content_text(text), content=text)
            reason = _finish_reason(generation.get("generation_info"))
            if reason is not None:
                message = replace(message, finish_reason=reason)
            messages.append(message)
        found.append(tuple(messages))
    return found


def _finish_reason(source: Any) -> str | None:
    """Why a generation ended, as the provider said it (``generation_info`` or a message's
    ``response_metadata``)."""
    if isinstance(source, dict):
        for key in _FINISH_KEYS:
            if source.get(key):
                return str(source[key])
    return None


def _response_id(item: dict[str, Any]) -> str | None:
    """The provider's id of the response a message is (not an id LangChain made up)."""
    meta = item.get("response_metadata")
    if isinstance(meta, dict) and isinstance(meta.get("id"), str):
        return meta["id"]
    ident = item.get("id")
    if isinstance(ident, str) and not ident.startswith(_LOCAL_ID_PREFIXES):
        return ident
    return None


def read_tool_result(outputs: Any) -> ToolResult:
    """A tool span's result (``{"output": ToolMessage | value}`` as the handler keeps it)."""
    try:
        return _tool_result(outputs)
    except Exception:  # odd data: the outputs as they are
        return ToolResult(outputs)


def _tool_result(outputs: Any) -> ToolResult:
    if not isinstance(outputs, dict) or "output" not in outputs:
        return ToolResult(outputs)
    output = outputs["output"]
    message = _message(output)
    if message is not None and message.role == "tool":
        return ToolResult(output["content"], message)
    return ToolResult(output)


def tool_call_id(params: Any, outputs: Any) -> str | None:
    """The model's id of the tool call a tool span ran: from the tool's start (``params``)
    or from the ToolMessage it returned."""
    if isinstance(params, dict) and isinstance(params.get("tool_call_id"), str):
        return params["tool_call_id"]
    message = read_tool_result(outputs).message
    return message.tool_call_id if message is not None else None


def read_documents(outputs: Any) -> tuple[Document, ...]:
    """A retriever span's documents (``{"documents": [Document, ...]}``)."""
    docs = outputs.get("documents") if isinstance(outputs, dict) else None
    try:
        return _documents(docs) if isinstance(docs, list) else ()
    except Exception:  # odd data: none read
        return ()


def _role(raw: str) -> str:
    text = raw[: -len(_CHUNK_SUFFIX)].lower() if raw.endswith(_CHUNK_SUFFIX) else raw.lower()
    return _ROLES.get(text, text)


def read_message(item: Any) -> Message | None:
    """One stored message (a dict with type/role and content, or a ``[role, text]`` pair),
    or None if ``item`` is not one."""
    try:
        return _message(item)
    except Exception:  # odd data: not a message
        return None


def _message(item: Any) -> Message | None:
    if isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
        if item[0].lower() in _ROLES:  # ("human", "hi") as given to an agent
            return Message(_ROLES[item[0].lower()], item[1], content=item[1])
        return None
    if not isinstance(item, dict) or "content" not in item:
        return None
    raw = item.get("type") if isinstance(item.get("type"), str) else item.get("role")
    if not isinstance(raw, str):
        return None
    role = _role(raw)
    if role == "chat" and isinstance(item.get("role"), str):
        role = _role(item["role"])
    elif role not in _ROLES.values() and not raw.endswith(_CHUNK_SUFFIX):
        return None
    calls = tuple(_tool_calls(item))
    name = item.get("name") if isinstance(item.get("name"), str) else None
    call_id = item.get("tool_call_id") if isinstance(item.get("tool_call_id"), str) else None
    status = item.get("status") if role == "tool" and isinstance(item.get("status"), str) else None
    content = item["content"]
    return Message(
        role,
        _content_text(content),
        name,
        calls,
        call_id,
        status,
        content,
        _finish_reason(item.get("response_metadata")),
        _response_id(item),
    )


def _messages(value: Any) -> tuple[Message, ...]:
    """A list in which every item is a message, as messages; else ``()``."""
    if not isinstance(value, list) or not value:
        return ()
    out = []
    for item in value:
        message = _message(item)
        if message is None:
            return ()
        out.append(message)
    return tuple(out)


def _tool_calls(item: dict[str, Any]) -> list[ToolCall]:
    """A serialized AI message's tool calls: ``tool_calls`` and ``invalid_tool_calls``
    (LangChain's parse), else the provider's raw ``additional_kwargs["tool_calls"]``."""
    calls = []
    for call in item.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            calls.append(ToolCall(call["name"], call.get("args"), _str(call.get("id"))))
    for call in item.get("invalid_tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            error = _str(call.get("error")) or "invalid tool call"
            calls.append(ToolCall(call["name"], call.get("args"), _str(call.get("id")), error))
    if calls:
        return calls
    extra = item.get("additional_kwargs") or {}
    for call in extra.get("tool_calls") or [] if isinstance(extra, dict) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            args = function.get("arguments")
            with contextlib.suppress(ValueError):
                args = json.loads(args) if isinstance(args, str) else args
            calls.append(ToolCall(function["name"], args, _str(call.get("id"))))
    return calls


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def content_blocks(content: Any) -> tuple[Block, ...]:
    """Message content (text, or a list of text and block dicts) as `Block` s; tool call
    blocks are left out (they are also the message's ``tool_calls``)."""
    if content is None or content == "":
        return ()
    if isinstance(content, str):
        return (Block("text", content),)
    if not isinstance(content, list):
        return (Block("text", json.dumps(content, ensure_ascii=False, default=str)),)
    blocks = []
    for block in content:
        if isinstance(block, str):
            blocks.append(Block("text", block))
        elif isinstance(block, dict):
            kind = block.get("type")
            kind = kind if isinstance(kind, str) else ""
            if kind not in TOOL_CALL_BLOCKS:
                blocks.append(Block(kind, _str(block.get("text")), block))
    return tuple(blocks)


def _content_text(content: Any) -> str:
    """Message content as text: content blocks joined, non-text blocks named."""
    if isinstance(content, str):
        return content
    pieces = [
        b.text if b.text is not None else f"[{b.type or 'block'}]" for b in content_blocks(content)
    ]
    return "\n".join(pieces)


def _documents(items: Sequence[Any]) -> tuple[Document, ...]:
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(Document(_content_text(item)))
            continue
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        text = item.get("page_content", item.get("content", ""))
        ident = item.get("id") or metadata.get("id")
        score = next((metadata[k] for k in ("score", "relevance_score") if k in metadata), None)
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            score = None
        out.append(
            Document(
                _content_text(text),
                metadata,
                None if ident is None else str(ident),
                None if score is None else float(score),
            )
        )
    return tuple(out)


# -- one-line previews ----------------------------------------------------------------------


def compact(value: Any) -> str:
    """A value as one line of JSON (strings as they are)."""
    if isinstance(value, str):
        return " ".join(value.split())
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)


def call_text(call: ToolCall) -> str:
    """``add(a=1, b=2)``: a tool call on one line."""
    if isinstance(call.args, dict):
        args = ", ".join(
            f"{k}={compact(v) if not isinstance(v, str) else repr(v)}" for k, v in call.args.items()
        )
    else:
        args = "" if call.args is None else compact(call.args)
    return f"{call.name}({args})"


def message_text(message: Message) -> str:
    """``ai: text → add(a=1)``: one message on one line."""
    text = " ".join(message.text.split())
    if message.tool_calls:
        calls = ", ".join(call_text(c) for c in message.tool_calls)
        text = f"{text} → {calls}" if text else f"→ {calls}"
    who = message.role if message.name is None or message.role != "tool" else f"tool {message.name}"
    return f"{who}: {text}"


def preview(parts: Sequence[Part], side: str = "in") -> str:
    """The gist of a payload on one line: the last message of an input conversation (the
    one the model answers), the answer or tool calls of an output, a tool call, the first
    document, the variables..."""
    if not parts:
        return ""
    part = next((p for p in parts if p.kind != "value"), parts[0])
    if part.kind == "messages" and part.messages:
        if side == "in" or part.label != "generations":
            message = part.messages[-1]
            more = len(part.messages) - 1
            return message_text(message) + (f"  (+{more} earlier)" if more else "")
        return " | ".join(message_text(m) for m in part.messages)
    if part.kind == "documents":
        first = " ".join(part.documents[0].content.split()) if part.documents else ""
        return f"{len(part.documents)} documents: {first}"
    if part.kind == "tool_call" and part.tool_call is not None:
        return call_text(part.tool_call)
    if part.kind == "variables" and isinstance(part.value, dict):
        return ", ".join(f"{k}={compact(v)}" for k, v in part.value.items())
    if part.kind == "text":
        return compact(part.text or "")
    return compact(part.value)


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
