"""Resident memory while one ObsHandler traces many LangGraph invocations.

What is measured: a small LangGraph graph (router node, conditional edge, then a node that
calls either the demo's calculator tool or its fake chat model, which reports token usage
and is priced; 5 callback runs per invoke, 1 branch event) is invoked through one
`ObsHandler` writing a temporary SQLite file, and the process RSS (VmRSS from
/proc/self/status) is printed after each checkpoint, together with what the handler holds
(open runs, remembered ended runs, queued records), the number of live Python memory
blocks (``sys.getallocatedblocks``: flat means no Python objects pile up) and the RSS after
glibc's ``malloc_trim(0)`` (what is left once freed heap pages go back to the OS), and
SQLite's own heap (``sqlite3_memory_used``, when Python's sqlite3 links a shared
libsqlite3: page cache and prepared statements, invisible to Python).  Two modes, each in a
fresh child process so one cannot inflate the other's RSS: "never flush" (the app relies on
the background writer alone) and "flush every 1k" invokes.

    python benchmarks/memory.py            # checkpoints 1k, 10k, 100k invokes
    python benchmarks/memory.py --quick    # 1k and 10k (for CI)
    python benchmarks/memory.py --serial   # modes one after the other (default: both at once)

Target (issue 9): RSS growth from 10k to 100k invokes <= 10 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, TypedDict

from _common import print_table, rss_mb
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, Queue
from lc_observe.demo import QUESTIONS, calculator, fake_model

MODES = {"never flush": None, "flush every 1k": 1_000}
TARGET_MB = 10.0


class State(TypedDict, total=False):
    question: str
    answer: str


def build_graph() -> Any:
    """router -> (conditional edge) -> calculator | chat -> END: 5 callback runs per invoke."""
    model = fake_model(token_delay=0.0)

    def router(state: State) -> State:
        return {}

    def route(state: State) -> str:
        return "calculator" if any(ch.isdigit() for ch in state["question"]) else "chat"

    def use_calculator(state: State) -> State:
        expression = " ".join(state["question"].rstrip("?").split()[-3:])
        return {"answer": calculator.invoke({"expression": expression})}

    def chat(state: State) -> State:
        messages = [SystemMessage("Answer briefly."), HumanMessage(state["question"])]
        return {"answer": str(model.invoke(messages).content)}

    builder = StateGraph(State)
    builder.add_node("router", router)
    builder.add_node("calculator", use_calculator)
    builder.add_node("chat", chat)
    builder.add_edge(START, "router")
    builder.add_conditional_edges("router", route, ["calculator", "chat"])
    builder.add_edge("calculator", END)
    builder.add_edge("chat", END)
    return builder.compile(name="memory_graph")


def trimmed_rss_mb() -> float:
    """RSS after handing free heap memory back to the OS (glibc only; else plain RSS)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def sqlite_heap_mb() -> float:
    """Bytes SQLite has allocated in this process, in MB (NaN when it cannot be read)."""
    try:
        used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
    except (OSError, AttributeError):
        return float("nan")
    used.restype = ctypes.c_int64
    return used() / 1e6


def run(checkpoints: list[int], flush_every: int | None) -> list[dict[str, Any]]:
    """Invoke the demo graph up to each checkpoint; one row of measurements per checkpoint."""
    graph = build_graph()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "memory.db")
        handler = ObsHandler(path, queue=Queue(handle_sigterm=False))
        gc.collect()
        rows.append(
            {
                "invokes": 0,
                "rss": rss_mb(),
                "trimmed": trimmed_rss_mb(),
                "blocks": sys.getallocatedblocks(),
                "sqlite": sqlite_heap_mb(),
                "seconds": 0.0,
            }
        )
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
            stats = handler.stats
            rows.append(
                {
                    "invokes": done,
                    "rss": rss_mb(),
                    "trimmed": trimmed_rss_mb(),
                    "blocks": sys.getallocatedblocks(),
                    "sqlite": sqlite_heap_mb(),
                    "seconds": time.perf_counter() - start,
                    "queued": stats["queued"],
                    "open_runs": stats["open_runs"],
                    "ended_ids": len(handler._ended),  # private: what the handler remembers
                    "db_mb": os.path.getsize(path) / 1e6,
                }
            )
        handler.close()
        stats = handler.stats
        if stats["dropped"] or stats["failed"]:
            raise RuntimeError(f"records were lost: {stats}")
    return rows


def child(mode: str, checkpoints: list[int]) -> None:
    print(json.dumps(run(checkpoints, MODES[mode])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k invokes only")
    parser.add_argument("--serial", action="store_true", help="run the modes one at a time")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, [int(c) for c in args.checkpoints.split(",")])
        return
    checkpoints = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    started = time.perf_counter()
    command = [sys.executable, os.path.abspath(__file__), "--checkpoints"]
    command.append(",".join(map(str, checkpoints)))
    results: dict[str, list[dict[str, Any]]] = {}
    if args.serial:
        for mode in MODES:
            out = subprocess.run([*command, "--child", mode], capture_output=True, text=True)
            results[mode] = _parse(mode, out.returncode, out.stdout, out.stderr)
    else:  # both at once: RSS does not depend on timing, and this halves the wall time
        procs = {
            mode: subprocess.Popen(
                [*command, "--child", mode],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in MODES
        }
        for mode, proc in procs.items():
            stdout, stderr = proc.communicate()
            results[mode] = _parse(mode, proc.returncode, stdout, stderr)
    for mode, rows in results.items():
        print(f"\n## {mode}\n")
        print_table(
            [
                "invokes",
                "RSS MB",
                "trimmed MB",
                "py blocks",
                "sqlite heap MB",
                "seconds",
                "queued",
                "open runs",
                "ended ids",
                "db MB",
            ],
            [
                [
                    f"{r['invokes']:,}",
                    f"{r['rss']:.1f}",
                    f"{r['trimmed']:.1f}",
                    f"{r['blocks']:,}",
                    f"{r['sqlite']:.1f}",
                    f"{r['seconds']:.1f}",
                    r.get("queued", "-"),
                    r.get("open_runs", "-"),
                    r.get("ended_ids", "-"),
                    f"{r['db_mb']:.1f}" if "db_mb" in r else "-",
                ]
                for r in rows
            ],
        )
        first = next(r for r in rows if r["invokes"] == checkpoints[-2])
        last = rows[-1]
        growth = last["rss"] - first["rss"]
        trimmed = last["trimmed"] - first["trimmed"]
        blocks = last["blocks"] - first["blocks"]
        sqlite_growth = last["sqlite"] - first["sqlite"]
        span = f"{first['invokes']:,} -> {last['invokes']:,} invokes"
        if first["invokes"] == 10_000 and last["invokes"] == 100_000:
            verdict = "met" if growth <= TARGET_MB else "MISSED"
            target = f"target <= {TARGET_MB:.0f} MB: {verdict}"
        else:
            target = "the target is for 10k -> 100k; run without --quick"
        print(
            f"RSS growth {span}: {growth:+.1f} MB ({target}); after malloc_trim {trimmed:+.1f} MB; "
            f"live Python blocks {blocks:+,}; SQLite heap {sqlite_growth:+.1f} MB"
        )
    print(f"\ntotal time {time.perf_counter() - started:.1f} s")


def _parse(mode: str, code: int, stdout: str, stderr: str) -> list[dict[str, Any]]:
    if code != 0:
        raise RuntimeError(f"{mode} run failed ({code}):\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
