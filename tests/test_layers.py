"""Dependencies point one way (DESIGN): analysis reads the store and returns model types;
it never imports views, the CLI or the handler, and the Prometheus sink knows no capture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lc_observe"
FORBIDDEN = {
    "analysis/anomalies.py": ("views", "cli", "capture", "sinks", "ui", "pipeline"),
    "analysis/alerts.py": ("views", "cli", "capture", "ui"),
    "analysis/significance.py": ("views", "cli", "capture", "storage", "sinks", "ui"),
    "sinks/prometheus.py": ("capture", "cli", "views", "analysis", "ui"),
}


def _imports(path: Path) -> set[str]:
    """The lc_observe sub-packages (or top-level modules) ``path`` imports from."""
    package = path.parent.relative_to(PACKAGE).parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                parts = [*base, *(node.module.split(".") if node.module else [])]
                if not parts:  # "from . import x" at the top level
                    parts = [alias.name for alias in node.names][:1]
            elif node.module and node.module.split(".")[0] == "lc_observe":
                parts = node.module.split(".")[1:] or [a.name for a in node.names][:1]
            else:
                continue
            names.add(parts[0])
        elif isinstance(node, ast.Import):
            names.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("lc_observe.")
            )
    return names


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_imports_only_downwards(module: str) -> None:
    imported = _imports(PACKAGE / module)
    bad = {name for name in imported for layer in FORBIDDEN[module] if name == layer}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_the_downward_check_sees_sub_packages() -> None:
    assert {"storage", "model"} <= _imports(PACKAGE / "analysis" / "anomalies.py")
    assert "pipeline" in _imports(PACKAGE / "capture" / "handler.py")


# -- the whole package: no import cycles -----------------------------------------------------


def _module_name(path: Path) -> str:
    parts = ["lc_observe", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (never imported at run time)."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return found


def package_imports(module: str) -> set[str]:
    """The lc_observe modules ``module`` imports at run time (top-level or lazily, inside
    functions alike): a lazy import is still a dependency."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    deps: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name.split(".")[0] == "lc_observe")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "lc_observe":
                continue
            submodules = {f"{target}.{a.name}" for a in node.names} & set(MODULES)
            deps.update(submodules)
            if len(submodules) < len(node.names):  # names defined in ``target`` itself
                deps.add(target)
    return {dep for dep in deps if dep in MODULES and dep != module}


