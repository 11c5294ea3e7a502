"""Cost of lc_observe's LangGraph branch hook per routing decision.

Times LangGraph's own ``BranchSpec._finish`` (the point where a routing result becomes
destinations) against the wrapped one, called the way LangGraph calls it from a node: with
a config whose callback manager is the node run's child manager.  Three callers:

- no callbacks at all (a graph run without any handler);
- a foreign handler only (a graph run traced by something else);
- an ObsHandler whose node run is open (the decision is recorded).

Prints µs per decision (medians of interleaved rounds) and the added cost of each.

    python benchmarks/branch_hook.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from langgraph.graph._branch import BranchSpec
from langgraph.types import Send

from benchmarks._common import print_table
from lc_observe import ObsHandler, Queue
from lc_observe.capture import langgraph_hook


def _config(handlers: list[Any], parent: uuid.UUID | None) -> dict[str, Any]:
    manager = CallbackManager(handlers=handlers, parent_run_id=parent) if handlers else None
    config: dict[str, Any] = {"configurable": {"__pregel_send": lambda writes: None}}
    if manager is not None:
        config["callbacks"] = manager
    return config


def _writer(packets: list[Any], static: bool = False) -> list[Any]:
    from langgraph.pregel._write import ChannelWriteEntry

    return [
        p if isinstance(p, Send) else ChannelWriteEntry(f"branch:to:{p}", None) for p in packets
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI)")
    args = parser.parse_args()
    calls, rounds = (2_000, 5) if args.quick else (20_000, 15)

    assert langgraph_hook.install(), "the hook is not active on this LangGraph"
    wrapped = BranchSpec._finish
    original = wrapped.__wrapped__
    spec = BranchSpec.from_path(lambda state: "b", {"b": "b", "c": "c"})

    handler = ObsHandler(None, sinks=[_NullSink()], queue=Queue(handle_sigterm=False))
    node_run = uuid.uuid4()
    # An open node run, as the handler holds it while LangGraph runs the node.
    handler.on_chain_start(
        {"name": "a"},
        {},
        run_id=node_run,
        tags=["graph:step:1"],
        metadata={"langgraph_node": "a", "langgraph_step": 1, "langgraph_checkpoint_ns": "a:1"},
        name="a",
    )
    record = handler._runs[node_run.int]

    callers = {
        "no callbacks": _config([], None),
        "foreign handler only": _config([BaseCallbackHandler()], node_run),
        "ObsHandler (recorded)": _config([handler], node_run),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for caller, config in callers.items():
            for label, finish in (("LangGraph", original), ("with hook", wrapped)):
                start = time.perf_counter()
                for _ in range(calls):
                    finish(spec, _writer, {}, "b", config)
                elapsed = time.perf_counter() - start
                samples.setdefault((caller, label), []).append(elapsed / calls * 1e6)
                record.pop("_decisions", None)  # the node never ends here: keep it small
    rows = []
    for caller in callers:
        base = statistics.median(samples[(caller, "LangGraph")])
        hooked = statistics.median(samples[(caller, "with hook")])
        rows.append([caller, f"{base:.2f}", f"{hooked:.2f}", f"{hooked - base:+.2f}"])
    print(f"BranchSpec._finish, {calls} calls x {rounds} interleaved rounds (medians)")
    print_table(["caller", "LangGraph µs", "with hook µs", "added µs/decision"], rows)
    handler.close()


class _NullSink:
    def export(self, batch: Any) -> int:
        return len(batch)

    def close(self) -> None:
        pass


if __name__ == "__main__":
    main()
