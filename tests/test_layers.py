"""Dependencies point one way (DESIGN): analysis reads the store and returns model types;
it never imports views, the CLI or the handler, and the Prometheus sink knows no capture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lc_observe"
FORBIDDEN = {
    "analysis/anomalies.py": ("views", "cli", "handler", "sinks"),
    "analysis/alerts.py": ("views", "cli", "handler"),
    "analysis/significance.py": ("views", "cli", "handler", "store", "sinks"),
    "sinks/prometheus.py": ("handler", "cli", "views", "analysis"),
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module if node.level else node.module.removeprefix("lc_observe.")
            names.add(module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):  # "from . import x"
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("lc_observe.").split(".")[0] for a in node.names)
    return names


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_imports_only_downwards(module: str) -> None:
    imported = _imports(PACKAGE / module)
    bad = {name for name in imported for layer in FORBIDDEN[module] if name == layer}
    assert not bad, f"{module} imports {sorted(bad)}"
