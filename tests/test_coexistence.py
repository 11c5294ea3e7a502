"""Other handlers see exactly what they see without lc_observe (issue: never change the app).

For every runnable kind x execution mode x place of the ObsHandler, the same execution runs
twice, without and with an ObsHandler, and what every other observer received is compared:

- ``RunCollectorCallbackHandler`` (LangChain's own in-memory tracer),
- ``LangChainTracer`` sending to the loopback LangSmith stand-in (a real ``langsmith.Client``),
- a sync and an async user handler recording every callback,
- ``astream_events`` / ``astream_log`` consumers and graph stream modes (the stream itself),
- the application's own result.

Run ids are fresh each execution, so every record is compared with UUIDs and clock values
taken out, each run named by its path of names from the root; order is compared within a
run (callbacks of one run are ordered), not across runs (parallel branches interleave
differently from one execution to the next with or without lc_observe).

``python -m tests.test_coexistence [--unhooked]`` prints the kind x mode table (with
``--unhooked``: without lc_observe's fix of the async LLM-start dispatch, i.e. as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM, FakeStreamingListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, Queue
from lc_observe.testing import LangSmithStandIn

from .loopback import langsmith_client

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
_VOLATILE = re.compile(r'"(start_time|end_time|time|timestamp|dotted_order|trace_id)": [^,}]+')


def canon(value: Any) -> str:
    """``value`` as JSON text with run ids, checkpoint ids and clock values blanked."""
    text = json.dumps(value, default=repr, sort_keys=True)
    text = _VOLATILE.sub(r'"\1": "<t>"', text)
    text = _UUID.sub("<id>", text)
    return _TIME.sub("<t>", text)


# -- the runnables ------------------------------------------------------------------------------


class Docs(BaseRetriever):
    """Two documents about the query."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=f"{query} {i}", metadata={"i": i}) for i in range(2)]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class State(TypedDict, total=False):
    q: str
    a: str
    done: str


def build_graph() -> Any:
    chat = FakeListChatModel(responses=["go on", "finish"])
    llm = FakeListLLM(responses=["done"])

    def think(state: State) -> State:
        return {"a": chat.invoke(state["q"]).content}

    async def athink(state: State) -> State:
        return {"a": (await chat.ainvoke(state["q"])).content}

    def finish(state: State) -> State:
        return {"done": llm.invoke(state["a"])}

    async def afinish(state: State) -> State:
        return {"done": await llm.ainvoke(state["a"])}

    def route(state: State) -> str:
        return "finish" if state["a"] else END

    builder = StateGraph(State)
    builder.add_node("think", RunnableLambda(think, afunc=athink, name="think"))
    builder.add_node("finish", RunnableLambda(finish, afunc=afinish, name="finish"))
    builder.add_edge(START, "think")
    builder.add_conditional_edges("think", route, ["finish", END])
    builder.add_edge("finish", END)
    return builder.compile(name="agent")


def _boom(_: Any) -> None:
    raise ValueError("boom")


#: kind -> (a factory of a fresh runnable, two inputs)
KINDS: dict[str, tuple[Callable[[], Any], list[Any]]] = {
    "llm": (lambda: FakeListLLM(responses=["alpha", "beta"]), ["q1", "q2"]),
    "streaming_llm": (lambda: FakeStreamingListLLM(responses=["ab", "cd"]), ["q1", "q2"]),
    "chat_model": (lambda: FakeListChatModel(responses=["hi", "yo"]), ["q1", "q2"]),
    "chain": (
        lambda: (
            ChatPromptTemplate.from_template("Say {x}")
            | FakeListChatModel(responses=["one", "two"])
            | StrOutputParser()
        ),
        [{"x": "a"}, {"x": "b"}],
    ),
    "parallel": (
        lambda: RunnableParallel(
            llm=PromptTemplate.from_template("{x}") | FakeListLLM(responses=["p", "q"]),
            chat=PromptTemplate.from_template("{x}") | FakeListChatModel(responses=["r", "s"]),
            echo=RunnableLambda(lambda x: x, name="echo"),
        ),
        [{"x": "a"}, {"x": "b"}],
    ),
    "tool": (lambda: add, [{"a": 1, "b": 2}, {"a": 3, "b": 4}]),
    "retriever": (lambda: Docs(), ["cats", "dogs"]),
    "failing": (lambda: FakeListLLM(responses=["x"]) | RunnableLambda(_boom), ["q1", "q2"]),
    "graph": (build_graph, [{"q": "a"}, {"q": "b"}]),
}
MODES = [
    "invoke",
    "ainvoke",
    "stream",
    "astream",
    "batch",
    "abatch",
    "astream_events",
    "astream_log",
]
GRAPH_MODES = ["stream:updates", "astream:messages", "stream:debug", "astream:values"]
PLACES = ["first", "last", "inherited", "alone"]
TRACER_PLACES = ("last", "inherited")
#: Kinds whose branches run concurrently: their streams interleave differently from one
#: execution to the next (with or without lc_observe), so order is compared as a multiset.
UNORDERED = ("parallel",)


