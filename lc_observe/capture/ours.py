"""Which callback handlers are lc_observe's own.

The wrappers lc_observe puts around LangChain and LangGraph (`llm_start_dispatch`,
`langgraph_policy`) act for these handlers only and leave every other handler where
LangChain or LangGraph put it.  A handler is lc_observe's when its class sets
``_lc_observe_inline = True`` (`ObsHandler` does).
"""

from __future__ import annotations

from typing import Any

MARK = "_lc_observe_inline"


def is_ours(handler: Any) -> bool:
    """Whether ``handler`` is one of lc_observe's handlers."""
    return getattr(handler, MARK, False) is True
