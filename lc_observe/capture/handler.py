"""`ObsHandler`: LangChain callbacks in, finished span records out.

Every callback does in-memory bookkeeping only: it opens or closes a plain dict
record and, when a run finishes, hands the record to the dispatcher's bounded
queue.  Serialization, disk and network work happen on the dispatcher's worker.
Every callback is wrapped so that nothing it does can raise into user code.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import traceback
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID, uuid4

from langchain_core.callbacks import BaseCallbackHandler

from lc_observe.capture import langgraph_hook, langgraph_policy, llm_start_dispatch
from lc_observe.capture.budgets import Budget, BudgetTracker
from lc_observe.capture.langgraph import GraphTracker, span_status_for_error
from lc_observe.capture.pricing import PriceTable
from lc_observe.capture.usage import (
    carries_content,
    is_cache_hit,
    model_and_provider,
    observe_chunk,
    request_params,
    usage_from_result,
)
from lc_observe.config import Privacy, Queue, Runs, legacy_options
from lc_observe.errors import BudgetExceededError, RunNotEndedError
from lc_observe.graph_rules import graph_fields
from lc_observe.pipeline.fanout import Pipeline
from lc_observe.pipeline.privacy import PrivacyStage
from lc_observe.pipeline.processor import Sink, install_sigterm_exit
from lc_observe.pipeline.redact import make_redactor
from lc_observe.pipeline.serialize import Limits, dumps
from lc_observe.records import (
    BUDGET_FIELDS,
    RECORD_BRANCH,
    RECORD_BUDGET,
    RECORD_RUNNING,
    RECORD_SPAN,
    ROLLUP_FIELDS,
    TOKEN_FIELDS,
    new_span_record,
)
from lc_observe.sinks.sqlite import SQLiteSink
from lc_observe.trace_context import enclosing_traceparent

logger = logging.getLogger("lc_observe")

DEFAULT_DB = "lc_observe.db"
_SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
_RECENT_ENDED = 10_000  # ended runs remembered so late children still find their trace
HIDDEN = "…[hidden]"
#: Metadata key of a run that was given the id of another run (see `_reused_run_id`).
REUSED_RUN_ID_KEY = "lc_observe_reused_run_id"
_ID_LIMITS = Limits(max_string_chars=200, max_items=10, max_depth=3, max_field_chars=400)
#: A model start's arguments kept for any sink that wants them (public field ``invocation``).
_MODEL_START_ARGS = ("invocation_params", "options", "batch_size")


F = TypeVar("F", bound=Callable[..., Any])


def _never_raise(method: F) -> F:
    """Run a callback, log instead of raising: the handler must never break the app.

    The one exception: `BudgetExceededError`, raised on purpose by a model start when a
    ``Budget(action="raise")`` is used up."""

    @functools.wraps(method)
    def guarded(self: ObsHandler, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except BudgetExceededError:
            raise
        except Exception:
            self._internal_errors += 1
            if self._internal_errors <= 3:
                logger.exception("lc_observe: internal error in %s (ignored)", method.__name__)

    return guarded  # type: ignore[return-value]


def _current_run_id() -> UUID | None:
    """The id of the LangChain run whose code is executing in this context, if any."""
    from langchain_core.runnables.config import var_child_runnable_config

    config = var_child_runnable_config.get() or {}
    callbacks = config.get("callbacks")
    return getattr(callbacks, "parent_run_id", None)


def _run_name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    """The name LangChain's own tracers give a run (kwarg, serialized name, class id)."""
    name = kwargs.get("name")
    if name:
        return name
    if serialized:
        if serialized.get("name"):
            return serialized["name"]
        ident = serialized.get("id")
        if ident:
            return ident[-1]
    return default


