"""`lc-observe ui` end to end in a real headless chromium (Debian's, driven by Playwright)
against a real uvicorn server, over a database made by real graph and agent runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.tiers import need, unavailable

need("starlette")
need("uvicorn")

from lc_observe import ObsHandler, Queue, TraceStore
from tests.runs import branching_graph
from tests.ui_data import Recorded, build, run
from tests.ui_server import CHROMIUM, browser, serving

_missing = []
try:
    import playwright.sync_api  # noqa: F401
except ImportError:  # pragma: no cover - the [dev] extra installs it
    _missing.append("the playwright package (pip install -e '.[dev]')")
if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
    _missing.append("chromium (apt-get install -y chromium; .ci/run does it)")
if _missing:  # in CI a browser test never skips: it fails
    unavailable(f"the browser tests need {' and '.join(_missing)}")

pytestmark = pytest.mark.browser
WAIT_MS = 20_000  # generous bound on waits for the page; no timing is asserted


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return build(tmp_path_factory.mktemp("browser") / "ui.db")


@pytest.fixture(scope="module")
def base(rec: Recorded):
    with serving(rec.db_path) as url:
        yield url


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory):
    with browser(tmp_path_factory.mktemp("chromium-profile")) as ctx:
        yield ctx


@pytest.fixture
def page(context):
    """A fresh tab that records dialogs (an alert would mean script ran) and CSP reports."""
    tab = context.new_page()
    tab.dialogs = []
    tab.console_errors = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
    yield tab
    assert tab.dialogs == [], f"a dialog opened: {tab.dialogs}"
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]
    tab.close()


def test_traces_page_filters_and_keyboard_opens_a_trace(page, base, rec) -> None:
    page.goto(f"{base}/traces")
    rows = page.locator("#rows tbody tr")
    assert rows.count() == len(rec.runs)
    page.fill("input[name=user]", "grace")
    page.fill("input[name=name]", "router")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/traces?*user=grace*")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.traceId)")) == sorted(
        rec.branch_big
    )
    page.keyboard.press("j")
    first = page.locator("#rows tbody tr").first
    assert "selected" in (first.get_attribute("class") or "")
    trace_id = first.get_attribute("data-trace-id")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/traces/{trace_id}")
    assert page.locator("h1 .mono").inner_text() == trace_id


def test_sorted_pages_in_the_browser(page, base, rec) -> None:
    page.goto(f"{base}/traces?sort=latency&limit=3")
    seen = page.locator("#rows tbody tr").evaluate_all("rs => rs.map(r => r.dataset.traceId)")
    while page.locator("a[rel=next]").count():
        with page.expect_navigation():
            page.keyboard.press("n")
        seen += page.locator("#rows tbody tr").evaluate_all("rs => rs.map(r => r.dataset.traceId)")
    with TraceStore(rec.db_path) as store:
        expected = [
            t.trace_id
            for t in sorted(
                store.traces(limit=100), key=lambda t: (t.latency_ms, t.trace_id), reverse=True
            )
        ]
    assert seen == expected


def test_trace_page_expand_a_node_see_the_branch_decision(page, base, rec) -> None:
    trace_id = rec.branch_big[0]
    page.goto(f"{base}/traces/{trace_id}")
    decision = page.locator("#decisions .lco-decision")
    assert "route at check returned" in decision.inner_text()
    assert "→ big" in decision.inner_text()
    with TraceStore(rec.db_path) as store:
        tool = store.spans(trace_id=trace_id, name="add")[0]
    node = page.locator(f'#view details.lco-span[data-span-id="{tool.span_id}"]')
    payload = node.locator(":scope > .lco-body > details.lco-payload").first
    detail = payload.locator(".lco-span-detail").first
    # a tool call is a turn of the conversation: it opens with its inputs and outputs
    assert node.evaluate("d => d.open") and payload.evaluate("d => d.open")
    assert detail.is_visible()
    payload.locator(":scope > summary").click()  # folds them away
    assert not payload.evaluate("d => d.open") and not detail.is_visible()
    payload.locator(":scope > summary").click()  # and back
    assert payload.evaluate("d => d.open") and detail.is_visible()
    text = payload.inner_text()
    assert '"a": 11' in text or "'a': 11" in text or '"a":11' in text.replace(" ", "")


def test_conversation_renders_and_a_hostile_prompt_is_only_text(page, base, rec) -> None:
    page.goto(f"{base}/traces/{rec.hostile}")
    conversation = page.locator("#conversation")
    assert "2 model calls" in conversation.locator("h2").inner_text()
    assert conversation.locator("details.lco-payload .lco-conv").first.is_visible()
    text = conversation.inner_text()
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(2)>" in text
    assert "3 + 4 = 7" in text
    assert page.locator("#main img").count() == 0  # no element was made from the prompt
    assert page.locator("script").count() == 1  # the page's own ui.js only
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
    page.wait_for_timeout(300)  # give a (wrongly) injected handler a moment to fire
    assert page.dialogs == []


def test_errors_come_first_and_e_jumps_to_the_failed_span(page, base, rec) -> None:
    page.goto(f"{base}/traces/{rec.failed}")
    boxes = page.evaluate(
        "() => ['errors', 'view'].map("
        "id => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert boxes[0] < boxes[1]
    assert "the search backend is down <b>bold?</b>" in page.locator("#errors").inner_text()
    page.keyboard.press("e")
    target = page.locator("details.span-target")
    target.wait_for(timeout=WAIT_MS)
    with TraceStore(rec.db_path, read_only=True) as store:
        failed = {s.span_id for s in store.spans(rec.failed) if s.status == "error"}
    assert target.get_attribute("data-span-id") in failed


def test_add_a_score_from_the_page(page, base, rec) -> None:
    trace_id = rec.agent[0]
    page.goto(f"{base}/traces/{trace_id}")
    page.fill("#score-form input[name=name]", "correctness")
    page.fill("#score-form input[name=value]", "0.9")
    page.fill("#score-form input[name=comment]", "<i>close</i>")
    page.click("#score-form button[type=submit]")
    page.locator("#scores tbody tr").first.wait_for(timeout=WAIT_MS)
    assert "saved correctness = 0.9" in page.locator("#score-result").inner_text()
    page.click("#score-form [data-quick=true]")
    page.locator("#scores tbody tr").nth(1).wait_for(timeout=WAIT_MS)
    with TraceStore(rec.db_path) as store:
        stored = [(s.name, s.value, s.comment, s.source) for s in store.scores(trace_id)]
    assert stored == [
        ("correctness", 0.9, "<i>close</i>", "human"),
        ("helpful", True, None, "feedback"),
    ]
    assert "<i>close</i>" in page.locator("#scores").inner_text()  # shown as text
    assert page.locator("#scores i").count() == 0


def test_graph_edge_click_lists_its_traces(page, base, rec) -> None:
    page.goto(f"{base}/graph?name=router")
    page.locator('path.lco-edge[data-source="check"][data-target="big"]').click(force=True)
    page.wait_for_url("**source=check*target=big*")
    listed = page.locator("#edge-traces li a").all_inner_texts()
    assert sorted(listed) == sorted(rec.branch_big)


def test_other_pages_load_without_errors(page, base) -> None:
    for path, marker in [
        ("/stats?by=graph_node&since=7d", "#stats"),
        ("/anomalies", "h1"),
        ("/compare", "h1"),
    ]:
        page.goto(base + path)
        assert page.locator(marker).count() == 1, path


def test_dark_mode_follows_the_system(page, base) -> None:
    page.goto(f"{base}/traces")
    background = "() => getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == "rgb(246, 248, 250)"
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == "rgb(13, 17, 23)"


def test_live_refresh_while_an_app_writes(tmp_path: Path, context) -> None:
    rec = Recorded(tmp_path / "live.db")
    graph = branching_graph()
    with ObsHandler(rec.db_path, queue=Queue(schedule_delay=0.05)) as handler:
        run(handler, graph, {"n": 1}, rec, name="router")
        assert handler.flush(10)
        with serving(rec.db_path) as url:
            tab = context.new_page()
            tab.goto(f"{url}/traces")
            assert tab.locator("#rows tbody tr").count() == 1
            newer = run(handler, graph, {"n": 30}, rec, name="router")
            assert handler.flush(10)
            tab.locator(f'#rows tr[data-trace-id="{newer}"]').wait_for(timeout=WAIT_MS)
            assert tab.locator("#rows tbody tr").count() == 2
            tab.close()


def test_search_box_finds_the_hostile_prompt(page, base, rec) -> None:
    page.goto(f"{base}/traces")
    page.keyboard.press("/")
    page.keyboard.type("onerror")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=onerror*")
    hits = page.locator("#hits tbody tr")
    hits.first.wait_for(timeout=WAIT_MS)
    assert rec.hostile in hits.evaluate_all("rs => rs.map(r => r.dataset.traceId)")
    assert page.locator("#hits img").count() == 0
    page.locator(f'#hits tr[data-trace-id="{rec.hostile}"] a').first.click()
    page.wait_for_url(f"**/traces/{rec.hostile}*")
