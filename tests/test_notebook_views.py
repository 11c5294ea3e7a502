"""Notebook views: HTML structure and escaping, the observed graph, DataFrames, charts.

Every test records real runs (the demo graph, small StateGraphs, fake chat models) and
parses what the views produce with the standard library's HTML parser.
"""

from __future__ import annotations

import operator
import re
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph

from lc_observe import ObsHandler, Runs, TraceStore
from lc_observe.demo import run_demo
from lc_observe.views import GraphView, RecordList, TraceView

HOSTILE = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
QUOTE = "x\" onmouseover=\"alert(1)' onfocus='alert(2)"


class Parsed(HTMLParser):
    """Start tags, attributes, text, span nesting (by open ``<details>``) and waterfall bars."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.span_parent: dict[str, str | None] = {}
        self.declared_parent: dict[str, str | None] = {}
        self.duplicates: list[str] = []
        self.bars: list[dict[str, str | None]] = []
        self._details: list[str | None] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        classes = (attributes.get("class") or "").split()
        if tag == "details":
            span_id = attributes.get("data-span-id") if "lco-span" in classes else None
            if span_id is not None:
                if span_id in self.span_parent:
                    self.duplicates.append(span_id)
                self.span_parent[span_id] = next((s for s in reversed(self._details) if s), None)
                self.declared_parent[span_id] = attributes.get("data-parent-id") or None
            self._details.append(span_id)
        if tag == "span" and "lco-bar" in classes:
            self.bars.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._details.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def attribute_values(self) -> list[str]:
        return [value or "" for _, attrs in self.tags for value in attrs.values()]


def assert_no_injection(markup: str) -> Parsed:
    """No script/img element, no event-handler attribute, one stylesheet at most."""
    parsed = Parsed(markup)
    names = [tag for tag, _ in parsed.tags]
    assert "script" not in names and "img" not in names
    handlers = [key for _, attrs in parsed.tags for key in attrs if key.startswith("on")]
    assert handlers == []
    assert names.count("style") <= 1
    return parsed


# -- recorded runs ---------------------------------------------------------------------------


class State(TypedDict, total=False):
    text: str
    log: Annotated[list[str], operator.add]


def hostile_graph() -> Any:
    """Node names, tags, metadata, inputs, outputs, a routing result and an error, all hostile."""
    model = FakeListChatModel(responses=[f"reply {IMG}"])
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    inner = RunnableLambda(lambda text: text + IMG, name=IMG)

    def first(state: State, config: RunnableConfig) -> State:
        reply = (prompt | model).invoke({"q": state["text"]}, config)
        return {"text": inner.invoke(reply.content, config), "log": [QUOTE]}

    def route(state: State) -> str:
        return QUOTE

    def second(state: State) -> State:
        raise ValueError(f"bad {HOSTILE} {QUOTE}")

    builder = StateGraph(State)
    builder.add_node(HOSTILE, first)
    builder.add_node(QUOTE, second)
    builder.add_edge(START, HOSTILE)
    builder.add_conditional_edges(HOSTILE, route, [QUOTE])
    builder.add_edge(QUOTE, END)
    return builder.compile(name=IMG)


def parallel_graph() -> Any:
    """start -> (left | right, in parallel) -> join."""

    def node(name: str, pause: float) -> Any:
        def run(state: State) -> State:
            time.sleep(pause)
            return {"log": [name]}

        return run

    builder = StateGraph(State)
    builder.add_node("start", node("start", 0.0))
    builder.add_node("left", node("left", 0.03))
    builder.add_node("right", node("right", 0.03))
    builder.add_node("join", node("join", 0.0))
    builder.add_edge(START, "start")
    builder.add_edge("start", "left")
    builder.add_edge("start", "right")
    builder.add_edge(["left", "right"], "join")
    builder.add_edge("join", END)
    return builder.compile(name="parallel")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[TraceStore, list[str]]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    ids = run_demo(str(path), ["What is 6 * 7?", "How does LangGraph route?", "What is 2 + 3?"])
    return TraceStore(path), ids


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[TraceStore, str]:
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    graph = hostile_graph()
    run_id = uuid.uuid4()
    with ObsHandler(path, runs=Runs(graphs=[graph])) as handler:
        config = {
            "callbacks": [handler],
            "run_id": run_id,
            "tags": [HOSTILE, QUOTE],
            "metadata": {QUOTE: IMG, "user_id": HOSTILE, "session_id": QUOTE},
        }
        with pytest.raises(ValueError):
            graph.invoke({"text": f"prompt {HOSTILE} {IMG}"}, config=config)
    return TraceStore(path), str(run_id)


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> tuple[TraceStore, str]:
    path = tmp_path_factory.mktemp("parallel") / "parallel.db"
    run_id = uuid.uuid4()
    with ObsHandler(path) as handler:
        parallel_graph().invoke({"log": []}, {"callbacks": [handler], "run_id": run_id})
    return TraceStore(path), str(run_id)


# -- the trace view --------------------------------------------------------------------------


def check_tree(store: TraceStore, trace_id: str, markup: str) -> Parsed:
    spans = store.spans(trace_id=trace_id)
    parsed = assert_no_injection(markup)
    assert parsed.duplicates == []
    assert set(parsed.span_parent) == {s.span_id for s in spans}
    for span in spans:  # nesting in the HTML is the parent ids of the store
        assert parsed.span_parent[span.span_id] == span.parent_id
        assert parsed.declared_parent[span.span_id] == span.parent_id
    assert sorted(bar["data-span-id"] or "" for bar in parsed.bars) == sorted(
        s.span_id for s in spans
    )
    return parsed


def test_demo_trace_view_has_every_span_once_nested_by_parent(demo) -> None:
    store, ids = demo
    for trace_id in ids:
        view = store.view(trace_id)
        assert isinstance(view, TraceView)
        parsed = check_tree(store, trace_id, view._repr_html_())
        text = parsed.all_text
        assert "Span tree" in text and "Waterfall" in text
        assert "gpt-4o-mini" in text and "$0.0000" in text  # model, cost
        assert "route_question at router returned" in text  # the decision, at its node
        assert str(view).startswith(f"trace {trace_id}")  # the text tree


def test_trace_view_parts_and_standalone_page(demo, tmp_path: Path) -> None:
    store, ids = demo
    view = store.view(ids[0])
    spans = {s.span_id for s in store.spans(trace_id=ids[0])}
    tree, waterfall = Parsed(view.tree._repr_html_()), Parsed(view.waterfall._repr_html_())
    assert set(tree.span_parent) == spans and tree.bars == []
    assert {bar["data-span-id"] for bar in waterfall.bars} == spans and not waterfall.span_parent
    view.save(tmp_path / "trace.html")
    page = (tmp_path / "trace.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)\s*=\s*\"?(https?:)?//", page)  # nothing fetched


def test_hostile_strings_are_escaped_everywhere(hostile) -> None:
    store, trace_id = hostile
    spans = store.spans(trace_id=trace_id)
    markup = store.view(trace_id)._repr_html_()
    parsed = check_tree(store, trace_id, markup)
    text = parsed.all_text
    # rendered as text: names, inputs, outputs, errors, tags, metadata, routing result
    assert HOSTILE in text and IMG in text and QUOTE in text
    assert f"ValueError: bad {HOSTILE} {QUOTE}" in text.replace("</b>", "")
    assert any(QUOTE in value for value in parsed.attribute_values())  # titles keep it whole
    assert "<script" not in markup and "<img" not in markup
    assert any(s.status == "error" for s in spans)
    assert "lco-has-error" in markup  # errors highlighted


def test_errors_are_highlighted_in_tree_and_waterfall(hostile) -> None:
    store, trace_id = hostile
    parsed = Parsed(store.view(trace_id)._repr_html_())
    failed = {s.span_id for s in store.spans(trace_id=trace_id, status="error")}
    assert failed
    open_error_details = {
        attrs["data-span-id"]
        for tag, attrs in parsed.tags
        if tag == "details" and "lco-has-error" in (attrs.get("class") or "")
    }
    assert open_error_details == failed
    red_bars = {b["data-span-id"] for b in parsed.bars if "lco-bar-error" in (b["class"] or "")}
    assert red_bars == failed


def test_waterfall_shows_parallel_nodes_overlapping(parallel) -> None:
    store, trace_id = parallel
    parsed = check_tree(store, trace_id, store.view(trace_id)._repr_html_())
    by_id = {s.span_id: s for s in store.spans(trace_id=trace_id)}

    def extent(bar: dict[str, str | None]) -> tuple[float, float]:
        style = bar["style"] or ""
        left = float(re.search(r"left:([\d.]+)%", style).group(1))
        width = float(re.search(r"width:([\d.]+)%", style).group(1))
        return left, left + width

    nodes = {by_id[b["data-span-id"]].name: extent(b) for b in parsed.bars}
    (l1, r1), (l2, r2) = nodes["left"], nodes["right"]
    assert max(l1, l2) < min(r1, r2)  # the two bars overlap in time
    assert nodes["join"][0] >= max(r1, r2) - 1.0


def test_running_trace_can_be_viewed(tmp_path: Path) -> None:
    handler = ObsHandler(tmp_path / "t.db")
    gate: list[str] = []

    def slow(x: int, config: Any) -> int:
        RunnableLambda(lambda y: y, name="inner").invoke(x, config)
        handler.flush()  # writes the open root as a `running` snapshot
        store = TraceStore(tmp_path / "t.db")
        trace_id = store.spans(name="inner")[0].trace_id
        view = store.view(trace_id)
        gate.append(view._repr_html_())
        assert view.trace is None or view.trace.status == "running"
        return x

    RunnableLambda(slow, name="outer").invoke(1, {"callbacks": [handler]})
    handler.close()
    parsed = assert_no_injection(gate[0])
    assert "running" in parsed.all_text
    assert len(parsed.bars) == len(parsed.span_parent) == 2


def test_unknown_trace_raises(demo) -> None:
    store, _ = demo
    from lc_observe import TraceNotFoundError

    with pytest.raises(TraceNotFoundError):
        store.view("nope")


# -- records, lists and tables ---------------------------------------------------------------


def test_query_results_are_plain_lists_that_render_as_tables(demo) -> None:
    store, ids = demo
    spans = store.spans(trace_id=ids[0])
    assert isinstance(spans, list) and isinstance(spans, RecordList)
    assert spans == list(spans) and spans[:1] == [spans[0]]
    for items in (spans, store.traces(), store.branches(), store.branch_stats()):
        parsed = assert_no_injection(items._repr_html_())
        rows = [tag for tag, _ in parsed.tags if tag == "tr"]
        assert len(rows) == len(items) + 1  # a header row, then one per record
    assert "no records" in Parsed(store.spans(name="none")._repr_html_()).all_text


def test_single_records_render_escaped(hostile) -> None:
    store, trace_id = hostile
    trace = store.trace(trace_id)
    records: list[Any] = [trace, *store.spans(trace_id=trace_id), *store.branches(trace_id)]
    records += store.branch_stats()
    assert store.branches(trace_id) and store.branch_stats()
    for record in records:
        markup = record._repr_html_()
        parsed = assert_no_injection(markup)
        assert "<script" not in markup and "<img" not in markup
        assert parsed.all_text
    card = Parsed(trace._repr_html_()).all_text
    assert IMG in card and f'store.view("{trace_id}")' in card
    for items in (store.traces(), store.spans(trace_id=trace_id), store.branches()):
        assert_no_injection(items._repr_html_())


# -- the observed graph ----------------------------------------------------------------------

DEMO_EDGES = {
    ("__start__", "router"),
    ("router", "calculator"),
    ("router", "retrieve"),
    ("calculator", "answer"),
    ("retrieve", "answer"),
    ("answer", "__end__"),
}


def graph_parts(svg: str) -> tuple[set[str], set[tuple[str, str]], dict[str, Any]]:
    parsed = assert_no_injection(svg)
    nodes = {a["data-node"] for tag, a in parsed.tags if tag == "g" and "data-node" in a}
    edges = {
        (a["data-source"], a["data-target"])
        for tag, a in parsed.tags
        if tag == "path" and "lco-edge" in (a.get("class") or "")
    }
    counts = {
        f"{a['data-source']}>{a['data-target']}": int(a["data-count"])
        for tag, a in parsed.tags
        if tag == "path" and "data-count" in a
    }
    return nodes, edges, counts


def mermaid_parts(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    labels = dict(re.findall(r"^\s+(n\d+)\(?\[\"([^\"<]*)", text, re.M))
    edges = set(re.findall(r"^\s+(n\d+) -\.?->\|[^|]*\| (n\d+)$", text, re.M))
    return labels, {(labels[a], labels[b]) for a, b in edges}


def test_graph_view_of_the_demo_has_every_node_and_edge(demo) -> None:
    store, _ = demo
    view = store.graph()
    assert isinstance(view, GraphView)
    assert {(e.source, e.target) for e in view.edges} == DEMO_EDGES
    nodes, edges, counts = graph_parts(view.svg)
    assert nodes == {"__start__", "router", "calculator", "retrieve", "answer", "__end__"}
    assert edges == DEMO_EDGES
    assert counts["__start__>router"] == 3 and counts["router>calculator"] == 2
    labels, mermaid_edges = mermaid_parts(view.mermaid)
    assert set(labels.values()) == nodes and mermaid_edges == DEMO_EDGES
    rates = {(e.source, e.target): e.rate for e in view.edges}
    assert rates[("router", "calculator")] == pytest.approx(2 / 3)
    stats = {(s.source, s.destination): s.rate for s in store.branch_stats("router")}
    assert stats[("router", "calculator")] == pytest.approx(rates[("router", "calculator")])
    assert view.nodes["router"].runs == 3
    assert_no_injection(view._repr_html_())


def test_graph_view_highlights_one_trace_path(demo) -> None:
    store, ids = demo
    view = store.graph(trace_id=ids[1])  # the "search" question
    nodes, edges = view.path()
    assert nodes == {"__start__", "router", "retrieve", "answer", "__end__"}
    assert ("router", "retrieve") in edges and ("router", "calculator") not in edges
    parsed = Parsed(view.svg)
    lit = {
        (a["data-source"], a["data-target"])
        for tag, a in parsed.tags
        if tag == "path" and a.get("stroke") == "#0969da"
    }
    assert lit == edges == {(s, t) for s, t in DEMO_EDGES if "calculator" not in (s, t)}
    assert "linkStyle" in view.mermaid and "classDef path" in view.mermaid


def test_graph_of_parallel_and_hostile_graphs(parallel, hostile) -> None:
    store, _ = parallel
    _, edges, _ = graph_parts(store.graph().svg)
    assert edges == {
        ("__start__", "start"),
        ("start", "left"),
        ("start", "right"),
        ("left", "join"),
        ("right", "join"),
        ("join", "__end__"),
    }
    store, trace_id = hostile
    view = store.graph(trace_id=trace_id)
    nodes, edges, _ = graph_parts(view.svg)
    assert {HOSTILE, QUOTE} <= nodes and (HOSTILE, QUOTE) in edges
    assert ("__end__" not in nodes) and view.nodes[QUOTE].errors == 1
    mermaid = view.mermaid
    assert "<script" not in mermaid and "<img" not in mermaid and "'" not in mermaid
    for line in mermaid.splitlines()[1:]:
        assert line.count('"') % 2 == 0  # quotes only around labels
    assert_no_injection(view._repr_html_())


def test_graph_saves_and_handles_an_empty_store(demo, tmp_path: Path) -> None:
    store, _ = demo
    view = store.graph()
    for name in ("g.svg", "g.mmd", "g.html"):
        view.save(tmp_path / name)
    assert (tmp_path / "g.svg").read_text().startswith("<svg")
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart TD")
    with ObsHandler(tmp_path / "empty.db") as handler:
        RunnableLambda(lambda x: x, name="plain").invoke(1, {"callbacks": [handler]})
    empty = TraceStore(tmp_path / "empty.db").graph()
    assert empty.nodes == {} and "no LangGraph traces" in empty.svg


# -- DataFrames ------------------------------------------------------------------------------


def test_dataframes_match_the_store_with_proper_dtypes(demo) -> None:
    pd = pytest.importorskip("pandas")
    store, ids = demo
    spans = store.spans_df()
    assert len(spans) == len(store.spans())
    assert list(spans["span_id"]) == [s.span_id for s in store.spans()]
    traces = store.traces_df()
    assert len(traces) == len(ids) and set(traces["trace_id"]) == set(ids)
    branches = store.branches_df()
    assert len(branches) == len(store.branches()) == len(ids)
    for frame, time_columns in ((spans, ["start_time", "end_time"]), (traces, ["start_time"]),
                                (branches, ["time"])):  # fmt: skip
        for column in time_columns:
            dtype = frame[column].dtype
            assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"
    for column in ("input_tokens", "output_tokens", "total_tokens", "span_count", "graph_step"):
        assert str(spans[column].dtype) == "Int64"
    assert str(spans["cost_usd"].dtype) == "Float64" and str(traces["cost_usd"].dtype) == "Float64"
    assert str(spans["latency_ms"].dtype) == "Float64"
    assert str(branches["step"].dtype) == "Int64"
    model = spans[spans["kind"] == "chat_model"]
    assert model["total_tokens"].notna().all() and model["cost_usd"].notna().all()
    assert spans.loc[spans["kind"] == "parser", "total_tokens"].isna().all()  # <NA>, not 0
    assert traces["total_tokens"].sum() == sum(t.total_tokens or 0 for t in store.traces())
    assert list(spans.columns[:3]) == ["span_id", "trace_id", "parent_id"]
    stats = store.branch_stats_df("router")
    assert stats["count"].sum() == len(ids) and str(stats["rate"].dtype) == "Float64"


def test_dataframes_filters_and_empty_selections_keep_dtypes(demo, hostile) -> None:
    pytest.importorskip("pandas")
    store, ids = demo
    one = store.spans_df(ids[0])
    assert set(one["trace_id"]) == {ids[0]}
    empty = store.spans_df(name="no such span")
    assert len(empty) == 0 and list(empty.dtypes) == list(one.dtypes)
    assert len(store.traces_df(limit=1)) == 1 and len(store.traces_df(status="error")) == 0
    hostile_store, trace_id = hostile
    errors = hostile_store.spans_df(trace_id, status="error")
    assert set(errors["error_type"]) == {"ValueError"}
    assert errors["error_message"].str.contains(HOSTILE, regex=False).all()


def test_stats_df_has_one_typed_row_per_group(demo) -> None:
    pytest.importorskip("pandas")
    store, _ = demo
    by_model = store.stats_df(by="model")
    assert list(by_model["group"]) == [row.group for row in store.stats(by="model")]
    assert by_model["count"].sum() == len(store.spans_df(kind="chat_model"))
    assert str(by_model["count"].dtype) == "Int64"
    assert str(by_model["latency_p95_ms"].dtype) == "Float64"
    assert str(by_model["cache_hit_rate"].dtype) == "Float64"


# -- charts ----------------------------------------------------------------------------------


def test_charts_return_figures_that_render_as_png(demo, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    del matplotlib
    from matplotlib.figure import Figure

    store, _ = demo
    charts = [
        store.plot_latency(),
        store.plot_latency(by="graph_node", roots_only=False),
        store.plot_latency(by="name", roots_only=True),
        store.plot_cost(by="model", freq="1h"),
        store.plot_cost(by=None, freq="1min"),
        store.plot_tokens(),
        store.plot_tokens(by="model"),
        store.plot_branch_rates(),
        store.plot_branch_rates(source="router"),
    ]
    for chart in charts:
        assert isinstance(chart, Figure)
        assert chart._repr_png_().startswith(b"\x89PNG")
    charts[0].savefig(tmp_path / "latency.svg")
    assert "router" in " ".join(t.get_text() for t in charts[0].axes[0].get_yticklabels())
    assert "no routing decisions" not in _texts(charts[7])
    with pytest.raises(ValueError, match="span column"):
        store.plot_latency(by="nope")


def _texts(chart: Any) -> str:
    return " ".join(t.get_text() for ax in chart.axes for t in ax.texts)


def test_charts_say_no_data_gracefully(parallel) -> None:
    pytest.importorskip("matplotlib")
    store, _ = parallel  # no model calls, no routing decisions
    assert "no model call with a known cost" in _texts(store.plot_cost())
    assert "no model call with token usage" in _texts(store.plot_tokens())
    assert "no routing decisions" in _texts(store.plot_branch_rates())
    assert "no finished spans" in _texts(store.plot_latency(since="2999-01-01"))


def test_views_keep_their_layout_without_the_stylesheet(demo) -> None:
    """Sanitizing front ends (an untrusted notebook) drop <style>; inline styles remain."""
    store, ids = demo
    markup = store.view(ids[0])._repr_html_()
    stripped = re.sub(r"<style>.*?</style>", "", markup, flags=re.S)
    parsed = Parsed(stripped)
    root = parsed.tags[0][1]
    assert "border:1px solid" in (root["style"] or "")
    for bar in parsed.bars:
        style = bar["style"] or ""
        assert "position:absolute" in style and "left:" in style and "width:" in style
    tracks = [a for tag, a in parsed.tags if "lco-track" in (a.get("class") or "")]
    assert tracks and all("position:relative" in (a["style"] or "") for a in tracks)
    badges = [a for _, a in parsed.tags if "lco-badge" in (a.get("class") or "")]
    assert badges and all("border-radius" in (a["style"] or "") for a in badges)
