"""ObsHandler records exactly the run tree LangChain's own RunCollectorCallbackHandler sees."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from lc_observe import ObsHandler, Queue, TraceStore

from .runs import (
    add,
    branching_graph,
    chat_chain,
    nested_lambdas,
    parallel_chain,
    retriever,
    run_tree,
    span_tree,
)


def _sync(method: str, payload: Any) -> Callable[[Any, dict], Any]:
    def run(runnable: Any, config: dict) -> Any:
        result = getattr(runnable, method)(payload, config)
        return list(result) if method == "stream" else result

    return run


def _async(method: str, payload: Any) -> Callable[[Any, dict], Any]:
    async def consume(runnable: Any, config: dict) -> Any:
        if method == "astream":
            return [chunk async for chunk in runnable.astream(payload, config)]
        return await getattr(runnable, method)(payload, config)

    return lambda runnable, config: asyncio.run(consume(runnable, config))


Q = {"q": "hi"}
MODES: dict[str, tuple[Callable[[], Any], Callable[[Any, dict], Any]]] = {
    "invoke": (chat_chain, _sync("invoke", Q)),
    "ainvoke": (chat_chain, _async("ainvoke", Q)),
    "stream": (chat_chain, _sync("stream", Q)),
    "astream": (chat_chain, _async("astream", Q)),
    "batch": (chat_chain, _sync("batch", [Q, {"q": "there"}])),
    "abatch": (chat_chain, _async("abatch", [Q, {"q": "there"}])),
    "parallel": (parallel_chain, _sync("invoke", 3)),
    "parallel-async": (parallel_chain, _async("ainvoke", 3)),
    "nested-lambdas": (nested_lambdas, _sync("invoke", 1)),
    "tool": (lambda: add, _sync("invoke", {"a": 1, "b": 2})),
    "retriever": (retriever, _sync("invoke", "apples please")),
    "graph-invoke": (branching_graph, _sync("invoke", {"n": 20})),
    "graph-stream": (branching_graph, _sync("stream", {"n": 3})),
    "graph-ainvoke": (branching_graph, _async("ainvoke", {"n": 20})),
    "graph-astream": (branching_graph, _async("astream", {"n": 3})),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_tree_matches_langchain_run_collector(mode: str, handler: ObsHandler, read_store) -> None:
    build, execute = MODES[mode]
    collector = RunCollectorCallbackHandler(_schema_format="original+chat")
    execute(build(), {"callbacks": [collector, handler]})

    spans = read_store().spans()
    expected = run_tree(collector.traced_runs)
    assert expected  # the collector saw runs; a bare tool or retriever is one run
    assert span_tree(spans) == expected
    # trace ids: every span carries its root's run id
    roots = {str(run.id) for run in collector.traced_runs}
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        root = span
        while root.parent_id is not None:
            root = by_id[root.parent_id]
        assert span.trace_id == root.span_id
        assert root.span_id in roots
        assert span.status == "ok"
        assert span.end_time is not None and span.latency_ms is not None
        assert span.latency_ms >= 0


def test_chain_error_recorded_and_reraised_unchanged(handler: ObsHandler, read_store) -> None:
    boom = ValueError("boom")

    def fail(x: int) -> int:
        raise boom

    chain = RunnableLambda(lambda x: x + 1, name="before") | RunnableLambda(fail, name="fail")
    collector = RunCollectorCallbackHandler(_schema_format="original+chat")
    with pytest.raises(ValueError) as caught:
        chain.invoke(1, {"callbacks": [collector, handler]})
    assert caught.value is boom

    spans = {s.name: s for s in read_store().spans()}
    assert span_tree(list(spans.values())) == run_tree(collector.traced_runs)
    assert spans["before"].status == "ok" and spans["before"].error is None
    for name in ("fail", "RunnableSequence"):
        span = spans[name]
        assert span.status == "error"
        assert span.error is not None
        assert span.error.type == "ValueError" and span.error.message == "boom"
        assert "raise boom" in (span.error.traceback or "")
    trace = read_store().traces()[0]
    assert trace.status == "error" and trace.error_count == 2 and trace.span_count == 3


def test_graph_nodes_are_spans_under_the_graph(handler: ObsHandler, read_store) -> None:
    graph = branching_graph()
    result = graph.invoke({"n": 20}, {"callbacks": [handler]})
    assert result["trail"] == ["check", "big"]

    store = read_store()
    trace = store.traces()[0]
    spans = store.spans(trace_id=trace.trace_id)
    root = next(s for s in spans if s.parent_id is None)
    assert root.name == "LangGraph" and trace.graph_name == "LangGraph" and trace.is_graph
    nodes = [s for s in spans if s.parent_id == root.span_id]
    assert [(n.name, n.graph_node, n.graph_step) for n in nodes] == [
        ("check", "check", 1),
        ("big", "big", 2),
    ]
    tool_span = next(s for s in spans if s.kind == "tool")
    assert tool_span.name == "add" and tool_span.parent_id == nodes[1].span_id
    assert tool_span.inputs == {"a": 20, "b": 1}
    assert tool_span.outputs == {"output": 21}
    assert trace.span_count == len(spans)


def test_inputs_outputs_tags_metadata_and_ids(db_path) -> None:
    obs = ObsHandler(
        db_path, user_id="u1", session_id="s1", tags=["svc"], metadata={"env": "test", "k": 1}
    )
    chain = chat_chain(["pong"])
    config = {"callbacks": [obs], "tags": ["run-tag"], "metadata": {"k": 2}}
    assert chain.invoke({"q": "ping"}, config) == "pong"
    chain.invoke({"q": "ping"}, {"callbacks": [obs], "metadata": {"user_id": "u2", "thread_id": 7}})
    obs.close()

    store = TraceStore(db_path)
    second, first = store.traces()
    assert (first.user_id, first.session_id) == ("u1", "s1")
    assert "svc" in first.tags and "run-tag" in first.tags
    assert first.metadata["env"] == "test" and first.metadata["k"] == 2  # run metadata wins
    assert (second.user_id, second.session_id) == ("u2", "7")
    spans = {s.kind: s for s in store.spans(trace_id=first.trace_id)}
    assert spans["chain"].inputs == {"q": "ping"}
    assert spans["chain"].outputs == {"output": "pong"}
    assert spans["prompt"].name == "ChatPromptTemplate"
    chat = spans["chat_model"]
    assert chat.inputs["messages"][0][0]["content"] == "ping"
    assert chat.outputs["generations"][0][0]["text"] == "pong"
    assert all("svc" in s.tags and s.user_id == "u1" for s in spans.values())
    assert store.traces(user_id="u2")[0].trace_id == second.trace_id
    assert store.traces(tag="run-tag")[0].trace_id == first.trace_id


def test_shared_handler_across_threads(handler: ObsHandler, read_store) -> None:
    chain = nested_lambdas()
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(25):
                assert (
                    chain.invoke(offset + i, {"callbacks": [handler]}) == (offset + i + 1) * 2 - 1
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _assert_complete_traces(read_store(), expected_traces=200, spans_per_trace=4)


async def test_shared_handler_across_asyncio_tasks(handler: ObsHandler, read_store) -> None:
    graph = branching_graph()

    async def one(n: int) -> dict:
        return await graph.ainvoke({"n": n}, {"callbacks": [handler]})

    results = await asyncio.gather(*(one(n) for n in range(60)))
    assert [r["trail"][-1] for r in results] == ["small" if n <= 10 else "big" for n in range(60)]
    assert await handler.aflush(10)
    store = read_store()
    traces = store.traces(limit=1000)
    assert len(traces) == 60
    for trace in traces:
        spans = store.spans(trace_id=trace.trace_id)
        assert len(spans) == trace.span_count
        ids = {s.span_id for s in spans}
        assert all(s.parent_id in ids for s in spans if s.parent_id is not None)


def _assert_complete_traces(store: TraceStore, expected_traces: int, spans_per_trace: int) -> None:
    traces = store.traces(limit=10_000)
    assert len(traces) == expected_traces
    spans = store.spans()
    assert len(spans) == expected_traces * spans_per_trace
    by_trace: dict[str, list] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for trace in traces:
        group = by_trace[trace.trace_id]
        ids = {s.span_id for s in group}
        assert len(group) == spans_per_trace == trace.span_count
        assert sum(s.parent_id is None for s in group) == 1
        assert all(s.parent_id in ids for s in group if s.parent_id is not None)


class _Blocked:
    """A sink whose writes wait until released (to hold the queue full)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.items: list = []
        self.threads: set[str] = set()

    def export(self, batch) -> int:
        self.threads.add(threading.current_thread().name)
        self.release.wait(10)
        self.items.extend(batch)
        return len(batch)

    def close(self) -> None:
        pass


