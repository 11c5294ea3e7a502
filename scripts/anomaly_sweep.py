"""False positives of `TraceStore.anomalies` on real runs of the support graph.

For each seed, `lc_observe.demo_drift.record_drift` records 240 stable tickets and then 100
more with nothing changed; every anomaly found in the recent window (by model, graph_node
and name, every kind, wall-clock latency and TTFT included) is a false positive.

    PYTHONPATH=. python scripts/anomaly_sweep.py [--seeds 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone

from lc_observe import TraceStore
from lc_observe.demo_drift import record_drift

WALL_CLOCK = ("latency_degradation", "ttft_degradation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    windows = flagged = clock = 0
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "stable.db")
            split = record_drift(db, baseline=240, recent=100, seed=1000 + seed)
            end = datetime.now(timezone.utc) + timedelta(seconds=1)
            with TraceStore(db) as store:
                for by in ("model", "graph_node", "name"):
                    windows += 1
                    found = store.anomalies(since=split, until=end, baseline="1h", by=by)
                    flagged += bool(found)
                    clock += any(a.kind in WALL_CLOCK for a in found)
                    for anomaly in found:
                        print(f"seed {seed} by {by}: {anomaly.explanation}")
    print(
        f"{args.seeds} seeds, {windows} stable windows: anomalies in {flagged} "
        f"({flagged / windows:.1%}; wall-clock kinds in {clock}); "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
