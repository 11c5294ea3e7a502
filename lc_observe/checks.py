"""The valid values of the ``status``, ``kind`` and ``source`` filters, checked in one place: a typo
is an error that lists the valid values, never a silently empty result."""

from __future__ import annotations

from collections.abc import Iterable

#: Span and trace statuses.
STATUSES = ("ok", "error", "interrupted", "running")
#: LangChain run types lc_observe records (a custom run type stored in the file is valid too).
KINDS = ("chain", "chat_model", "llm", "tool", "retriever", "prompt", "parser", "embedding")


def check_status(status: str | None) -> str | None:
    """``status`` if it is one of `STATUSES` (or None); else a ValueError naming them."""
    if status is None or status in STATUSES:
        return status
    raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")


def check_kind(kind: str | None, stored: Iterable[str] = ()) -> str | None:
    """``kind`` if it is one of `KINDS` or a kind already ``stored``; else a ValueError."""
    if kind is None or kind in KINDS:
        return kind
    known = list(KINDS) + sorted(set(stored) - set(KINDS))
    if kind in known:
        return kind
    raise ValueError(f"kind must be one of {', '.join(known)}; got {kind!r}")


#: Who gave a score (`lc_observe.model.Score.source`).
SOURCES = ("human", "judge", "heuristic", "feedback")


def check_source(source: str | None) -> str | None:
    """``source`` if it is one of `SOURCES` (or None); else a ValueError naming them."""
    if source is None or source in SOURCES:
        return source
    raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
