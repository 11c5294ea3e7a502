"""What an evaluator looks at: a stored trace as question, answer, documents and reference.

`Case.load` reads a trace back from a `TraceStore` and extracts the text an evaluator needs
from the root run's inputs and outputs and from the retriever spans, whatever shape
LangChain stored them in (a string, a state dict, chat messages, an ``LLMResult``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import Span, Trace

if TYPE_CHECKING:
    from lc_observe.storage.store import TraceStore

#: The tag of an LLM judge's own runs: excluded from statistics, comparisons and judging.
JUDGE_TAG = "lc_observe:judge"

_ANSWER_KEYS = ("answer", "output", "result", "response", "final_answer", "text", "content")
_QUESTION_KEYS = ("question", "input", "query", "q", "prompt", "user_input")
_REFERENCE_KEYS = ("reference", "expected", "expected_answer", "ground_truth")

#: Where a reference answer comes from: a mapping trace id -> text, or a function of the case.
References = Mapping[str, str] | Callable[["Case"], "str | None"]


def text_of(value: Any, keys: tuple[str, ...] = _ANSWER_KEYS, *, role: str = "ai") -> str | None:
    """The text in a stored payload: a string, the first of ``keys`` in a dict, the last
    message of ``role`` in a message list, or an ``LLMResult``'s first generation.

    >>> text_of({"question": "q", "answer": "42"})
    '42'
    >>> text_of({"messages": [{"type": "human", "content": "hi"}, {"type": "ai", "content": "yo"}]})
    'yo'
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, list):
        messages = [m for m in value if isinstance(m, dict) and "content" in m]
        if messages:
            wanted = [m for m in messages if m.get("type") == role] or messages
            return text_of(wanted[-1]["content"], keys, role=role)
        for item in reversed(value):
            text = text_of(item, keys, role=role)
            if text:
                return text
        return None
    if isinstance(value, dict):
        if "generations" in value:  # an LLMResult (a model span's output)
            try:
                return str(value["generations"][0][0]["text"])
            except (LookupError, TypeError):
                pass
        if "type" in value and "content" in value:  # one message
            content = value["content"]
            if isinstance(content, list):  # content blocks
                parts = [b.get("text", "") for b in content if isinstance(b, dict)]
                return "".join(parts) or None
            return text_of(content, keys, role=role)
        for key in keys:
            if value.get(key) not in (None, "", []):
                return text_of(value[key], keys, role=role)
        if "messages" in value:
            return text_of(value["messages"], keys, role=role)
        if len(value) == 1:
            return text_of(next(iter(value.values())), keys, role=role)
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _documents(spans: list[Span]) -> list[str]:
    docs: list[str] = []
    for span in spans:
        if span.kind != "retriever" or not isinstance(span.outputs, dict):
            continue
        for doc in span.outputs.get("documents") or []:
            if isinstance(doc, dict):
                text = doc.get("page_content") or doc.get("kwargs", {}).get("page_content")
                docs.append(str(text if text is not None else doc))
            else:
                docs.append(str(doc))
    return docs


@dataclass
class Case:
    """One stored trace as an evaluator sees it.

    Attributes:
        trace: the trace (totals: latency, tokens, cost, status).
        spans: its spans in start order.
        question: the text of the root run's input (None when there is none).
        answer: the text of the root run's output.
        documents: page contents returned by the trace's retrievers, in order.
        reference: the expected answer, when one is known (see ``references``).
    """

    trace: Trace
    spans: list[Span] = field(default_factory=list)
    question: str | None = None
    answer: str | None = None
    documents: list[str] = field(default_factory=list)
    reference: str | None = None

    @property
    def trace_id(self) -> str:
        return self.trace.trace_id

    @classmethod
    def load(
        cls,
        store: TraceStore,
        trace: Trace | str,
        *,
        references: References | None = None,
        answer_key: str | None = None,
        question_key: str | None = None,
    ) -> Case:
        """Read trace ``trace`` (an id or a `Trace`) from ``store`` as a case.

        ``answer_key`` / ``question_key`` pick the field of the root output / input to use
        (default: the first of ``answer``, ``output``, ``result`` ... / ``question``,
        ``input``, ``query`` ...).  A reference comes from ``references`` (a mapping trace
        id -> text, or a function of the case), else from the trace's metadata
        (``reference``, ``expected``, ``expected_answer`` or ``ground_truth``).
        """
        if isinstance(trace, str):
            trace = store.trace(trace)
        spans = list(store.spans(trace_id=trace.trace_id))
        root = next((s for s in spans if s.parent_id is None), None)
        answers = (answer_key,) if answer_key else _ANSWER_KEYS
        questions = (question_key,) if question_key else _QUESTION_KEYS
        case = cls(
            trace=trace,
            spans=spans,
            question=text_of(root.inputs, questions, role="human") if root else None,
            answer=text_of(root.outputs, answers) if root else None,
            documents=_documents(spans),
        )
        if callable(references):
            case.reference = references(case)
        elif references is not None:
            case.reference = references.get(trace.trace_id)
        if case.reference is None:
            for key in _REFERENCE_KEYS:
                if trace.metadata.get(key) is not None:
                    case.reference = str(trace.metadata[key])
                    break
        return case


def is_judge_trace(trace: Trace) -> bool:
    """True for an LLM judge's own trace (tagged `JUDGE_TAG`)."""
    return JUDGE_TAG in trace.tags


def select_traces(
    store: TraceStore,
    traces: Any = None,
    *,
    since: Any = None,
    limit: int | None = None,
) -> list[Trace]:
    """The traces to evaluate: ``traces`` (ids or `Trace` objects), or the newest stored
    finished traces (``since``, ``limit``); an LLM judge's own traces are left out."""
    if traces is None:
        chosen: list[Trace] = []
        offset = 0
        while True:
            page = store.traces(limit=500, offset=offset, since=since)
            offset += len(page)
            chosen.extend(t for t in page if not is_judge_trace(t) and t.status != "running")
            if len(page) < 500 or (limit is not None and len(chosen) >= limit):
                break
        return chosen if limit is None else chosen[:limit]
    if isinstance(traces, (str, Trace)):
        traces = [traces]
    return [store.trace(t) if isinstance(t, str) else t for t in traces]
