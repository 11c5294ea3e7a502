"""`lc-observe ui`: the JSON API and the pages, through Starlette's TestClient, on a database
made by real graph runs (tests/ui_data.py), checked against the store and LangChain's runs."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from langgraph.graph import END, START, StateGraph

from tests.tiers import need

need("starlette")
need("httpx")

from starlette.testclient import TestClient

from lc_observe import ObsHandler, Queue, SearchHit, TraceStore
from lc_observe.errors import StoreError
from lc_observe.ui import create_app, is_loopback
from lc_observe.ui.app import CSP
from tests.runs import branching_graph, flatten, run_tree, span_tree
from tests.ui_data import HOSTILE, Recorded, build, run


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return build(tmp_path_factory.mktemp("ui") / "ui.db")


@pytest.fixture(scope="module")
def client(rec: Recorded) -> TestClient:
    return TestClient(create_app(str(rec.db_path)), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def store(rec: Recorded):
    with TraceStore(rec.db_path, read_only=True) as s:
        yield s


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["trace_id"] for t in response.json()["traces"]]


# -- traces ----------------------------------------------------------------------------------


def test_traces_api_lists_what_the_store_and_langchain_hold(client, store, rec) -> None:
    listed = ids(client.get("/api/traces"))
    assert listed == [t.trace_id for t in store.traces(limit=100)]
    assert set(listed) == set(rec.runs)  # one trace per root run LangChain saw
    first = client.get("/api/traces").json()["traces"][0]
    assert first == store.traces(limit=1)[0].model_dump(mode="json", exclude={"branches"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=router", lambda r: r.branch_small + r.branch_big),
        ("status=error", lambda r: [r.failed]),
        ("errors=1", lambda r: [r.failed]),
        ("user=grace", lambda r: r.branch_big),
        ("tag=agent", lambda r: r.agent[:1]),
        ("model=gpt-4o-mini", lambda r: r.agent),
        ("session=s-1&name=pipeline", lambda r: [r.failed]),
        ("session=nobody", lambda r: []),
    ],
)
def test_trace_filters(client, rec, query, expected) -> None:
    assert sorted(ids(client.get(f"/api/traces?{query}"))) == sorted(expected(rec))


def test_model_filter_agrees_with_the_spans(client, store) -> None:
    calling = {s.trace_id for s in store.spans(kind="chat_model") if s.model == "gpt-4o-mini"}
    assert set(ids(client.get("/api/traces?model=gpt-4o-mini"))) == calling


@pytest.mark.parametrize(
    ("sort", "field"), [("latency", "latency_ms"), ("tokens", "total_tokens"), ("cost", "cost_usd")]
)
def test_sorts_and_keyset_pages_cover_every_trace_once(client, store, sort, field) -> None:
    def key(t):
        value = getattr(t, field)
        return (-1 if value is None else value, t.trace_id)

    expected = [t.trace_id for t in sorted(store.traces(limit=100), key=key, reverse=True)]
    seen, url, pages = [], f"/api/traces?sort={sort}&limit=3", []
    while True:
        body = client.get(url).json()
        pages.append(body)
        seen += [t["trace_id"] for t in body["traces"]]
        if not body["next"]:
            break
        url = f"/api/traces?sort={sort}&limit=3&after={body['next']}"
    assert seen == expected
    # "previous" of the second page gives the first page back
    back = client.get(f"/api/traces?sort={sort}&limit=3&before={pages[1]['previous']}").json()
    assert [t["trace_id"] for t in back["traces"]] == [t["trace_id"] for t in pages[0]["traces"]]
    assert back["previous"] is None
    ascending = ids(client.get(f"/api/traces?sort={sort}&order=asc&limit=100"))
    assert ascending == expected[::-1]


def test_pages_do_not_shift_while_an_app_writes(tmp_path: Path) -> None:
    rec = Recorded(tmp_path / "live.db")
    graph = branching_graph()
    with ObsHandler(rec.db_path, queue=Queue(schedule_delay=0.05)) as handler:
        for n in range(4):
            run(handler, graph, {"n": n}, rec, name="router")
        assert handler.flush(10)
        client = TestClient(create_app(str(rec.db_path)), base_url="http://127.0.0.1")
        first = client.get("/api/traces?limit=2").json()
        before = client.get("/api/changes").json()["token"]
        newer = run(handler, graph, {"n": 20}, rec, name="router")  # newest: sorts first
        assert handler.flush(10)
        second = client.get(f"/api/traces?limit=2&after={first['next']}").json()
        changed = client.get(f"/api/changes?token={before}").json()
    got = [t["trace_id"] for t in first["traces"] + second["traces"]]
    assert len(set(got)) == 4 and newer not in got  # no repeat, no skip, new one not pushed in
    assert changed["changed"] is True and changed["token"] == newer


def test_bad_parameters_are_400_with_the_fix(client) -> None:
    for query, words in [
        ("sort=price", "sort must be one of"),
        ("limit=0", "limit must be between"),
        ("after=%%%", "page cursor is not valid"),
        ("since=yesterday", "ISO 8601"),
        ("status=weird", "status must be one of"),
    ]:
        response = client.get(f"/api/traces?{query}")
        assert response.status_code == 400, query
        assert words in response.json()["error"]
    page = client.get("/traces?sort=price")
    assert page.status_code == 400 and "sort must be one of" in page.text


# -- one trace -------------------------------------------------------------------------------


def test_trace_api_is_the_tree_langchain_saw(client, store, rec) -> None:
    for trace_id in [rec.hostile, rec.branch_big[0], rec.failed]:
        body = client.get(f"/api/traces/{trace_id}").json()
        spans = store.spans(trace_id=trace_id)
        assert [s["span_id"] for s in body["spans"]] == [s.span_id for s in spans]
        assert span_tree(spans) == run_tree(rec.runs[trace_id])
        assert body["branches"] == [b.model_dump(mode="json") for b in store.branches(trace_id)]
        assert body["trace"]["trace_id"] == trace_id
    decision = client.get(f"/api/traces/{rec.branch_big[0]}").json()["branches"]
    assert [(b["source"], b["destinations"]) for b in decision] == [("check", ["big"])]
    failed = client.get(f"/api/traces/{rec.failed}").json()
    assert failed["errors"] and all(
        s["status"] == "error" for s in failed["spans"] if s["span_id"] in failed["errors"]
    )
    assert client.get("/api/traces/not-a-trace").status_code == 404


def test_trace_page_shows_errors_first_decisions_conversation(client, rec) -> None:
    page = client.get(f"/traces/{rec.failed}").text
    assert page.index('id="errors"') < page.index('id="view"')
    assert "ValueError" in page and "the search backend is down" in page
    routed = client.get(f"/traces/{rec.branch_big[0]}").text
    assert 'id="decisions"' in routed and "route at check returned" in routed
    assert "→ big" in routed
    agent = client.get(f"/traces/{rec.agent[0]}").text
    conversation = agent[agent.index('id="conversation"') :]
    assert "2 model calls" in conversation
    assert "add 3 and 4" in conversation and "3 + 4 = 7" in conversation


def _tags(page: str) -> list[tuple[str, list[str]]]:
    """Every element of ``page`` as the browser's parser sees it: (tag, attribute names)."""
    found: list[tuple[str, list[str]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, [name for name, _ in attrs]))

    Parser().feed(page)
    return found


