"""Screenshots of Phoenix's trace view of an lc_observe export (docs/phoenix_*.png).

Records the test agent (tests/otel_agent.py) with ``ObsHandler(sinks=[OTLP(...)])`` into
Phoenix (started on 127.0.0.1 unless ``--phoenix`` names a running one), opens the trace
in headless Chromium (playwright, ``/usr/bin/chromium``) and saves the trace tree with the
agent span, and the second model call with its messages.

    PYTHONPATH=. python scripts/phoenix_screenshots.py [--phoenix URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests.backends import phoenix_graphql, start_phoenix, wait_until
from tests.otel_agent import run_agent

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def record(phoenix: str, workdir: Path) -> tuple[str, str]:
    """Export the agent into a project of its own; returns (project id, trace id)."""
    from lc_observe import OTLP, ObsHandler, TraceStore

    project = f"lc_observe-{os.urandom(3).hex()}"
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"openinference.project.name={project}"
    with ObsHandler(workdir / "t.db", sinks=[OTLP(phoenix, timeout=60)]) as obs:
        run_agent(obs, user="ann")
    with TraceStore(workdir / "t.db") as store:
        trace = next(t for t in store.traces() if t.status == "ok")

    def project_id() -> str | None:  # Phoenix ingests in the background
        data = phoenix_graphql(phoenix, "{ projects { edges { node { id name } } } }")
        ids = [e["node"]["id"] for e in data["projects"]["edges"] if e["node"]["name"] == project]
        return ids[0] if ids else None

    found = wait_until(project_id, timeout=120)
    if found is None:
        raise SystemExit(f"Phoenix never showed project {project}")
    time.sleep(3)  # the last spans of the batch
    return found, trace.otel_trace_id


def shoot(phoenix: str, project_id: str, trace_id: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(
            f"{phoenix}/projects/{project_id}/traces/{trace_id}",
            wait_until="networkidle",
            timeout=120_000,
        )
        page.get_by_text("invoke_agent helpdesk").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=DOCS / "phoenix_trace.png")
        page.get_by_text("chat gpt-4o-mini").last.click()
        page.wait_for_timeout(3000)
        page.screenshot(path=DOCS / "phoenix_chat.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phoenix", help="a running Phoenix (default: start one)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="phoenix_shots_"))
    server = None
    phoenix = args.phoenix
    if phoenix is None:
        server = start_phoenix(workdir)
        phoenix = server.url
    try:
        project_id, trace_id = record(phoenix, workdir)
        shoot(phoenix, project_id, trace_id)
        print(f"wrote {DOCS / 'phoenix_trace.png'} and {DOCS / 'phoenix_chat.png'}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