def import_cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted, in the
    package's import graph (or in ``graph``)."""
    if graph is None:
        graph = {module: package_imports(module) for module in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_package_has_no_import_cycles() -> None:
    """Every import of every module, lazy ones included (``if TYPE_CHECKING`` excepted),
    forms a graph without cycles."""
    assert len(MODULES) > 50  # the walk found the package
    assert import_cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The walk sees top-level and lazy imports, and the finder reports a cycle."""
    assert "lc_observe.storage.store" in package_imports("lc_observe.export.replay")  # top-level
    assert "lc_observe.analysis.compare" in package_imports("lc_observe.storage.store")  # lazy
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


#: The data flow: capture -> pipeline -> sinks -> (file) <- storage <- analysis, views, ui.
#: Each package (or module) and the prefixes it must never import.
LAYERS = {
    "lc_observe.model": (
        "lc_observe.capture",
        "lc_observe.pipeline",
        "lc_observe.sinks",
        "lc_observe.storage",
        "lc_observe.views",
        "lc_observe.analysis",
    ),
    "lc_observe.records": ("lc_observe.capture", "lc_observe.sinks", "lc_observe.storage"),
    # The handler also assembles the local file's destination (SQLite, alert rules and
    # evaluators run on its worker), so it may name storage and analysis; never a mirror.
    "lc_observe.capture": (
        "lc_observe.sinks.langsmith",
        "lc_observe.sinks.otlp",
        "lc_observe.sinks.otlp_spans",
        "lc_observe.views",
        "lc_observe.export",
        "lc_observe.ui",
        "lc_observe.cli",
    ),
    "lc_observe.pipeline": (
        "lc_observe.capture",
        "lc_observe.sinks",
        "lc_observe.storage",
        "lc_observe.views",
    ),
    "lc_observe.sinks": (
        "lc_observe.capture",
        "lc_observe.views",
        "lc_observe.cli",
        "lc_observe.ui",
    ),
    "lc_observe.storage": (
        "lc_observe.capture",
        "lc_observe.pipeline.fanout",
        "lc_observe.cli",
        "lc_observe.ui",
    ),
    "lc_observe.views": (
        "lc_observe.capture",
        "lc_observe.pipeline",
        "lc_observe.sinks",
        "lc_observe.cli",
        "lc_observe.ui",
    ),
    "lc_observe.export.replay": ("lc_observe.sinks",),
    "lc_observe.analysis": ("lc_observe.cli", "lc_observe.ui", "lc_observe.sinks"),
    "lc_observe.ui": ("lc_observe.capture", "lc_observe.pipeline", "lc_observe.sinks"),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_point_one_way(layer: str) -> None:
    """Views depend on storage, storage on the model, capture on no sink, sinks on no
    capture internals; no sink imports the package root (the version is
    `lc_observe._version`)."""
    bad = []
    for module in MODULES:
        if module != layer and not module.startswith(layer + "."):
            continue
        for dep in package_imports(module):
            if any(dep == f or dep.startswith(f + ".") for f in LAYERS[layer]):
                bad.append(f"{module} -> {dep}")
            if layer == "lc_observe.sinks" and dep == "lc_observe":
                bad.append(f"{module} -> lc_observe (the package root)")
    assert not bad, bad


def test_views_use_the_store_public_methods_only() -> None:
    private = [
        f"{path.name}: store.{node.attr}"
        for path in (PACKAGE / "views").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "store"
        and node.attr.startswith("_")
    ]
    assert not private, private


# -- one mapping: record <-> row <-> model ---------------------------------------------------


def test_record_row_and_model_fields_are_one_mapping(tmp_path: Path) -> None:
    """`records.SPAN_FIELDS` names the keys of the span records the handler emits (seen by
    a real sink on a real graph run), the fields of `model.Span`, and -- with ``error``
    spread over three columns -- the ``spans`` columns; likewise for branch events."""
    from lc_observe import ObsHandler
    from lc_observe.demo import build_graph
    from lc_observe.model import BranchEvent, Span
    from lc_observe.records import BRANCH_FIELDS, SPAN_FIELDS
    from lc_observe.storage.schema import BRANCH_COLUMNS, SPAN_COLUMNS

    class Capture:
        def __init__(self) -> None:
            self.items: list = []

        def export(self, batch: list) -> int:
            self.items.extend(batch)
            return len(batch)

    capture = Capture()
    with ObsHandler(tmp_path / "t.db", sinks=[capture]) as obs:
        build_graph().invoke({"question": "What is 6 * 7?"}, {"callbacks": [obs]})
    spans = [record for kind, record in capture.items if kind == "span"]
    branches = [record for kind, record in capture.items if kind == "branch"]
    assert spans and branches
    for record in spans:  # graph_name goes to the trace row, not to the span's
        assert set(record) == {*SPAN_FIELDS, "graph_name"}
    for record in branches:
        assert set(record) == set(BRANCH_FIELDS)
    error_columns = {"error_type", "error_message", "error_traceback"}
    assert set(SPAN_COLUMNS) == (set(SPAN_FIELDS) - {"error"}) | error_columns
    assert set(Span.model_fields) == set(SPAN_FIELDS)
    assert set(BRANCH_COLUMNS) - {"id"} == set(BRANCH_FIELDS)
    assert set(BranchEvent.model_fields) - {"id"} == set(BRANCH_FIELDS)
