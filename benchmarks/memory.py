"""Resident memory while one ObsHandler traces many LangGraph invocations.

Runs the demo agent (router, conditional edge, tool or retriever, prompt | fake chat model |
parser: 10 callback runs per invoke) through one `ObsHandler` writing a temporary SQLite file,
and prints the process RSS after each checkpoint, with and without periodic flushes.

    python benchmarks/memory.py            # checkpoints 1k, 10k, 100k invokes
    python benchmarks/memory.py --quick    # 1k and 10k (for CI)

Target (issue 9): RSS growth from 10k to 100k invokes <= 10 MB.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

from lc_observe import ObsHandler
from lc_observe.demo import QUESTIONS, build_graph


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(checkpoints: list[int], flush_every: int | None) -> list[tuple[int, float, float]]:
    graph = build_graph()
    directory = tempfile.mkdtemp()
    handler = ObsHandler(os.path.join(directory, "memory.db"))
    rows: list[tuple[int, float, float]] = []
    done = 0
    start = time.perf_counter()
    for target in checkpoints:
        while done < target:
            question = QUESTIONS[done % len(QUESTIONS)]
            graph.invoke({"question": question}, {"callbacks": [handler]})
            done += 1
            if flush_every and done % flush_every == 0:
                handler.flush()
        gc.collect()
        rows.append((done, rss_mb(), time.perf_counter() - start))
    handler.close()
    stats = handler.stats
    assert stats["dropped"] == 0 and stats["failed"] == 0, stats
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k invokes only")
    args = parser.parse_args()
    checkpoints = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    for label, flush_every in (("never flush", None), ("flush every 1k", 1_000)):
        rows = run(checkpoints, flush_every)
        print(f"\n{label}")
        print(f"{'invokes':>9}  {'RSS MB':>8}  {'seconds':>8}")
        for done, rss, seconds in rows:
            print(f"{done:>9}  {rss:>8.1f}  {seconds:>8.1f}")
        first, last = rows[1] if len(rows) > 2 else rows[0], rows[-1]
        print(
            f"RSS growth {first[0]}->{last[0]} invokes: {last[1] - first[1]:+.1f} MB "
            "(target for 10k->100k: <= 10 MB)"
        )


if __name__ == "__main__":
    main()
