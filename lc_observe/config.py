"""Small typed groups of `ObsHandler` options (the way httpx groups ``Timeout``/``Limits``).

>>> queue = Queue(max_size=10_000)                               # doctest: +SKIP
>>> ObsHandler("t.db", queue=queue, privacy=Privacy(hide_inputs=True))  # doctest: +SKIP

Mirrors are sink objects passed in ``sinks=[...]`` (`LangSmith`, `OTLP`, or any sink):
every sink sits behind the privacy stage, so each of its options is reachable without
losing redaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lc_observe.pipeline.redact import RedactOption
from lc_observe.pipeline.serialize import Limits

logger = logging.getLogger("lc_observe")

HideOption = bool | Callable[[Any], Any]


@dataclass(frozen=True)
class Queue:
    """The intake queue and every destination's queue.

    Attributes:
        max_size: records held in memory at most per queue; beyond it new records are
            dropped (and counted: ``stats["dropped"]``, per destination too).
        batch_size: records written per transaction (network sinks use their own size).
        schedule_delay: seconds a worker waits to fill a batch.
        exit_timeout: seconds the exit flush of the intake and the local file may take at
            most (each network sink is bounded by its own ``timeout``).
        handle_sigterm: when SIGTERM has its default action, flush pending records (within
            ``exit_timeout``) before the process ends by the signal, as it would have.
    """

    max_size: int = 100_000
    batch_size: int = 1_000
    schedule_delay: float = 0.2
    exit_timeout: float = 10.0
    handle_sigterm: bool = True

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.batch_size < 1:
            raise ValueError("Queue(max_size=..., batch_size=...) must be >= 1")
        if self.schedule_delay <= 0 or self.exit_timeout < 0:
            raise ValueError("Queue(schedule_delay=...) must be > 0, exit_timeout >= 0 seconds")


@dataclass(frozen=True)
class Privacy:
    """What every sink may see (applied once per record, before any sink).

    Attributes:
        redact: secret redaction: ``True`` (default patterns and key names, see
            `lc_observe.pipeline.redact`), ``False``, a list of extra regular expressions, or a
            callable on JSON-safe values.
        hide_inputs: ``True`` to record no inputs at all, or a function applied to each
            run's inputs (on the callback thread) whose result is recorded instead.
        hide_outputs: the same for outputs.
        limits: serialization limits (string length, items, depth, field size).
    """

    redact: RedactOption = True
    hide_inputs: HideOption = False
    hide_outputs: HideOption = False
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Runs:
    """Bounds of the open-run bookkeeping (memory), and LangGraph hints.

    Attributes:
        max_open: runs kept open in memory at most; beyond it the oldest is written as
            ``running`` and forgotten (counted in ``stats["abandoned"]``).
        ttl: seconds after which an unfinished run is written as ``running`` and forgotten.
        graphs: optional hint, used only when the LangGraph branch hook is off (a LangGraph
            version it does not understand): compiled graphs whose path_maps and routing
            names the callback-only fallback should know.
    """

    max_open: int = 10_000
    ttl: float = 3600.0
    graphs: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if self.max_open < 1 or self.ttl <= 0:
            raise ValueError("Runs(max_open=...) must be >= 1 and ttl > 0 seconds")


def LangSmith(
    client: Any = None,
    *,
    project_name: str | None = None,
    timeout: float = 15.0,
    **options: Any,
) -> Any:
    """A LangSmith mirror for ``sinks=[...]`` (`lc_observe.sinks.langsmith.LangSmithSink`).

    ``client``: a ``langsmith.Client``; default: one from LangSmith's environment variables.
    ``timeout``: seconds one request, a flush and the exit flush wait for it at most.

    Raises:
        ValueError: no ``client`` and no LangSmith API key in the environment (nothing
            could be sent; the message names the variable).
    """
    from .sinks.langsmith import LangSmithSink, missing_api_key

    problem = missing_api_key() if client is None else None
    if problem is not None:
        raise ValueError(f"LangSmith(): {problem}")

    return LangSmithSink(client, project_name=project_name, timeout=timeout, **options)


def OTLP(
    endpoint: str | None = None,
    *,
    exporter: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    **options: Any,
) -> Any:
    """An OpenTelemetry mirror for ``sinks=[...]`` (`lc_observe.sinks.otlp.OtlpSink`, extra
    ``[otlp]``): a collector ``endpoint`` over OTLP/HTTP, or any ``SpanExporter``.  Other
    keyword options go to the sink as they are.

    Raises:
        ValueError: both or neither of ``endpoint`` and ``exporter``.
    """
    if (endpoint is None) == (exporter is None):
        raise ValueError(
            "OTLP(...) needs exactly one of endpoint (a collector URL) and exporter "
            "(a SpanExporter); for both, build the exporter with that endpoint"
        )
    from .sinks.otlp import OtlpSink

    return OtlpSink(exporter, endpoint=endpoint, headers=headers, timeout=timeout, **options)


#: Older `ObsHandler` keyword names (kept for one release) -> their new spelling.
DEPRECATED: dict[str, str] = {
    "max_queue": "queue=Queue(max_size=...)",
    "batch_size": "queue=Queue(batch_size=...)",
    "schedule_delay": "queue=Queue(schedule_delay=...)",
    "exit_timeout": "queue=Queue(exit_timeout=...)",
    "handle_sigterm": "queue=Queue(handle_sigterm=...)",
    "redact": "privacy=Privacy(redact=...)",
    "hide_inputs": "privacy=Privacy(hide_inputs=...)",
    "hide_outputs": "privacy=Privacy(hide_outputs=...)",
    "limits": "privacy=Privacy(limits=...)",
    "max_open_runs": "runs=Runs(max_open=...)",
    "open_run_ttl": "runs=Runs(ttl=...)",
    "graphs": "runs=Runs(graphs=...)",
    "langsmith": "sinks=[LangSmith(client)]",
    "project_name": "sinks=[LangSmith(project_name=...)]",
    "otlp_endpoint": "sinks=[OTLP(endpoint)]",
    "otlp_exporter": "sinks=[OTLP(exporter=...)]",
    "network_timeout": "sinks=[LangSmith(timeout=...)] / sinks=[OTLP(..., timeout=...)]",
}
_GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "queue": (
        "Queue",
        {
            "max_queue": "max_size",
            "batch_size": "batch_size",
            "schedule_delay": "schedule_delay",
            "exit_timeout": "exit_timeout",
            "handle_sigterm": "handle_sigterm",
        },
    ),
    "privacy": (
        "Privacy",
        {
            "redact": "redact",
            "hide_inputs": "hide_inputs",
            "hide_outputs": "hide_outputs",
            "limits": "limits",
        },
    ),
    "runs": ("Runs", {"max_open_runs": "max_open", "open_run_ttl": "ttl", "graphs": "graphs"}),
}


def legacy_options(
    old: dict[str, Any],
    queue: Queue | None,
    privacy: Privacy | None,
    runs: Runs | None,
) -> tuple[Queue, Privacy, Runs, list[Any]]:
    """The option groups and mirror sinks an `ObsHandler` gets from its older keyword
    names (one DeprecationWarning naming the new spelling of each).

    Raises:
        TypeError: a keyword that never existed.
        ValueError: an old name together with its new group, or conflicting mirrors.
    """
    unknown = sorted(set(old) - set(DEPRECATED))
    if unknown:
        raise TypeError(f"ObsHandler() got an unexpected keyword argument {unknown[0]!r}")
    if old:
        import warnings

        spelled = "; ".join(f"{name}= -> {DEPRECATED[name]}" for name in old)
        warnings.warn(
            f"ObsHandler: these keyword names are deprecated and go away in the next "
            f"release: {spelled}",
            DeprecationWarning,
            stacklevel=3,
        )
    groups: dict[str, Any] = {"queue": queue, "privacy": privacy, "runs": runs}
    for group, (cls_name, fields) in _GROUPS.items():
        given = {new: old[name] for name, new in fields.items() if name in old}
        if not given:
            continue
        if groups[group] is not None:
            raise ValueError(
                f"ObsHandler: pass {group}={cls_name}(...) or its old keyword names "
                f"({', '.join(name for name in fields if name in old)}), not both"
            )
        if given.get("limits") is None:
            given.pop("limits", None)
        groups[group] = {"queue": Queue, "privacy": Privacy, "runs": Runs}[group](**given)
    return (
        groups["queue"] or Queue(),
        groups["privacy"] or Privacy(),
        groups["runs"] or Runs(),
        _legacy_mirrors(old, (groups["privacy"] or Privacy()).limits),
    )


def _legacy_mirrors(old: dict[str, Any], limits: Limits) -> list[Any]:
    timeout = old.get("network_timeout", 15.0)
    mirrors: list[Any] = []
    langsmith = old.get("langsmith")
    if langsmith is not None and langsmith is not False:
        from .sinks.langsmith import missing_api_key

        client = None if langsmith is True else langsmith
        problem = missing_api_key() if client is None else None
        if problem is not None:  # one warning, no requests bound to fail, no per-run noise
            logger.warning(
                "lc_observe: langsmith=True, but %s. LangSmith mirroring is off; "
                "local recording goes on.",
                problem,
            )
            return mirrors + _legacy_otlp(old, timeout, limits)
        mirrors.append(
            LangSmith(client, project_name=old.get("project_name"), timeout=timeout, limits=limits)
        )
    elif old.get("project_name") is not None:
        raise ValueError(
            "ObsHandler(project_name=...) names the LangSmith project of the LangSmith mirror: "
            "pass sinks=[LangSmith(project_name=...)]"
        )
    return mirrors + _legacy_otlp(old, timeout, limits)


def _legacy_otlp(old: dict[str, Any], timeout: float, limits: Limits) -> list[Any]:
    endpoint, exporter = old.get("otlp_endpoint"), old.get("otlp_exporter")
    if endpoint is not None and exporter is not None:
        raise ValueError(
            "ObsHandler: otlp_endpoint= and otlp_exporter= together are ambiguous (which one "
            "receives the spans?): pass one, e.g. sinks=[OTLP(endpoint)] or "
            "sinks=[OTLP(exporter=...)]"
        )
    if endpoint is not None or exporter is not None:
        return [OTLP(endpoint, exporter=exporter, timeout=timeout, limits=limits)]
    return []
