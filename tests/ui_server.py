"""A real uvicorn server for the UI on a free 127.0.0.1 port, in a thread (tests, screenshots)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from lc_observe.ui import create_app

#: Flags Debian's chromium needs here (no sandbox in a container, no network chatter).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(db_path: Path | str) -> Iterator[str]:
    """Serve the UI over ``db_path``; yields the base URL; stops the server afterwards."""
    config = uvicorn.Config(
        create_app(str(db_path)), host="127.0.0.1", port=free_port(), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def browser(user_data_dir: Path, *, dark: bool = False) -> Iterator[object]:
    """A headless chromium (Playwright, Debian's binary) browser context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 800},
            color_scheme="dark" if dark else "light",
        )
        try:
            yield context
        finally:
            context.close()
