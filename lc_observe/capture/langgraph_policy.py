"""lc_observe is treated as one of LangGraph's tracers: node ``TracePolicy`` honoured.

A node added with ``trace_policy=TracePolicy(process_inputs=..., process_outputs=...)``
(for instance `langgraph.types.omit_payload`) asks tracers not to record its payload as it
is.  LangGraph applies the policy in ``RunnableSeq`` by splitting the run's callback
handlers in two (``langgraph._internal._runnable._split_handlers``): ``BaseTracer``
subclasses get the processed payload, every other handler the real one.  ObsHandler is not a
``BaseTracer`` (it keeps no run objects), so without this module it would store exactly
what the application asked to omit.  The same split orders the ends: tracers end first,
shielded, then the other handlers, which a task cancelled at that moment never reaches
(the span would stay ``running``).

`install()` wraps ``_split_handlers`` once per process: LangGraph's own function runs first,
then lc_observe's handlers (`lc_observe.capture.ours`) are moved from
the "real payload" group to the tracers' group.  Nothing else changes: other handlers end
up in the same group as before, with the same payloads.  The split happens only for nodes
whose policy changed the payload, so a graph without ``TracePolicy`` never reaches it.

On a LangGraph without that function, or with another signature, `install()` changes
nothing and logs one line: policies are then not honoured by lc_observe.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from typing import Any

from lc_observe.capture.ours import is_ours

logger = logging.getLogger("lc_observe")

_lock = threading.Lock()
_state: dict[str, Any] = {"installed": None, "original": None}


def install() -> bool:
    """Wrap LangGraph's handler split once per process; True when active."""
    with _lock:
        if _state["installed"] is None:
            _state["installed"] = _install()
        return bool(_state["installed"])


def _install() -> bool:
    try:
        from langgraph._internal import _runnable
    except ImportError:
        return False
    original = getattr(_runnable, "_split_handlers", None)
    try:
        params = list(inspect.signature(original).parameters) if original else []
    except (TypeError, ValueError):
        params = []
    if params != ["manager"]:
        logger.warning(
            "lc_observe: this LangGraph version has no _split_handlers(manager); node "
            "TracePolicy (process_inputs/process_outputs) is not applied to what lc_observe "
            "records"
        )
        return False

    @functools.wraps(original)
    def split_handlers(manager: Any) -> tuple[Any, Any]:
        real, tracers = original(manager)
        ours = [handler for handler in real.handlers if is_ours(handler)]
        if ours:
            real.handlers = [handler for handler in real.handlers if not is_ours(handler)]
            tracers.handlers = [*tracers.handlers, *ours]
        return real, tracers

    _state["original"] = original
    _runnable._split_handlers = split_handlers
    return True
