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
- ratios of the added cost to RunCollector's and to LangChainTracer's, with the targets
  (`TARGETS`, issue 26) and their verdicts, met or MISSED;
- deliveries: records written by every ObsHandler configuration, runs the LangSmith
  stand-in received per configuration, spans the OTel exporters received (a mismatch
  ends the script with status 1).

Then, unless ``--no-stages`` / ``--no-tail``:

- the CPU time per stage of the pipeline, in µs per callback run, sync and async
  (`_stages.py`; the FTS index's share from a side measurement without its triggers);
- the time of one callback on the app thread: p50, p99, p99.9 and max, normally, with a
  worker busy on a 5 MB payload and with a stalled sink (`_tail.py`).

LangChainTracer and the LangSmith mirror send to a loopback stand-in of the LangSmith API
started by this script in a child process (``_langsmith_stub.py``: 127.0.0.1 only, bounded
lifetime); each configuration's client has a path prefix of its own there, so the runs
each one delivered are counted apart.  "ObsHandler + OTLP" and "OpenInference" export to an
OpenTelemetry ``InMemorySpanExporter`` behind a ``BatchSpanProcessor``-like worker: ours
behind lc_observe's OTLP destination, OpenInference's behind the SDK's
``BatchSpanProcessor`` of its ``TracerProvider``.  OpenInference instruments globally (it
patches ``BaseCallbackManager.__init__`` so that every callback manager gets its tracer):
its configuration calls ``LangChainInstrumentor().instrument()`` before each of its
blocks and ``uninstrument()`` after it (untimed), so the other configurations never see it.

    python benchmarks/overhead.py --quick          # < 90 s, for CI
    python benchmarks/overhead.py                  # full: more rounds and invokes
    python benchmarks/overhead.py --quick --json out.json   # also the figures as JSON
    python benchmarks/overhead.py --profile "ObsHandler (SQLite)"   # cProfile, sync

A new configuration is one entry in `_configs.CONFIGS`: a name and a function that returns
a `Setup`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _stages
import _tail
from _common import (
    CountingHandler,
    agent_input,
    build_agent,
    median,
    print_profile,
    print_table,
)
from _configs import (
    CONFIGS,
    NONE,
    RUN_COLLECTOR,
    TARGETS,
    TRACER,
    Env,
    Setup,
    client_name,
    langsmith_client,
    langsmith_stub,
    memory_exporter,
    obs_sqlite,
    stub_stats,
    target_key,
)

from lc_observe import OTLP, LangSmith

# OpenInference calls a method LangChain deprecated, once per model run.
warnings.filterwarnings("ignore", message=r"Calling \.text\(\) as a method is deprecated")

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


def _order(names: list[str], index: int) -> list[str]:
    """Round ``index``'s order: rotated by one each round, reversed every other round."""
    order = names[index % len(names) :] + names[: index % len(names)]
    return order[::-1] if index % 2 else order


def _invoker(graph: Any, asynchronous: bool) -> Callable[[dict[str, Any], int], None]:
    """A function running ``n`` invokes of ``graph`` with a config: ``invoke`` on this
    thread, or ``ainvoke`` on one event loop kept for the whole measurement."""
    if not asynchronous:

        def run(config: dict[str, Any], n: int) -> None:
            for _ in range(n):
                graph.invoke(agent_input(), config)

        return run
    loop = asyncio.new_event_loop()

    async def many(config: dict[str, Any], n: int) -> None:
        for _ in range(n):
            await graph.ainvoke(agent_input(), config)

    return lambda config, n: loop.run_until_complete(many(config, n))


def _block(run: Callable[[dict[str, Any], int], None], setup: Setup, invokes: int) -> Sample:
    """One timed block of invokes, then the timed flush (blocking also in async mode:
    nothing else runs on the loop meanwhile)."""
    if setup.enter:
        setup.enter()
    try:
        gc.collect()
        start = time.perf_counter()
        run({"callbacks": setup.callbacks}, invokes)
        loop = time.perf_counter() - start
        return Sample(loop, _timed_flush(setup))
    finally:
        if setup.exit:
            setup.exit()


def measure(
    graph: Any,
    setups: dict[str, Setup],
    rounds: int,
    invokes: int,
    warmup: int,
    asynchronous: bool,
) -> dict[str, list[Sample]]:
    """Interleaved rounds: every round a block of ``invokes`` of each configuration."""
    run = _invoker(graph, asynchronous)
    names = list(setups)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for name in names:
        _block(run, setups[name], warmup)
    for index in range(rounds):
        for name in _order(names, index):
            setup = setups[name]
            if setup.reset:
                setup.reset()
            samples[name].append(_block(run, setup, invokes))
    return samples


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


def report(
    title: str, summary: dict[str, dict[str, float]], runs: int
) -> dict[str, dict[str, Any]]:
    """Print the table of one mode and the targets' verdicts; return the latter."""
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
    return check_targets(summary)


def check_targets(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Print each target's ratio and verdict; return them by `target_key`."""
    results: dict[str, dict[str, Any]] = {}
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
            results[target_key(config, reference)] = {
                "ratio": incl,
                "loop_ratio": loop,
                "target": target,
                "met": incl <= target,
            }
    return results


# -- deliveries --------------------------------------------------------------------------------


def check_deliveries(setups: dict[str, Setup], stub: dict[str, Any], invokes: int) -> bool:
    """Print what every configuration delivered; False if two that must agree do not:
    the records written by every ObsHandler, the runs the LangSmith stand-in received from
    LangChainTracer and from the mirror (equal numbers of invokes ran through each)."""
    print(f"\ndeliveries ({invokes} invokes per configuration):")
    written: dict[str, int] = {}
    runs: dict[str, int] = {}
    for name, setup in setups.items():
        handler, client = setup.extra.get("handler"), setup.extra.get("langsmith")
        parts = []
        if handler is not None:
            stats = handler.stats
            written[name] = stats["written"]
            parts.append(
                f"written={stats['written']} dropped={stats['dropped']} failed={stats['failed']}"
            )
            for label in ("langsmith", "otlp"):
                if label in stats:
                    mirror = {k: v for k, v in stats[label].items() if k != "last_error"}
                    parts.append(f"{label}: {mirror}")
        if client is not None:
            runs[name] = stub.get("clients", {}).get(client, {}).get("runs", 0)
            parts.append(f"LangSmith stand-in received {runs[name]} runs")
        if "spans" in setup.extra:
            parts.append(f"OTel exporter received {setup.extra['spans']()} spans")
        if parts:
            print(f"  {name}: " + "; ".join(parts))
    ok = True
    for label, counts in (("records written", written), ("LangSmith runs received", runs)):
        if len(set(counts.values())) > 1:
            ok = False
            print(f"  MISMATCH: {label} differ between configurations: {counts}")
        elif counts:
            print(f"  {label}: equal ({next(iter(counts.values()))} each)")
    if runs and not all(runs.values()):
        ok = False
        print("  MISMATCH: a LangSmith configuration delivered no runs")
    return ok


# -- CPU per stage -----------------------------------------------------------------------------

ALL = "all destinations"
SQLITE_ONLY = "SQLite only"
NO_FTS = "SQLite, FTS triggers dropped"
FTS_ROW = "writer: of which the FTS index (side measurement)"
APP_ROW = "app threads, all in: their CPU - with no callbacks"
APP_ALONE_ROW = "app threads, all in, SQLite only: their CPU - with no callbacks"
GC_ROW = "app threads: of which garbage collection (wall) - with no callbacks"
#: the threads of the application: the caller's, and the executor's that runs sync nodes
#: (and their callbacks) under ``ainvoke``
APP_THREADS = ("MainThread", "asyncio", "ThreadPoolExecutor")


def _stage_setups(env: Env) -> dict[str, Setup]:
    """The configurations of the stage breakdown: every destination at once (every stage
    shows), and the SQLite file alone with and without the full-text index's triggers."""
    exporter, _spans, _clear = memory_exporter()
    name = client_name(env, "stages")
    sinks = [LangSmith(langsmith_client(env, name), project_name="bench"), OTLP(exporter=exporter)]
    no_fts = obs_sqlite(env)
    conn = sqlite3.connect(no_fts.extra["handler"].db_path)
    with conn:
        for trigger in ("spans_fts_insert", "spans_fts_delete", "spans_fts_update"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.close()
    return {
        NONE: Setup([]),
        ALL: obs_sqlite(env, sinks=sinks),
        SQLITE_ONLY: obs_sqlite(env),
        NO_FTS: no_fts,
    }


def stage_breakdown(graph: Any, env: Env, invokes: int, runs: int, asynchronous: bool) -> dict:
    """CPU µs per callback run: per stage (of `ALL`, the FTS row from `SQLITE_ONLY` -
    `NO_FTS`) and per thread (of `ALL` and of no callbacks)."""
    run = _invoker(graph, asynchronous)
    stage_s: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    thread_s: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    gc_s: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    done: dict[str, int] = defaultdict(int)
    meter = _stages.Meter()
    blocks = [NONE, ALL, SQLITE_ONLY, NO_FTS, NO_FTS, SQLITE_ONLY, ALL, NONE]
    # Handlers built after the wrapping: they keep bound methods (the privacy stage's).
    with _stages.installed(meter):
        setups = _stage_setups(env)
        for setup in setups.values():  # warm-up, unmeasured
            run({"callbacks": setup.callbacks}, 10)
            _timed_flush(setup)
        for name in blocks:
            setup = setups[name]
            gc.collect()
            meter.reset()
            before = _stages.thread_cpu()
            with _stages.collecting(_stages.GcMeter()) as collections:
                run({"callbacks": setup.callbacks}, invokes)
                _timed_flush(setup)
            for thread, seconds in _stages.thread_deltas(before, _stages.thread_cpu()).items():
                thread_s[name][thread] += seconds
            for thread, seconds in collections.seconds.items():
                gc_s[name][thread] += seconds
            for stage, seconds in meter.exclusive().items():
                stage_s[name][stage] += seconds
            done[name] += invokes
        for setup in setups.values():
            if setup.close:
                setup.close()

    def per_run(seconds: float, name: str) -> float:
        return seconds / (done[name] * runs) * 1e6

    stages = {stage: per_run(stage_s[ALL][stage], ALL) for stage, _ in _stages.STAGES}
    insert = "writer: SQLite insert + commit (FTS included)"
    stages[FTS_ROW] = per_run(stage_s[SQLITE_ONLY][insert], SQLITE_ONLY) - per_run(
        stage_s[NO_FTS][insert], NO_FTS
    )
    threads = {t: per_run(v, ALL) for t, v in thread_s[ALL].items()}
    baseline = {t: per_run(v, NONE) for t, v in thread_s[NONE].items()}
    stages[APP_ROW] = sum(threads.get(t, 0.0) - baseline.get(t, 0.0) for t in APP_THREADS)
    alone = {t: per_run(v, SQLITE_ONLY) for t, v in thread_s[SQLITE_ONLY].items()}
    stages[APP_ALONE_ROW] = sum(alone.get(t, 0.0) - baseline.get(t, 0.0) for t in APP_THREADS)
    stages[GC_ROW] = sum(
        per_run(gc_s[ALL].get(t, 0.0), ALL) - per_run(gc_s[NONE].get(t, 0.0), NONE)
        for t in APP_THREADS
    )
    return {
        "stages": stages,
        "threads": threads,
        "baseline": baseline,
        "missing": meter.missing,
        "bias": meter.bias,
    }


def report_stages(results: dict[str, dict], invokes: int) -> None:
    """Print the stage and thread tables (columns: the modes)."""
    modes = list(results)
    first = results[modes[0]]
    print(
        f"\n## CPU per stage, µs per callback run ({ALL}: SQLite + LangSmith mirror + OTLP; "
        f"{invokes} invokes x2 per mode)\n"
    )
    rows = [[stage, *(results[m]["stages"][stage] for m in modes)] for stage, _ in _stages.STAGES]
    rows.append([FTS_ROW, *(results[m]["stages"][FTS_ROW] for m in modes)])
    rows.append(
        [
            "total of the stages above (FTS row excluded)",
            *(sum(results[m]["stages"][s] for s, _ in _stages.STAGES) for m in modes),
        ]
    )
    rows.append([APP_ROW, *(results[m]["stages"][APP_ROW] for m in modes)])
    rows.append([GC_ROW, *(results[m]["stages"][GC_ROW] for m in modes)])
    rows.append([APP_ALONE_ROW, *(results[m]["stages"][APP_ALONE_ROW] for m in modes)])
    print_table(["stage", *modes], [[r[0], *(f"{v:.1f}" for v in r[1:])] for r in rows])
    if first["missing"]:
        print(f"not measured (renamed in lc_observe?): {', '.join(first['missing'])}")
    print(f"measuring cost subtracted: {first['bias'] * 1e6:.2f} µs per wrapped call")
    print(f"\n## CPU per thread, µs per callback run ({ALL}, and with no callbacks)\n")
    names = sorted({t for m in modes for key in ("threads", "baseline") for t in results[m][key]})
    columns = [(m, key) for m in modes for key in ("threads", "baseline")]
    print_table(
        ["thread", *(m if key == "threads" else f"{m}, no callbacks" for m, key in columns)],
        [[t, *(f"{results[m][key].get(t, 0.0):.1f}" for m, key in columns)] for t in names],
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
    print_profile(stats, invokes, "invoke", top)


# -- main --------------------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (< 90 s, for CI)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5 / 20)")
    parser.add_argument("--invokes", type=int, help="invokes per config per round (20 / 60)")
    parser.add_argument(
        "--configs", help="comma-separated subset of: " + ", ".join(CONFIGS), default=None
    )
    parser.add_argument("--no-async", action="store_true", help="sync invoke only")
    parser.add_argument("--no-stages", action="store_true", help="skip the CPU per stage")
    parser.add_argument("--no-tail", action="store_true", help="skip the callback tail times")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH (JSON)")
    parser.add_argument(
        "--reference-block",
        action="store_true",
        help="end with the targets' ratios as benchmarks/README.md's reference block",
    )
    parser.add_argument(
        "--langsmith-no-zstd", action="store_true", help="stand-in offers no zstd compression"
    )
    parser.add_argument("--profile", metavar="CONFIG", help="cProfile one config instead")
    parser.add_argument("--profile-out", help="also dump the profile to this file")
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",")] if args.configs else list(CONFIGS)
    if NONE not in names:
        names.insert(0, NONE)
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}")
    args.names = names
    return args


def run_mode(
    graph: Any, env: Env, names: list[str], rounds: int, invokes: int, warmup: int
) -> tuple[dict[str, Any], bool]:
    """The overhead table, the targets and the deliveries of one mode (sync or async)."""
    asynchronous = env.mode == "async"
    title = "async ainvoke" if asynchronous else "sync invoke"
    runs, by_kind = count_runs(graph, asynchronous)
    print(f"\n{title}: {runs} callback runs per invoke {by_kind}")
    setups = {name: CONFIGS[name](env) for name in names}
    samples = measure(graph, setups, rounds, invokes, warmup, asynchronous)
    summary = summarize(samples, invokes, runs)
    targets = report(title, summary, runs)
    for setup in setups.values():
        if setup.flush:
            setup.flush()
    delivered = check_deliveries(setups, stub_stats(env.langsmith_url), warmup + rounds * invokes)
    for setup in setups.values():
        if setup.close:
            setup.close()
    return {"runs": runs, "summary": summary, "targets": targets}, delivered


def main() -> None:
    args = _arguments()
    rounds = args.rounds or (5 if args.quick else 20)
    invokes = args.invokes or (20 if args.quick else 60)
    warmup = 5 if args.quick else 20
    stage_invokes = 40 if args.quick else 200
    tail_invokes = 60 if args.quick else 500
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
        modes = ["sync"] if args.no_async else ["sync", "async"]
        figures: dict[str, Any] = {"quick": args.quick, "modes": {}}
        delivered = True
        for mode in modes:
            env = Env(tmpdir=tmpdir, langsmith_url=url, mode=mode)
            figures["modes"][mode], ok = run_mode(graph, env, args.names, rounds, invokes, warmup)
            delivered = delivered and ok
            print(f"({time.perf_counter() - started:.0f} s so far)")
        if not args.no_stages:
            runs = figures["modes"]["sync"]["runs"]
            stages = {
                mode: stage_breakdown(
                    graph, Env(tmpdir, url, f"stages-{mode}"), stage_invokes, runs, mode == "async"
                )
                for mode in modes
            }
            report_stages(stages, stage_invokes)
            figures["stages"] = stages
            print(f"({time.perf_counter() - started:.0f} s so far)")
        if not args.no_tail:
            figures["tail"] = _tail.measure(tail_invokes)
        seen = stub_stats(url)
        print(f"\nLangSmith stand-in received: {seen['requests']} ({seen['bytes']:,} bytes)")
        figures["deliveries_ok"] = delivered
        figures["seconds"] = time.perf_counter() - started
        print(f"total time {figures['seconds']:.1f} s")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1, default=str)
    if args.reference_block:
        print_reference_block(figures)
    if not delivered:
        print("DELIVERY MISMATCH: see the deliveries above", file=sys.stderr)
        sys.exit(1)


def print_reference_block(figures: dict[str, Any]) -> None:
    """Print the targets' ratios (flush included) as README's reference block."""
    ratios = {
        mode: {name: round(target["ratio"], 2) for name, target in data["targets"].items()}
        for mode, data in figures["modes"].items()
    }
    print("\n<!-- reference-ratios -->\n```json")
    print(json.dumps({"ratios": ratios}, indent=2))
    print("```")


if __name__ == "__main__":
    main()
