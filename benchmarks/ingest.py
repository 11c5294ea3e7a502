"""Write throughput of the SQLite sink next to a raw ``executemany`` floor.

What is measured: realistic span records (built with `lc_observe.records.new_span_record`,
filled like `ObsHandler` fills them for the benchmark agent: 20 spans per trace with LangChain
messages, documents, an ``LLMResult``, LangGraph metadata, usage fields; two branch events
per trace) are written in batches of 1, 10, 100, 1k and 10k records, each measurement into
a fresh database file.  Configurations, interleaved, medians over repeats:

- ``sink.export``: the privacy stage then `SQLiteSink.export(batch)`, as `ObsHandler` runs
  them (default limits, default redaction): serialization + redaction + SQL, one
  transaction per batch;
- ``sink.export (no redact)``: the same with ``redact=None``;
- ``sink SQL only``: the sink's own statements (multi-row ``INSERT``) on rows converted
  beforehand, in the sink's transaction;
- ``raw executemany``: the floor: the same precomputed rows (`span_row`, `trace_row`,
  `branch_row`) with one ``executemany`` per table in one ``BEGIN``/``COMMIT`` per batch;
- ``serialization only``: the privacy stage and the sink's row conversion (no database).

Target (issue 9): ``sink.export`` >= 0.7x the spans/s of ``raw executemany``.

    python benchmarks/ingest.py --quick            # < 60 s, for CI
    python benchmarks/ingest.py                    # full
    python benchmarks/ingest.py --records agent    # records a real ObsHandler captured from
                                                   # the overhead benchmark's agent
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from _common import median, print_table
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompt_values import ChatPromptValue

from lc_observe.pipeline.privacy import PrivacyStage
from lc_observe.pipeline.redact import make_redactor
from lc_observe.pipeline.serialize import Limits
from lc_observe.records import RECORD_BRANCH, RECORD_SPAN, new_span_record
from lc_observe.sinks.sqlite import SQLiteSink, branch_row, insert_rows, span_row, trace_row
from lc_observe.storage.schema import BRANCH_COLUMNS, SPAN_COLUMNS, TRACE_COLUMNS, configure

Item = tuple[str, dict[str, Any]]

# -- realistic records ---------------------------------------------------------------------------

_HISTORY = [
    SystemMessage("You are a travel budget assistant. Use the context.\n" + "context line. " * 30),
    HumanMessage("Hi! I am planning a trip and need some help with the budget."),
    AIMessage("Happy to help. Where are you going and for how long?"),
    HumanMessage("Lisbon, five nights in May, two people, mid-range hotel."),
    AIMessage("Great choice. I will look up typical prices and put a budget together."),
    HumanMessage("What will the hotel cost in total, and what should we budget for food?"),
]
_DOCS = [
    Document(
        page_content="LangGraph routes between nodes with conditional edges; a callback "
        "handler sees every run start and end. " * 3,
        metadata={"source": f"docs/page-{i}.md", "chunk": i},
        id=f"doc-{i}",
    )
    for i in range(3)
]
_ANSWER = (
    "Five nights at about 140 EUR is 700 EUR for the hotel. Budget 50 EUR a day per "
    "person for food, so 500 EUR for the two of you over five days."
)
_REPLY = AIMessage(
    _ANSWER,
    usage_metadata={"input_tokens": 412, "output_tokens": 38, "total_tokens": 450},
    response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
    id="run-reply",
)
_LLM_RESULT = LLMResult(
    generations=[[ChatGeneration(message=_REPLY, generation_info={"finish_reason": "stop"})]],
    llm_output={"model_name": "gpt-4o-mini-2024-07-18", "token_usage": {"total_tokens": 450}},
)
_CONTEXT = ["hotel night: 140 EUR x 5 = 700 EUR", *(doc.page_content for doc in _DOCS)]
_STATE = {
    "question": _HISTORY[-1].content,
    "history": [[m.type, m.content] for m in _HISTORY[1:-1]],
    "context": _CONTEXT,
}


def _template() -> list[tuple[str, str, int | None, str | None, Any, Any]]:
    """(name, kind, parent index, graph node, inputs, outputs) per span; 0 is the root."""
    spans: list[tuple[str, str, int | None, str | None, Any, Any]] = [
        ("bench_agent", "chain", None, None, _STATE, {**_STATE, "answer": _ANSWER, "turns": 2})
    ]

    def add(name: str, kind: str, parent: int, node: str | None, inputs: Any, outputs: Any) -> int:
        spans.append((name, kind, parent, node, inputs, outputs))
        return len(spans) - 1

    for turn in range(2):
        router = add("router", "chain", 0, "router", _STATE, {"turns": turn})
        add("route", "chain", router, "router", _STATE, {"output": "research"})
        if turn == 0:
            research = add("research", "chain", 0, "research", _STATE, {"context": _CONTEXT})
            add("price_lookup", "tool", research, "research", {"item": "hotel night"}, "700 EUR")
            add("KeywordRetriever", "retriever", research, "research", {"query": "hotel"}, _DOCS)
        answer = add("answer", "chain", 0, "answer", _STATE, {"answer": _ANSWER})
        seq = add("RunnableSequence", "chain", answer, "answer", _STATE, {"output": _ANSWER})
        prompt_value = ChatPromptValue(messages=_HISTORY)
        add("ChatPromptTemplate", "prompt", seq, "answer", _STATE, {"output": prompt_value})
        add("FakeListChatModel", "chat_model", seq, "answer", {"messages": [_HISTORY]}, None)
        add("StrOutputParser", "parser", seq, "answer", {"input": _REPLY}, {"output": _ANSWER})
        add("should_continue", "chain", answer, "answer", _STATE, {"output": "router"})
    return spans


def build_items(n_spans: int, start: float = 1.7e9) -> list[Item]:
    """``n_spans`` span records (20 per trace) plus two branch events per trace, in the order
    the handler submits them (children first, root last)."""
    template = _template()
    items: list[Item] = []
    trace_index = 0
    while sum(kind == RECORD_SPAN for kind, _ in items) < n_spans:
        t0 = start + trace_index * 2.0
        ids = [str(uuid.uuid4()) for _ in template]
        records = []
        for index, (name, kind, parent, node, inputs, outputs) in enumerate(template):
            step = None if node is None else 1 + index // 5
            metadata: dict[str, Any] = {"ls_integration": "langgraph", "user_id": "u-42"}
            tags: list[str] = []
            if node is not None:
                ns = f"{node}:{uuid.uuid4()}"
                metadata.update(
                    langgraph_step=step,
                    langgraph_node=node,
                    langgraph_triggers=(f"branch:to:{node}",),
                    langgraph_path=("__pregel_pull", node),
                    langgraph_checkpoint_ns=ns,
                    checkpoint_ns=ns,
                )
                tags.append(f"graph:step:{step}")
            record = new_span_record(
                ids[index],
                ids[0],
                None if parent is None else ids[parent],
                name,
                kind,
                t0 + index * 0.01,
                inputs,
                tags,
                metadata,
            )
            record.update(
                end_time=t0 + index * 0.01 + 0.005,
                latency_ms=5.0,
                status="ok",
                outputs=_LLM_RESULT if kind == "chat_model" else outputs,
                user_id="u-42",
                session_id="s-7",
                graph_node=node,
                graph_step=step,
                checkpoint_ns=metadata.get("langgraph_checkpoint_ns"),
                graph_name="bench_agent" if parent is None else None,
                span_count=1 if index else len(template),
            )
            if kind == "chat_model":
                record.update(
                    model="gpt-4o-mini",
                    provider="openai",
                    input_tokens=412,
                    output_tokens=38,
                    total_tokens=450,
                    cost_usd=8.46e-05,
                    ttft_ms=120.0,
                )
            records.append(record)
        for record in records[1:] + records[:1]:
            items.append((RECORD_SPAN, record))
        for step, (source, result) in enumerate((("router", "research"), ("answer", "router"))):
            branch = {
                "trace_id": ids[0],
                "span_id": ids[2 + step * 9],
                "source": source,
                "condition": "route" if source == "router" else "should_continue",
                "result": result,
                "destinations": [result],
                "kind": "conditional_edge",
                "step": 1 + step * 2,
                "checkpoint_ns": "",
                "time": t0 + step,
                "error": None,
            }
            items.append((RECORD_BRANCH, branch))
        trace_index += 1
    return items


def agent_items(n_spans: int) -> list[Item]:
    """Records captured from the benchmark agent (`_common.build_agent`) by a real
    `ObsHandler`, in the order it submitted them."""
    from _common import agent_input, build_agent

    from lc_observe import ObsHandler, Queue

    class Capture:
        def __init__(self) -> None:
            self.items: list[Item] = []

        def export(self, batch: Sequence[Item]) -> int:
            self.items.extend(batch)
            return len(batch)

        def close(self) -> None:
            pass

    capture, graph = Capture(), build_agent()
    handler = ObsHandler(None, sinks=[capture], queue=Queue(handle_sigterm=False))
    while _span_count(capture.items) < n_spans:
        for _ in range(50):
            graph.invoke(agent_input(), {"callbacks": [handler]})
        handler.flush()
    handler.close()
    return capture.items


# -- writers -------------------------------------------------------------------------------------


def _span_count(batch: Sequence[Item]) -> int:
    return sum(kind == RECORD_SPAN for kind, _ in batch)


class Workspace:
    """Fresh database files in a temporary directory."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self._n = 0

    def new_path(self) -> str:
        self._n += 1
        return os.path.join(self._dir.name, f"ingest-{self._n}.db")

    def new_sink(self, redact: bool) -> SQLiteSink:
        sink = SQLiteSink(self.new_path(), limits=Limits())
        if not sink.open():
            raise RuntimeError("could not open the sink's database")
        return sink

    def cleanup(self) -> None:
        self._dir.cleanup()