def test_hostile_strings_are_escaped_everywhere(client, rec) -> None:
    pages = [
        client.get(f"/traces/{rec.hostile}").text,
        client.get(f"/traces/{rec.failed}").text,
        client.get("/traces?name=%3Cscript%3Ealert(1)%3C/script%3E").text,
        client.get("/compare?a=%3Cimg%20src=x%20onerror=alert(1)%3E&b=x").text,
    ]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[0]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "<b>bold?</b>" not in page
        # the only script is the page's own file: no inline script, no handler attributes
        assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/ui.js" defer>']
        tags = _tags(page)
        assert [t for t, _ in tags if t == "script"] == ["script"]
        assert [a for _, attrs in tags for a in attrs if a.startswith("on")] == []
        assert [t for t, _ in tags if t == "img"] == []
    assert "&lt;b&gt;bold?&lt;/b&gt;" in pages[1]


def test_security_headers_and_host_check(client, rec) -> None:
    for path in ["/traces", f"/traces/{rec.hostile}", "/api/traces", "/static/ui.js", "/nope"]:
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP.split("style-src")[0]
    assert client.get("/nope").status_code == 404
    rebinding = client.get("/api/traces", headers={"host": "evil.example"})
    assert rebinding.status_code == 400
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_static_files_are_local(client) -> None:
    page = client.get("/traces").text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN, works offline
    js = client.get("/static/ui.js")
    assert js.status_code == 200 and "innerHTML" not in js.text and "eval(" not in js.text