# -- the observers ------------------------------------------------------------------------------


class _Recorder:
    """Every callback a handler receives, per run (name path, ordered events)."""

    def __init__(self) -> None:
        self.names: dict[Any, tuple[str, Any]] = {}  # run_id -> (name, parent_run_id)
        self.events: dict[Any, list[str]] = defaultdict(list)

    def _start(self, name: str, payload: Any, run_id: Any, parent: Any, event: str) -> None:
        self.names[run_id] = (name, parent)
        self.events[run_id].append(f"{event} {canon(payload)}")

    def _event(self, event: str, payload: Any, run_id: Any) -> None:
        self.events[run_id].append(f"{event} {canon(payload)}")

    def path(self, run_id: Any) -> str:
        parts = []
        while run_id in self.names:
            name, run_id = self.names[run_id]
            parts.append(name)
        if run_id is not None:
            parts.append("<unknown run>")
        return "/".join(reversed(parts)) or "<never started>"

    def summary(self) -> list[str]:
        return sorted(f"{self.path(rid)}: {events}" for rid, events in self.events.items())


def _name(serialized: Any, kwargs: dict[str, Any]) -> str:
    return kwargs.get("name") or (serialized or {}).get("name") or "?"


class SyncUser(BaseCallbackHandler, _Recorder):
    def __init__(self) -> None:
        _Recorder.__init__(self)

    def on_chain_start(self, s: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None,
                       **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), inputs, run_id, parent_run_id, "chain_start")

    def on_llm_start(self, s: Any, prompts: Any, *, run_id: Any, parent_run_id: Any = None,
                     **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), prompts, run_id, parent_run_id, "llm_start")

    def on_chat_model_start(self, s: Any, messages: Any, *, run_id: Any,
                            parent_run_id: Any = None, **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), messages, run_id, parent_run_id, "chat_start")

    def on_tool_start(self, s: Any, text: Any, *, run_id: Any, parent_run_id: Any = None,
                      **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), text, run_id, parent_run_id, "tool_start")

    def on_retriever_start(self, s: Any, query: Any, *, run_id: Any,
                           parent_run_id: Any = None, **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), query, run_id, parent_run_id, "retriever_start")

    def on_llm_new_token(self, token: str, *, run_id: Any, **kw: Any) -> None:
        self._event("token", token, run_id)

    def on_llm_end(self, response: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("llm_end", response, run_id)

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("chain_end", outputs, run_id)

    def on_tool_end(self, output: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("tool_end", output, run_id)

    def on_retriever_end(self, docs: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("retriever_end", docs, run_id)

    def on_chain_error(self, error: BaseException, *, run_id: Any, **kw: Any) -> None:
        self._event("chain_error", repr(error), run_id)

    def on_llm_error(self, error: BaseException, *, run_id: Any, **kw: Any) -> None:
        self._event("llm_error", repr(error), run_id)


class AsyncUser(AsyncCallbackHandler, _Recorder):
    def __init__(self) -> None:
        _Recorder.__init__(self)

    async def on_chain_start(self, s: Any, inputs: Any, *, run_id: Any,
                             parent_run_id: Any = None, **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), inputs, run_id, parent_run_id, "chain_start")

    async def on_llm_start(self, s: Any, prompts: Any, *, run_id: Any,
                           parent_run_id: Any = None, **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), prompts, run_id, parent_run_id, "llm_start")

    async def on_chat_model_start(self, s: Any, messages: Any, *, run_id: Any,
                                  parent_run_id: Any = None, **kw: Any) -> None:  # fmt: skip
        self._start(_name(s, kw), messages, run_id, parent_run_id, "chat_start")

    async def on_llm_new_token(self, token: str, *, run_id: Any, **kw: Any) -> None:
        self._event("token", token, run_id)

    async def on_llm_end(self, response: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("llm_end", response, run_id)

    async def on_chain_end(self, outputs: Any, *, run_id: Any, **kw: Any) -> None:
        self._event("chain_end", outputs, run_id)

    async def on_chain_error(self, error: BaseException, *, run_id: Any, **kw: Any) -> None:
        self._event("chain_error", repr(error), run_id)


def _run_summary(runs: list[dict[str, Any]]) -> list[str]:
    """LangChain run dicts (RunCollector's or what LangSmith received) by name path."""
    by_id = {str(run["id"]): run for run in runs}

    def path(run: dict[str, Any]) -> str:
        parts = [run["name"]]
        parent = run.get("parent_run_id")
        while parent is not None and str(parent) in by_id:
            run = by_id[str(parent)]
            parts.append(run["name"])
            parent = run.get("parent_run_id")
        if parent is not None:
            parts.append("<unknown parent>")
        return "/".join(reversed(parts))

    rows = []
    for run in runs:
        extra = run.get("extra") or {}
        row = {
            "type": run.get("run_type"),
            "inputs": run.get("inputs"),
            "outputs": run.get("outputs"),
            "error": (run.get("error") or "").split("\n")[0],
            "events": [event.get("name") for event in run.get("events") or ()],
            "tags": sorted(run.get("tags") or ()),
            "metadata": extra.get("metadata"),
            "child_count": len(run.get("child_runs") or ()),
        }
        rows.append(f"{path(run)}: {canon(row)}")
    return sorted(rows)


def _collected(collector: RunCollectorCallbackHandler) -> list[dict[str, Any]]:
    """Every run RunCollector holds, the children flattened out of their parents."""
    out: list[dict[str, Any]] = []

    def walk(run: Any) -> None:
        out.append(run.model_dump())
        for child in run.child_runs:
            walk(child)

    for run in collector.traced_runs:
        walk(run)
    return out


def _events_summary(events: list[dict[str, Any]], ordered: bool = True) -> list[str]:
    """``astream_events`` events per run, by name path, in their order within the run
    (sorted when not ``ordered``: parallel branches stream in whatever order they finish)."""
    names: dict[str, str] = {}
    parents: dict[str, str | None] = {}
    per_run: dict[str, list[str]] = defaultdict(list)
    for event in events:
        run_id = event["run_id"]
        names.setdefault(run_id, event["name"])
        parents.setdefault(run_id, event["parent_ids"][-1] if event["parent_ids"] else None)
        per_run[run_id].append(f"{event['event']} {canon(event.get('data'))}")

    def path(run_id: str) -> str:
        parts = []
        current: str | None = run_id
        while current is not None and current in names:
            parts.append(names[current])
            current = parents.get(current)
        return "/".join(reversed(parts))

    return sorted(f"{path(rid)}: {seq if ordered else sorted(seq)}" for rid, seq in per_run.items())


# -- one execution ------------------------------------------------------------------------------


async def _arun(
    target: Any, mode: str, inputs: list[Any], config: dict[str, Any], ordered: bool = True
) -> Any:
    if mode == "ainvoke":
        return await target.ainvoke(inputs[0], config)
    if mode == "abatch":
        return await target.abatch(inputs, config, return_exceptions=True)
    if mode.startswith("astream:"):
        return [c async for c in target.astream(inputs[0], config, stream_mode=mode[8:])]
    if mode == "astream":
        return [chunk async for chunk in target.astream(inputs[0], config)]
    if mode == "astream_events":
        events = [e async for e in target.astream_events(inputs[0], config)]
        return _events_summary(events, ordered)
    if mode == "astream_log":
        state = None
        async for patch in target.astream_log(inputs[0], config, diff=False):
            state = patch
        logs = {re.sub(r":\d+$", "", k): v for k, v in state.state["logs"].items()}
        return sorted(canon([k, v]) for k, v in logs.items()), canon(state.state["final_output"])
    raise AssertionError(mode)


def _run(
    target: Any, mode: str, inputs: list[Any], config: dict[str, Any], ordered: bool = True
) -> Any:
    if mode == "invoke":
        return target.invoke(inputs[0], config)
    if mode == "batch":
        return target.batch(inputs, config, return_exceptions=True)
    if mode.startswith("stream:"):
        return list(target.stream(inputs[0], config, stream_mode=mode[7:]))
    if mode == "stream":
        return list(target.stream(inputs[0], config))
    return asyncio.run(_arun(target, mode, inputs, config, ordered))


def execute(kind: str, mode: str, place: str, obs: ObsHandler | None, client: Any) -> dict:
    """Run ``kind`` in ``mode`` with every observer (and ``obs`` in ``place``); what each saw."""
    factory, inputs = KINDS[kind]
    target = factory()
    ordered = kind not in UNORDERED
    collector, sync_user, async_user = RunCollectorCallbackHandler(), SyncUser(), AsyncUser()
    project = f"coexist-{uuid.uuid4().hex}"
    tracer = LangChainTracer(client=client, project_name=project)
    # LangChainTracer is inline, and an inline handler changes what LangChain sends the
    # others (async LLM starts): "first" and "alone" run without it, so that the case
    # lc_observe must not create by itself is tested; "last" and "inherited" with it.
    others: list[Any] = [collector, sync_user, async_user]
    if place in TRACER_PLACES:
        others.append(tracer)
    ours = [] if obs is None else [obs]
    if place == "first":
        config = {"callbacks": [*ours, *others]}
    elif place == "last":
        config = {"callbacks": [*others, *ours]}
    elif place == "alone":  # the others bound to the runnable, lc_observe alone at the call
        target = target.with_config(callbacks=others)
        config = {"callbacks": ours}
    else:  # inherited: every handler given to an enclosing run, the target inherits them
        inner, inner_mode = target, mode

        def outer(_: Any, cfg: dict) -> Any:
            return _run(inner, inner_mode, inputs, {**cfg, "max_concurrency": 1}, ordered)

        async def aouter(_: Any, cfg: dict) -> Any:
            cfg = {**cfg, "max_concurrency": 1}
            return await _arun(inner, inner_mode, inputs, cfg, ordered)

        target = RunnableLambda(outer, afunc=aouter, name="outer")
        config = {"callbacks": [*others, *ours]}
        mode = "ainvoke" if mode.startswith("a") else "invoke"
    config["max_concurrency"] = 1
    try:
        output = _run(target, mode, inputs, config, ordered)
        if not ordered and isinstance(output, list):  # streamed chunks of parallel branches
            output = sorted(canon(chunk) for chunk in output)
        result: Any = canon(output)
    except Exception as exc:  # the app's own exception, compared too
        result = f"raised {type(exc).__name__}: {exc}"
    client.flush()
    sent = [run for _, _, run in SERVER.ops if run.get("session_name") == project]
    received = {}
    for run in sorted(sent, key=lambda r: r.get("end_time") is not None):
        received.setdefault(str(run["id"]), {}).update({k: v for k, v in run.items() if v})
    return {
        "result": result,
        "RunCollector": _run_summary(_collected(collector)),
        "LangChainTracer": _run_summary(list(received.values())),
        "sync handler": sync_user.summary(),
        "async handler": async_user.summary(),
    }


SERVER: LangSmithStandIn


@pytest.fixture(scope="module")
def client() -> Any:
    global SERVER
    with LangSmithStandIn(lifetime=600) as server, langsmith_client(server.url) as ls_client:
        SERVER = server
        yield ls_client


def differences(kind: str, mode: str, place: str, client: Any, db: Path) -> list[str]:
    """What any observer saw differently with an ObsHandler attached (empty: nothing)."""
    without = execute(kind, mode, place, None, client)
    obs = ObsHandler(db, queue=Queue(schedule_delay=0.05))
    try:
        with_obs = execute(kind, mode, place, obs, client)
        assert obs.flush(10)
        stats = obs.stats
    finally:
        obs.close()
    # (Beside the inline LangChainTracer, RunCollector misses async LLM runs by itself.)
    observer = "LangChainTracer" if place in TRACER_PLACES else "RunCollector"
    assert without[observer], f"{observer} saw nothing: the comparison would be vacuous"
    diffs = []
    for observer, seen in without.items():
        if with_obs[observer] != seen:
            diffs.append(observer)
            _explain(observer, seen, with_obs[observer])
    if stats["internal_errors"]:
        diffs.append(f"{stats['internal_errors']} internal errors in lc_observe")
    return diffs


def _explain(observer: str, without: Any, with_obs: Any) -> None:
    """Print what differs (pytest shows it with the failure)."""
    import difflib

    lines = difflib.unified_diff(
        [str(x) for x in (without if isinstance(without, list) else [without])],
        [str(x) for x in (with_obs if isinstance(with_obs, list) else [with_obs])],
        "without lc_observe",
        "with lc_observe",
        lineterm="",
        n=0,
    )
    print(f"{observer}:", *(line[:400] for line in lines), sep="\n  ")


def _cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        modes = MODES + (GRAPH_MODES if kind == "graph" else [])
        for mode in modes:
            for place in PLACES:
                # The fast tier: every kind and mode once, lc_observe first; all places in CI.
                marks = () if place == "first" else (pytest.mark.slow,)
                cases.append(pytest.param(kind, mode, place, marks=marks))
    return cases


@pytest.mark.parametrize(("kind", "mode", "place"), _cases())
def test_other_handlers_see_what_they_see_without_us(
    kind: str, mode: str, place: str, client: Any, tmp_path: Path
) -> None:
    assert differences(kind, mode, place, client, tmp_path / "t.db") == []


def test_the_comparison_catches_a_handler_that_changes_what_others_see(
    client: Any, tmp_path: Path
) -> None:
    """Without the dispatch fix, async text-completion LLMs lose their start elsewhere."""
    from lc_observe.capture import llm_start_dispatch

    ObsHandler(None, sinks=[_NullSink()]).close()  # installs the fix
    llm_start_dispatch.uninstall()
    try:
        assert differences("llm", "ainvoke", "first", client, tmp_path / "a.db") == [
            "RunCollector",
            "sync handler",
            "async handler",
        ]
    finally:
        assert llm_start_dispatch.install(force=True)


class _NullSink:
    def export(self, batch: list) -> int:
        return len(batch)


def main(argv: list[str]) -> None:
    """Print the kind x mode table: how many places changed what others saw."""
    import tempfile

    from lc_observe.capture import llm_start_dispatch

    ObsHandler(None, sinks=[_NullSink()]).close()
    if "--unhooked" in argv:
        llm_start_dispatch.uninstall()
    global SERVER
    with (
        LangSmithStandIn(lifetime=3600) as server,
        langsmith_client(server.url) as ls_client,
        tempfile.TemporaryDirectory() as tmp,
    ):
        SERVER = server
        all_modes = MODES + GRAPH_MODES
        print("| kind | " + " | ".join(all_modes) + " |")
        print("|---" * (len(all_modes) + 1) + "|")
        changed = total = 0
        for kind in KINDS:
            cells = []
            for mode in all_modes:
                if mode in GRAPH_MODES and kind != "graph":
                    cells.append("")
                    continue
                bad: Counter[str] = Counter()
                for place in PLACES:
                    total += 1
                    with contextlib.redirect_stdout(io.StringIO()):  # the table only
                        diffs = differences(kind, mode, place, ls_client, Path(tmp) / "t.db")
                    changed += bool(diffs)
                    bad.update(diffs)
                cells.append("ok" if not bad else ", ".join(sorted(bad)))
            print(f"| {kind} | " + " | ".join(cells) + " |")
        print(f"\n{changed} of {total} (kind, mode, place) combinations changed what others saw")


if __name__ == "__main__":
    main(sys.argv[1:])
