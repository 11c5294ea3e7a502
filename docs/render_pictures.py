"""Regenerate docs/trace_view.png and docs/graph_view.png from a real demo run.

Needs headless Chromium (Debian: ``apt-get install -y chromium``) and Pillow (which
matplotlib brings).  Not part of the test suite (tests/test_jupyterlab.py checks the
views in a live JupyterLab page).

    python docs/render_pictures.py            # writes docs/trace_view.png, docs/graph_view.png
    python docs/render_pictures.py --keep     # also keeps the HTML pages next to them
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

from lc_observe import TraceStore
from lc_observe.demo import run_demo

DOCS = Path(__file__).resolve().parent
QUESTIONS = [
    "What is 6 * 7?",
    "How does LangGraph route between nodes?",
    "What is 12 + 30?",
    "Why does SQLite use WAL?",
    "What is 9 * 9?",
]
SCALE = 2  # device pixels per CSS pixel: sharp on high-density screens


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    sys.exit("headless Chromium not found: apt-get install -y chromium")


def screenshot(page: Path, png: Path, width: int, height: int = 2400) -> None:
    """Render ``page`` at ``width`` CSS pixels and crop the result to its content."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--force-device-scale-factor={SCALE}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    crop(png)


def crop(png: Path, margin: int = 12 * SCALE) -> None:
    """Trim the page background around the content, keeping a small margin."""
    image = Image.open(png).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((0, 0)))
    box = ImageChops.difference(image, background).getbbox()
    if box:
        left, top, right, bottom = box
        box = (
            max(left - margin, 0),
            max(top - margin, 0),
            min(right + margin, image.width),
            min(bottom + margin, image.height),
        )
        image = image.crop(box)
    image.save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the HTML pages in docs/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "demo.db"
        trace_ids = run_demo(str(db), QUESTIONS)
        store = TraceStore(db)
        pages = {
            "trace_view": (store.view(trace_ids[0]), 1000),
            "graph_view": (store.graph(trace_id=trace_ids[1]), 640),
        }
        for name, (view, width) in pages.items():
            page = (DOCS if args.keep else Path(work)) / f"{name}.html"
            view.save(page)
            screenshot(page, DOCS / f"{name}.png", width)
            print(f"wrote {DOCS / f'{name}.png'}")
        store.close()


if __name__ == "__main__":
    main()
