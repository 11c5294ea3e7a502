"""Model name, provider and token usage from what LangChain hands a callback handler.

Pure functions, called on the callback thread: no I/O, no locks, never raise (a field
that cannot be read is ``None``), plain values out.

Where LangChain puts token usage, and what this module reads (first match wins, so one
response is never counted twice from two places):

1. ``AIMessage.usage_metadata`` on each chat generation (the standard since
   langchain-core 0.2; input/output/total plus ``input_token_details`` ``cache_read`` /
   ``cache_creation`` / ``audio`` and ``output_token_details`` ``reasoning`` / ``audio``).
2. ``LLMResult.llm_output["token_usage"]`` or ``["usage"]`` (legacy ``BaseLLM`` models and
   older chat integrations), in OpenAI naming (``prompt_tokens``, ``completion_tokens``,
   ``prompt_tokens_details.cached_tokens`` ...), OpenAI Responses / Anthropic naming
   (``input_tokens``, ``cache_read_input_tokens`` ...), Bedrock (``inputTokens`` ...),
   Gemini (``prompt_token_count`` ...) or Ollama (``prompt_eval_count``, ``eval_count``).
3. The same keys in a generation's ``generation_info`` / message ``response_metadata``.
   Chat models copy ``llm_output`` into ``response_metadata`` of a single generation, which
   is why this is only a fallback and never added to 2.

Semantics of the fields (`lc_observe.records.TOKEN_FIELDS`): ``input_tokens`` counts every
input token, cached ones included; ``cached_tokens`` (cache reads) and
``cache_creation_tokens`` (cache writes) are parts of it; ``reasoning_tokens`` is part of
``output_tokens``; ``total_tokens`` is the reported total, else input + output.  Raw
Anthropic / Bedrock usage, whose ``input_tokens`` leaves cache reads and writes out, is
converted to that convention.  ``cache_creation_tokens`` counts every token written
whatever its TTL; the part written with Anthropic's 1-hour TTL is also returned as
``cache_creation_1h_tokens``, priced apart (`PRICE_DETAIL_FIELDS`).  OpenAI's flex and
priority calls rename their detail keys (`SERVICE_TIERS`); both spellings are read and the
tier is returned as ``service_tier``.

Time to first token.  `carries_content` tells a streamed chunk with output (text,
reasoning, a tool call) from the framing events streams open with; the handler times TTFT
at the first one.

Batches.  One ``on_llm_end`` sees one prompt's generations for chat models.  A generation
list with several candidates (``n > 1``) that all repeat the same usage is one request
whose usage OpenAI-style integrations copy onto every choice: it is counted once.  Different
usages, and separate prompts (the outer list), are summed.  Legacy ``BaseLLM`` batches
report one ``llm_output`` for the whole batch; LangChain's ``LLMResult.flatten`` gives it to
the first prompt's run and an empty ``token_usage`` to the others, so the batch total is
right but sits on the first run.

Streaming.  After ``.stream()`` / ``.astream()`` (or ``invoke`` of a model that streams
internally) ``on_llm_end`` receives ``LLMResult(generations=[[chunk]], llm_output=None)``
where ``chunk`` merges every streamed chunk.  Its ``usage_metadata`` is LangChain's
``add_usage`` over the chunks, a plain key-by-key *sum*.  That is correct when chunks carry
deltas, as the integrations try to (OpenAI and current langchain-anthropic: all usage on a
final chunk; older langchain-anthropic: input on the first chunk, output on the last;
langchain-google-genai: Gemini's running counts converted to deltas), and
``usage_from_result`` reads the merged message once.  Chunks that restate running totals
are summed by LangChain's merge itself (e.g. Anthropic's ``message_delta`` repeats the
cumulative cache counts of ``message_start``: langchainjs issue 10249; OpenAI-compatible
servers that send usage on every chunk), and ``on_llm_end`` cannot see it.  Feed each chunk
to `observe_chunk` from ``on_llm_new_token`` and pass the result as ``stream_usage``: when
one non-zero prompt-side count (input, cache read, cache write) is reported by two chunks
(a prompt is processed once per call, so a repeat can only be a restatement), the largest
value of each count across chunks replaces the merged sum.

>>> fields = usage_from_result(llm_result)                           # doctest: +SKIP
>>> fields["input_tokens"], fields["cached_tokens"], fields.get("model")  # doctest: +SKIP
(1200, 1024, 'gpt-4o-2024-08-06')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lc_observe.records import TOKEN_FIELDS

__all__ = [
    "AUDIO_FIELDS",
    "PRICE_DETAIL_FIELDS",
    "carries_content",
    "is_cache_hit",
    "model_and_provider",
    "observe_chunk",
    "usage_from_result",
]

#: Extra keys `usage_from_result` adds, only when reported and non-zero: audio tokens are
#: part of input/output tokens but priced differently.  Pass them on to
#: `lc_observe.capture.pricing.PriceTable.cost`; they are not span columns.
AUDIO_FIELDS: tuple[str, ...] = ("input_audio_tokens", "output_audio_tokens")
#: Every extra count `usage_from_result` may add for pricing (not span columns): the audio
#: counts, and ``cache_creation_1h_tokens``, the part of ``cache_creation_tokens`` written
#: with Anthropic's 1-hour TTL (the rest is the 5-minute TTL; both are in the total).
PRICE_DETAIL_FIELDS: tuple[str, ...] = (*AUDIO_FIELDS, "cache_creation_1h_tokens")
#: Service tiers billed at their own prices, as LangChain's OpenAI integration names them
#: (``input_token_details`` then has a ``"flex"`` / ``"priority"`` count and its cache and
#: reasoning keys get the tier as a prefix: ``flex_cache_read``, ``priority_reasoning``).
SERVICE_TIERS: tuple[str, ...] = ("flex", "priority")

_COUNT_FIELDS: tuple[str, ...] = (*TOKEN_FIELDS, *PRICE_DETAIL_FIELDS)
#: Counts about the prompt, processed once per call: a chunk repeating one restates totals.
_PROMPT_FIELDS = ("input_tokens", "cached_tokens", "cache_creation_tokens")
_MODEL_KEYS = ("model_name", "model", "model_id")
_PARAM_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "repo_id")
_USAGE_KEYS = ("token_usage", "usage", "usage_metadata")


# -- model and provider ------------------------------------------------------------------------


def model_and_provider(
    serialized: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """The model name and provider a model run was started with (``None`` when unknown).

    Sources, best first: the ``ls_model_name`` / ``ls_provider`` metadata every LangChain
    model adds for tracing; the invocation params (``model``, ``model_name``, ``model_id``,
    ``deployment_name``; provider from ``_type`` such as ``"openai-chat"``); the serialized
    constructor kwargs.  The provider is LangChain's own id (``openai``, ``anthropic``,
    ``google_genai``, ``bedrock`` ...); a model class that does not set one gets its
    lowercased class name from LangChain, which is kept as is.

    >>> model_and_provider({}, {"ls_model_name": "gpt-4o", "ls_provider": "openai"}, {})
    ('gpt-4o', 'openai')
    >>> model_and_provider(None, None, {"model_name": "claude-3-5-haiku", "_type": "anthropic"})
    ('claude-3-5-haiku', 'anthropic')
    """
    try:
        meta = metadata if isinstance(metadata, Mapping) else {}
        params = invocation_params if isinstance(invocation_params, Mapping) else {}
        model = _text(meta.get("ls_model_name")) or _first_text(params, _PARAM_MODEL_KEYS)
        if model is None and isinstance(serialized, Mapping):
            kwargs = serialized.get("kwargs")
            if isinstance(kwargs, Mapping):
                model = _first_text(kwargs, _PARAM_MODEL_KEYS)
        provider = _text(meta.get("ls_provider")) or _provider_from_type(params.get("_type"))
        return model, provider
    except Exception:
        return None, None


def _provider_from_type(llm_type: Any) -> str | None:
    """``"openai-chat"`` -> ``"openai"``, ``"azure-openai-chat"`` -> ``"azure"``."""
    name = _text(llm_type)
    if name is None:
        return None
    name = name.lower().replace("_", "-")
    if name.startswith("azure"):
        return "azure"
    return name.removeprefix("chat-").removesuffix("-chat") or None


# -- usage -------------------------------------------------------------------------------------


#: Invocation parameters kept as a model span's request parameters (``params``): the ones
#: the GenAI semantic conventions name (``gen_ai.request.*``) under LangChain's spellings.
REQUEST_PARAM_KEYS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "stop_sequences",
    "seed",
    "n",
)


def request_params(invocation_params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The request parameters of a model call (`REQUEST_PARAM_KEYS` that are set), or None.

    >>> request_params({"model": "gpt-4o", "temperature": 0.2, "max_tokens": None, "n": 1})
    {'temperature': 0.2, 'n': 1}
    """
    if not isinstance(invocation_params, Mapping):
        return None
    found = {k: invocation_params[k] for k in REQUEST_PARAM_KEYS if k in invocation_params}
    params = {k: v for k, v in found.items() if v is not None}
    return params or None


