"""Query latency of `TraceStore` as the database grows: 10k, 100k and 1M spans.

What is measured: synthetic but realistic databases (20 spans per trace, a ``traces`` row
per root, two branch events per trace, model spans with usage fields, errors, 50 users and
500 sessions, spread over 7 days; inputs/outputs JSON of a few hundred bytes, model spans a
few KB) are built with raw ``executemany`` into a schema created by
`lc_observe.storage.schema.ensure_schema`.  Then, interleaved over the databases, each query runs on
random trace ids and the median latency is printed, with its ratio at the largest size to
the smallest, and whether its SQL uses an index (``EXPLAIN QUERY PLAN`` of the statements
`TraceStore` actually ran, captured with ``set_trace_callback``).

Queries: ``traces()`` first page, ``trace(id)`` (includes its branch events),
``spans(trace_id=)``, ``branches(trace_id=)``; ``branch_stats()`` and ``stats(by="model")``
run when the installed `TraceStore` has them (see `OPTIONAL`).

    python benchmarks/query.py --quick      # 10k and 100k spans (< 60 s)
    python benchmarks/query.py              # 10k, 100k and 1M spans
    python benchmarks/query.py --keep DIR   # keep (and reuse) the built databases in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils
from _common import median, print_table

from lc_observe import TraceStore
from lc_observe.storage.schema import (
    BRANCH_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    configure,
    ensure_schema,
)

SPANS_PER_TRACE = 20
DAYS = 7
START = datetime(2026, 1, 5, tzinfo=timezone.utc)

# -- building ---------------------------------------------------------------------------------

_STATE = json.dumps(
    {
        "question": "What will the hotel cost in total, and what should we budget for food?",
        "history": ["Hi! I am planning a trip.", "Where to?", "Lisbon, five nights in May."],
    }
)
_MESSAGES = json.dumps(
    {
        "messages": [
            [
                {"type": "system", "content": "You are a travel budget assistant. " * 20},
                {"type": "human", "content": "Hi! I am planning a trip and need help."},
                {"type": "ai", "content": "Happy to help. Where are you going?"},
                {"type": "human", "content": "Lisbon, five nights in May, two people."},
            ]
        ]
    }
)
_GENERATION = json.dumps(
    {
        "generations": [[{"text": "Five nights at about 140 EUR is 700 EUR for the hotel. " * 3}]],
        "llm_output": {"model_name": "gpt-4o-mini", "token_usage": {"total_tokens": 450}},
    }
)
_DOCS = json.dumps(
    {"documents": [{"page_content": "LangGraph routes with conditional edges. " * 5}] * 3}
)

#: (name, kind, parent index, graph node, inputs, outputs) of the 20 spans of a trace.
TEMPLATE: list[tuple[str, str, int | None, str | None, str, str]] = [
    ("bench_agent", "chain", None, None, _STATE, _STATE),
    ("router", "chain", 0, "router", _STATE, '{"turns": 0}'),
    ("route", "chain", 1, "router", _STATE, '{"output": "research"}'),
    ("research", "chain", 0, "research", _STATE, '{"context": ["700 EUR"]}'),
    ("price_lookup", "tool", 3, "research", '{"item": "hotel night"}', '{"output": "700 EUR"}'),
    ("KeywordRetriever", "retriever", 3, "research", '{"query": "hotel"}', _DOCS),
    ("answer", "chain", 0, "answer", _STATE, '{"answer": "700 EUR"}'),
    ("RunnableSequence", "chain", 6, "answer", _STATE, '{"output": "700 EUR"}'),
    ("ChatPromptTemplate", "prompt", 7, "answer", _STATE, _MESSAGES),
    ("FakeListChatModel", "chat_model", 7, "answer", _MESSAGES, _GENERATION),
    ("StrOutputParser", "parser", 7, "answer", _GENERATION, '{"output": "700 EUR"}'),
    ("should_continue", "chain", 6, "answer", _STATE, '{"output": "router"}'),
    ("router", "chain", 0, "router", _STATE, '{"turns": 1}'),
    ("route", "chain", 12, "router", _STATE, '{"output": "answer"}'),
    ("answer", "chain", 0, "answer", _STATE, '{"answer": "700 EUR"}'),
    ("RunnableSequence", "chain", 14, "answer", _STATE, '{"output": "700 EUR"}'),
    ("ChatPromptTemplate", "prompt", 15, "answer", _STATE, _MESSAGES),
    ("FakeListChatModel", "chat_model", 15, "answer", _MESSAGES, _GENERATION),
    ("StrOutputParser", "parser", 15, "answer", _GENERATION, '{"output": "700 EUR"}'),
    ("should_continue", "chain", 14, "answer", _STATE, '{"output": "__end__"}'),
]
assert len(TEMPLATE) == SPANS_PER_TRACE
MODELS = [("gpt-4o-mini", "openai", 0.15, 0.6), ("claude-3-5-haiku", "anthropic", 0.8, 4.0)]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


_UNFILLED = {"response_model", "params", "traceparent"}


def build_db(path: str, n_spans: int, seed: int = 7) -> None:
    """Write ``n_spans`` spans (``n_spans / 20`` traces) into a new lc_observe database."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    ensure_schema(sqlite_utils.Database(conn), path)
    n_traces = n_spans // SPANS_PER_TRACE
    spacing = DAYS * 86_400 / n_traces
    # The columns the rows below fill; the ones version 7 added stay NULL, as in a file
    # recorded before it (and for spans without a request or enclosing context).
    span_sql = _insert("spans", [c for c in SPAN_COLUMNS if c not in _UNFILLED])
    trace_sql = _insert("traces", [c for c in TRACE_COLUMNS if c not in _UNFILLED])
    branch_columns = [c for c in BRANCH_COLUMNS if c != "id"]
    branch_sql = _insert("branch_events", branch_columns)
    chunk = 500  # traces per transaction
    for first in range(0, n_traces, chunk):
        spans, traces, branches = [], [], []
        for t in range(first, min(first + chunk, n_traces)):
            t0 = START + timedelta(seconds=t * spacing)
            ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in TEMPLATE]
            user, session = f"user-{rng.randrange(50)}", f"session-{rng.randrange(500)}"
            model, provider, price_in, price_out = MODELS[t % 2]
            failed = rng.random() < 0.03
            totals = [0, 0, 0, 0.0]
            for index, (name, kind, parent, node, inputs, outputs) in enumerate(TEMPLATE):
                start = t0 + timedelta(milliseconds=index * 40)
                end = start + timedelta(milliseconds=(SPANS_PER_TRACE - index) * 35)
                usage: list[Any] = [None] * 10
                if kind == "chat_model":
                    tokens_in, tokens_out = rng.randrange(200, 900), rng.randrange(20, 200)
                    cost = (tokens_in * price_in + tokens_out * price_out) / 1e6
                    usage = [model, provider, tokens_in, tokens_out, tokens_in + tokens_out]
                    usage += [0, 0, 0, cost, rng.uniform(80, 400)]
                    totals[0] += tokens_in
                    totals[1] += tokens_out
                    totals[2] += tokens_in + tokens_out
                    totals[3] += cost
                error = failed and index in (0, 9, 7, 6)
                status = "error" if error else "ok"
                step = None if node is None else 1 + index // 5
                meta = "{}" if node is None else f'{{"langgraph_node": "{node}"}}'
                tags = "[]" if node is None else f'["graph:step:{step}"]'
                spans.append(
                    (
                        ids[index],
                        ids[0],
                        None if parent is None else ids[parent],
                        name,
                        kind,
                        status,
                        _iso(start),
                        _iso(end),
                        (end - start).total_seconds() * 1000,
                        "RateLimitError" if error else None,
                        "429 Too Many Requests" if error else None,
                        None,
                        inputs,
                        None if error else outputs,
                        tags,
                        meta,
                        user,
                        session,
                        node,
                        step,
                        None if node is None else f"{node}:{ids[index][:8]}",
                        *usage,
                        SPANS_PER_TRACE if index == 0 else 1,
                        4 if failed and index == 0 else int(error),
                        (rng.random() < 0.1) if kind == "chat_model" else None,  # cache_hit
                    )
                )
            root = spans[-SPANS_PER_TRACE]
            traces.append(
                (
                    ids[0],
                    "bench_agent",
                    "chain",
                    root[5],
                    root[6],
                    root[7],
                    root[8],
                    user,
                    session,
                    "[]",
                    "{}",
                    "bench_agent",
                    SPANS_PER_TRACE,
                    4 if failed else 0,
                    totals[0],
                    totals[1],
                    totals[2],
                    0,
                    0,
                    0,
                    totals[3],
                )
            )
            for span_index, source, result in ((2, "router", "research"), (11, "answer", "router")):
                branches.append(
                    (
                        ids[0],
                        ids[span_index],
                        source,
                        "route" if source == "router" else "should_continue",
                        json.dumps(result),
                        json.dumps([result]),
                        "conditional_edge",
                        1 + span_index // 5,
                        "",
                        _iso(t0 + timedelta(milliseconds=span_index * 40)),
                        None,
                    )
                )
        conn.execute("BEGIN")
        conn.executemany(span_sql, spans)
        conn.executemany(trace_sql, traces)
        conn.executemany(branch_sql, branches)
        conn.execute("COMMIT")
    conn.execute("ANALYZE")  # as a long-lived database would have after `PRAGMA optimize`
    conn.close()


