"""`LangSmithSink`: mirror every run to LangSmith with the real ``langsmith`` client.

Batches go through ``Client.multipart_ingest`` -- the client's batched ingestion, to the
same ``/runs/multipart`` endpoint its own background queue uses for ``LangChainTracer`` --
called on the destination's own worker thread (see `lc_observe.pipeline`), so the client's
requests never delay the application or the local store.  The runs are built by
`lc_observe.sinks.langsmith_runs.RunBuilder` to match what ``LangChainTracer`` sends.

>>> handler = ObsHandler("traces.db", sinks=[LangSmith()])     # doctest: +SKIP
>>> mirror = LangSmith(langsmith.Client(), project_name="prod")  # doctest: +SKIP
>>> handler = ObsHandler(None, sinks=[mirror])                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lc_observe.pipeline.processor import Item
from lc_observe.pipeline.serialize import Limits

from ..records import RECORD_BRANCH, RECORD_RUNNING, RECORD_SPAN
from .langsmith_runs import RunBuilder
from .network import NetworkSink, RetryPolicy, quiet_on_mirror_threads

logger = logging.getLogger("lc_observe")


#: The environment variables LangSmith's client reads its API key from.
API_KEY_VARIABLES = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


def missing_api_key() -> str | None:
    """Why a client from the environment could not authenticate, or None when an API key
    is set (checked before any request, so nothing is sent that must fail)."""
    if any(os.environ.get(name, "").strip() for name in API_KEY_VARIABLES):
        return None
    return (
        "no LangSmith API key: set LANGSMITH_API_KEY (create one in LangSmith under "
        "Settings > API Keys; LANGSMITH_ENDPOINT for a self-hosted instance), or pass a "
        "configured langsmith.Client"
    )


def default_client(timeout: float = 5.0) -> Any:
    """A ``langsmith.Client`` configured from LangSmith's own environment variables.

    The client reads ``LANGSMITH_API_KEY`` / ``LANGSMITH_ENDPOINT`` (or the legacy
    ``LANGCHAIN_*`` names) itself.  It sends only when the sink asks (no background
    queue of its own) and does not retry at the HTTP level: `LangSmithSink` retries.
    """
    import langsmith
    from urllib3.util.retry import Retry

    millis = int(timeout * 1000)
    return langsmith.Client(
        auto_batch_tracing=False, retry_config=Retry(total=0), timeout_ms=(millis, millis)
    )


def default_project() -> str:
    """The project LangSmith's environment names (``LANGSMITH_PROJECT`` ...), or "default"."""
    from langsmith import utils

    return utils.get_tracer_project() or "default"


class _ErrorCapture:
    """The errors the client reports while the current thread sends.

    ``Client.multipart_ingest`` never raises on a failed request: it logs and calls the
    client's ``tracing_error_callback``.  We chain onto that callback (keeping the one the
    user configured) and collect what is reported on the sending thread.
    """

    def __init__(self, client: Any) -> None:
        self._local = threading.local()
        self.supported = hasattr(client, "_tracing_error_callback")
        if self.supported:
            self._previous: Callable[[Exception], None] | None = client._tracing_error_callback
            client._tracing_error_callback = self._on_error
        else:  # pragma: no cover - depends on the langsmith version
            logger.warning(
                "lc_observe: this langsmith version does not report ingestion errors; "
                "LangSmith mirror failures will not be counted"
            )

    def _on_error(self, error: Exception) -> None:
        errors = getattr(self._local, "errors", None)
        if errors is not None:
            errors.append(error)
        if self._previous is not None:
            self._previous(error)

    @contextmanager
    def capture(self) -> Iterator[list[Exception]]:
        self._local.errors = errors = []
        try:
            yield errors
        finally:
            self._local.errors = None


@dataclass
class _Payload:
    creates: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)  # ids whose skeleton to remember
    running: set[str] = field(default_factory=set)  # ids created unfinished


def _fresh(run: dict[str, Any]) -> dict[str, Any]:
    """A copy the client may mutate (it adds runtime info to ``extra`` in place)."""
    copy = dict(run)
    if isinstance(run.get("extra"), dict):
        copy["extra"] = {**run["extra"], "metadata": dict(run["extra"].get("metadata") or {})}
    return copy


