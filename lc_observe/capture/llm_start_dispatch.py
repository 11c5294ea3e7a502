"""Other handlers keep their ``on_llm_start`` under async although lc_observe runs inline.

`ObsHandler` sets ``run_inline = True``: under ``ainvoke``/``astream`` LangChain calls it on
the event loop, in order, with no executor hop per callback (its callbacks do no I/O).
langchain_core's ``AsyncCallbackManager.on_llm_start`` (text-completion LLMs; chat models
are dispatched per handler and are not affected) sends the start **only** to the inline
handlers as soon as there is one (langchain-ai/langchain issue #39633, unfixed upstream):
attaching ObsHandler would take the start of every such run away from LangChainTracer,
RunCollector, ``astream_events`` and the user's own handlers.

`install()` wraps that method once per process.  The wrapper changes nothing when the
manager holds no lc_observe handler, or when another inline handler is there too (then the
other handlers lose the start with or without lc_observe: what they see is LangChain's own
behaviour).  When lc_observe's handlers are the only inline ones and there are others, it

1. calls LangChain's own method on a copy of the manager **without** lc_observe's handlers:
   exactly the call the other handlers get when lc_observe is not attached, on any
   langchain-core version, fixed upstream or not;
2. then sends the start to lc_observe's handlers with the run ids LangChain chose, and
   returns LangChain's run managers with the full handler list (so every later event of the
   run reaches every handler, as before).

lc_observe's handlers then see the start just after the others (within the same await, so
still before the run's first token or its end).  On a langchain-core whose method does not
have the expected signature, `install()` changes nothing and logs one line.  Which
handlers are lc_observe's: `lc_observe.capture.ours`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import threading
from typing import Any

from lc_observe.capture.ours import is_ours

logger = logging.getLogger("lc_observe")

_EXPECTED_PARAMS = ["self", "serialized", "prompts", "run_id", "kwargs"]
_lock = threading.Lock()
_state: dict[str, Any] = {"installed": None, "original": None}


def install(*, force: bool = False) -> bool:
    """Wrap ``AsyncCallbackManager.on_llm_start`` once per process; True when active.

    After `uninstall()` it stays off until ``install(force=True)``."""
    with _lock:
        if _state["installed"] is None or (force and not _state["installed"]):
            _state["installed"] = _install()
        return bool(_state["installed"])


def uninstall() -> None:
    """Put LangChain's own method back (tests, and the before/after comparison)."""
    from langchain_core.callbacks.manager import AsyncCallbackManager

    with _lock:
        if _state["original"] is not None:
            AsyncCallbackManager.on_llm_start = _state["original"]
        _state["installed"] = False
        _state["original"] = None


def _install() -> bool:
    from langchain_core.callbacks.manager import AsyncCallbackManager, ahandle_event

    original = AsyncCallbackManager.on_llm_start
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        params = []
    if params != _EXPECTED_PARAMS:
        logger.warning(
            "lc_observe: langchain_core's AsyncCallbackManager.on_llm_start has an unexpected "
            "signature %s; not wrapped: under async, other handlers may miss the start of "
            "text-completion LLM runs while ObsHandler is attached",
            params,
        )
        return False

    @functools.wraps(original)
    async def on_llm_start(
        self: Any, serialized: Any, prompts: list[str], run_id: Any = None, **kwargs: Any
    ) -> Any:
        handlers = self.handlers
        ours = [h for h in handlers if is_ours(h)]
        if not ours:
            return await original(self, serialized, prompts, run_id, **kwargs)
        others = [h for h in handlers if not is_ours(h)]
        if not others or any(h.run_inline for h in others):
            return await original(self, serialized, prompts, run_id, **kwargs)
        without_us = copy.copy(self)
        without_us.handlers = others
        managers = await original(without_us, serialized, prompts, run_id, **kwargs)
        for prompt, manager in zip(prompts, managers, strict=True):
            manager.handlers = handlers
            await ahandle_event(
                ours,
                "on_llm_start",
                "ignore_llm",
                serialized,
                [prompt],
                run_id=manager.run_id,
                parent_run_id=self.parent_run_id,
                tags=self.tags,
                metadata=self.metadata,
                **kwargs,
            )
        return managers

    _state["original"] = original
    AsyncCallbackManager.on_llm_start = on_llm_start  # type: ignore[method-assign]
    return True