def _insert(table: str, columns: Any) -> str:
    columns = list(columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


# -- querying ---------------------------------------------------------------------------------

QueryFn = Callable[[TraceStore, str], Any]

QUERIES: dict[str, QueryFn] = {
    "traces() first page": lambda store, tid: store.traces(),
    "trace(id)": lambda store, tid: store.trace(tid),
    "spans(trace_id=)": lambda store, tid: store.spans(trace_id=tid),
    "branches(trace_id=)": lambda store, tid: store.branches(trace_id=tid),
}

# ---------------------------------------------------------------------------------------------
# OPTIONAL: analysis queries, measured when the installed TraceStore has the method.  The
# whole-database ones are expected to grow with it (the interesting figure is how fast); a
# window holding the same number of spans at every size should not grow with the database.
# ---------------------------------------------------------------------------------------------
DAY = (START + timedelta(days=3), START + timedelta(days=4))
OPTIONAL: dict[str, tuple[str, QueryFn]] = {
    'stats(by="model") all': ("stats", lambda store, tid: store.stats(by="model")),
    'stats(by="model") 1 day': (
        "stats",
        lambda store, tid: store.stats(by="model", since=DAY[0], until=DAY[1]),
    ),
    'stats(by="model") ~1.4k-span window': (
        "stats",
        lambda store, tid: store.stats(
            by="model", since=DAY[0], until=DAY[0] + FIXED_WINDOW[store.db_path]
        ),
    ),
    'stats(by="user_id") 1 day': (
        "stats",
        lambda store, tid: store.stats(by="user_id", since=DAY[0], until=DAY[1]),
    ),
    "branch_stats()": ("branch_stats", lambda store, tid: store.branch_stats()),
}
#: db path -> a window holding as many spans as one day of the smallest database (set in run).
FIXED_WINDOW: dict[str, timedelta] = {}


def trace_ids(path: str, count: int, seed: int) -> list[str]:
    conn = sqlite3.connect(path)
    total = conn.execute("SELECT max(rowid) FROM traces").fetchone()[0]
    rng = random.Random(seed)
    ids = []
    for rowid in (rng.randint(1, total) for _ in range(count)):
        ids.append(conn.execute("SELECT trace_id FROM traces WHERE rowid = ?", (rowid,)).fetchone())
    conn.close()
    return [row[0] for row in ids if row]


def plan_of(conn: sqlite3.Connection, statements: list[str]) -> str:
    """Summary of ``EXPLAIN QUERY PLAN`` over the statements a query ran."""
    details = []
    for sql in statements:
        if not sql.lstrip().upper().startswith("SELECT") and not sql.lstrip().startswith("WITH"):
            continue
        for row in conn.execute("EXPLAIN QUERY PLAN " + sql):
            details.append(row[3])
    return "; ".join(dict.fromkeys(details))


def uses_index(plan: str) -> str:
    scans = [d for d in plan.split("; ") if d.startswith("SCAN") and "INDEX" not in d]
    if scans:
        return "NO (" + ", ".join(scans) + ")"
    indexes = re.findall(r"USING (?:COVERING )?(?:INDEX (\w+)|(INTEGER PRIMARY KEY))", plan)
    names = sorted({a or b for a, b in indexes})
    sort = " (+ temp sort)" if "TEMP B-TREE" in plan else ""
    return "yes: " + ", ".join(names) + sort if names else "?"


def capture_plans(store: TraceStore, path: str, tid: str, queries: dict[str, QueryFn]) -> dict:
    """The query plan of each query's statements (captured from the store's connection)."""
    statements: list[str] = []
    conn = store._conn  # private on purpose: see the SQL TraceStore really runs
    conn.set_trace_callback(statements.append)
    plans = {}
    try:
        explain = sqlite3.connect(path)
        for name, query in queries.items():
            statements.clear()
            query(store, tid)
            plans[name] = plan_of(explain, list(statements))
        explain.close()
    finally:
        conn.set_trace_callback(None)
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k spans only")
    parser.add_argument("--sizes", help="comma-separated span counts (default 10k,100k,1M)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5 / 10)")
    parser.add_argument("--per-round", type=int, default=20, help="random ids per query/round")
    parser.add_argument("--keep", metavar="DIR", help="build into (and reuse from) DIR")
    parser.add_argument("--verbose-plans", action="store_true", help="print full query plans")
    args = parser.parse_args()
    if args.sizes:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
    else:
        sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    rounds = args.rounds or (5 if args.quick else 10)
    started = time.perf_counter()
    tmp = None
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        directory = args.keep
    else:
        tmp = tempfile.TemporaryDirectory()
        directory = tmp.name
    try:
        paths = {}
        print("building databases (raw executemany into ensure_schema's schema)")
        for size in sizes:
            path = os.path.join(directory, f"query-{size}.db")
            paths[size] = path
            if args.keep and os.path.exists(path):
                print(f"  {size:>9,} spans: reusing {path}")
                continue
            begin = time.perf_counter()
            build_db(path, size)
            mb = os.path.getsize(path) / 1e6
            print(f"  {size:>9,} spans: {time.perf_counter() - begin:.1f} s, {mb:,.0f} MB")
        run(paths, rounds, args.per_round, args.verbose_plans)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"total time {time.perf_counter() - started:.1f} s")


