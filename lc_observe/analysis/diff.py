"""What differs between two traces: node path, routing decisions, per-span latency /
tokens / cost, outputs (`TraceStore.diff`).

Spans are matched by their position in the tree and their name: the roots with each
other, then, under two matched spans, the k-th child named N in one trace with the k-th
child named N in the other.  A span without a partner is listed as only in A or only in
B.  Routing decisions are matched by source node, routing function and occurrence.
Outputs are compared as stored, ignoring the per-run ids LangChain puts on messages.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model import BranchEvent, Span
from .cases import text_of

if TYPE_CHECKING:
    from lc_observe.storage.store import TraceStore

_OUTPUT_CHARS = 500
_RUN_ID_PREFIXES = ("lc_run--", "run-", "run_")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PathChange(_Frozen):
    """A stretch of the node path that differs (``difflib`` opcodes)."""

    op: Literal["replace", "delete", "insert"]
    a_index: int
    b_index: int
    a_nodes: list[str]
    b_nodes: list[str]


class BranchDifference(_Frozen):
    """A routing decision taken differently (or only in one trace)."""

    source: str | None
    condition: str | None
    occurrence: int = Field(description="1 for the first decision of this source/condition")
    a_result: Any = None
    b_result: Any = None
    a_destinations: list[str] | None = Field(None, description="None: not taken in A")
    b_destinations: list[str] | None = Field(None, description="None: not taken in B")


class SpanRef(_Frozen):
    """A span found in one trace only."""

    path: str
    name: str
    kind: str
    span_id: str
    status: str


class SpanDelta(_Frozen):
    """A span matched in both traces: its figures in A and B, and B - A."""

    path: str
    name: str
    kind: str
    a_span_id: str
    b_span_id: str
    a_status: str
    b_status: str
    a_latency_ms: float | None = None
    b_latency_ms: float | None = None
    latency_delta_ms: float | None = None
    a_tokens: int | None = None
    b_tokens: int | None = None
    tokens_delta: int | None = None
    a_cost_usd: float | None = None
    b_cost_usd: float | None = None
    cost_delta_usd: float | None = None
    output_differs: bool = False
    a_output: str | None = Field(None, description="the output's text, when it differs")
    b_output: str | None = None

    @property
    def depth(self) -> int:
        return self.path.count("/")


class TraceDiff(_Frozen):
    """`TraceStore.diff(a, b)`: everything that differs between two traces.

    ``spans`` lists every matched span in tree order (deltas are B - A); ``changed``
    only those whose status or output differs.
    """

    trace_a: str
    trace_b: str
    name_a: str
    name_b: str
    path_a: list[str]
    path_b: list[str]
    path_changes: list[PathChange]
    branch_differences: list[BranchDifference]
    spans: list[SpanDelta]
    only_in_a: list[SpanRef]
    only_in_b: list[SpanRef]

    @property
    def root(self) -> SpanDelta:
        """The two root spans (the traces' totals)."""
        return self.spans[0]

    @property
    def changed(self) -> list[SpanDelta]:
        """Matched spans whose status or output differs."""
        return [s for s in self.spans if s.output_differs or s.a_status != s.b_status]

    @property
    def identical(self) -> bool:
        """Same path, decisions, tree, statuses and outputs (timings may still differ)."""
        return not (
            self.path_changes
            or self.branch_differences
            or self.only_in_a
            or self.only_in_b
            or self.changed
        )

    def __str__(self) -> str:
        from ..views.evaluation import diff_text

        return diff_text(self)

    def __repr__(self) -> str:
        return (
            f"<TraceDiff {self.trace_a} vs {self.trace_b}: {len(self.path_changes)} path "
            f"changes, {len(self.branch_differences)} decisions, {len(self.changed)} changed "
            f"spans, {len(self.only_in_a)} only in A, {len(self.only_in_b)} only in B>"
        )

    def _repr_html_(self) -> str:
        from ..views.evaluation import diff_html

        return diff_html(self)


# -- matching ------------------------------------------------------------------------------


def _children(spans: Sequence[Span]) -> tuple[Span, dict[str | None, list[Span]]]:
    kids: dict[str | None, list[Span]] = {}
    ids = {s.span_id for s in spans}
    root = None
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        if parent is None and root is None:
            root = span
            continue
        kids.setdefault(parent if parent is not None else root.span_id, []).append(span)  # type: ignore[union-attr]
    assert root is not None
    return root, kids


def _keyed(children: list[Span]) -> list[tuple[tuple[str, int], Span]]:
    seen: dict[str, int] = {}
    out = []
    for child in children:
        k = seen.get(child.name, 0)
        seen[child.name] = k + 1
        out.append(((child.name, k), child))
    return out


def _label(name: str, k: int) -> str:
    return name if k == 0 else f"{name}[{k + 1}]"


def _normalized(value: Any) -> Any:
    """Outputs without LangChain's per-run message ids (they differ in every run)."""
    if isinstance(value, dict):
        return {
            k: _normalized(v)
            for k, v in value.items()
            if not (k == "id" and isinstance(v, str) and v.startswith(_RUN_ID_PREFIXES))
        }
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _output_text(value: Any) -> str:
    text = text_of(value)
    if text is None:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _OUTPUT_CHARS else text[:_OUTPUT_CHARS] + "…"


def _delta(a: Any, b: Any) -> Any:
    return None if a is None or b is None else b - a


def _span_delta(path: str, a: Span, b: Span) -> SpanDelta:
    differs = _normalized(a.outputs) != _normalized(b.outputs)
    return SpanDelta(
        path=path,
        name=a.name,
        kind=a.kind,
        a_span_id=a.span_id,
        b_span_id=b.span_id,
        a_status=a.status,
        b_status=b.status,
        a_latency_ms=a.latency_ms,
        b_latency_ms=b.latency_ms,
        latency_delta_ms=_delta(a.latency_ms, b.latency_ms),
        a_tokens=a.total_tokens,
        b_tokens=b.total_tokens,
        tokens_delta=_delta(a.total_tokens, b.total_tokens),
        a_cost_usd=a.cost_usd,
        b_cost_usd=b.cost_usd,
        cost_delta_usd=_delta(a.cost_usd, b.cost_usd),
        output_differs=differs,
        a_output=_output_text(a.outputs) if differs else None,
        b_output=_output_text(b.outputs) if differs else None,
    )


def _ref(path: str, span: Span) -> SpanRef:
    return SpanRef(
        path=path, name=span.name, kind=span.kind, span_id=span.span_id, status=span.status
    )


def _subtree(path: str, span: Span, kids: dict[str | None, list[Span]], out: list[SpanRef]) -> None:
    out.append(_ref(path, span))
    for (name, k), child in _keyed(kids.get(span.span_id, [])):
        _subtree(f"{path}/{_label(name, k)}", child, kids, out)


def match_spans(
    spans_a: Sequence[Span], spans_b: Sequence[Span]
) -> tuple[list[SpanDelta], list[SpanRef], list[SpanRef]]:
    """Matched spans (tree order), spans only in A, spans only in B."""
    root_a, kids_a = _children(spans_a)
    root_b, kids_b = _children(spans_b)
    matched: list[SpanDelta] = []
    only_a: list[SpanRef] = []
    only_b: list[SpanRef] = []

    def walk(path: str, a: Span, b: Span) -> None:
        matched.append(_span_delta(path, a, b))
        keyed_b = dict(_keyed(kids_b.get(b.span_id, [])))
        used = set()
        for key, child_a in _keyed(kids_a.get(a.span_id, [])):
            child_path = f"{path}/{_label(*key)}"
            child_b = keyed_b.get(key)
            if child_b is None:
                _subtree(child_path, child_a, kids_a, only_a)
            else:
                used.add(key)
                walk(child_path, child_a, child_b)
        for key, child_b in keyed_b.items():
            if key not in used:
                _subtree(f"{path}/{_label(*key)}", child_b, kids_b, only_b)

    walk(
        root_a.name if root_a.name == root_b.name else f"{root_a.name}|{root_b.name}",
        root_a,
        root_b,
    )
    return matched, only_a, only_b


def _branch_key_map(events: Sequence[BranchEvent]) -> dict[tuple[Any, Any, int], BranchEvent]:
    seen: dict[tuple[Any, Any], int] = {}
    out = {}
    for event in events:
        base = (event.source, event.condition)
        seen[base] = seen.get(base, 0) + 1
        out[(*base, seen[base])] = event
    return out


def branch_differences(
    a: Sequence[BranchEvent], b: Sequence[BranchEvent]
) -> list[BranchDifference]:
    """Decisions (by source, condition and occurrence) that differ or exist in one trace."""
    keyed_a, keyed_b = _branch_key_map(a), _branch_key_map(b)
    out = []
    for key in [*keyed_a, *(k for k in keyed_b if k not in keyed_a)]:
        ea, eb = keyed_a.get(key), keyed_b.get(key)
        same = (
            ea is not None
            and eb is not None
            and ea.result == eb.result
            and ea.destinations == eb.destinations
        )
        if not same:
            out.append(
                BranchDifference(
                    source=key[0],
                    condition=key[1],
                    occurrence=key[2],
                    a_result=ea.result if ea else None,
                    b_result=eb.result if eb else None,
                    a_destinations=list(ea.destinations) if ea else None,
                    b_destinations=list(eb.destinations) if eb else None,
                )
            )
    return out


def path_changes(a: Sequence[str], b: Sequence[str]) -> list[PathChange]:
    """Where two node paths differ."""
    matcher = difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    return [
        PathChange(op=op, a_index=i1, b_index=j1, a_nodes=list(a[i1:i2]), b_nodes=list(b[j1:j2]))
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
        if op != "equal"
    ]


def diff(store: TraceStore, trace_a: str, trace_b: str) -> TraceDiff:
    """Compare two stored traces (see the module docstring for how spans are matched).

    >>> d = store.diff(good_id, bad_id)          # doctest: +SKIP
    >>> print(d)                                 # path, decisions, spans, outputs  # doctest: +SKIP
    >>> d.branch_differences                     # doctest: +SKIP
    """
    from ..errors import TraceNotFoundError

    spans = {}
    for trace_id in (trace_a, trace_b):
        found = store.spans(trace_id=str(trace_id))
        if not found:
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in {store.db_path}")
        spans[trace_id] = list(found)
    matched, only_a, only_b = match_spans(spans[trace_a], spans[trace_b])
    path_a, path_b = store.path(trace_a), store.path(trace_b)
    return TraceDiff(
        trace_a=str(trace_a),
        trace_b=str(trace_b),
        name_a=matched[0].name,
        name_b=spans[trace_b][0].name,
        path_a=path_a,
        path_b=path_b,
        path_changes=path_changes(path_a, path_b),
        branch_differences=branch_differences(store.branches(trace_a), store.branches(trace_b)),
        spans=matched,
        only_in_a=only_a,
        only_in_b=only_b,
    )