def usage_from_result(
    response: Any, stream_usage: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Token counts (and the model, if named) from the ``LLMResult`` given to ``on_llm_end``.

    Returns a dict with every key of `TOKEN_FIELDS` (``int`` or ``None`` when not reported),
    ``"model"`` / ``"provider"`` when the response names them, `PRICE_DETAIL_FIELDS` keys
    when such tokens were reported, and ``"service_tier"`` (``"flex"`` / ``"priority"``)
    when the call was billed on one of the `SERVICE_TIERS`.  ``stream_usage`` is what
    `observe_chunk` collected from the streamed chunks of the same run, if anything (see
    the module docstring).

    >>> from langchain_core.messages import AIMessage
    >>> from langchain_core.outputs import ChatGeneration, LLMResult
    >>> msg = AIMessage("hi", usage_metadata={"input_tokens": 10, "output_tokens": 5,
    ...                                       "total_tokens": 15})
    >>> usage_from_result(LLMResult(generations=[[ChatGeneration(message=msg)]]))["total_tokens"]
    15
    """
    counts: dict[str, Any] = {}
    try:
        generations = _generation_lists(response)
        llm_output = getattr(response, "llm_output", None)
        counts = _counts_from_messages(generations)
        if not counts and isinstance(llm_output, Mapping):
            counts = _counts_from_mapping(llm_output)
        if not counts:
            counts = _counts_from_metadata(generations)
        if stream_usage and stream_usage.get("restated"):
            # Largest count of each kind; the total is recomputed, as input and output
            # may have peaked on different chunks.
            counts = {k: v for k, v in stream_usage["max"].items() if k != "total_tokens"}
        names = _names(llm_output, generations)
        tier = _service_tier(counts.pop("service_tier", None), llm_output, generations)
        if tier:
            names["service_tier"] = tier
    except Exception:
        names = {}
    out: dict[str, Any] = {field: counts.get(field) for field in TOKEN_FIELDS}
    if out["total_tokens"] is None and None not in (out["input_tokens"], out["output_tokens"]):
        out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    for field in PRICE_DETAIL_FIELDS:
        if counts.get(field):
            out[field] = counts[field]
    out.update(names)
    return out


def is_cache_hit(response: Any) -> bool:
    """True when LangChain's LLM cache answered a chat model call.

    On a hit, ``BaseChatModel`` returns the cached generations with ``"total_cost": 0``
    added to each message's ``usage_metadata`` (no provider reports that key) and no
    ``llm_output``.  A cached legacy ``BaseLLM`` prompt makes no callback at all.
    """
    try:
        if getattr(response, "llm_output", None) is not None:
            return False
        generations = _generation_lists(response)
        messages = [getattr(g, "message", None) for gens in generations for g in gens]
        usages = [getattr(m, "usage_metadata", None) for m in messages]
        return bool(usages) and all(
            isinstance(u, Mapping) and u.get("total_cost") == 0 for u in usages
        )
    except Exception:
        return False


def observe_chunk(state: dict[str, Any] | None, chunk: Any) -> dict[str, Any] | None:
    """Fold one streamed chunk's usage into ``state``; call from ``on_llm_new_token``.

    ``chunk`` is the ``chunk`` keyword of ``on_llm_new_token`` (a ``ChatGenerationChunk``).
    Cheap when the chunk carries no usage (one attribute read, ``state`` returned as is).
    Pass the final state to `usage_from_result` as ``stream_usage``.

    >>> state = None
    >>> for chunk in chunks:                 # doctest: +SKIP
    ...     state = observe_chunk(state, chunk)
    """
    try:
        usage = getattr(getattr(chunk, "message", None), "usage_metadata", None)
        if not usage:
            return state
        counts = _counts_from_usage_metadata(usage)
        if state is None:
            state = {"prompt": {}, "restated": False, "max": {}}
        seen = state["prompt"]
        for field in _PROMPT_FIELDS:
            value = counts.get(field)
            if value:
                if seen.get(field) == value:
                    state["restated"] = True
                seen.setdefault(field, value)
        top = state["max"]
        for field, value in counts.items():
            if value is not None and (top.get(field) is None or value > top[field]):
                top[field] = value
        return state
    except Exception:
        return state


#: Keys of a content block whose non-empty string is model output (text, thinking,
#: reasoning, streamed tool arguments, a refusal, redacted thinking's data).
_BLOCK_TEXT_KEYS = ("text", "thinking", "reasoning", "partial_json", "arguments", "refusal", "data")
#: ``additional_kwargs`` keys some OpenAI-compatible integrations stream reasoning under.
_REASONING_KWARGS = ("reasoning_content", "reasoning")


def carries_content(token: Any, chunk: Any) -> bool:
    """True when a streamed chunk carries model output: the first one times TTFT.

    ``token`` and ``chunk`` are ``on_llm_new_token``'s arguments.  Output is a non-empty
    ``token``, or a chunk message with text, reasoning / thinking, or a tool call (a
    tool-call chunk with a name or arguments).  Framing events carry none of these:
    Anthropic's ``message_start``, the Responses API's ``response.created`` and empty
    ``output_item.added`` / ``summary_part.added`` blocks, Chat Completions' role-only
    first chunk and usage-only last chunk.  Attribute reads only: it runs per token on the
    application's thread.  Never raises.
    """
    try:
        if isinstance(token, str) and token:
            return True
        message = getattr(chunk, "message", None)
        if message is None:
            text = getattr(chunk, "text", None)
            return isinstance(text, str) and bool(text)
        content = getattr(message, "content", None)
        if isinstance(content, str):
            if content:
                return True
        elif isinstance(content, list):
            for block in content:
                if _block_carries_content(block):
                    return True
        for call in getattr(message, "tool_call_chunks", None) or ():
            if isinstance(call, Mapping) and (call.get("name") or call.get("args")):
                return True
        kwargs = getattr(message, "additional_kwargs", None)
        if kwargs:
            for key in _REASONING_KWARGS:
                if kwargs.get(key):
                    return True
        return False
    except Exception:
        return False


def _block_carries_content(block: Any) -> bool:
    if isinstance(block, str):
        return bool(block)
    if not isinstance(block, Mapping):
        return False
    for key in _BLOCK_TEXT_KEYS:
        value = block.get(key)
        if isinstance(value, str) and value:
            return True
    summary = block.get("summary")  # Responses API reasoning summary parts
    if isinstance(summary, list):
        return any(isinstance(part, Mapping) and part.get("text") for part in summary)
    return False


def _generation_lists(response: Any) -> list[list[Any]]:
    generations = getattr(response, "generations", None)
    if not isinstance(generations, list):
        return []
    return [g if isinstance(g, list) else [g] for g in generations]


def _counts_from_messages(generations: list[list[Any]]) -> dict[str, Any]:
    """Sum ``usage_metadata`` over prompts; within one prompt, count a repeated usage once."""
    total: dict[str, Any] = {}
    for candidates in generations:
        seen: list[Any] = []
        for generation in candidates:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage and usage not in seen:
                seen.append(usage)
                _add(total, _counts_from_usage_metadata(usage))
    return total


def _counts_from_metadata(generations: list[list[Any]]) -> dict[str, Any]:
    """Usage found in ``generation_info`` or ``response_metadata`` (fallback)."""
    total: dict[str, Any] = {}
    for candidates in generations:
        seen: list[dict[str, Any]] = []
        for generation in candidates:
            for source in (
                getattr(getattr(generation, "message", None), "response_metadata", None),
                getattr(generation, "generation_info", None),
            ):
                counts = _counts_from_mapping(source) if isinstance(source, Mapping) else {}
                if counts:
                    if counts not in seen:
                        seen.append(counts)
                        _add(total, counts)
                    break
    return total


def _counts_from_usage_metadata(usage: Mapping[str, Any]) -> dict[str, Any]:
    """LangChain's ``UsageMetadata`` -> our field names.

    Cache writes: langchain-anthropic reports Anthropic's per-TTL breakdown as
    ``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens`` and then sets
    ``cache_creation`` to 0 (so that a sum of the keys counts each token once); an
    integration may also report the total beside the parts.  The cache-write total is the
    larger of ``cache_creation`` and the sum of the parts.  Service tiers: see
    `SERVICE_TIERS`.
    """
    inp = _mapping(usage.get("input_token_details"))
    out = _mapping(usage.get("output_token_details"))
    tier = next((t for t in SERVICE_TIERS if t in inp or t in out), None)
    one_hour = _int(inp.get("ephemeral_1h_input_tokens"))
    by_ttl = _sum(_int(inp.get("ephemeral_5m_input_tokens")), one_hour)
    creation = _int(_detail(inp, "cache_creation", tier))
    if by_ttl is not None and (creation is None or by_ttl > creation):
        creation = by_ttl
    counts = {
        "input_tokens": _int(usage.get("input_tokens")),
        "output_tokens": _int(usage.get("output_tokens")),
        "total_tokens": _int(usage.get("total_tokens")),
        "cached_tokens": _int(_detail(inp, "cache_read", tier)),
        "cache_creation_tokens": creation,
        "reasoning_tokens": _int(_detail(out, "reasoning", tier)),
        "input_audio_tokens": _int(inp.get("audio")),
        "output_audio_tokens": _int(out.get("audio")),
        "cache_creation_1h_tokens": one_hour,
    }
    if tier is not None:
        counts["service_tier"] = tier
    return counts


def _detail(details: Mapping[str, Any], key: str, tier: str | None) -> Any:
    """``details[key]``, else its service-tier spelling (``flex_cache_read``)."""
    value = details.get(key)
    if value is None and tier is not None:
        value = details.get(f"{tier}_{key}")
    return value


def _service_tier(from_usage: Any, llm_output: Any, generations: list[list[Any]]) -> str | None:
    """The `SERVICE_TIERS` entry a call was billed on (usage keys, else response metadata)."""
    if from_usage in SERVICE_TIERS:
        return from_usage
    sources: list[Any] = [llm_output]
    for candidates in generations[:1]:
        for generation in candidates[:1]:
            sources.append(getattr(getattr(generation, "message", None), "response_metadata", None))
            sources.append(getattr(generation, "generation_info", None))
    for source in sources:
        if isinstance(source, Mapping):
            tier = source.get("service_tier")
            if isinstance(tier, str):
                # Streamed metadata strings are concatenated ("flexflex").
                tier = _undo_stream_concat(tier)
                return tier if tier in SERVICE_TIERS else None
    return None


def _counts_from_mapping(container: Mapping[str, Any]) -> dict[str, Any]:
    """Usage from ``llm_output`` / ``response_metadata``: a nested usage dict or Ollama keys."""
    for key in _USAGE_KEYS:
        usage = container.get(key)
        if isinstance(usage, Mapping) and usage:
            counts = _counts_from_raw(usage)
            if counts:
                return counts
    return _counts_from_raw(container) if "prompt_eval_count" in container else {}


def _counts_from_raw(u: Mapping[str, Any]) -> dict[str, Any]:
    """One provider-shaped usage dict -> our fields (empty when nothing is recognised)."""
    if "input_token_details" in u or "output_token_details" in u:
        return _counts_from_usage_metadata(u)
    if "prompt_tokens" in u or "completion_tokens" in u:  # OpenAI chat completions
        return _clean(
            input_tokens=_num(u, "prompt_tokens"),
            output_tokens=_num(u, "completion_tokens"),
            total_tokens=_num(u, "total_tokens"),
            cached_tokens=_num(u, "prompt_tokens_details", "cached_tokens"),
            cache_creation_tokens=_num(u, "prompt_tokens_details", "cache_write_tokens"),
            reasoning_tokens=_num(u, "completion_tokens_details", "reasoning_tokens"),
            input_audio_tokens=_num(u, "prompt_tokens_details", "audio_tokens"),
            output_audio_tokens=_num(u, "completion_tokens_details", "audio_tokens"),
        )
    if "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u:  # Anthropic
        read, write = _num(u, "cache_read_input_tokens"), _num(u, "cache_creation_input_tokens")
        return _clean(
            input_tokens=_sum(_num(u, "input_tokens"), read, write),
            output_tokens=_num(u, "output_tokens"),
            cached_tokens=read,
            cache_creation_tokens=write,
            cache_creation_1h_tokens=_num(u, "cache_creation", "ephemeral_1h_input_tokens"),
        )
    if "input_tokens" in u or "output_tokens" in u:  # OpenAI Responses; Anthropic, no cache
        return _clean(
            input_tokens=_num(u, "input_tokens"),
            output_tokens=_num(u, "output_tokens"),
            total_tokens=_num(u, "total_tokens"),
            cached_tokens=_num(u, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_num(u, "output_tokens_details", "reasoning_tokens"),
        )
    if "inputTokens" in u or "outputTokens" in u:  # Bedrock Converse
        return _bedrock(u)
    if "prompt_token_count" in u or "candidates_token_count" in u:  # Gemini
        thoughts = _num(u, "thoughts_token_count")
        return _clean(
            input_tokens=_num(u, "prompt_token_count"),
            output_tokens=_sum(_num(u, "candidates_token_count"), thoughts),
            total_tokens=_num(u, "total_token_count"),
            cached_tokens=_num(u, "cached_content_token_count"),
            reasoning_tokens=thoughts,
        )
    if "prompt_eval_count" in u or "eval_count" in u:  # Ollama
        return _clean(
            input_tokens=_num(u, "prompt_eval_count"), output_tokens=_num(u, "eval_count")
        )
    return {}


def _bedrock(u: Mapping[str, Any]) -> dict[str, Any]:
    """Bedrock's ``inputTokens`` leaves cache reads/writes out when ``totalTokens`` adds them."""
    inp, out, total = _num(u, "inputTokens"), _num(u, "outputTokens"), _num(u, "totalTokens")
    read, write = _num(u, "cacheReadInputTokens"), _num(u, "cacheWriteInputTokens")
    cache = (read or 0) + (write or 0)
    if cache and inp is not None and not (total is not None and total == inp + (out or 0)):
        inp += cache
    return _clean(
        input_tokens=inp,
        output_tokens=out,
        total_tokens=total,
        cached_tokens=read,
        cache_creation_tokens=write,
    )


def _names(llm_output: Any, generations: list[list[Any]]) -> dict[str, str]:
    """``model`` / ``provider`` as the response names them (the model actually served)."""
    sources: list[Mapping[str, Any]] = []
    if isinstance(llm_output, Mapping):
        sources.append(llm_output)
    for candidates in generations[:1]:
        for generation in candidates[:1]:
            meta = getattr(getattr(generation, "message", None), "response_metadata", None)
            info = getattr(generation, "generation_info", None)
            sources.extend(m for m in (meta, info) if isinstance(m, Mapping))
    found: dict[str, str] = {}
    for source in sources:
        if "model" not in found:
            model = _first_text(source, _MODEL_KEYS)
            if model:
                found["model"] = _undo_stream_concat(model)
        if "provider" not in found:
            provider = _text(source.get("model_provider"))
            if provider:
                found["provider"] = _undo_stream_concat(provider)
    return found


def _undo_stream_concat(name: str) -> str:
    """``"gpt-4ogpt-4o"`` -> ``"gpt-4o"``.

    Merging streamed chunks concatenates string metadata, so a model name sent on every
    chunk comes out repeated.  A name made of two or more copies of one string of at least
    three characters is reduced to one copy.
    """
    period = (name + name).find(name, 1)  # smallest period; len(name) when not periodic
    return name[:period] if 3 <= period < len(name) else name


# -- small helpers -----------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _num(source: Mapping[str, Any], *path: str) -> int | None:
    """The int at ``source[path[0]][path[1]]...``, or None."""
    value: Any = source
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return _int(value)


def _sum(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _add(total: dict[str, Any], counts: Mapping[str, Any]) -> None:
    for field in _COUNT_FIELDS:
        value = counts.get(field)
        if value is not None:
            total[field] = (total.get(field) or 0) + value
    if "service_tier" in counts:
        total["service_tier"] = counts["service_tier"]


def _clean(**counts: int | None) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if v is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _first_text(source: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = _text(source.get(key))
        if value:
            return value
    return None