def run(paths: dict[int, str], rounds: int, per_round: int, verbose: bool) -> None:
    stores = {size: TraceStore(path) for size, path in paths.items()}
    for size, store in stores.items():
        FIXED_WINDOW[store.db_path] = timedelta(days=min(paths) / size)
    queries = dict(QUERIES)
    missing = []
    for label, (method, query) in OPTIONAL.items():
        if hasattr(TraceStore, method):
            queries[label] = query
        else:
            missing.append(label)
    ids = {size: trace_ids(path, rounds * per_round + 1, seed=size) for size, path in paths.items()}
    times: dict[tuple[int, str], list[float]] = {}
    for round_index in range(rounds):
        for size in sorted(stores, reverse=bool(round_index % 2)):
            store = stores[size]
            for name, query in queries.items():
                slot = ids[size][round_index * per_round : (round_index + 1) * per_round]
                # whole-database aggregations: once per round is enough
                for tid in slot[:1] if name in OPTIONAL else slot:
                    begin = time.perf_counter()
                    query(store, tid)
                    times.setdefault((size, name), []).append(time.perf_counter() - begin)
    sizes = sorted(stores)
    smallest, largest = sizes[0], sizes[-1]
    plans = capture_plans(stores[largest], paths[largest], ids[largest][-1], queries)
    print(f"\nmedian ms per call ({rounds} rounds x {per_round} random trace ids, warm cache)\n")
    headers = ["query", *(f"{s:,} spans" for s in sizes), f"{largest:,}/{smallest:,}", "index?"]
    rows = []
    for name in queries:
        medians = [median(times[(size, name)]) * 1e3 for size in sizes]
        ratio = medians[-1] / medians[0]
        rows.append(
            [name, *(f"{m:.3f}" for m in medians), f"{ratio:.2f}x", uses_index(plans[name])]
        )
    print_table(headers, rows)
    for label in missing:
        print(f"{label}: not in this TraceStore yet (placeholder in OPTIONAL)")
    if verbose:
        print("\nquery plans at the largest size:")
        for name, plan in plans.items():
            print(f"  {name}: {plan}")
    for store in stores.values():
        store.close()


if __name__ == "__main__":
    main()
