"""Callback overhead of ObsHandler next to LangChain's own handlers and tracers.

What is measured: a LangGraph agent (router node, conditional edges, a tool, a retriever,
``prompt | FakeListChatModel | StrOutputParser``; 20 callback runs per invoke, counted
and printed) is invoked with each callback configuration of `CONFIGS`, sync (``invoke``)
and async (``ainvoke``).  Configurations are interleaved: every round runs a block of
invokes of each, in an order rotated per round, then calls the configuration's flush
(timed separately).  Printed per configuration:

- ms/invoke: median over rounds of the timed loop (persistence not waited for);
- added µs/run: median over rounds of (this config − "no callbacks" in the same round)
  / callback runs per invoke;
- flush ms: median time of the flush after a round's loop (ObsHandler ``flush()``,
  LangChainTracer ``wait_for_futures()`` = ``client.flush()``);
- incl. flush: the same added cost with the flush time spread over the round's invokes;
- ratios of the added cost to RunCollector's and to LangChainTracer's, with the targets.

LangChainTracer sends to a loopback stand-in of the LangSmith API started by this script in
a child process (``_langsmith_stub.py``: 127.0.0.1 only, bounded lifetime).

    python benchmarks/overhead.py --quick          # < 60 s, for CI
    python benchmarks/overhead.py                  # full: more rounds and invokes
    python benchmarks/overhead.py --profile "ObsHandler (SQLite)"   # cProfile, sync

A new configuration is one entry in `CONFIGS`: a name and a function that returns a `Setup`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from _common import CountingHandler, agent_input, build_agent, median, print_table
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langsmith import Client

from lc_observe import LangSmith, ObsHandler, Queue

HERE = os.path.dirname(os.path.abspath(__file__))


# -- configurations ----------------------------------------------------------------------------


@dataclass
class Env:
    """What configurations may use: a temporary directory and the LangSmith stand-in."""

    tmpdir: str
    langsmith_url: str


@dataclass
class Setup:
    """One configuration, ready to run."""

    callbacks: list[BaseCallbackHandler]
    flush: Callable[[], object] | None = None  # timed, after each round's loop
    reset: Callable[[], object] | None = None  # untimed, before each round's loop
    close: Callable[[], object] | None = None  # once, at the end
    extra: dict[str, Any] = field(default_factory=dict)


class NoOpHandler(BaseCallbackHandler):
    """A handler that does nothing (LangChain's default: ``run_inline = False``)."""


class InlineNoOpHandler(BaseCallbackHandler):
    """A handler that does nothing and asks to be called inline in async runs."""

    run_inline = True


def _noop(env: Env) -> Setup:
    return Setup([NoOpHandler()])


def _noop_inline(env: Env) -> Setup:
    return Setup([InlineNoOpHandler()])


def _run_collector(env: Env) -> Setup:
    collector = RunCollectorCallbackHandler()
    return Setup([collector], reset=collector.traced_runs.clear)


def _langsmith_client(env: Env) -> Client:
    return Client(api_url=env.langsmith_url, api_key="x")


def _langchain_tracer(env: Env) -> Setup:
    client = _langsmith_client(env)
    tracer = LangChainTracer(client=client, project_name="bench")
    return Setup([tracer], flush=tracer.wait_for_futures, close=client.cleanup)


class NullSink:
    """A sink that stores nothing: ObsHandler's callback and queue cost without the writer's."""

    def export(self, batch: Any) -> int:
        return len(batch)

    def close(self) -> None:
        pass


def _obs_null(env: Env) -> Setup:
    handler = ObsHandler(None, sinks=[NullSink()], queue=Queue(handle_sigterm=False))
    return Setup([handler], flush=handler.flush, close=handler.close, extra={"handler": handler})


def _obs_sqlite(env: Env, **options: Any) -> Setup:
    path = os.path.join(env.tmpdir, f"obs-{len(os.listdir(env.tmpdir))}.db")
    handler = ObsHandler(path, **options, queue=Queue(handle_sigterm=False))
    return Setup([handler], flush=handler.flush, close=handler.close, extra={"handler": handler})


def _obs_sqlite_langsmith(env: Env) -> Setup:
    return _obs_sqlite(env, sinks=[LangSmith(_langsmith_client(env), project_name="bench")])


NONE = "no callbacks"
RUN_COLLECTOR = "RunCollector"
TRACER = "LangChainTracer"
OBS = "ObsHandler (SQLite)"
OBS_MIRROR = "ObsHandler + LangSmith mirror"

#: name -> factory.  The first entry is the baseline every added cost is measured against.
CONFIGS: dict[str, Callable[[Env], Setup]] = {
    NONE: lambda env: Setup([]),
    "no-op handler": _noop,
    "no-op handler (run_inline)": _noop_inline,
    RUN_COLLECTOR: _run_collector,
    TRACER: _langchain_tracer,
    OBS: _obs_sqlite,
    "ObsHandler (null sink)": _obs_null,  # diagnostic: the SQLite writer's share of OBS
    OBS_MIRROR: _obs_sqlite_langsmith,
}

#: (config, reference, target): the config's added cost must be <= target x the reference's.
TARGETS: list[tuple[str, str, float]] = [
    (OBS, RUN_COLLECTOR, 1.0),
    (OBS, TRACER, 0.3),
    (OBS_MIRROR, TRACER, 0.6),
]


# -- the LangSmith stand-in --------------------------------------------------------------------


@contextmanager
def langsmith_stub(lifetime: float = 1800.0, zstd: bool = True) -> Iterator[str]:
    """Start `_langsmith_stub.py` in a child process; yield its base URL; stop it."""
    command = [sys.executable, os.path.join(HERE, "_langsmith_stub.py")]
    command += ["--lifetime", str(lifetime), *([] if zstd else ["--no-zstd"])]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the LangSmith stand-in did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        if proc.stdin:
            proc.stdin.close()  # the stub ends its loop at EOF
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stub_stats(url: str) -> dict[str, Any]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/__stats", timeout=5) as response:
        return json.load(response)


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Sample:
    loop: float  # seconds for the round's invokes
    flush: float  # seconds for the flush after them


def count_runs(graph: Any, asynchronous: bool) -> tuple[int, dict[str, int]]:
    counter = CountingHandler()
    config = {"callbacks": [counter]}
    if asynchronous:
        asyncio.run(graph.ainvoke(agent_input(), config))
    else:
        graph.invoke(agent_input(), config)
    return counter.runs, counter.by_kind


def _timed_flush(setup: Setup) -> float:
    if setup.flush is None:
        return 0.0
    start = time.perf_counter()
    setup.flush()
    return time.perf_counter() - start


def measure_sync(
    graph: Any, setups: dict[str, Setup], rounds: int, invokes: int, warmup: int
) -> dict[str, list[Sample]]:
    names = list(setups)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for name in names:
        config = {"callbacks": setups[name].callbacks}
        for _ in range(warmup):
            graph.invoke(agent_input(), config)
        _timed_flush(setups[name])
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        if index % 2:
            order.reverse()
        for name in order:
            setup = setups[name]
            config = {"callbacks": setup.callbacks}
            if setup.reset:
                setup.reset()
            gc.collect()
            start = time.perf_counter()
            for _ in range(invokes):
                graph.invoke(agent_input(), config)
            loop = time.perf_counter() - start
            samples[name].append(Sample(loop, _timed_flush(setup)))
    return samples


async def _measure_async(
    graph: Any, setups: dict[str, Setup], rounds: int, invokes: int, warmup: int
) -> dict[str, list[Sample]]:
    names = list(setups)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for name in names:
        config = {"callbacks": setups[name].callbacks}
        for _ in range(warmup):
            await graph.ainvoke(agent_input(), config)
        _timed_flush(setups[name])
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        if index % 2:
            order.reverse()
        for name in order:
            setup = setups[name]
            config = {"callbacks": setup.callbacks}
            if setup.reset:
                setup.reset()
            gc.collect()
            start = time.perf_counter()
            for _ in range(invokes):
                await graph.ainvoke(agent_input(), config)
            loop = time.perf_counter() - start
            # A blocking flush is fine here: nothing else runs on the loop meanwhile.
            samples[name].append(Sample(loop, _timed_flush(setup)))
    return samples


def measure_async(
    graph: Any, setups: dict[str, Setup], rounds: int, invokes: int, warmup: int
) -> dict[str, list[Sample]]:
    return asyncio.run(_measure_async(graph, setups, rounds, invokes, warmup))


# -- reporting ---------------------------------------------------------------------------------


def summarize(
    samples: dict[str, list[Sample]], invokes: int, runs: int
) -> dict[str, dict[str, float]]:
    """Per config: medians of per-invoke time and of per-run added cost (paired by round)."""
    base = samples[NONE]
    result: dict[str, dict[str, float]] = {}
    for name, rows in samples.items():
        added = [(s.loop - b.loop) / invokes / runs * 1e6 for s, b in zip(rows, base, strict=True)]
        added_flush = [
            (s.loop + s.flush - b.loop - b.flush) / invokes / runs * 1e6
            for s, b in zip(rows, base, strict=True)
        ]
        result[name] = {
            "ms": median(s.loop for s in rows) / invokes * 1e3,
            "added": median(added),
            "flush_ms": median(s.flush for s in rows) * 1e3,
            "added_flush": median(added_flush),
        }
    return result


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else float("nan")


def report(title: str, summary: dict[str, dict[str, float]], runs: int) -> None:
    print(f"\n## {title}  ({runs} callback runs per invoke)\n")
    rc, lct = summary.get(RUN_COLLECTOR), summary.get(TRACER)
    rows = []
    for name, s in summary.items():
        rows.append(
            [
                name,
                f"{s['ms']:.3f}",
                "-" if name == NONE else f"{s['added']:.1f}",
                f"{s['flush_ms']:.2f}" if s["flush_ms"] else "-",
                "-" if name == NONE else f"{s['added_flush']:.1f}",
                f"{_ratio(s['added'], rc['added']):.2f}" if rc and name != NONE else "-",
                f"{_ratio(s['added'], lct['added']):.2f}" if lct and name != NONE else "-",
                f"{_ratio(s['added_flush'], lct['added_flush']):.2f}"
                if lct and name != NONE
                else "-",
            ]
        )
    print_table(
        [
            "config",
            "ms/invoke",
            "added µs/run",
            "flush ms",
            "incl. flush µs/run",
            "x RunCollector",
            "x Tracer",
            "x Tracer incl. flush",
        ],
        rows,
    )
    print()
    for config, reference, target in TARGETS:
        if config in summary and reference in summary:
            # The measure: persistence included, until flush() returns.
            incl = _ratio(summary[config]["added_flush"], summary[reference]["added_flush"])
            loop = _ratio(summary[config]["added"], summary[reference]["added"])
            verdict = "met" if incl <= target else "MISSED"
            print(
                f"target: {config} added cost incl. flush <= {target:.1f}x {reference}'s: "
                f"measured {incl:.2f}x ({verdict}); invoke loop alone {loop:.2f}x"
            )


# -- profiling ---------------------------------------------------------------------------------


def profile(graph: Any, setup: Setup, invokes: int, top: int, out: str | None) -> None:
    """cProfile ``invokes`` sync invokes (main thread only: the writer thread is not seen)."""
    config = {"callbacks": setup.callbacks}
    for _ in range(20):
        graph.invoke(agent_input(), config)
    if setup.flush:
        setup.flush()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(invokes):
        graph.invoke(agent_input(), config)
    profiler.disable()
    if out:
        profiler.dump_stats(out)
        print(f"profile written to {out}")
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n## cProfile: {invokes} sync invokes, {total:.2f} s profiled (main thread)\n")
    for sort, label in (("cumulative", "cumulative"), ("tottime", "self time")):
        entries = []
        for (filename, line, func), (_cc, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if "lc_observe" in filename:
                short = filename.split("lc_observe/", 1)[-1]
                entries.append((f"{short}:{line} {func}", calls, tottime, cumtime))
        key = 3 if sort == "cumulative" else 2
        entries.sort(key=lambda e: e[key], reverse=True)
        print(f"lc_observe functions by {label}:")
        print_table(
            ["function", "calls", "self ms", "cum ms", "cum µs/invoke"],
            [
                [name, calls, f"{tt * 1e3:.1f}", f"{ct * 1e3:.1f}", f"{ct / invokes * 1e6:.1f}"]
                for name, calls, tt, ct in entries[:top]
            ],
        )
        print()


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (< 60 s, for CI)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5 / 20)")
    parser.add_argument("--invokes", type=int, help="invokes per config per round (20 / 60)")
    parser.add_argument(
        "--configs", help="comma-separated subset of: " + ", ".join(CONFIGS), default=None
    )
    parser.add_argument("--no-async", action="store_true", help="sync invoke only")
    parser.add_argument(
        "--langsmith-no-zstd", action="store_true", help="stand-in offers no zstd compression"
    )
    parser.add_argument("--profile", metavar="CONFIG", help="cProfile one config instead")
    parser.add_argument("--profile-out", help="also dump the profile to this file")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 20)
    invokes = args.invokes or (20 if args.quick else 60)
    warmup = 5 if args.quick else 20
    names = [n.strip() for n in args.configs.split(",")] if args.configs else list(CONFIGS)
    if NONE not in names:
        names.insert(0, NONE)
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}")

    graph = build_agent()
    zstd = not args.langsmith_no_zstd
    with tempfile.TemporaryDirectory() as tmpdir, langsmith_stub(zstd=zstd) as url:
        env = Env(tmpdir=tmpdir, langsmith_url=url)
        if args.profile:
            setup = CONFIGS[args.profile](env)
            profile(graph, setup, args.invokes or 500, 30, args.profile_out)
            if setup.close:
                setup.close()
            return
        started = time.perf_counter()
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; rounds={rounds}, ")
        print(f"invokes per config per round={invokes}, warm-up={warmup}; medians over rounds")
        modes: list[tuple[str, bool]] = [("sync invoke", False)]
        if not args.no_async:
            modes.append(("async ainvoke", True))
        for title, asynchronous in modes:
            runs, by_kind = count_runs(graph, asynchronous)
            print(f"\n{title}: {runs} callback runs per invoke {by_kind}")
            setups = {name: CONFIGS[name](env) for name in names}
            measure = measure_async if asynchronous else measure_sync
            samples = measure(graph, setups, rounds, invokes, warmup)
            report(title, summarize(samples, invokes, runs), runs)
            for name, setup in setups.items():
                handler = setup.extra.get("handler")
                if setup.close:
                    setup.close()
                if handler is not None:
                    stats = handler.stats
                    print(
                        f"{name}: written={stats['written']} dropped={stats['dropped']} "
                        f"failed={stats['failed']} internal_errors={stats['internal_errors']}"
                    )
        seen = stub_stats(url)
        print(f"\nLangSmith stand-in received: {seen['requests']} ({seen['bytes']:,} bytes)")
        print(f"total time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
