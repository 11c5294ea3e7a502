"""Resident memory of a long-lived ObsHandler (a server process) over 1M callback runs.

What is measured: the benchmark agent of ``overhead.py`` (`_common.build_agent`: LangGraph,
router, tool, retriever, prompt | chat model | parser; 20 callback runs per invoke) is
invoked again and again through one `ObsHandler` writing a temporary SQLite file, and at
every checkpoint (every 100k callback runs = 5k invokes) the script prints the process RSS
(VmRSS from /proc/self/status), the RSS after glibc's ``malloc_trim(0)`` (what is left
once freed heap pages go back to the OS), the number of live Python memory blocks
(``sys.getallocatedblocks``: flat means no Python objects pile up), SQLite's own heap
(``sqlite3_memory_used``, when Python's sqlite3 links a shared libsqlite3), and what the
handler holds: records queued, open runs, remembered ended runs, and per mirror what it
sent, failed and dropped.  Each mode runs in a fresh child process (one cannot inflate the
other's RSS), by default both at once:

- "default options": ``ObsHandler(path)``, never flushed (the app relies on the workers);
- "dead LangSmith mirror": the same plus ``sinks=[LangSmith(client)]`` whose client points
  at a closed port on 127.0.0.1 (every request is refused at once);
- "flush every 1k invokes" (only with ``--modes``): the default handler, flushed.

    python benchmarks/memory.py            # 1M callback runs (50k invokes) per mode
    python benchmarks/memory.py --quick    # 100k callback runs, a checkpoint every 10k
    python benchmarks/memory.py --serial   # modes one after the other
    python benchmarks/memory.py --modes "default options,flush every 1k invokes"

Target (issue 26): flat after warm-up, read as RSS growth from the second checkpoint (200k
runs; 20k with --quick) to the last <= 10 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _common import CountingHandler, agent_input, build_agent, print_table, rss_mb
from langsmith import Client

from lc_observe import LangSmith, ObsHandler, Queue
from lc_observe.testing import INFO as SERVICE_INFO

TARGET_MB = 10.0


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _default(path: str) -> ObsHandler:
    return ObsHandler(path, queue=Queue(handle_sigterm=False))


def _dead_mirror(path: str) -> ObsHandler:
    client = Client(api_url=closed_port_url(), api_key="x", info=SERVICE_INFO)
    mirror = LangSmith(client, project_name="memory", timeout=2.0)
    return ObsHandler(path, sinks=[mirror], queue=Queue(handle_sigterm=False))


#: mode -> (handler factory, flush every n invokes or None)
MODES: dict[str, tuple[Callable[[str], ObsHandler], int | None]] = {
    "default options": (_default, None),
    "dead LangSmith mirror": (_dead_mirror, None),
    "flush every 1k invokes": (_default, 1_000),
}
DEFAULT_MODES = ["default options", "dead LangSmith mirror"]


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


def snapshot(handler: ObsHandler | None, runs: int, seconds: float, path: str) -> dict[str, Any]:
    """One row of measurements (after a full garbage collection)."""
    gc.collect()
    row: dict[str, Any] = {
        "runs": runs,
        "rss": rss_mb(),
        "trimmed": trimmed_rss_mb(),
        "blocks": sys.getallocatedblocks(),
        "sqlite": sqlite_heap_mb(),
        "seconds": seconds,
    }
    if handler is None:
        return row
    stats = handler.stats
    mirror = stats.get("langsmith", {})
    row.update(
        queued=stats["queued"],
        open_runs=stats["open_runs"],
        ended_ids=len(handler._ended),  # private: what the handler remembers
        db_mb=os.path.getsize(path) / 1e6,
        started=stats["enqueued"],
        mirror=f"{mirror['sent']}/{mirror['failed']}/{mirror['dropped']}/{mirror['queued']}"
        if mirror
        else "-",
    )
    return row


def run(mode: str, checkpoints: list[int]) -> list[dict[str, Any]]:
    """Invoke the agent up to each checkpoint (in callback runs); one row per checkpoint."""
    factory, flush_every = MODES[mode]
    graph = build_agent()
    counter = CountingHandler()
    graph.invoke(agent_input(), {"callbacks": [counter]})
    per_invoke = counter.runs  # 20
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "memory.db")
        handler = factory(path)
        rows.append(snapshot(None, 0, 0.0, path))
        config = {"callbacks": [handler]}
        invokes = 0
        start = time.perf_counter()
        for target in checkpoints:
            while invokes * per_invoke < target:
                graph.invoke(agent_input(), config)
                invokes += 1
                if flush_every and invokes % flush_every == 0:
                    handler.flush()
            seconds = time.perf_counter() - start
            rows.append(snapshot(handler, invokes * per_invoke, seconds, path))
        handler.close(timeout=60)
        stats = handler.stats
        if stats["dropped"] or stats["failed"]:
            raise RuntimeError(f"records of the local file were lost: {stats}")
    return rows


def _parse(mode: str, code: int, stdout: str, stderr: str) -> list[dict[str, Any]]:
    if code != 0:
        raise RuntimeError(f"{mode} run failed ({code}):\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1])


def run_children(modes: list[str], checkpoints: list[int], serial: bool) -> dict[str, list]:
    """Every mode in a child process of its own, in parallel unless ``serial``."""
    command = [sys.executable, os.path.abspath(__file__), "--checkpoints"]
    command.append(",".join(map(str, checkpoints)))
    results: dict[str, list[dict[str, Any]]] = {}
    if serial:
        for mode in modes:
            out = subprocess.run([*command, "--child", mode], capture_output=True, text=True)
            results[mode] = _parse(mode, out.returncode, out.stdout, out.stderr)
        return results
    # In parallel: RSS does not depend on timing, and this divides the wall time.
    procs = {
        mode: subprocess.Popen(
            [*command, "--child", mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for mode in modes
    }
    for mode, proc in procs.items():
        stdout, stderr = proc.communicate()
        results[mode] = _parse(mode, proc.returncode, stdout, stderr)
    return results


def report(mode: str, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Print one mode's curve and its verdict; return the growth figures."""
    print(f"\n## {mode}\n")
    headers = ["callback runs", "RSS MB", "trimmed MB", "py blocks", "sqlite heap MB", "seconds"]
    headers += ["queued", "open runs", "ended ids", "db MB", "mirror sent/failed/dropped/queued"]
    print_table(
        headers,
        [
            [
                f"{r['runs']:,}",
                f"{r['rss']:.1f}",
                f"{r['trimmed']:.1f}",
                f"{r['blocks']:,}",
                f"{r['sqlite']:.1f}",
                f"{r['seconds']:.0f}",
                r.get("queued", "-"),
                r.get("open_runs", "-"),
                r.get("ended_ids", "-"),
                f"{r['db_mb']:.0f}" if "db_mb" in r else "-",
                r.get("mirror", "-"),
            ]
            for r in rows
        ],
    )
    warm, last = rows[2], rows[-1]  # rows[0]: before the first invoke
    growth = last["rss"] - warm["rss"]
    verdict = "met" if growth <= TARGET_MB else "MISSED"
    print(
        f"RSS growth after warm-up, {warm['runs']:,} -> {last['runs']:,} runs: {growth:+.1f} MB "
        f"(target <= {TARGET_MB:.0f} MB: {verdict}); after malloc_trim "
        f"{last['trimmed'] - warm['trimmed']:+.1f} MB; live Python blocks "
        f"{last['blocks'] - warm['blocks']:+,}; "
        f"SQLite heap {last['sqlite'] - warm['sqlite']:+.1f} MB"
    )
    print(
        f"RSS held at the end: {last['rss'] - rows[0]['rss']:+.1f} MB over the process "
        "before the first invoke (what the handler, its queues and the agent keep)"
    )
    seconds_per_million = last["seconds"] / last["runs"] * 1e6
    print(f"time: {seconds_per_million:.0f} s per 1M callback runs in this mode")
    return {"growth_mb": growth, "seconds_per_million": seconds_per_million}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k runs, checkpoints every 10k")
    parser.add_argument("--runs", type=int, help="callback runs per mode (default 1M / 100k)")
    parser.add_argument("--serial", action="store_true", help="run the modes one at a time")
    parser.add_argument("--modes", help="comma-separated subset of: " + ", ".join(MODES))
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, [int(c) for c in args.checkpoints.split(",")])))
        return
    total = args.runs or (100_000 if args.quick else 1_000_000)
    step = total // 10
    checkpoints = [step * i for i in range(1, 11)]
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else DEFAULT_MODES
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {list(MODES)}")
    started = time.perf_counter()
    for mode, rows in run_children(modes, checkpoints, args.serial).items():
        report(mode, rows)
    print(f"\ntotal time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
