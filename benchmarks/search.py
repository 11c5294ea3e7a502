"""Full-text search: search time on a large file, and the write cost the index adds.

Writes the same spans, batch by batch, to two files through the SQLite sink's own batch
path (`SQLiteSink.export`, the multi-row inserts the handler's writer thread runs): one
with the FTS5 index of schema version 6 (triggers on), one with the index's triggers
dropped, alternating which goes first, and prints the write time per span of each and
their ratio.  Then times `TraceStore.search` on the indexed file for
a rare word, a common word, two words, a filtered query and a prefix (median of 5 runs),
and the backfill an older file's migration to version 6 runs.

    python benchmarks/search.py                   # 100,000 spans (a few minutes)
    python benchmarks/search.py --spans 1000000   # the 1M-span measurement
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid

from lc_observe import TraceStore
from lc_observe.records import RECORD_SPAN
from lc_observe.sinks.sqlite import SQLiteSink
from lc_observe.storage.schema import SPAN_COLUMNS

WORDS = [
    "weather",
    "paris",
    "london",
    "invoice",
    "refund",
    "order",
    "shipping",
    "delay",
    "password",
    "reset",
    "account",
    "billing",
    "coupon",
    "discount",
    "upgrade",
    "cancel",
    "subscription",
    "warranty",
    "battery",
    "screen",
    "laptop",
]
BATCH = 512


def _record(trace_id: str, parent: str | None, i: int, rng: random.Random) -> dict:
    kind = ("chain", "chat_model", "tool", "retriever")[i % 4]
    words = " ".join(rng.choice(WORDS) for _ in range(12))
    now = time.time()
    record = dict.fromkeys(SPAN_COLUMNS)
    record.update(
        span_id=str(uuid.uuid4()),
        trace_id=trace_id,
        parent_id=parent,
        name=f"{kind}_{i % 10}",
        kind=kind,
        status="ok",
        start_time=now,
        end_time=now + 0.01,
        latency_ms=10.0,
        error=None,
        inputs={"messages": [[{"type": "human", "content": f"{words} ticket {i}"}]]},
        outputs={"generations": [[{"text": words, "message": {"type": "ai", "content": words}}]]},
        tags=["bench"],
        metadata={"langgraph_node": "agent", "langgraph_step": i % 7, "user_id": f"u{i % 50}"},
        span_count=1,
        error_count=0,
    )
    return record


def build(indexed_path: str, plain_path: str, spans: int, seed: int = 7) -> tuple[float, float]:
    """Write the same ``spans`` spans (traces of 10) to both files, batch by batch,
    alternating which file goes first (so both see the same machine load); returns the
    seconds spent writing to the indexed file and to the plain one."""
    indexed, plain = SQLiteSink(indexed_path), SQLiteSink(plain_path)
    assert indexed.open() and plain.open()
    conn = sqlite3.connect(plain_path)
    for name in ("spans_fts_insert", "spans_fts_delete", "spans_fts_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.commit()
    conn.close()
    rng = random.Random(seed)
    batch: list = []
    spent = {id(indexed): 0.0, id(plain): 0.0}
    trace_id = root = ""
    for i in range(spans):
        if i % 10 == 0:
            trace_id = root = str(uuid.uuid4())
            record = _record(trace_id, None, i, rng)
            record["span_id"] = trace_id
        else:
            record = _record(trace_id, root, i, rng)
        batch.append((RECORD_SPAN, record))
        if len(batch) == BATCH or i == spans - 1:
            order = (indexed, plain) if (i // BATCH) % 2 else (plain, indexed)
            for sink in order:
                start = time.perf_counter()
                assert sink.export(batch) == len(batch)
                spent[id(sink)] += time.perf_counter() - start
            batch = []
    indexed.close()
    plain.close()
    return spent[id(indexed)], spent[id(plain)]


def backfill(path: str) -> float:
    """Seconds the schema-6 migration's backfill takes to index every span of ``path``
    (a file whose index is empty: the one built without triggers)."""
    from lc_observe.storage.search import _fill

    conn = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        with conn:
            _fill(conn)
        return time.perf_counter() - start
    finally:
        conn.close()


def _median_ms(store: TraceStore, text: str, **kwargs) -> tuple[float, int]:
    times, hits = [], 0
    for _ in range(5):
        start = time.perf_counter()
        hits = len(store.search(text, **kwargs))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans per file")
    parser.add_argument("--dir", default=None, help="where to build the files (default: temp)")
    args = parser.parse_args()
    folder = args.dir or tempfile.mkdtemp(prefix="lco-search-")
    with_index = os.path.join(folder, "indexed.db")
    without = os.path.join(folder, "plain.db")
    for path in (with_index, without):
        if os.path.exists(path):
            os.remove(path)
    indexed, plain = build(with_index, without, args.spans)
    per = 1e6 / args.spans
    print(f"spans written: {args.spans:,} per file (batches of {BATCH}, the sink's own path)")
    print(f"write without index: {plain * per:8.1f} us/span")
    print(f"write with index:    {indexed * per:8.1f} us/span")
    print(
        f"index write cost:    {(indexed - plain) * per:8.1f} us/span "
        f"(ratio {indexed / plain:.2f}x)"
    )
    size = os.path.getsize(with_index) / os.path.getsize(without)
    print(f"file size ratio:     {size:.2f}x")
    with TraceStore(with_index) as store:
        rare = f"ticket {args.spans // 2}"
        for label, text, kwargs in (
            ("rare (one span)", f'"{rare}"', {}),
            ("common word (most spans)", "refund", {}),
            ("two words", "refund paris", {}),
            ("word, kind=tool", "refund", {"kind": "tool"}),
            ("prefix", "subscr*", {}),
        ):
            ms, hits = _median_ms(store, text, **kwargs)
            print(f"search {label:<24} {ms:9.1f} ms  ({hits} hits, limit 50)")
    seconds = backfill(without)
    print(
        f"migration backfill:  {seconds:8.1f} s for {args.spans:,} spans "
        f"({seconds * per:.1f} us/span)"
    )


if __name__ == "__main__":
    main()