def _as_id(value: Any) -> str | None:
    """A user/session id from run metadata as text (whatever the app put there)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, UUID)):
        return str(value)
    return dumps(value, _ID_LIMITS)


def _hidden(option: bool | Callable[[Any], Any], value: Any) -> Any:
    """What is recorded in place of inputs/outputs the user asked to hide."""
    if value is None:
        return None
    if option is True:
        return HIDDEN
    try:
        return option(value)  # type: ignore[operator]
    except Exception:
        return f"{HIDDEN} (the hide function raised)"


def _metric_and_alert_sinks(
    db_path: str | None, prometheus: bool | Any, alerts: Sequence[Any], every: float
) -> list[Sink]:
    """The Prometheus sink and the alert sink, when asked for (after the SQLite sink)."""
    sinks: list[Sink] = []
    if prometheus is not False and prometheus is not None:
        from lc_observe.sinks.prometheus import PrometheusSink

        sinks.append(PrometheusSink(None if prometheus is True else prometheus))
    if alerts:
        if db_path is None:
            raise ValueError(
                "ObsHandler(alerts=...) reads the SQLite file: pass a db_path, not None"
            )
        from lc_observe.analysis.alerts import AlertSink

        sinks.append(AlertSink(db_path, alerts, every=every))
    return sinks


def _error_info(error: BaseException) -> dict[str, Any]:
    """An exception as plain text (type, message, traceback): records keep no exception."""
    try:
        message = str(error)
    except Exception:
        message = "<str() of the exception failed>"
    try:
        trace = "".join(traceback.format_exception(error))
    except Exception:
        trace = None
    return {"type": type(error).__qualname__, "message": message, "traceback": trace}


class ObsHandler(BaseCallbackHandler):
    """Record every LangChain / LangGraph run as a span in a local SQLite file.

    >>> handler = ObsHandler("traces.db")                     # doctest: +SKIP
    >>> chain.invoke({"q": "hi"}, config={"callbacks": [handler]})  # doctest: +SKIP
    >>> handler.flush()                                       # doctest: +SKIP
    >>> handler.store.print_trace(handler.store.traces()[0].trace_id)  # doctest: +SKIP
    >>> ObsHandler("t.db", sinks=[LangSmith(), OTLP("http://localhost:4318")])  # doctest: +SKIP

    Records flow capture -> privacy stage -> one queue per destination (see
    `lc_observe.pipeline.fanout`).

    Args:
        db_path: SQLite file to write (default ``$LC_OBSERVE_DB`` or ``./lc_observe.db``);
            ``None`` writes no local file (use with ``sinks=``).
        user_id: stamped on every span that has no ``user_id`` of its own in run metadata.
        session_id: likewise; otherwise taken from run metadata ``session_id``/``thread_id``.
        tags: added to every span's tags.
        metadata: merged under every span's metadata (the run's own keys win).
        sinks: more destinations, each on a queue and worker of its own, behind the
            privacy stage: mirrors (`LangSmith(...)`, `OTLP(...)`) or any sink (an object
            with ``export(batch) -> int``; see `lc_observe.pipeline.processor.Sink`).  They receive
            public records (`lc_observe.pipeline.privacy`: JSON-safe, bounded, redacted; read-only).
        queue: `Queue` bounds and timing (queue size, batch size, delays, exit flush).
        privacy: `Privacy`: redaction, hidden inputs/outputs, serialization limits.
        runs: `Runs`: bounds of the open-run bookkeeping, LangGraph hints.
        sample_rate: fraction of traces kept (0..1); the decision is a hash of the trace id,
            so a trace is kept or dropped whole, the same way in every process and sink.
            Dropped traces are counted in ``stats["sampled_out"]`` (spans).
        max_db_bytes: size cap of the SQLite file; beyond it records are counted as failed.
        prices: cost overrides in USD per million tokens, e.g.
            ``{"my-model": {"input": 1.0, "output": 2.0}}`` (optional keys ``cached_input``,
            ``cache_write``, ``reasoning``), or a `PriceTable`.  Models the table does not
            know get ``cost_usd=None`` (logged once), never a made-up 0.
        budgets: `Budget` limits on cost or tokens (see ``docs/cost.md``).
        evaluators: heuristic evaluators (`lc_observe.evaluate`) run on every finished
            trace, on the local writer after the trace is written (never on the callback
            path); their verdicts are stored as scores (``source="heuristic"``).
        alerts: `lc_observe.AlertRule` s evaluated on the local writer, after a batch is
            written and at most every ``alert_every`` seconds; each fires once per episode
            (log, callable, webhook) and is stored (`TraceStore.alerts`).  Needs ``db_path``.
        alert_every: seconds between two evaluations of the alert rules at most.
        prometheus: ``True`` to count runs, errors, tokens, cost, latency, TTFT and branch
            decisions in prometheus_client's default registry, or a ``CollectorRegistry``
            (extra ``[prometheus]``; see ``docs/anomalies.md``).  Updated on the local writer.

    Older keyword names (``max_queue``, ``redact``, ``langsmith``, ``otlp_endpoint`` ...)
    still work for one release, with a DeprecationWarning naming the new spelling
    (`DEPRECATED`).

    The handler is thread-safe and may be shared by any number of concurrent runs
    (threads or asyncio tasks).  It never raises into the application: internal
    problems are logged on the ``lc_observe`` logger and counted in `stats`.
    """

    run_inline = True  # no I/O here, so async runs call us on the loop, in order
    raise_error = False
    # Other handlers keep the async start of text-completion LLM runs although we are
    # inline (langchain-core sends it to inline handlers only): see llm_start_dispatch.
    _lc_observe_inline = True

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = DEFAULT_DB,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        sinks: Sequence[Sink] = (),
        queue: Queue | None = None,
        privacy: Privacy | None = None,
        runs: Runs | None = None,
        sample_rate: float = 1.0,
        max_db_bytes: int | None = None,
        prices: PriceTable | Mapping[str, Mapping[str, float]] | None = None,
        budgets: Sequence[Budget] = (),
        evaluators: Sequence[Any] = (),
        alerts: Sequence[Any] = (),
        alert_every: float = 30.0,
        prometheus: bool | Any = False,
        **deprecated: Any,
    ) -> None:
        super().__init__()
        queue, privacy, runs, mirrors = legacy_options(deprecated, queue, privacy, runs)
        if db_path == DEFAULT_DB:
            db_path = os.environ.get("LC_OBSERVE_DB", DEFAULT_DB)
        self.db_path = None if db_path is None else os.fspath(db_path)
        self.user_id = user_id
        self.session_id = session_id
        self.tags = list(tags or ())
        self.metadata = dict(metadata or {})
        self.queue, self.privacy, self.runs = queue, privacy, runs
        self.limits = privacy.limits
        self.redact = make_redactor(privacy.redact)
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate!r}")
        self.sample_rate = sample_rate
        self._sample_below = int(sample_rate * 2**32)
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(overrides=prices)
        self.prices.load()  # a few ms now rather than on the first model call
        self.hide_inputs = privacy.hide_inputs
        self.hide_outputs = privacy.hide_outputs
        local: list[Sink] = []
        sqlite_sink = None
        if self.db_path is not None:
            sqlite_sink = SQLiteSink(self.db_path, limits=self.limits, max_bytes=max_db_bytes)
            sqlite_sink.open()  # create the schema now, not on the app's first busy seconds
            local.append(sqlite_sink)
        local.extend(_metric_and_alert_sinks(self.db_path, prometheus, alerts, alert_every))
        if evaluators:  # last: it reads each trace back after the SQLite sink wrote it
            if self.db_path is None:
                raise ValueError(
                    "ObsHandler(evaluators=...) evaluates traces in the SQLite file: pass a db_path"
                )
            from lc_observe.analysis.evaluate import EvaluationSink

            local.append(EvaluationSink(self.db_path, evaluators))
        others = [*sinks, *mirrors]
        if not local and not others:
            raise ValueError(
                "ObsHandler(db_path=None) needs at least one sink: pass sinks=[...] "
                "or a db_path to record into"
            )
        # Every sink receives only public records: serialized, bounded, redacted, once;
        # with the optional fields some sink asks for (`wants`), and no others.
        wanted = {name for sink in others for name in getattr(sink, "wants", ())}
        stage = PrivacyStage(self.limits, self.redact, extras=wanted)
        if sqlite_sink is not None:
            sqlite_sink.known_text = stage.text_of  # stores the stage's JSON as it is
        self._pipeline = Pipeline(
            stage.batch,
            local,
            others,
            max_queue=queue.max_size,
            batch_size=queue.batch_size,
            schedule_delay=queue.schedule_delay,
            exit_timeout=queue.exit_timeout,
        )
        self._dispatcher = self._pipeline.intake  # what the callbacks submit to
        self._budgets = BudgetTracker(budgets) if budgets else None
        # LangChain re-raises a callback's exception only from a handler with raise_error;
        # _never_raise lets nothing through but BudgetExceededError.
        self.raise_error = self._budgets is not None and self._budgets.raises
        # Routing decisions are read where LangGraph resolves them (see langgraph_hook);
        # on a LangGraph version the hook does not understand, from callbacks only.
        self._graph = GraphTracker(hooked=langgraph_hook.install())
        llm_start_dispatch.install()
        langgraph_policy.install()  # node TracePolicy applies to us as to LangGraph's tracers
        for graph in runs.graphs:
            self._graph.register_graph(graph)
        self.max_open_runs = runs.max_open
        self.open_run_ttl = runs.ttl
        # Open runs, oldest first.  Run-keyed maps use ``run_id.int``: hashing a UUID runs
        # Python code (~0.7 us), an int's hash does not, and a run does ~6 lookups.
        self._runs: dict[int, dict[str, Any]] = {}
        self._starts = 0
        self._abandoned = 0
        self._sampled_out = 0
        self._reused_run_ids = 0
        self._unended = 0
        # trace id -> keys of its runs still open (a root's trace only), so the runs
        # LangChain never ended are found when the root ends without scanning every run.
        self._open_by_trace: dict[str, set[int]] = {}
        self._pipeline.before_exit.append(self._submit_open_runs)
        self._dispatcher.after_fork.append(self._forget_open_runs)
        if queue.handle_sigterm:
            install_sigterm_exit()
        # Recently ended runs -> (trace_id, run link), so late children still find their
        # trace and ancestry.  FIFO caches are OrderedDicts: popping a plain dict's oldest
        # key again and again scans the deleted slots before it (8 us per pop at 10k).
        self._ended: OrderedDict[int, tuple[str, tuple]] = OrderedDict()
        self._traceparents: OrderedDict[str, str] = OrderedDict()  # trace_id -> traceparent
        self._rollup_lock = threading.Lock()  # children may finish in parallel threads
        self._internal_errors = 0

    # -- public control ------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every finished run so far is written; False if ``timeout`` ran out.

        Runs still open are written too, as ``running`` snapshots (replaced when they
        finish).  Network sinks are waited for too, each at most its own ``timeout`` when
        no ``timeout`` is given.  In async code use ``await handler.aflush()`` so the loop
        is not blocked.
        """
        self._submit_open_runs()
        return self._pipeline.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """`flush` without blocking the event loop."""
        import asyncio

        return await asyncio.to_thread(self.flush, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop: the local file first, then the network sinks (each within its
        own ``timeout``); later runs are dropped (and counted)."""
        self._submit_open_runs()
        return self._pipeline.close(timeout)

    def __enter__(self) -> ObsHandler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters (see ``docs/reliability.md``): ``enqueued``, ``written``, ``dropped``,
        ``failed``, ``queued``, ``in_flight``, ``lost`` (the intake and the local file),
        ``open_runs``, ``abandoned``, ``sampled_out``, ``reused_run_ids`` (runs given an id
        already in use), ``unended`` (runs LangChain never ended, closed at their trace's
        end) and ``internal_errors``; per other
        destination (``"langsmith"``, ``"otlp"``, a sink's ``label`` or class name) a dict
        of its queue's ``enqueued``, ``dropped``, ``queued``, ``in_flight``, ``lost`` and
        its exporter's counters (network sinks: ``sent``, ``failed``, ``unknown``,
        ``retries``, ``last_error``; OTLP counts spans: ``spans_sent`` ...)."""
        counters = self._pipeline.stats()
        counters["open_runs"] = len(self._runs)
        counters["abandoned"] = self._abandoned
        counters["sampled_out"] = self._sampled_out
        counters["reused_run_ids"] = self._reused_run_ids
        counters["unended"] = self._unended
        counters["internal_errors"] = self._internal_errors
        return counters

    @property
    def store(self) -> Any:
        """A `TraceStore` over ``db_path``, after flushing what is pending (locally: the
        the other sinks are not waited for)."""
        from lc_observe.storage.store import TraceStore

        if self.db_path is None:
            raise ValueError("this handler writes no SQLite file (db_path=None): no store")
        self._submit_open_runs()
        self._pipeline.flush(local_only=True)
        return TraceStore(self.db_path)

    def score(
        self,
        name: str,
        value: bool | float | str,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        comment: str | None = None,
        source: str = "human",
        author: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Score the current trace from inside a run, or any trace (``trace_id=``) after it.

        Inside a run (a node, a tool, a lambda ... traced by this handler) the score goes to
        that run's trace, through the writer queue: no disk I/O on the calling thread.  A
        trace this handler no longer remembers is scored in the file directly
        (`TraceStore.add_score`, after a flush).

        >>> def answer(state):                                        # doctest: +SKIP
        ...     reply = model.invoke(state["question"])
        ...     handler.score("answer_length", len(reply.content), source="heuristic")
        ...     return {"answer": reply.content}
        >>> handler.score("thumbs_up", True, trace_id=tid, source="feedback")  # doctest: +SKIP

        Raises:
            ValueError / TypeError: a bad name, source or value, or no trace to score.
            TraceNotFoundError: ``trace_id`` / ``span_id`` is not recorded anywhere.
        """
        from lc_observe.storage.scores import RECORD_SCORE, score_record

        given = trace_id
        if trace_id is None and span_id is None:
            run_id = _current_run_id()
            trace_id = None if run_id is None else self._trace_of(run_id)
            if trace_id is None:
                raise ValueError(
                    "handler.score() was called outside a run this handler traces: pass "
                    "trace_id=... (the root run's id), or call it inside the run"
                )
        elif span_id is not None:
            known = self._trace_of(span_id)
            if known is not None and trace_id is not None and known != str(trace_id):
                raise ValueError(f"span {span_id} belongs to trace {known}, not {trace_id}")
            trace_id = known if known is not None else None
        elif self._trace_of(trace_id) is None:
            trace_id = None  # not in memory: score it in the file
        if trace_id is None:  # an older trace, or another handler's: write it to the file
            if self.db_path is None:
                raise ValueError(
                    "this handler writes no SQLite file and does not remember that trace; "
                    "score it in the file it was recorded in: TraceStore(path).add_score(...)"
                )
            with self.store as store:
                store.add_score(
                    given,
                    name,
                    value,
                    span_id=span_id,
                    comment=comment,
                    source=source,
                    author=author,
                    metadata=metadata,
                )
            return
        record = score_record(
            trace_id,
            name,
            value,
            span_id=span_id,
            comment=comment,
            source=source,
            author=author,
            metadata=metadata,
        )
        if self._keeps(trace_id):
            self._dispatcher.submit(RECORD_SCORE, record)

    def _trace_of(self, run_id: Any) -> str | None:
        """The trace of a run this handler has open or ended recently, else None."""
        try:
            key = run_id.int if isinstance(run_id, UUID) else UUID(str(run_id)).int
        except ValueError:
            return None
        record = self._runs.get(key)
        if record is not None:
            return record["trace_id"]
        ended = self._ended.get(key)
        return None if ended is None else ended[0]

    def _keeps(self, trace_id: str) -> bool:
        """Whether sampling keeps ``trace_id`` (the same decision as for its spans)."""
        return self._sample_below >= 2**32 or zlib.crc32(trace_id.encode()) < self._sample_below

    # -- bookkeeping ---------------------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        kind: str,
        name: str,
        inputs: Any,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> dict[str, Any]:
        parent_key = parent_run_id.int if parent_run_id is not None else None
        parent = self._runs.get(parent_key) if parent_key is not None else None
        span_id = str(run_id)
        run_key = run_id.int
        reused = run_key in self._runs or run_key in self._ended
        shadowed = None
        if reused:  # keep both runs: the earlier one's span is never replaced
            span_id, shadowed = self._reused_run_id(run_id)
        up = None  # the parent's run link
        traceparent = None
        if parent is not None:
            trace_id, parent_id, up = parent["trace_id"], parent["span_id"], parent["_link"]
            traceparent = parent["traceparent"]
        elif parent_key is not None and parent_key in self._ended:
            trace_id, up = self._ended[parent_key]
            parent_id = str(parent_run_id)
            traceparent = self._traceparents.get(trace_id)
        else:  # a root, or a parent this handler never saw: LangChain's tracers do the same
            trace_id, parent_id = span_id, None
            # The OTel span (or remote LangSmith run) this trace continues, if any.
            traceparent = enclosing_traceparent(parent_run_id)
        if self.hide_inputs:
            inputs = _hidden(self.hide_inputs, inputs)
        meta = {**self.metadata, **metadata} if self.metadata else dict(metadata or {})
        if reused:
            meta[REUSED_RUN_ID_KEY] = str(run_id)
        all_tags = [*(tags or ()), *self.tags] if self.tags else list(tags or ())
        record = new_span_record(
            span_id, trace_id, parent_id, name, kind, time.time(), inputs, all_tags, meta
        )
        if traceparent is not None:
            record["traceparent"] = traceparent
            if parent_id is None:  # late children of this trace find it after the root ended
                self._traceparents[trace_id] = traceparent
                if len(self._traceparents) > _RECENT_ENDED:
                    with contextlib.suppress(KeyError):
                        self._traceparents.popitem(last=False)
        record["_t0"] = time.perf_counter()
        record["_sampled"] = (
            self._sample_below >= 2**32 or zlib.crc32(trace_id.encode()) < self._sample_below
        )
        record["_parent"] = parent_key if parent is not None else None
        # The generic run link: (parent's link, start, id), a chain up to the root, for
        # any sink that needs a run's ancestry (the privacy stage makes it public on demand).
        record["_link"] = (up, record["start_time"], span_id)
        record["user_id"] = _as_id(meta.get("user_id")) or self.user_id
        session = self.session_id
        for key in _SESSION_KEYS:
            if meta.get(key):
                session = _as_id(meta[key])
                break
        record["session_id"] = session
        if "langgraph_node" in meta:
            record["graph_node"], record["graph_step"], record["checkpoint_ns"] = graph_fields(meta)
            if parent is not None and parent["graph_node"] is None:
                parent["graph_name"] = parent["name"]  # the parent runs a graph's nodes
        if shadowed is not None:
            record["_shadowed"] = shadowed
        self._runs[run_key] = record
        if parent_id is None:  # the open runs of each trace, to close what never ends
            self._open_by_trace[trace_id] = {run_key}
        else:
            members = self._open_by_trace.get(trace_id)
            if members is not None:
                members.add(run_key)  # set.add: atomic under the GIL
        self._starts += 1
        if len(self._runs) > self.max_open_runs or not self._starts & 1023:
            self._evict_stale_runs()
        self._graph.on_start(record)
        return record

    def _evict_stale_runs(self) -> None:
        """Write the oldest open runs as ``running`` and forget them, while there are too
        many or they are older than ``open_run_ttl`` (amortised O(1): oldest first)."""
        now = time.perf_counter()
        while self._runs:
            try:
                run_id = next(iter(self._runs))
            except (StopIteration, RuntimeError):  # emptied or resized by another thread
                return
            record = self._runs.get(run_id)
            if record is None:
                continue
            if len(self._runs) <= self.max_open_runs and now - record["_t0"] < self.open_run_ttl:
                return
            if self._runs.pop(run_id, None) is record:
                self._abandoned += 1
                if record["parent_id"] is None:
                    self._open_by_trace.pop(record["trace_id"], None)
                if record["_sampled"]:
                    self._dispatcher.submit(RECORD_RUNNING, dict(record))

    def _reused_run_id(self, run_id: UUID) -> tuple[str, dict[str, Any] | None]:
        """A run started with the id of a run this handler has open or recently ended
        (a ``run_id`` passed in config for several invocations, or handed on to a child):
        counted, logged once, and recorded under a fresh span id, its metadata naming the id
        it was given.  Returns that span id and the earlier run if it is still open: the
        new run shadows it until it ends, then the earlier run takes the id back (LangChain
        ends them in that order: the child first)."""
        self._reused_run_ids += 1
        if self._reused_run_ids == 1:
            logger.warning(
                "lc_observe: run id %s was given to a second run; both are recorded (the "
                "second under a new span id, metadata %r). Pass a fresh run_id per "
                "invocation (stats['reused_run_ids'] counts these)",
                run_id,
                REUSED_RUN_ID_KEY,
            )
        return str(uuid4()), self._runs.get(run_id.int)

    def _close_unended(self, root: dict[str, Any], keys: set[int]) -> None:
        """Close the runs of ``root``'s trace that LangChain never ended (``keys``: the
        trace's runs still open), as failed with `RunNotEndedError`, deepest first, so
        they roll up into their parents and ``root``."""
        unended = [self._runs.get(key) for key in list(keys)]
        for record in sorted(filter(None, unended), key=lambda r: r["_t0"], reverse=True):
            if record is not root:
                self._unended += 1
                self._end(UUID(record["span_id"]), "error", None, RunNotEndedError(root["name"]))

    def _submit_open_runs(self) -> None:
        """Queue a ``running`` snapshot of every open run (at flush, close and exit)."""
        for record in list(self._runs.values()):
            if record["_sampled"]:
                self._dispatcher.submit(RECORD_RUNNING, dict(record))

    def _forget_open_runs(self) -> None:
        """In a forked child: the parent's open runs are the parent's to finish and write."""
        self._runs.clear()
        self._ended.clear()
        self._open_by_trace.clear()
        self._rollup_lock = threading.Lock()

    def _end(
        self,
        run_id: UUID,
        status: str,
        outputs: Any = None,
        error: BaseException | None = None,
        control: BaseException | None = None,
    ) -> None:
        key = run_id.int
        record = self._runs.get(key)
        if record is None:
            return
        if record["parent_id"] is None:
            open_in_trace = self._open_by_trace.pop(record["trace_id"], None)
            if open_in_trace is not None and len(open_in_trace) > 1:
                self._close_unended(record, open_in_trace)
        if self._runs.pop(key, None) is not record:
            return  # ended meanwhile on another thread
        shadowed = record.pop("_shadowed", None)
        if shadowed is not None:  # the earlier run of the same id takes it back
            self._runs[key] = shadowed
        if record["parent_id"] is not None:
            members = self._open_by_trace.get(record["trace_id"])
            if members is not None:
                members.discard(key)
        record["end_time"] = time.time()
        record["latency_ms"] = (time.perf_counter() - record["_t0"]) * 1000.0
        if status == "ok" and record.get("_interrupted"):
            status = "interrupted"  # a graph that stopped at an interrupt() ends normally
        record["status"] = status
        record["outputs"] = _hidden(self.hide_outputs, outputs) if self.hide_outputs else outputs
        # A failed child's (exception, formatted info): the same exception usually reaches
        # this run next, and is formatted once.  Popped here whatever the outcome, so no
        # exception (and through its traceback, no frame of the app) outlives its run.
        from_child = record.pop("_child_error", None)
        if error is not None:
            if from_child is not None and from_child[0] is error:
                info = from_child[1]
            else:
                info = _error_info(error)
            record["error"] = info
            if status == "error":
                record["error_count"] += 1
            parent = self._runs.get(record["_parent"]) if record["_parent"] is not None else None
            if parent is not None:
                parent["_child_error"] = (error, info)
        self._roll_up(record)
        self._ended[key] = (record["trace_id"], record["_link"])
        if len(self._ended) > _RECENT_ENDED:
            with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
                self._ended.popitem(last=False)
        if not record["_sampled"]:
            self._sampled_out += 1
            if record["parent_id"] is None:
                self._graph.on_trace_end(record["trace_id"])
            return
        parent = self._runs.get(record["_parent"]) if record["_parent"] is not None else None
        events = self._graph.on_end(record, parent, control)  # before the record is shared
        submit = self._dispatcher.submit
        submit(RECORD_SPAN, record)
        for event in events:
            submit(RECORD_BRANCH, event)
        if record["parent_id"] is None:
            for event in self._graph.on_trace_end(record["trace_id"]):
                submit(RECORD_BRANCH, event)
            if self._budgets is not None:
                self._budgets.trace_ended(record["trace_id"])

    def _roll_up(self, record: dict[str, Any]) -> None:
        """Add a finished span's subtree totals to its (still open) parent."""
        parent = self._runs.get(record["_parent"]) if record["_parent"] is not None else None
        if parent is None:
            return
        with self._rollup_lock:
            if record["status"] == "interrupted":
                parent["_interrupted"] = True
            parent["span_count"] += record["span_count"]
            parent["error_count"] += record["error_count"]
            for field in ROLLUP_FIELDS:
                value = record[field]
                if value is not None:
                    parent[field] = value if parent[field] is None else parent[field] + value
            if parent["graph_name"] is None and record["graph_name"] is not None:
                parent["graph_name"] = record["graph_name"]

    def _error_end(self, run_id: UUID, error: BaseException) -> None:
        status = span_status_for_error(error)
        if status == "ok":  # LangGraph control flow (Command(graph=PARENT)), not a failure
            command = error.args[0] if error.args else None
            self._end(run_id, "ok", {"output": command}, control=error)
        else:
            self._end(run_id, status, None, error)

    @_never_raise
    def _on_langgraph_branch(
        self, node_run_id: UUID, path: Any, ends: dict[Any, str] | None, result: Any
    ) -> None:
        """LangGraph resolved a conditional edge inside one of this handler's node runs
        (called by `lc_observe.capture.langgraph_hook` on the thread that runs the node)."""
        record = self._runs.get(node_run_id.int)
        if record is not None and record.get("_node_run"):
            self._graph.on_branch(record, path, ends, result)

    # -- chains (also prompts, parsers, LangGraph graphs and nodes) ------------------------------

    @_never_raise
    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "Unnamed")
        kind = kwargs.get("run_type") or "chain"
        data = inputs if isinstance(inputs, dict) else {"input": inputs}
        self._start(run_id, parent_run_id, kind, name, data, tags, metadata)

    @_never_raise
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._late_inputs(run_id, kwargs.get("inputs"))
        data = outputs if isinstance(outputs, dict) else {"output": outputs}
        self._end(run_id, "ok", data)

    @_never_raise
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._late_inputs(run_id, kwargs.get("inputs"))
        self._error_end(run_id, error)

    def _late_inputs(self, run_id: UUID, new_inputs: Any) -> None:
        """Streamed runs report their inputs only when they end (or fail)."""
        record = self._runs.get(run_id.int) if new_inputs is not None else None
        if record is not None:
            data = new_inputs if isinstance(new_inputs, dict) else {"input": new_inputs}
            record["inputs"] = _hidden(self.hide_inputs, data) if self.hide_inputs else data

    # -- models ---------------------------------------------------------------------------------

    @_never_raise
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "Unnamed")
        record = self._start(
            run_id, parent_run_id, "chat_model", name, {"messages": messages}, tags, metadata
        )
        self._model_start(run_id, record, serialized, kwargs)

    @_never_raise
    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "Unnamed")
        record = self._start(
            run_id, parent_run_id, "llm", name, {"prompts": list(prompts)}, tags, metadata
        )
        self._model_start(run_id, record, serialized, kwargs)

    def _model_start(
        self,
        run_id: UUID,
        record: dict[str, Any],
        serialized: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        """Model name and provider at start (see `lc_observe.capture.usage`); budgets checked."""
        invocation = kwargs.get("invocation_params")
        record["model"], record["provider"] = model_and_provider(
            serialized, record["metadata"], invocation
        )
        record["params"] = request_params(invocation)
        # Kept for any sink that wants them (references only; made public on demand).
        record["_invocation"] = {k: kwargs[k] for k in _MODEL_START_ARGS if k in kwargs}
        record["_serialized"] = serialized  # the model manifest ("open in playground")
        if self._budgets is not None:
            self._check_budgets(run_id, record)

    def _check_budgets(self, run_id: UUID, record: dict[str, Any]) -> None:
        """Stop a model call whose ``raise`` budget is used up: the span ends as failed
        and the error goes up into the run (LangChain reports it to the parent runs)."""
        error = self._budgets.blocked(record)  # type: ignore[union-attr]
        if error is not None:
            self._end(run_id, "error", None, error)
            raise error

    def _charge_budgets(self, record: dict[str, Any]) -> None:
        """Count a finished model call against the budgets; act on those it used up."""
        for budget, event in self._budgets.spend(record):  # type: ignore[union-attr]
            row = event.model_dump(include=set(BUDGET_FIELDS))
            row["time"] = event.time.timestamp()
            self._dispatcher.submit(RECORD_BUDGET, row)
            if isinstance(budget.action, str):  # "warn" or "raise"
                logger.warning(
                    "lc_observe: budget %r used up for %s=%r (%s %.6g of %.6g)%s",
                    event.budget,
                    event.per,
                    event.scope,
                    event.metric,
                    event.spent,
                    event.limit_value,
                    "; further model calls will raise BudgetExceededError"
                    if budget.action == "raise"
                    else "",
                )
            else:
                try:
                    budget.action(event)
                except Exception:
                    logger.exception("lc_observe: the budget action of %r raised", event.budget)

    @_never_raise
    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        record = self._runs.get(run_id.int)
        if record is None:
            return
        chunk = kwargs.get("chunk")
        # TTFT: the first chunk with output, never a framing event (message_start ...).
        if record["ttft_ms"] is None and carries_content(token, chunk):
            record["ttft_ms"] = (time.perf_counter() - record["_t0"]) * 1000.0
        if chunk is not None:
            record["_stream_usage"] = observe_chunk(record.get("_stream_usage"), chunk)

    @_never_raise
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        record = self._runs.get(run_id.int)
        if record is not None:
            self._record_usage(record, response)
        self._end(run_id, "ok", response)

    def _record_usage(self, record: dict[str, Any], response: Any) -> None:
        """Token counts and cost of a finished model call, before it rolls up."""
        fields = usage_from_result(response, record.pop("_stream_usage", None))
        for field in TOKEN_FIELDS:
            record[field] = fields.get(field)
        # ``model`` stays the requested name; the response names the one actually served
        # (a dated snapshot; for Azure, the start name is the deployment).
        provider = fields.get("provider") or record["provider"]
        record["response_model"], record["provider"] = fields.get("model"), provider
        if record["model"] is None:
            record["model"] = fields.get("model")
        if record["kind"] == "chat_model":
            record["cache_hit"] = is_cache_hit(response)
        if record["cache_hit"]:
            # Answered from LangChain's cache: no tokens were processed, nothing was paid.
            # The cached message (in outputs) still shows the original call's usage.
            for field in TOKEN_FIELDS:
                record[field] = None
            record["cost_usd"] = 0.0
        else:
            record["cost_usd"] = self.prices.call_cost(
                record["model"], record["response_model"], provider, fields
            )
        if self._budgets is not None:
            self._charge_budgets(record)

    @_never_raise
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error_end(run_id, error)

    # -- tools and retrievers -------------------------------------------------------------------

    @_never_raise
    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "Unnamed")
        data = inputs if inputs is not None else {"input": input_str}
        record = self._start(run_id, parent_run_id, "tool", name, data, tags, metadata)
        params = {}
        if isinstance(serialized, dict) and isinstance(serialized.get("description"), str):
            params["description"] = serialized["description"]
        if isinstance(kwargs.get("tool_call_id"), str):
            params["tool_call_id"] = kwargs["tool_call_id"]
        record["params"] = params or None

    @_never_raise
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "ok", {"output": output})

    @_never_raise
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error_end(run_id, error)

    @_never_raise
    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "Retriever")
        self._start(run_id, parent_run_id, "retriever", name, {"query": query}, tags, metadata)

    @_never_raise
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "ok", {"documents": documents})

    @_never_raise
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error_end(run_id, error)
