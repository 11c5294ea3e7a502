"""The valid values of the ``status`` and ``kind`` filters, checked in one place: a typo
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