class LangSmithSink(NetworkSink):
    """Send span and branch records to LangSmith as runs.

    Args:
        client: a ``langsmith.Client``; default: one configured from the environment
            (`default_client`).
        project_name: LangSmith project; default: ``LANGSMITH_PROJECT`` /
            ``LANGCHAIN_PROJECT`` / ``"default"``.
        limits: size limits of inputs, outputs and metadata.
        redact: redaction applied before anything leaves the process.
        retry: retry policy of a failed batch.
        timeout: HTTP timeout (seconds) of the default client.
        cache_size: finished runs remembered, so a branch decision known only when the
            trace ends can still be attached to its (already sent) deciding run.
    """

    label = "langsmith"
    batch_size = 100  # the client's default batch size for one ingestion request
    #: public fields the privacy stage adds for this sink: dotted order and model runs'
    #: start arguments, as ``LangChainTracer`` sends them
    wants = frozenset({"ancestry", "invocation", "serialized"})

    def __init__(
        self,
        client: Any = None,
        *,
        project_name: str | None = None,
        limits: Limits | None = None,
        redact: Callable[[Any], Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        self.client = client if client is not None else default_client(timeout)
        super().__init__(getattr(self.client, "api_url", "LangSmith"), retry)
        self.timeout = timeout
        self.project_name = project_name or default_project()
        self.builder = RunBuilder(self.project_name, limits, redact)
        self.cache_size = cache_size
        self._errors = _ErrorCapture(self.client)
        # span id -> skeleton of the sent run; span ids created while still running
        self._sent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._created: OrderedDict[str, None] = OrderedDict()
        quiet_on_mirror_threads("langsmith.client", self.label)

    # -- NetworkSink -----------------------------------------------------------------------

    def prepare(self, batch: Sequence[Item]) -> tuple[_Payload, int] | None:
        """Creates for new runs, updates for runs already created (running snapshots,
        late branch events); branch events merged into their deciding run."""
        payload = _Payload()
        orphans = 0
        for kind, record in batch:
            span_id = record.get("span_id")
            if kind == RECORD_SPAN:
                run = self.builder.run(record)
                target = payload.updates if span_id in self._created else payload.creates
                payload.creates.pop(span_id, None)  # a running snapshot in this very batch
                payload.running.discard(span_id)
                target[span_id] = run
                payload.finished.append(span_id)
            elif kind == RECORD_RUNNING:
                if span_id in self._sent or span_id in self._created:
                    continue
                if span_id not in payload.creates:
                    payload.creates[span_id] = self.builder.run(record)
                    payload.running.add(span_id)
            elif kind == RECORD_BRANCH:
                run = payload.creates.get(span_id) or payload.updates.get(span_id)
                if run is None and span_id in self._sent:  # decided by a run sent earlier
                    run = payload.updates[span_id] = self.builder.skeleton(self._sent[span_id])
                    payload.finished.append(span_id)
                if run is None:
                    orphans += 1  # its run was never sent (failed, or forgotten)
                    continue
                self.builder.add_branch(run, record)
        self.failed += orphans
        if not payload.creates and not payload.updates:
            return None
        return payload, len(batch) - orphans

    def deliver(self, payload: _Payload) -> None:
        """One ``multipart_ingest`` call; raises what the client reported, if anything."""
        with self._errors.capture() as errors:
            self.client.multipart_ingest(
                create=[_fresh(run) for run in payload.creates.values()],
                update=[_fresh(run) for run in payload.updates.values()],
            )
        if errors:
            raise errors[-1]
        self._remember(payload)

    def shutdown(self) -> None:
        """Nothing to release: the client belongs to the caller (or to us and is idle)."""

    # -- internals -------------------------------------------------------------------------

    def _remember(self, payload: _Payload) -> None:
        runs = {**payload.creates, **payload.updates}
        for span_id in payload.finished:
            self._created.pop(span_id, None)
            self._sent[span_id] = self.builder.skeleton(runs[span_id])
        for span_id in payload.running:
            self._created[span_id] = None
        for cache in (self._sent, self._created):
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
