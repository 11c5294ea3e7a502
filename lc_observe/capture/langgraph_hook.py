"""The one place lc_observe reads LangGraph's routing at run time.

Callbacks do not carry every routing decision: edges compiled with ``trace=False`` (all of
``langchain.agents.create_agent``'s routing, and everything built on it) and edges from
``START`` whose router is untraced produce no callback at all, and no callback carries a
conditional edge's ``path_map``.  The point where LangGraph turns a routing function's
result into destinations is ``BranchSpec._finish(writer, input, result, config)``, called
for every conditional edge, traced or not, sync or async, at any depth.

`install()` wraps that method once per process.  The wrapper

- calls LangGraph's own method first and returns exactly what it returned (or lets its
  exception through untouched): the graph's behaviour never changes;
- then, only if that succeeded, looks for lc_observe handlers among the callback handlers
  of the ``config`` LangGraph passed (the node run's child callback manager), and hands
  each the routing object, the result and the node run's id.  A graph run without
  lc_observe, or with another handler, is not seen by anyone else: each handler receives
  only decisions taken inside its own runs;
- swallows and counts anything that goes wrong in lc_observe's part.

A handler implements ``_on_langgraph_branch(node_run_id, path, ends, result)``; this module
knows no handler class (the handler imports it, not the other way round).

On a LangGraph version whose ``BranchSpec._finish`` does not look like the one this module
was written against, `install()` changes nothing, logs one line saying what is lost, and
returns False: branch events then come from traced routing functions' callbacks only.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import threading
from typing import Any

logger = logging.getLogger("lc_observe")

SUPPORTED = ((1, 0), (2, 0))  # LangGraph versions [1.0, 2.0) are understood
_EXPECTED_PARAMS = ["self", "writer", "input", "result", "config"]
_HOOK_NAME = "_on_langgraph_branch"

_lock = threading.Lock()
_state: dict[str, Any] = {"installed": None, "errors": 0}


def _version() -> tuple[int, ...] | None:
    try:
        text = importlib.metadata.version("langgraph")
    except importlib.metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _branch_spec() -> Any:
    from langgraph.graph._branch import BranchSpec

    return BranchSpec


def install(*, force: bool = False) -> bool:
    """Wrap LangGraph's branch resolution once per process; True when active.

    After `uninstall()` it stays off until ``install(force=True)``."""
    with _lock:
        if _state["installed"] is not None and not force:
            return bool(_state["installed"])
        _state["installed"] = ok = _install()
        return ok


def _install() -> bool:
    version = _version()
    lost = (
        "lc_observe records routing decisions from traced routing functions only: edges "
        "compiled with trace=False (langchain.agents.create_agent and agents built on it) "
        "are not recorded and path_map keys stay unresolved unless "
        "ObsHandler(runs=Runs(graphs=[...]))"
    )
    if version is None or not SUPPORTED[0] <= version[:2] < SUPPORTED[1]:
        logger.warning(
            "lc_observe: langgraph %s is not a version this lc_observe understands (1.x); %s. "
            "Upgrade lc_observe.",
            ".".join(map(str, version or ())) or "(unknown)",
            lost,
        )
        return False
    try:
        spec = _branch_spec()
        original = spec._finish
        params = list(inspect.signature(original).parameters)
    except Exception as exc:  # moved or renamed in this LangGraph
        logger.warning("lc_observe: LangGraph's branch resolution not found (%s); %s.", exc, lost)
        return False
    if getattr(original, "_lc_observe", False):
        return True
    if params != _EXPECTED_PARAMS:
        logger.warning(
            "lc_observe: LangGraph's BranchSpec._finish%s is not the one this lc_observe "
            "understands; %s. Upgrade lc_observe.",
            tuple(params),
            lost,
        )
        return False

    def _finish(self: Any, writer: Any, input: Any, result: Any, config: Any) -> Any:
        out = original(self, writer, input, result, config)
        try:
            _notify(self, result, config)
        except Exception:  # never into the graph
            _state["errors"] += 1
            if _state["errors"] <= 3:
                logger.debug("lc_observe: branch hook failed (ignored)", exc_info=True)
        return out

    _finish._lc_observe = True  # type: ignore[attr-defined]
    _finish.__wrapped__ = original  # type: ignore[attr-defined]
    _finish.__doc__ = original.__doc__
    spec._finish = _finish
    return True


def uninstall() -> None:
    """Put LangGraph's own method back; handlers created afterwards record from callbacks
    only (the fallback), until ``install(force=True)``."""
    with _lock:
        spec = _branch_spec()
        wrapped = getattr(spec._finish, "__wrapped__", None)
        if wrapped is not None and getattr(spec._finish, "_lc_observe", False):
            spec._finish = wrapped
        _state["installed"] = False


def active() -> bool:
    """Whether decisions are read from LangGraph (else: from callbacks only)."""
    return bool(_state["installed"])


def _notify(spec: Any, result: Any, config: Any) -> None:
    callbacks = config.get("callbacks") if isinstance(config, dict) else None
    handlers = getattr(callbacks, "handlers", None)
    if not handlers:
        return
    node_run_id = getattr(callbacks, "parent_run_id", None)
    if node_run_id is None:
        return
    for handler in handlers:
        hook = getattr(handler, _HOOK_NAME, None)
        if hook is not None:
            hook(node_run_id, spec.path, spec.ends, result)