def _discard(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def stage(redact: bool) -> PrivacyStage:
    """The privacy stage `ObsHandler` runs before its sinks (default limits)."""
    return PrivacyStage(Limits(), make_redactor(redact))


def run_export(ws: Workspace, batches: list[list[Item]], redact: bool) -> float:
    sink = ws.new_sink(redact)
    public = stage(redact).batch
    start = time.perf_counter()
    for batch in batches:
        if sink.export(public(batch)) != len(batch):
            raise RuntimeError("the sink failed to write a batch")
    elapsed = time.perf_counter() - start
    sink.close()
    _discard(sink.path)
    return elapsed


def precompute(batches: list[list[Item]]) -> list[dict[str, list[tuple]]]:
    """The sink's own rows per statement for every batch (private API, on purpose)."""
    sink = SQLiteSink(":memory:", limits=Limits())
    public = stage(True).batch
    return [sink._rows(public(batch)) for batch in batches]


def run_sql_only(ws: Workspace, prepared: list[dict[str, list[tuple]]]) -> float:
    sink = ws.new_sink(True)
    db = sink._connect()
    start = time.perf_counter()
    for statements in prepared:
        with db.atomic():
            for head, rows in statements.items():
                insert_rows(db.conn, head, rows)
    elapsed = time.perf_counter() - start
    sink.close()
    _discard(sink.path)
    return elapsed


_RAW_SPANS = f"INSERT OR REPLACE INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES " + (
    f"({', '.join('?' * len(SPAN_COLUMNS))})"
)
_RAW_TRACES = f"INSERT OR REPLACE INTO traces ({', '.join(TRACE_COLUMNS)}) VALUES " + (
    f"({', '.join('?' * len(TRACE_COLUMNS))})"
)
_BRANCH_COLS = [c for c in BRANCH_COLUMNS if c != "id"]
_RAW_BRANCHES = f"INSERT INTO branch_events ({', '.join(_BRANCH_COLS)}) VALUES " + (
    f"({', '.join('?' * len(_BRANCH_COLS))})"
)


def raw_rows(batches: list[list[Item]]) -> list[tuple[list[tuple], list[tuple], list[tuple]]]:
    """Rows for the floor, converted with the sink's public row functions."""
    limits, public = Limits(), stage(True).batch
    prepared = []
    for batch in batches:
        spans, traces, branches = [], [], []
        for kind, record in public(batch):
            if kind == RECORD_SPAN:
                row = span_row(record, limits)
                spans.append(row)
                if record["parent_id"] is None:
                    traces.append(trace_row(record, row))
            else:
                branches.append(branch_row(record, limits))
        prepared.append((spans, traces, branches))
    return prepared


def run_raw(ws: Workspace, prepared: list[tuple[list[tuple], list[tuple], list[tuple]]]) -> float:
    # The same schema and connection settings as the sink's (created through it).
    sink = ws.new_sink(True)
    sink.close()
    conn = sqlite3.connect(sink.path, isolation_level=None)
    configure(conn)
    start = time.perf_counter()
    for spans, traces, branches in prepared:
        conn.execute("BEGIN")
        conn.executemany(_RAW_SPANS, spans)
        if traces:
            conn.executemany(_RAW_TRACES, traces)
        if branches:
            conn.executemany(_RAW_BRANCHES, branches)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    _discard(sink.path)
    return elapsed


def run_serialization(batches: list[list[Item]]) -> float:
    sink = SQLiteSink(":memory:", limits=Limits())
    public = stage(True).batch
    start = time.perf_counter()
    for batch in batches:
        sink._rows(public(batch))
    return time.perf_counter() - start


def flush_queued(ws: Workspace, items: list[Item], spans: int = 10_000) -> tuple[float, int]:
    """Seconds `ObsHandler.flush()` takes for ``spans`` span records queued at once (the
    records are submitted straight to its queue, as its callbacks do), and rows stored."""
    from lc_observe import ObsHandler, Queue, TraceStore

    path = ws.new_path()
    handler = ObsHandler(path, queue=Queue(handle_sigterm=False))
    queued = [item for item in items if item[0] != "branch"][:spans]
    for kind, record in queued:
        handler._dispatcher.submit(kind, dict(record))
    begin = time.perf_counter()
    handler.flush()
    seconds = time.perf_counter() - begin
    handler.close()
    with TraceStore(path) as store:
        stored = store._query("SELECT count(*) FROM spans")[0][0]
    return seconds, stored


def profile_export(items: list[Item], spans: int) -> None:
    """cProfile the privacy stage + `SQLiteSink.export` (as ObsHandler runs them), 1k batches."""
    import cProfile
    import pstats

    from _common import print_profile

    ws = Workspace()
    try:
        sink = ws.new_sink(True)
        public = stage(True).batch
        batches = [items[i : i + 1_000] for i in range(0, len(items), 1_000)]
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            sink.export(public(batch))
        profiler.disable()
        sink.close()
    finally:
        ws.cleanup()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n## cProfile: sink.export of {spans} spans in batches of 1k: {total:.2f} s\n")
    print_profile(stats, spans, "span")
    print("top functions overall by self time:")
    stats.sort_stats("tottime").print_stats(12)


# -- main ------------------------------------------------------------------------------------------

EXPORT = "sink.export"
RAW = "raw executemany"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer spans and repeats (< 60 s)")
    parser.add_argument("--spans", type=int, help="spans written per measurement")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (median reported)")
    parser.add_argument(
        "--records",
        choices=["synthetic", "agent"],
        default="synthetic",
        help="built with new_span_record (default), or captured from the overhead agent",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile sink.export in batches of 1k instead"
    )
    args = parser.parse_args()
    sizes = [1, 10, 100, 1_000] + ([] if args.quick else [10_000])
    n_spans = args.spans or (4_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 5)
    started = time.perf_counter()
    items = build_items(n_spans) if args.records == "synthetic" else agent_items(n_spans)
    spans = _span_count(items)
    if args.profile:
        profile_export(items, spans)
        return
    print(
        f"{spans} {args.records} span records + {len(items) - spans} branch events per "
        f"measurement, sqlite {sqlite3.sqlite_version}; median of {repeats} interleaved repeats"
    )
    ws = Workspace()
    results: dict[tuple[int, str], list[float]] = {}
    try:
        plans: dict[int, dict[str, Callable[[], float]]] = {}
        for size in sizes:
            batches = [items[i : i + size] for i in range(0, len(items), size)]
            prepared, raw = precompute(batches), raw_rows(batches)
            plans[size] = {
                EXPORT: lambda b=batches: run_export(ws, b, True),
                "sink.export (no redact)": lambda b=batches: run_export(ws, b, False),
                "sink SQL only": lambda p=prepared: run_sql_only(ws, p),
                RAW: lambda r=raw: run_raw(ws, r),
                "serialization only": lambda b=batches: run_serialization(b),
            }
        for repeat in range(repeats):
            for size, plan in plans.items():
                names = list(plan)
                shift = repeat % len(names)
                for name in names[shift:] + names[:shift]:
                    results.setdefault((size, name), []).append(plan[name]())
    finally:
        ws.cleanup()

    names = list(next(iter(plans.values())))
    print("\nspans/s (higher is better); µs per span in brackets\n")
    rows = []
    for size in sizes:
        row: list[Any] = [f"{size:,}"]
        for name in names:
            seconds = median(results[(size, name)])
            row.append(f"{spans / seconds:,.0f} ({seconds / spans * 1e6:.1f})")
        export = median(results[(size, EXPORT)])
        raw = median(results[(size, RAW)])
        row.append(f"{raw / export:.2f}")
        row.append(f"{raw / median(results[(size, 'sink SQL only')]):.2f}")
        serial = median(results[(size, "serialization only")])
        sql = median(results[(size, "sink SQL only")])
        row.append(f"{serial / (serial + sql):.0%} / {sql / (serial + sql):.0%}")
        rows.append(row)
    print_table(["batch", *names, "export/raw", "SQL only/raw", "serialize / SQL"], rows)
    print("\ntarget: sink.export >= 0.7x raw executemany spans/s")
    for size in sizes:
        ratio = median(results[(size, RAW)]) / median(results[(size, EXPORT)])
        print(f"  batch {size:>6,}: {ratio:.2f}x ({'met' if ratio >= 0.7 else 'MISSED'})")
    agent = agent_items(10_000) if args.records == "synthetic" else items
    flushes = []
    ws = Workspace()
    try:
        for _ in range(repeats):
            seconds, stored = flush_queued(ws, agent)
            flushes.append(seconds)
    finally:
        ws.cleanup()
    print(
        f"\nflush of {stored:,} queued agent spans: {median(flushes):.2f} s median of {repeats} "
        f"(target <= 1 s: {'met' if median(flushes) <= 1.0 else 'MISSED'})"
    )
    print(f"total time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