def test_queue_full_drops_are_counted_and_never_block() -> None:
    sink = _Blocked()
    sink.release.set()
    obs = ObsHandler(
        None, sinks=[sink], queue=Queue(max_size=10, batch_size=1000, schedule_delay=60)
    )
    chain = nested_lambdas()
    for i in range(5):  # 4 runs each -> 20 records, only 10 fit
        chain.invoke(i, {"callbacks": [obs]})
    stats = obs.stats
    assert stats["enqueued"] == 10 and stats["dropped"] == 10 and stats["queued"] == 10
    assert obs.flush(10)
    assert obs.stats["written"] == 10 and len(sink.items) == 10
    # Each sink runs on its destination's own worker, never the app's thread.
    assert sink.threads == {"lc_observe-_Blocked"}
    obs.close()


def test_flush_timeout_returns_false_while_sink_is_stuck() -> None:
    sink = _Blocked()
    obs = ObsHandler(None, sinks=[sink], queue=Queue(schedule_delay=0.01))
    RunnableLambda(lambda x: x).invoke(1, {"callbacks": [obs]})
    assert obs.flush(timeout=0.2) is False
    sink.release.set()
    assert obs.flush(timeout=10) is True
    assert obs.stats["written"] == 1
    obs.close()


def test_handler_is_a_callback_handler_that_runs_inline() -> None:
    assert issubclass(ObsHandler, BaseCallbackHandler)
    assert ObsHandler.run_inline is True  # async runs call it on the loop, no executor hop
    with pytest.raises(ValueError, match="needs at least one sink"):
        ObsHandler(None)


def test_context_manager_closes_and_later_runs_are_counted_as_dropped(db_path) -> None:
    with ObsHandler(db_path) as obs:
        RunnableLambda(lambda x: x).invoke(1, {"callbacks": [obs]})
    assert TraceStore(db_path).traces()[0].name == "RunnableLambda"
    RunnableLambda(lambda x: x).invoke(1, {"callbacks": [obs]})
    assert obs.stats["dropped"] == 1
