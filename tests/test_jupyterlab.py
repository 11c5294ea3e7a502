"""The trace view in a real JupyterLab 4 page and in an nbconvert HTML export.

Runs scripts/jupyterlab_screenshots.py: a notebook with a tool-calling agent, run from
headless Chromium in a JupyterLab server on 127.0.0.1; the check fails when the output
has ``dt``/``dd`` elements (which JupyterLab's stylesheet floats), an element wider than
the view, or no tool call card.  CI installs Chromium (.ci/run) and fails without it;
elsewhere the test is in the slow tier (``browser``) and skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .tiers import unavailable

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_trace_view_renders_in_jupyterlab_and_nbconvert(tmp_path: Path) -> None:
    missing = [m for m in ("jupyterlab", "playwright", "nbconvert") if not _importable(m)]
    if not os.path.exists(CHROMIUM) or missing:
        unavailable(f"needs {CHROMIUM} and {missing or 'jupyterlab'}: see .ci/run and [dev]")
    lab, export = tmp_path / "lab.png", tmp_path / "export.png"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "jupyterlab_screenshots.py"),
            "--source",
            str(ROOT),
            "--out",
            str(lab),
            "--export-out",
            str(export),
            "--check-layout",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "0 dt/dd elements, wider than the view: []" in done.stdout
    assert lab.stat().st_size > 10_000 and export.stat().st_size > 10_000


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