# -- the one write: a score ------------------------------------------------------------------


def test_add_score_writes_through_the_store(tmp_path: Path) -> None:
    rec = Recorded(tmp_path / "score.db")
    with ObsHandler(rec.db_path, queue=Queue(schedule_delay=0.05)) as handler:
        trace_id = run(handler, branching_graph(), {"n": 20}, rec, name="router")
        assert handler.flush(10)
    client = TestClient(create_app(str(rec.db_path)), base_url="http://127.0.0.1")
    with TraceStore(rec.db_path) as store:
        span_id = store.spans(trace_id=trace_id, name="big")[0].span_id
    made = client.post(
        f"/api/traces/{trace_id}/scores",
        json={"name": "correct", "value": "0.5", "comment": "half <b>", "span_id": span_id},
    )
    assert made.status_code == 201, made.text
    thumbs = client.post(
        f"/api/traces/{trace_id}/scores",
        json={"name": "helpful", "value": True, "source": "feedback"},
    )
    assert thumbs.status_code == 201
    with TraceStore(rec.db_path) as store:
        stored = store.scores(trace_id)
    assert [(s.name, s.value, s.span_id, s.source) for s in stored] == [
        ("correct", 0.5, span_id, "human"),
        ("helpful", True, None, "feedback"),
    ]
    assert made.json() == stored[0].model_dump(mode="json")
    assert "half &lt;b&gt;" in client.get(f"/traces/{trace_id}").text
    refused = [
        client.post(f"/api/traces/{trace_id}/scores", data={"name": "x", "value": "1"}),
        client.post(
            f"/api/traces/{trace_id}/scores",
            json={"name": "x", "value": 1},
            headers={"origin": "http://evil.example"},
        ),
        client.post(f"/api/traces/{trace_id}/scores", json={"value": 1}),
        client.post(f"/api/traces/{trace_id}/scores", json={"name": "x", "source": "judge"}),
        client.post("/api/traces/unknown/scores", json={"name": "x", "value": 1}),
    ]
    assert [r.status_code for r in refused] == [400, 403, 400, 400, 404]
    with TraceStore(rec.db_path) as store:
        assert len(store.scores(trace_id)) == 2


