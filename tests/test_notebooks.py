"""The example notebooks run top to bottom (no network, no API key) and are committed clean.

Each notebook is executed with nbclient in a fresh kernel, with a per-cell timeout; any cell
that raises fails the test.  This is how CI runs them (``pip install -e ".[dev]"`` brings
nbclient, nbformat and ipykernel).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .tiers import need

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 60


def test_notebooks_exist() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert "01_quickstart.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nbformat: Any = need("nbformat")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: strip outputs before committing (e.g. "
                "`jupyter nbconvert --clear-output --inplace notebooks/*.ipynb`)"
            )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    nbformat: Any = need("nbformat")
    nbclient: Any = need("nbclient")
    need("ipykernel")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
        allow_errors=False,
    )
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    previous = dict(os.environ)
    os.environ.update(env)  # inherited by the kernel process
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}")
    finally:
        os.environ.clear()
        os.environ.update(previous)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") == "error"
    ]
    assert errors == []
    html = [
        output["data"]["text/html"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "text/html" in output.get("data", {})
    ]
    assert html, f"{path.name} displayed no HTML view"
