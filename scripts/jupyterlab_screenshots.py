"""Screenshots of a tool-calling agent's trace view in a real JupyterLab 4 page, and in an
nbconvert HTML export, rendered by the lc_observe source tree at ``--source``.

Writes a notebook that runs a LangChain ``create_agent`` agent (a fake chat model that
calls a tool) with `ObsHandler` and displays ``store.view(trace_id)``; starts
``jupyter lab`` on 127.0.0.1 with that source tree on the kernel's ``PYTHONPATH``; opens
the notebook in headless Chromium (playwright, Debian's ``/usr/bin/chromium``), runs the
cells from the browser, opens the model and tool spans and saves a PNG of the output.
Then exports the executed notebook with nbconvert and screenshots that page too.

    python scripts/jupyterlab_screenshots.py --source . --out docs/jupyterlab_after.png \\
        --export-out docs/nbconvert_after.png
    python scripts/jupyterlab_screenshots.py --source /path/to/old/checkout \\
        --out docs/jupyterlab_before.png

Checks (exit 1 otherwise): the output rendered, has the view's root element, and (with
``--check-layout``) no ``dt``/``dd`` and no element wider than the output area.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

AGENT_CELL = '''\
import os
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from lc_observe import ObsHandler, TraceStore


class ToolCallingFake(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"It is sunny and 21 °C in {city}."


replies = iter([
    AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
    AIMessage("It is sunny and 21 °C in Paris: no umbrella needed."),
])
agent = create_agent(
    ToolCallingFake(messages=replies), [get_weather],
    system_prompt="You are a helpful weather assistant. Use tools.",
)
handler = ObsHandler("trace.db")
agent.invoke({"messages": [("human", "Do I need an umbrella in Paris today?")]},
             {"callbacks": [handler]})
handler.flush(10)
store = TraceStore("trace.db")
trace_id = store.traces()[0].trace_id
'''
VIEW_CELL = "store.view(trace_id)"

OPEN_SPANS = """() => {
  for (const d of document.querySelectorAll('details.lco-span')) {
    const row = d.querySelector(':scope > summary');
    if (row && /chat_model|\\btool\\b/.test(row.textContent)) {
      d.open = true;
      for (const p of d.querySelectorAll(':scope > div > details.lco-payload')) p.open = true;
      for (const p of d.querySelectorAll(':scope > div > details.lco-payload > div > details'))
        p.open = false;
    }
  }
}"""

LAYOUT = """(root) => {
  const box = root.getBoundingClientRect();
  const wide = [...root.querySelectorAll('*')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > box.right + 2;
  }).map(e => e.className || e.tagName).slice(0, 5);
  return {dl: root.querySelectorAll('dt, dd').length, wide};
}"""


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in (AGENT_CELL, VIEW_CELL)
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"jupyter lab did not answer at {url} within {seconds:.0f} s")


def _launch(playwright):
    return playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def _shoot_output(page, out: Path, check_layout: bool) -> None:
    news = page.get_by_role("button", name="No", exact=True)  # the "Jupyter news?" toast
    if news.count():
        news.first.click()
    page.evaluate(OPEN_SPANS)
    root = page.locator(".lco-trace").first
    root.wait_for(timeout=60_000)
    layout = root.evaluate(LAYOUT)
    print(f"{out.name}: {layout['dl']} dt/dd elements, wider than the view: {layout['wide']}")
    target = page.locator(".lco-span:has(> summary:has-text('chat_model'))").first
    target.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(out))
    calls = root.locator(".lco-call").count()
    if check_layout and not calls:
        raise SystemExit(f"layout check failed in {out}: no tool call card rendered")
    if check_layout and (layout["dl"] or layout["wide"]):
        raise SystemExit(f"layout check failed in {out}: {layout}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=".", help="the lc_observe tree the kernel imports")
    parser.add_argument("--out", required=True, help="PNG of the JupyterLab page")
    parser.add_argument("--export-out", help="PNG of the nbconvert HTML export")
    parser.add_argument("--check-layout", action="store_true", help="fail on dt/dd or overflow")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    source = str(Path(args.source).resolve())
    base = Path(tempfile.mkdtemp(prefix="lco-lab-"))
    work = base / "notebooks"  # what the file browser shows: the notebook alone
    work.mkdir()
    _notebook(work / "agent.ipynb")
    env = {
        **os.environ,
        "PYTHONPATH": source,
        "JUPYTER_CONFIG_DIR": str(base / "cfg"),
        "JUPYTER_RUNTIME_DIR": str(base / "run"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "ws"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
    }
    env.pop("LC_OBSERVE_DB", None)
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root"]
    command += ["--ip", "127.0.0.1", "--port", str(port), f"--IdentityProvider.token={token}"]
    command += [f"--ServerApp.root_dir={work}", "--LabApp.news_url="]
    log = (base / "lab.log").open("w")
    lab = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        try:
            _wait(f"http://127.0.0.1:{port}/api/status?token={token}", 90)
        except SystemExit:
            print((base / "lab.log").read_text()[-3000:], file=sys.stderr)
            raise
        with sync_playwright() as playwright:
            browser = _launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/agent.ipynb?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
            page.get_by_text("| Idle").first.wait_for(timeout=90_000)  # the kernel is up
            page.locator(".jp-Cell .jp-InputArea-editor").first.click()
            for index in range(2):  # run each cell from the browser, as a person does
                page.keyboard.press("Shift+Enter")
                page.wait_for_function(
                    "i => /\\d/.test(document.querySelectorAll("
                    "'.jp-Cell .jp-InputPrompt')[i].textContent)",
                    arg=index,
                    timeout=120_000,
                )
            try:
                page.locator(".jp-OutputArea-output .lco-trace").first.wait_for(timeout=120_000)
            except Exception:
                page.screenshot(path=str(Path(args.out).with_suffix(".failed.png")))
                raise
            _shoot_output(page, Path(args.out), args.check_layout)
            page.keyboard.press("Control+s")
            page.wait_for_timeout(1500)
            if args.export_out:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "jupyter",
                        "nbconvert",
                        "--to",
                        "html",
                        "--execute",
                        str(work / "agent.ipynb"),
                    ],
                    check=True,
                    env=env,
                    cwd=work,
                    capture_output=True,
                )
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto((work / "agent.html").as_uri())
                _shoot_output(page, Path(args.export_out), args.check_layout)
            browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(20)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
