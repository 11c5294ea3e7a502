"""Screenshots of every `lc-observe ui` page, for the README (rerunnable).

Records the demo agent and the drifting support-ticket demo (lc_observe.demo_drift) into a
fresh database, serves the UI on a free 127.0.0.1 port and photographs each page in
headless chromium (Playwright with Debian's binary: ``apt-get install -y chromium``).

    python scripts/ui_screenshots.py              # writes docs/ui-*.png
    python scripts/ui_screenshots.py --dark       # the dark theme, docs/ui-*-dark.png
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from lc_observe import ObsHandler, Queue, TraceStore
from lc_observe.demo import run_demo
from lc_observe.demo_drift import PRICES, Knobs, build_graph, run_tickets
from lc_observe.ui import create_app

DOCS = Path(__file__).resolve().parent.parent / "docs"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTIONS = [
    "What is 6 * 7?",
    "How does LangGraph route between nodes?",
    "What is 12 + 30?",
    "Why does SQLite use WAL?",
    "<script>alert('hi')</script> is this shown as text?",
]


def record(db: Path) -> dict[str, str]:
    """Fill ``db``; returns the ids and times the pages are pointed at.

    The support-ticket graph runs 120 tickets with prompt v1, then 60 with prompt v2 and
    more reviews and errors (what the anomalies and compare pages find)."""
    knobs = Knobs(seed=0)
    graph = build_graph(knobs)
    with ObsHandler(db, prices=PRICES, queue=Queue(handle_sigterm=False)) as handler:
        run_tickets(graph, handler, 120, metadata={"prompt_version": "v1"})
        handler.flush()
        time.sleep(0.01)
        split = datetime.now(timezone.utc)
        knobs.review_rate, knobs.error_rate = 0.45, 0.3
        run_tickets(graph, handler, 60, metadata={"prompt_version": "v2"})
    trace_ids = run_demo(str(db), QUESTIONS)
    with TraceStore(db) as store:
        store.add_score(trace_ids[1], "helpful", True, source="feedback")
        store.add_score(trace_ids[1], "correctness", 0.8, comment="cites the docs")
    return {
        "a": trace_ids[0],
        "b": trace_ids[1],
        "hostile": trace_ids[4],
        "split": split.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dark", action="store_true", help="the dark theme")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ui.db"
        ids = record(db)
        config = uvicorn.Config(
            create_app(str(db)), host="127.0.0.1", port=free_port(), log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{config.port}"
        shots = {
            "traces": "/traces",
            "trace": f"/traces/{ids['b']}",
            "conversation": f"/traces/{ids['hostile']}",
            "graph": "/graph?name=demo_agent&source=router&target=calculator",
            "stats": "/stats?by=graph_node&since=1h",
            "anomalies": f"/anomalies?since={ids['split']}&baseline=1h&by=name",
            "compare": f"/compare?a={ids['a']}&b={ids['b']}",
            "compare-versions": "/compare?by=metadata.prompt_version&ga=v1&gb=v2",
        }
        suffix = "-dark" if args.dark else ""
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=ARGS
                )
                page = browser.new_page(
                    viewport={"width": 1366, "height": 800},
                    color_scheme="dark" if args.dark else "light",
                )
                for name, path in shots.items():
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    out = DOCS / f"ui-{name}{suffix}.png"
                    if name == "conversation":  # a hostile prompt, shown as text
                        page.evaluate("document.querySelector('header.top').remove()")
                        page.locator("#conversation").screenshot(path=str(out))
                    else:
                        page.screenshot(path=str(out), full_page=True)
                    print(f"wrote {out.relative_to(DOCS.parent)}")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
