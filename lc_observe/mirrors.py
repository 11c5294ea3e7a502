"""Network mirrors of an `ObsHandler`: LangSmith and OpenTelemetry, each off the hot path.

`build_mirrors` turns the handler's ``langsmith=`` / ``otlp_endpoint=`` / ``otlp_exporter=``
arguments (and any `NetworkSink` passed in ``sinks=``) into forwarding sinks: each
network sink gets a bounded queue and a worker thread of its own, so neither the
application nor the local SQLite writer ever waits for the network.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from .serialize import Limits
from .sinks.forward import ForwardingSink
from .sinks.network import NetworkSink

logger = logging.getLogger("lc_observe")

_OTLP_FIELD_CHARS = 32_000


def build_mirrors(
    *,
    langsmith: Any = None,
    project_name: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_exporter: Any = None,
    network_sinks: Sequence[NetworkSink] = (),
    limits: Limits | None = None,
    max_queue: int = 100_000,
    timeout: float = 5.0,
) -> list[ForwardingSink]:
    """The handler's network sinks, each behind its own queue (see module docstring).

    They receive the handler's public records (`lc_observe.privacy`): already bounded and
    redacted, so they redact nothing themselves.

    Args:
        langsmith: ``True`` (a client from LangSmith's environment variables), a
            ``langsmith.Client``, or ``None``/``False``.
        project_name: LangSmith project (default: ``LANGSMITH_PROJECT`` ...).
        otlp_endpoint: OpenTelemetry collector URL (needs the ``[otlp]`` extra).
        otlp_exporter: an OpenTelemetry ``SpanExporter`` (instead of an endpoint).
        network_sinks: network sinks built by the caller.
        limits: serialization limits.
        max_queue: records each mirror holds at most while the network is slow.
        timeout: seconds a flush, close or exit waits for each mirror at most.
    """
    sinks: list[NetworkSink] = list(network_sinks)
    if langsmith is not None and langsmith is not False:
        from .sinks.langsmith import LangSmithSink, missing_api_key

        client = None if langsmith is True else langsmith
        problem = missing_api_key() if client is None else None
        if problem is not None:  # one warning, no requests bound to fail, no per-run noise
            logger.warning(
                "lc_observe: langsmith=True, but %s. LangSmith mirroring is off; "
                "local recording goes on.",
                problem,
            )
        else:
            sinks.append(
                LangSmithSink(client, project_name=project_name, limits=limits, timeout=timeout)
            )
    if otlp_endpoint is not None or otlp_exporter is not None:
        from .sinks.otlp import OtlpSink

        limits = limits or Limits()  # span attributes: collectors dislike huge values
        otlp_limits = dataclasses.replace(
            limits, max_field_chars=min(limits.max_field_chars, _OTLP_FIELD_CHARS)
        )
        sinks.append(
            OtlpSink(
                otlp_exporter,
                endpoint=otlp_endpoint,
                limits=otlp_limits,
                timeout=timeout,
            )
        )
    return [ForwardingSink(sink, max_queue=max_queue, timeout=timeout) for sink in sinks]
