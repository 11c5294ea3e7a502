"""How long an LLM-judge batch and the heuristic checks take over 100 stored traces.

The app is `lc_observe.demo`'s agent (router, calculator tool or retriever, a streaming fake
model), run 100 times; the judge is `lc_observe.testing.FakeJudge`, which answers instantly
(``--delay`` adds seconds per call, to see the concurrency limit at work).  What is timed is
lc_observe's own work: reading each trace back, building the prompts, LangChain's batch
machinery, tracing the judge's runs into the same file, reading the verdicts and writing
the scores.  A real judge model adds its own latency per call, divided by the concurrency.

    python benchmarks/judge.py                    # 100 traces, 2 criteria, structured output
    python benchmarks/judge.py --traces 500 --free-text --delay 0.05 --concurrency 8
    python benchmarks/judge.py --db quality.db    # keep the database (lc-observe scores ...)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

for _name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
    os.environ[_name] = "false"

from lc_observe import ObsHandler, Runs, TraceStore  # noqa: E402
from lc_observe.demo import QUESTIONS, build_graph, fake_model  # noqa: E402
from lc_observe.evaluate import contains, evaluate, judge, max_length, refusal  # noqa: E402
from lc_observe.testing import FakeJudge  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per judge call")
    parser.add_argument("--free-text", action="store_true", help="no with_structured_output")
    parser.add_argument("--db", help="database to write (default: a temporary file)")
    args = parser.parse_args()
    db = args.db or os.path.join(tempfile.mkdtemp(), "judge.db")

    graph = build_graph(fake_model(token_delay=0.0))
    started = time.perf_counter()
    with ObsHandler(db, runs=Runs(graphs=[graph])) as handler:
        for i in range(args.traces):
            question = QUESTIONS[i % len(QUESTIONS)]
            meta = {"expected": "42"} if "6 * 7" in question else {}
            config = {"callbacks": [handler], "metadata": meta, "run_id": uuid.uuid4()}
            graph.invoke({"question": question}, config)
    recorded = time.perf_counter() - started
    store = TraceStore(db)

    started = time.perf_counter()
    checks = evaluate(store, evaluators=[max_length(200), refusal(), contains()])
    heuristics = time.perf_counter() - started

    model = FakeJudge(
        structured=not args.free_text,
        delay=args.delay,
        model_name="gpt-4o-mini",
        provider="openai",
    )
    report = judge(
        store,
        model=model,
        criteria=["correctness", "relevance"],
        max_concurrency=args.concurrency,
    )
    mode = "free text" if args.free_text else "structured output"
    print(f"recorded {args.traces} app traces in {recorded:.2f} s")
    print(f"heuristics: {len(checks.results)} verdicts in {heuristics:.2f} s")
    print(
        f"judge ({mode}, max_concurrency={args.concurrency}, delay={args.delay}s): "
        f"{report.calls} calls in {report.elapsed_s:.2f} s "
        f"({report.elapsed_s / max(1, report.calls) * 1000:.1f} ms per call), "
        f"most calls in flight at once: {model.max_in_flight}"
    )
    print(report)
    print(f"database: {db}")


if __name__ == "__main__":
    main()
