"""LangGraph's own record of a run, and the comparison of lc_observe's branch events with it.

The truth comes from LangGraph alone, never from lc_observe:

- ``stream_mode="debug"`` with ``subgraphs=True``: every task LangGraph started (id, name,
  step, triggers, namespace) and whether it succeeded (``task_result``: error, interrupts);
- the checkpointer's saved writes per task: ``branch:to:X`` channels and ``Send`` packets
  (``__pregel_tasks``) are where each task sent the graph;
- the compiled graphs' fixed edges (``builder.edges``), whose writes are not decisions, and
  their conditional edges (``builder.branches``): one decision per edge per successful task.

`Truth.check(store, trace_ids)` returns a list of human-readable mismatches (empty when
lc_observe's events are exact) and a tally for the closing table.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from langgraph.constants import END
from langgraph.types import Send

from lc_observe import TraceStore

MODES = ("invoke", "ainvoke", "stream", "astream")
_TASKS = "__pregel_tasks"
_BRANCH = "branch:to:"
_STREAM_MODES = ["messages", "updates", "debug"]


@dataclass
class Task:
    id: str
    name: str
    ns: tuple[str, ...]  # enclosing subgraph nodes, task ids stripped
    ns_ids: tuple[str, ...]  # the enclosing tasks' ids
    step: int | None
    ok: bool = False


@dataclass
class Truth:
    graph: Any
    extra_graphs: dict[tuple[str, ...], Any] = field(default_factory=dict)  # ns -> graph
    tasks: dict[str, Task] = field(default_factory=dict)
    run_tasks: list[list[Task]] = field(default_factory=list)  # the tasks of each run

    # -- collecting --------------------------------------------------------------------------

    def run(self, input: Any, config: dict[str, Any], mode: str = "invoke") -> Any:
        """Run the graph in ``mode`` with the debug stream on; returns the chunks."""
        kwargs = {"subgraphs": True}
        if mode == "invoke":
            chunks = self.graph.invoke(input, config, stream_mode="debug", **kwargs)
        elif mode == "ainvoke":
            chunks = asyncio.run(self.graph.ainvoke(input, config, stream_mode="debug", **kwargs))
        elif mode == "stream":
            chunks = list(self.graph.stream(input, config, stream_mode=_STREAM_MODES, **kwargs))
        elif mode == "astream":

            async def consume() -> list[Any]:
                stream = self.graph.astream(input, config, stream_mode=_STREAM_MODES, **kwargs)
                return [chunk async for chunk in stream]

            chunks = asyncio.run(consume())
        else:
            raise ValueError(f"unknown mode {mode!r}")
        self.run_tasks.append([])
        for chunk in chunks:
            self._observe(chunk)
        return chunks

    def _observe(self, chunk: Any) -> None:
        if len(chunk) == 3:
            ns, stream_mode, event = chunk
            if stream_mode != "debug":
                return
        else:
            ns, event = chunk
        payload = event.get("payload") or {}
        if event.get("type") == "task":
            names = tuple(part.split(":", 1)[0] for part in ns if not part.isdigit())
            ids = tuple(part.split(":", 1)[1] for part in ns if ":" in part)
            task = Task(payload["id"], payload["name"], names, ids, event.get("step"))
            self.tasks[task.id] = task  # a task resumed after an interrupt keeps its id
            self.run_tasks[-1].append(task)
        elif event.get("type") == "task_result":
            task = self.tasks.get(payload["id"])
            if task is not None:
                task.ok = not payload.get("error") and not payload.get("interrupts")

    # -- LangGraph's decisions ---------------------------------------------------------------

    def _graphs(self) -> dict[tuple[str, ...], Any]:
        graphs = {(): self.graph, **self.extra_graphs}
        for prefix, graph in [((), self.graph), *self.extra_graphs.items()]:
            for name, sub in graph.get_subgraphs(recurse=True):
                graphs[(*prefix, *name.split("|"))] = sub
        return graphs

    def saved_writes(self, thread_id: str) -> dict[str, list[tuple[str, Any]]]:
        """Per task id, the writes the checkpointer saved (all namespaces, all runs)."""
        writes: dict[str, list[tuple[str, Any]]] = {}
        start_tasks: set[str] = set()
        saver = self.graph.checkpointer
        for tup in saver.list({"configurable": {"thread_id": thread_id}}):
            for task_id, channel, value in tup.pending_writes or ():
                writes.setdefault(task_id, []).append((channel, value))
                if (tup.metadata or {}).get("source") == "input":
                    start_tasks.add(task_id)
        ns_of = {task.id: task for task in self.tasks.values()}
        for task_id in start_tasks - set(ns_of):
            # The hidden __start__ task is not in the debug stream: its writes are those of
            # the "input" checkpoint.  Its namespace is that of the checkpoint's graph.
            self.tasks[task_id] = Task(task_id, "__start__", (), (), -1, ok=True)
        return writes

    def decisions(self, thread_id: str) -> dict[str, Counter]:
        """Per successful task: the destinations it chose (fixed edges taken out)."""
        graphs = self._graphs()
        writes = self.saved_writes(thread_id)
        self._place_start_tasks(thread_id)
        out: dict[str, Counter] = {}
        for task_id, task_writes in writes.items():
            task = self.tasks.get(task_id)
            if task is None or not task.ok:
                continue
            graph = graphs.get(task.ns)
            edges = graph.builder.edges if graph is not None else ()
            fixed = Counter(end for start, end in edges if start == task.name)  # START too
            chosen: Counter = Counter()
            for channel, value in task_writes:
                if channel.startswith(_BRANCH):
                    chosen[channel[len(_BRANCH) :]] += 1
                elif channel == _TASKS and isinstance(value, Send):
                    chosen[value.node] += 1
            chosen.subtract(fixed)
            out[task_id] = +chosen
        return out

    def _place_start_tasks(self, thread_id: str) -> None:
        """A __start__ task belongs to the namespace of the checkpoint that saved it."""
        saver = self.graph.checkpointer
        for tup in saver.list({"configurable": {"thread_id": thread_id}}):
            ns = tup.config["configurable"].get("checkpoint_ns", "")
            if (tup.metadata or {}).get("source") != "input" or not ns:
                continue
            parts = [p for p in ns.split("|") if not p.isdigit()]
            for task_id, _, _ in tup.pending_writes or ():
                task = self.tasks.get(task_id)
                if task is not None and task.name == "__start__":
                    task.ns = tuple(p.split(":", 1)[0] for p in parts)
                    task.ns_ids = tuple(p.split(":", 1)[1] for p in parts if ":" in p)

    def expected_conditionals(self, task: Task) -> int:
        graph = self._graphs().get(task.ns)
        if graph is None:
            return 0
        return len(graph.builder.branches.get(task.name, {}))

    def paths(self) -> list[list[str]]:
        """Per run, the nodes LangGraph ran, ordered as `TraceStore.path` documents."""
        return [self._path(tasks) for tasks in self.run_tasks]

    def _path(self, run_tasks: list[Task]) -> list[str]:
        tasks = [t for t in run_tasks if t.name != "__start__"]
        by_id = {t.id: t for t in self.tasks.values()}

        def key(task: Task) -> tuple:
            chain = [by_id[i] for i in task.ns_ids if i in by_id] + [task]
            return tuple((t.step, t.name, t.id) for t in chain)

        return ["/".join([*t.ns, t.name]) for t in sorted(tasks, key=key)]

    # -- the comparison ----------------------------------------------------------------------

    def check(self, store: TraceStore, thread_id: str) -> Report:
        """Compare every branch event in ``store`` with LangGraph's decisions."""
        truth = self.decisions(thread_id)
        report = Report(made=sum(sum(c.values()) for c in truth.values()))
        recorded: dict[str, Counter] = {}
        conditionals: Counter = Counter()
        for event in store.branches():
            report.events += 1
            if event.error is not None:
                report.problems.append(f"routing error recorded: {event.error}")
                continue
            task_id = _writer_task(event)
            task = self.tasks.get(task_id)
            if task is None or not task.ok:
                report.problems.append(
                    f"event for a task LangGraph did not complete: {event.source} "
                    f"{event.destinations}"
                )
                continue
            if not event.destinations:
                report.problems.append(f"no destinations: {event.source} {event.result!r}")
            if event.kind in ("conditional_edge", "send"):
                conditionals[task_id] += 1
            counter = recorded.setdefault(task_id, Counter())
            for dest in event.destinations:
                if dest != END:
                    counter[dest] += 1
        for task_id in set(truth) | set(recorded):
            want, got = truth.get(task_id, Counter()), recorded.get(task_id, Counter())
            if want != got:
                task = self.tasks.get(task_id)
                name = "/".join([*task.ns, task.name]) if task else task_id
                report.problems.append(
                    f"{name}: LangGraph went to {dict(want)}, recorded {dict(got)}"
                )
        for task in self.tasks.values():
            if task.ok:
                want_n, got_n = self.expected_conditionals(task), conditionals[task.id]
                report.conditionals += want_n
                if want_n != got_n:
                    report.problems.append(
                        f"{'/'.join([*task.ns, task.name])} step {task.step}: "
                        f"{want_n} conditional decision(s), {got_n} recorded"
                    )
        report.decisions = report.conditionals + sum(
            1 for e in store.branches() if e.kind in ("command", "handoff") and e.error is None
        )
        return report


@dataclass
class Report:
    made: int  # destinations LangGraph wrote for decisions (fixed edges excluded; END none)
    events: int = 0
    conditionals: int = 0  # conditional decisions LangGraph made (one per edge per task)
    decisions: int = 0
    problems: list[str] = field(default_factory=list)


def _writer_task(event: Any) -> str:
    """The task whose saved writes hold this decision: the deciding node's task, or for a
    handoff the enclosing subgraph node's task LangGraph applied it to."""
    parts = [p for p in (event.checkpoint_ns or "").split("|") if p and not p.isdigit()]
    if event.kind == "handoff":
        parts = parts[:-1]
    return parts[-1].split(":", 1)[1] if parts else ""
