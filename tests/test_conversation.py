"""Message-aware rendering: what the HTML views and the text tree show of a real agent run
is the conversation LangChain itself recorded (RunCollectorCallbackHandler)."""

from __future__ import annotations

import html
import re

from langchain_core.load import load
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from lc_observe import ObsHandler
from lc_observe.conversation import read_span
from lc_observe.views.payload import span_html
from lc_observe.views.tree import format_conversation, row_preview
from tests.agents import ScriptedChatModel, call, turns
from tests.scenarios import create_agent_tools


def _run_agent(handler: ObsHandler) -> RunCollectorCallbackHandler:
    scenario = create_agent_tools()
    collector = RunCollectorCallbackHandler(_schema_format="original+chat")
    for inputs in scenario.runs:
        scenario.graph.invoke(
            inputs, {"callbacks": [collector, handler], "configurable": {"thread_id": "t"}}
        )
    return collector


def _all_runs(runs):
    for run in runs:
        yield run
        yield from _all_runs(run.child_runs)


def test_views_show_the_messages_and_tool_calls_langchain_recorded(handler, read_store) -> None:
    collector = _run_agent(handler)
    store = read_store()
    runs = {str(r.id): r for r in _all_runs(collector.traced_runs)}
    models = store.spans(kind="chat_model")
    assert len(models) == 3
    for span in models:
        run = runs[span.span_id]
        # what the framework passed to the model and got back, revived as messages
        sent = load(run.inputs["messages"][0], allowed_objects="messages")
        answer = load(run.outputs["generations"][0][0]["message"], allowed_objects="messages")
        payload = read_span(span)
        [conversation] = [p for p in payload.inputs if p.kind == "messages"]
        assert [m.text for m in conversation.messages] == [m.content for m in sent]
        assert [m.role for m in conversation.messages] == [m.type for m in sent]
        [out] = payload.outputs
        calls = [(c.name, c.args, c.id) for c in out.messages[0].tool_calls]
        assert calls == [(c["name"], c["args"], c["id"]) for c in answer.tool_calls]
        page = html.unescape(re.sub(r"<[^>]+>", " ", span_html(span)))
        for call_ in answer.tool_calls:  # each tool call card: name, arguments and id
            assert call_["name"] in page and call_["id"] in page
        for message in sent:
            assert message.content in page
        gist = row_preview(span)  # the tree row's one-line preview: question and answer
        assert sent[-1].content in gist
        assert all(f"{c['name']}(" in gist for c in answer.tool_calls)
        assert answer.content in gist
    # the last model call saw the tool results; each sits in the card of its call
    last = span_html(models[-1])
    assert last.count('class="lco-call"') == 3 and last.count("lco-call-result") == 3
    tools = store.spans(kind="tool")
    for span in tools:
        run = runs[span.span_id]
        assert row_preview(span).startswith(f"{span.name}(")
        assert str(load(run.outputs["output"], allowed_objects="messages").content) in row_preview(
            span
        )
    # bookkeeping folded: langgraph_* keys sit inside a closed <details>
    detail = span_html(models[0])
    shown, folded = detail.split("LangGraph/LangChain metadata")
    assert "langgraph_step" in folded and "langgraph_step" not in shown
    assert "raw JSON" in detail and "<script" not in detail and "<dl" not in detail


def test_show_prints_the_conversation(handler, read_store) -> None:
    _run_agent(handler)
    store = read_store()
    trace = store.traces()[0]
    text = format_conversation(store.spans(trace_id=trace.trace_id))
    assert "human: go" in text
    assert "⇒ ai: → add(a=1, b=2), lookup(term='x')" in text
    assert "call add(a=3, b=4)" in text and "⇒ tool add: 7" in text
    assert "⇒ ai: done: 3, 7" in text
    assert "earlier messages (--full shows them)" in text
    full = format_conversation(store.spans(trace_id=trace.trace_id), full=True)
    assert "earlier messages" not in full and len(full) > len(text)


def test_hostile_text_renders_as_text(handler, read_store) -> None:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    model = ScriptedChatModel(script=turns(("", [call("echo", text=evil)]), (evil, [])))
    agent = create_agent(model, [echo])
    agent.invoke({"messages": [("human", evil)]}, {"callbacks": [handler]})
    store = read_store()
    trace = store.traces()[0]
    page = store.view(trace.trace_id).to_html()
    assert "<script" not in page and "<img" not in page
    assert html.escape(evil, quote=True) in page
    for span in store.spans(trace_id=trace.trace_id):
        assert "<script" not in span_html(span)
