"""Print, per scenario and run mode, what LangGraph decided and what lc_observe recorded.

    python -m tests.branch_table [MODE ...]

Columns: LangGraph's decisions (one per conditional edge per successful task, plus the
commands and handoffs it applied), the destinations it wrote, lc_observe's events, and the
mismatches the ground-truth comparison found (wrong or missing; must be 0).
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from lc_observe import ObsHandler, TraceStore
from tests.ground_truth import MODES, Truth
from tests.scenarios import SCENARIOS


def main(modes: list[str]) -> int:
    print(f"{'scenario':<58} {'mode':<8} {'decisions':>9} {'writes':>6} {'events':>6} {'wrong':>5}")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for key, build in SCENARIOS.items():
            for mode in modes:
                scenario = build()
                db = Path(tmp) / f"{key}-{mode}.db"
                handler = ObsHandler(db)
                truth = Truth(scenario.graph, scenario.extra_graphs)
                thread = str(uuid.uuid4())
                config = {"configurable": {"thread_id": thread}, "callbacks": [handler]}
                for run_input in scenario.runs:
                    truth.run(run_input, {**config, "recursion_limit": 60}, mode)
                handler.close()
                store = TraceStore(db)
                report = truth.check(store, thread)
                paths = [
                    store.path(t.trace_id)
                    for t in sorted(store.traces(), key=lambda t: t.start_time)
                ]
                wrong = len(report.problems) + (paths != truth.paths())
                bad += wrong
                print(
                    f"{scenario.name:<58} {mode:<8} {report.decisions:>9} {report.made:>6} "
                    f"{report.events:>6} {wrong:>5}"
                )
                for problem in report.problems:
                    print(f"    {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(MODES)))
