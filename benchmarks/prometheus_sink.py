"""Writer cost the Prometheus sink adds per span.

The support graph of `lc_observe.demo_drift` runs ``--tickets`` times with a capturing
sink, so the batches are exactly what the writer thread hands to every sink (span records,
branch records).  Then the same batches are exported, ``--repeats`` times each, to

- a `SQLiteSink` (what the writer does anyway), and
- a `PrometheusSink` (what ``ObsHandler(prometheus=True)`` adds),

and the median time per span is printed.  The callback path is not involved: the sink
runs on the writer thread only.

    PYTHONPATH=. python benchmarks/prometheus_sink.py [--tickets 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from lc_observe import ObsHandler, Queue
from lc_observe.demo_drift import PRICES, Knobs, build_graph, run_tickets
from lc_observe.records import RECORD_SPAN
from lc_observe.sinks.sqlite import SQLiteSink

for _name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
    os.environ[_name] = "false"


class Capture:
    """A sink that keeps every batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def export(self, batch: Sequence[Any]) -> int:
        self.batches.append(list(batch))
        return len(batch)

    def close(self) -> None:
        pass


def capture(tickets: int, batch_size: int) -> list[list[Any]]:
    sink = Capture()
    knobs = Knobs(seed=1, first_token_delay=0.0, answer_delay=0.0, error_rate=0.05)
    handler = ObsHandler(
        None, sinks=[sink], prices=PRICES, queue=Queue(batch_size=batch_size, handle_sigterm=False)
    )
    run_tickets(build_graph(knobs), handler, tickets)
    handler.close()
    return sink.batches


def timed(make_sink: Any, batches: list[list[Any]], repeats: int) -> list[float]:
    """Seconds per run of exporting every batch to a fresh sink, ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        sink = make_sink()
        work = copy.deepcopy(batches)  # sinks may not change records, but be safe
        start = time.perf_counter()
        for batch in work:
            sink.export(batch)
        runs.append(time.perf_counter() - start)
        sink.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    import prometheus_client

    from lc_observe.sinks.prometheus import PrometheusSink

    batches = capture(args.tickets, args.batch_size)
    spans = sum(kind == RECORD_SPAN for batch in batches for kind, _ in batch)
    records = sum(len(batch) for batch in batches)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))

        def sqlite_sink() -> SQLiteSink:
            return SQLiteSink(os.path.join(tmp, f"bench{next(counter)}.db"))

        sqlite_runs = timed(sqlite_sink, batches, args.repeats)
    prom_runs = timed(
        lambda: PrometheusSink(prometheus_client.CollectorRegistry()), batches, args.repeats
    )
    sqlite_us = statistics.median(sqlite_runs) / spans * 1e6
    prom_us = statistics.median(prom_runs) / spans * 1e6
    print(f"{args.tickets} tickets: {spans} spans, {records} records in {len(batches)} batches")
    print(f"{'sink':<18} {'us / span (median of ' + str(args.repeats) + ')':>28}")
    print(f"{'SQLiteSink':<18} {sqlite_us:>28.2f}")
    print(f"{'PrometheusSink':<18} {prom_us:>28.2f}")
    share = prom_us / sqlite_us
    print(
        f"Prometheus adds {prom_us:.2f} us of writer time per span ({share:.0%} of the "
        "SQLite sink's), on the writer thread only."
    )


if __name__ == "__main__":
    main()