def test_reads_are_read_only_and_never_wait_for_a_writer(rec, client) -> None:
    with TraceStore(rec.db_path, read_only=True) as store, pytest.raises(StoreError):
        store.add_score(rec.failed, "x", 1.0)
    writer = sqlite3.connect(rec.db_path, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # an application holding the write lock
        writer.execute("UPDATE traces SET user_id = user_id")
        assert client.get("/api/traces").status_code == 200
        assert client.get(f"/traces/{rec.hostile}").status_code == 200
    finally:
        writer.rollback()
        writer.close()
    # and while the UI reads, a writer still gets the lock at once (WAL readers never block)
    with TraceStore(rec.db_path, read_only=True) as store:
        store._conn.execute("BEGIN")
        store._conn.execute("SELECT count(*) FROM spans").fetchone()
        other = sqlite3.connect(rec.db_path, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        other.close()
        store._conn.rollback()


# -- graph, stats, anomalies, compare --------------------------------------------------------


def test_graph_api_and_edge_traces(client, store, rec) -> None:
    body = client.get("/api/graph?name=router").json()
    view = store.graph("router")
    assert body["traces"] == view.graph.traces == 5
    assert [(e["source"], e["target"], e["count"]) for e in body["edges"]] == [
        (e.source, e.target, e.count) for e in view.edges
    ]
    rates = {(e["source"], e["target"]): e["rate"] for e in body["edges"]}
    assert rates[("check", "small")] == pytest.approx(3 / 5)
    assert rates[("check", "big")] == pytest.approx(2 / 5)
    edge = client.get("/api/graph?name=router&source=check&target=big").json()
    assert sorted(edge["edge_traces"]) == sorted(rec.branch_big)
    assert all("big" in store.path(t) for t in edge["edge_traces"])
    page = client.get("/graph?name=router&source=check&target=big").text
    assert "2 traces took check → big" in page
    assert 'class="lco-edge" data-source="check" data-target="big"' in page


def test_stats_api_is_the_stores_stats(client, store) -> None:
    for by in ["model", "graph_node", "user_id"]:
        body = client.get(f"/api/stats?by={by}&since=30d").json()
        expected = store.stats(by, since=timedelta(days=30))
        assert [(r["group"], r["count"], r["errors"]) for r in body["rows"]] == [
            (r.group, r.count, r.errors) for r in expected
        ]
        per_bucket = sum(r["count"] for b in body["timeline"] for r in b["rows"])
        assert per_bucket == sum(r.count for r in expected)  # buckets partition the window
    page = client.get("/stats?by=graph_node&since=7d").text
    assert "p95" in page and "explode" in page and "tokens by graph_node" in page
    assert client.get("/api/stats?by=nonsense").status_code == 400


def test_anomalies_api_is_the_stores(client, store) -> None:
    body = client.get("/api/anomalies?since=1h&baseline=7d&by=name").json()
    expected = store.anomalies(since=timedelta(hours=1), baseline="7d", by="name")
    assert [(a["kind"], a["group"]) for a in body["anomalies"]] == [
        (a.kind, a.group) for a in expected
    ]
    assert client.get("/anomalies").status_code == 200


def test_compare_traces_and_prompt_versions(client, store, rec) -> None:
    a, b = rec.branch_small[0], rec.branch_big[0]
    body = client.get(f"/api/diff?a={a}&b={b}").json()
    assert body == store.diff(a, b).model_dump(mode="json")
    assert body["branch_differences"]
    versions = client.get("/api/compare?by=metadata.prompt_version&a=v1&b=v2").json()
    expected = store.compare("metadata.prompt_version", "v1", "v2").model_dump(mode="json")
    assert versions == expected
    page = client.get(f"/compare?a={a}&b={b}&by=metadata.prompt_version&ga=v1&gb=v2").text
    assert 'id="diff"' in page and 'id="comparison"' in page
    assert client.get("/api/diff?a=only").status_code == 400


def test_every_page_renders(client, rec) -> None:
    for path in ["/", "/traces", "/graph", "/stats", "/anomalies", "/compare"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
    assert client.get("/", follow_redirects=False).headers["location"] == "/traces"


# -- search (TraceStore.search, schema version 6) --------------------------------------------


def test_search_api_finds_a_prompt(client, store, rec) -> None:
    body = client.get("/api/search?q=onerror").json()
    hits = store.search("onerror", order="newest")  # the UI lists the newest first
    assert [h["span_id"] for h in body["hits"]] == [h.span_id for h in hits]
    ranked = client.get("/api/search?q=onerror&rank=1").json()["hits"]
    assert [h["span_id"] for h in ranked] == [h.span_id for h in store.search("onerror")]
    assert rec.hostile in {h["trace_id"] for h in body["hits"]}
    page = client.get("/traces?q=onerror").text
    assert 'id="hits"' in page and "<img src=x" not in page


def test_search_hits_carry_the_fields_of_search_hit(client, store) -> None:
    body = client.get("/api/search?q=onerror&since=30d&kind=chat_model").json()
    hits = store.search("onerror", since="30d", kind="chat_model", order="newest")
    assert hits, "the hostile prompt is in a chat model's input"
    assert body["hits"] == [h.model_dump(mode="json") for h in hits]
    assert set(body["hits"][0]) == set(SearchHit.model_fields)
    assert client.get("/api/search").status_code == 400
    bad = client.get("/api/search?q=onerror&since=yesterday")
    assert bad.status_code == 400 and "'1d'" in bad.json()["error"]


def test_collector_and_store_agree_on_model_calls(store, rec) -> None:
    """The conversation section shows one block per model call LangChain ran."""
    for trace_id in rec.agent:
        runs = [r for r in flatten(rec.runs[trace_id]) if r.run_type in ("llm", "chat_model")]
        spans = [s for s in store.spans(trace_id=trace_id) if s.kind == "chat_model"]
        assert {str(r.id) for r in runs} == {s.span_id for s in spans}
    assert HOSTILE.split(" and ")[0] in str(store.spans(trace_id=rec.hostile)[0].inputs)


# -- the command ------------------------------------------------------------------------------


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lc_observe.cli", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_on_loopback_and_stops_cleanly_on_ctrl_c(rec) -> None:
    from tests.ui_server import free_port

    port = free_port()
    process = _start(["--db", str(rec.db_path), "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait for the server to listen
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/traces") as response:
                    listed = json.load(response)["traces"]
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
        assert {t["trace_id"] for t in listed} == set(rec.runs)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"127.0.0.1:{port}" in out and "stopped" in out
    assert "Traceback" not in err


@pytest.mark.slow  # child processes: the slow tier
def test_cli_warns_off_loopback_and_names_a_missing_file(rec, tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET) is on no interface here: the warning, then a failed bind.
    process = _start(["--db", str(rec.db_path), "--host", "192.0.2.1", "--port", "9"])
    _, err = process.communicate(timeout=60)
    assert "warning: serving on 192.0.2.1" in err and "--host 127.0.0.1" in err
    assert process.returncode != 0
    missing = _start(["--db", str(tmp_path / "none.db")])
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 1 and "no lc_observe database" in err


def test_a_running_trace_shows_and_its_page_refreshes_when_it_ends(tmp_path: Path) -> None:
    release, first_done = threading.Event(), threading.Event()

    def fast(state: dict) -> dict:
        first_done.set()
        return {"n": 1}

    def slow(state: dict) -> dict:
        assert release.wait(60)
        return {"n": 2}

    builder = StateGraph(dict)
    builder.add_node("fast", fast)
    builder.add_node("slow", slow)
    builder.add_edge(START, "fast")
    builder.add_edge("fast", "slow")
    builder.add_edge("slow", END)
    graph = builder.compile()
    rec = Recorded(tmp_path / "running.db")
    with ObsHandler(rec.db_path, queue=Queue(schedule_delay=0.05)) as handler:
        run(handler, branching_graph(), {"n": 1}, rec, name="router")  # the file exists
        worker = threading.Thread(target=run, args=(handler, graph, {}, rec), kwargs={"name": "g"})
        worker.start()
        try:
            assert first_done.wait(60)
            assert handler.flush(10)
            client = TestClient(create_app(str(rec.db_path)), base_url="http://127.0.0.1")
            with TraceStore(rec.db_path) as store:
                (running,) = {s.trace_id for s in store.spans(name="fast")}
            page = client.get(f"/traces/{running}")
            assert page.status_code == 200
            assert client.get(f"/api/traces/{running}").json()["running"] is True
            live = re.search(r'data-live="([^"]+)"', page.text).group(1).replace("&amp;", "&")
            assert client.get(live).json()["changed"] is False
        finally:
            release.set()
            worker.join(60)
        assert handler.flush(10)
    assert client.get(live).json()["changed"] is True
    done = client.get(f"/traces/{running}").text
    assert "data-live" not in done  # finished: no more polling
    assert client.get(f"/api/traces/{running}").json()["running"] is False


def test_trace_page_is_a_public_store_method(store, rec) -> None:
    page, previous, following = store.trace_page(limit=2, sort="latency", descending=False)
    assert previous is None and following == (page[-1].latency_ms, page[-1].trace_id)
    assert [t.trace_id for t in page] == [
        t.trace_id
        for t in sorted(store.traces(limit=100), key=lambda t: (t.latency_ms, t.trace_id))
    ][:2]
    with pytest.raises(ValueError, match="sort must be one of"):
        store.trace_page(sort="price")
    with pytest.raises(ValueError, match="not both"):
        store.trace_page(after=following, before=following)
    assert store.trace_page(name="no such trace") == ([], None, None)


@pytest.mark.parametrize("sort", ["latency", "cost", "tokens", "start_time"])
def test_a_sorted_trace_page_reads_an_index_not_every_trace(store, sort) -> None:
    """Schema 8's sort indexes: SQLite's own plan for the query `trace_page` runs, sorted
    by each key, walks an index: no temporary B-tree sorting every trace (ties of one start
    time may still be sorted apart: "FOR RIGHT PART OF ORDER BY")."""
    executed: list[str] = []
    store._conn.set_trace_callback(executed.append)
    try:
        store.trace_page(limit=5, sort=sort)
    finally:
        store._conn.set_trace_callback(None)
    (sql,) = [s for s in executed if "sort_key" in s]
    plan = " ".join(row[3] for row in store._conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
