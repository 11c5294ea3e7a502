"""The configurations `overhead.py` measures, and the loopback LangSmith stand-in they send to.

A configuration is a name in `CONFIGS` and a function of an `Env` that returns a `Setup`:
the callbacks to pass, and optional hooks (flush, reset, enter/exit around a block, close).
`TARGETS` holds issue 26's targets: a configuration's added cost over a reference's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langsmith import Client

from lc_observe import OTLP, LangSmith, ObsHandler, Queue
from lc_observe.testing import INFO as SERVICE_INFO

HERE = os.path.dirname(os.path.abspath(__file__))


# -- configurations ----------------------------------------------------------------------------


@dataclass
class Env:
    """What configurations may use: a temporary directory, the LangSmith stand-in, and the
    mode's name (``sync`` / ``async``: a prefix of the stand-in's client names)."""

    tmpdir: str
    langsmith_url: str
    mode: str = "sync"


@dataclass
class Setup:
    """One configuration, ready to run."""

    callbacks: list[BaseCallbackHandler]
    flush: Callable[[], object] | None = None  # timed, after each round's loop
    reset: Callable[[], object] | None = None  # untimed, before each round's loop
    close: Callable[[], object] | None = None  # once, at the end
    enter: Callable[[], object] | None = None  # untimed, before each block of invokes
    exit: Callable[[], object] | None = None  # untimed, after each block (and its flush)
    #: "handler": the ObsHandler; "langsmith": the stand-in's client name; "spans": a
    #: function returning the spans its OTel exporter received so far
    extra: dict[str, Any] = field(default_factory=dict)


class NoOpHandler(BaseCallbackHandler):
    """A handler that does nothing (LangChain's default: ``run_inline = False``)."""


class InlineNoOpHandler(BaseCallbackHandler):
    """A handler that does nothing and asks to be called inline in async runs."""

    run_inline = True


def _noop(env: Env) -> Setup:
    return Setup([NoOpHandler()])


def _noop_inline(env: Env) -> Setup:
    return Setup([InlineNoOpHandler()])


def _run_collector(env: Env) -> Setup:
    collector = RunCollectorCallbackHandler()
    return Setup([collector], reset=collector.traced_runs.clear)


def langsmith_client(env: Env, name: str) -> Client:
    """A client of the stand-in whose runs are counted under ``name`` (see `stub_stats`)."""
    return Client(api_url=f"{env.langsmith_url}/c/{name}", api_key="x")


def client_name(env: Env, config: str) -> str:
    return f"{env.mode}-" + "".join(ch if ch.isalnum() else "-" for ch in config.lower())


def _langchain_tracer(env: Env) -> Setup:
    name = client_name(env, TRACER)
    client = langsmith_client(env, name)
    tracer = LangChainTracer(client=client, project_name="bench")
    return Setup(
        [tracer], flush=tracer.wait_for_futures, close=client.cleanup, extra={"langsmith": name}
    )


class NullSink:
    """A sink that stores nothing: ObsHandler's callback and queue cost without the writer's."""

    def export(self, batch: Any) -> int:
        return len(batch)

    def close(self) -> None:
        pass


def _obs_null(env: Env) -> Setup:
    handler = ObsHandler(None, sinks=[NullSink()], queue=Queue(handle_sigterm=False))
    return Setup([handler], flush=handler.flush, close=handler.close, extra={"handler": handler})


def obs_sqlite(env: Env, **options: Any) -> Setup:
    path = os.path.join(env.tmpdir, f"obs-{len(os.listdir(env.tmpdir))}.db")
    handler = ObsHandler(path, **options, queue=Queue(handle_sigterm=False))
    return Setup([handler], flush=handler.flush, close=handler.close, extra={"handler": handler})


def _obs_sqlite_langsmith(env: Env) -> Setup:
    name = client_name(env, OBS_MIRROR)
    mirror = LangSmith(langsmith_client(env, name), project_name="bench")
    setup = obs_sqlite(env, sinks=[mirror])
    setup.extra["langsmith"] = name
    return setup


def memory_exporter() -> tuple[Any, Callable[[], int], Callable[[], None]]:
    """An ``InMemorySpanExporter``, a function counting the spans it received so far, and
    one that empties it (counted first: rounds must not pile spans up in memory)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    seen = [0]

    def clear() -> None:
        seen[0] += len(exporter.get_finished_spans())
        exporter.clear()

    return exporter, lambda: seen[0] + len(exporter.get_finished_spans()), clear


def _obs_otlp(env: Env) -> Setup:
    exporter, spans, clear = memory_exporter()
    setup = obs_sqlite(env, sinks=[OTLP(exporter=exporter)])
    setup.reset, setup.extra["spans"] = clear, spans
    return setup


def _openinference(env: Env) -> Setup:
    """OpenInference's LangChain instrumentation to a TracerProvider of its own, switched
    on around this configuration's blocks only (it patches every callback manager)."""
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter, spans, clear = memory_exporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = LangChainInstrumentor()
    return Setup(
        [],
        flush=provider.force_flush,
        reset=clear,
        close=provider.shutdown,
        enter=lambda: instrumentor.instrument(tracer_provider=provider),
        exit=instrumentor.uninstrument,
        extra={"spans": spans},
    )


NONE = "no callbacks"
RUN_COLLECTOR = "RunCollector"
TRACER = "LangChainTracer"
OBS = "ObsHandler (SQLite)"
OBS_MIRROR = "ObsHandler + LangSmith mirror"
OBS_OTLP = "ObsHandler + OTLP"
OPENINFERENCE = "OpenInference"

#: name -> factory.  The first entry is the baseline every added cost is measured against.
CONFIGS: dict[str, Callable[[Env], Setup]] = {
    NONE: lambda env: Setup([]),
    "no-op handler": _noop,
    "no-op handler (run_inline)": _noop_inline,
    RUN_COLLECTOR: _run_collector,
    TRACER: _langchain_tracer,
    OBS: obs_sqlite,
    "ObsHandler (null sink)": _obs_null,  # diagnostic: the SQLite writer's share of OBS
    OBS_MIRROR: _obs_sqlite_langsmith,
    OBS_OTLP: _obs_otlp,
    OPENINFERENCE: _openinference,
}

#: (config, reference, target), issue 26: the config's added cost, flush included, must be
#: <= target x the reference's.
TARGETS: list[tuple[str, str, float]] = [
    (OBS, RUN_COLLECTOR, 0.5),
    (OBS, TRACER, 0.1),
    (OBS_MIRROR, TRACER, 0.5),
    (OBS_OTLP, OPENINFERENCE, 0.5),
]


def target_key(config: str, reference: str) -> str:
    """The name of a target's ratio (in ``--json`` and in README's reference block)."""
    return f"{config} / {reference}"


# -- the LangSmith stand-in --------------------------------------------------------------------


@contextmanager
def langsmith_stub(lifetime: float = 1800.0, zstd: bool = True) -> Iterator[str]:
    """Start `_langsmith_stub.py` in a child process; yield its base URL; stop it."""
    command = [sys.executable, os.path.join(HERE, "_langsmith_stub.py")]
    command += ["--lifetime", str(lifetime), *([] if zstd else ["--no-zstd"])]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the LangSmith stand-in did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        if proc.stdin:
            proc.stdin.close()  # the stub ends its loop at EOF
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stub_stats(url: str) -> dict[str, Any]:
    """The stand-in's counters: ``requests`` per path, ``bytes``, and per client name
    (``clients``) its ``requests`` and distinct ``runs``."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/__stats", timeout=5) as response:
        return json.load(response)


def silent_client(api_url: str) -> Client:
    """A LangSmith client of a server that never answers: requests time out after 2 s
    (the server description is given: the client asks for none)."""
    info = {**SERVICE_INFO, "instance_flags": {"zstd_compression_enabled": True}}
    return Client(api_url=api_url, api_key="x", timeout_ms=2_000, info=info)
